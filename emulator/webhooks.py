"""Signed webhook requests, made the way Twilio makes them, retries included.

The engine calls `WebhookClient.request` from its lanes: TwiML fetches from the call's lane,
status callbacks from the call's callback lane (see engine.py), so a slow URL holds up only
its own call. Each HTTP attempt is handed to `on_attempt` (the inspector records it).

Connection overrides in the URL's fragment (`#ct=1000&rc=3&rp=all`) set the connect timeout,
read timeout, total time, retry count and retry policy, with Twilio's bounds and defaults; the
fragment itself is never sent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import urllib3

from . import limits

log = logging.getLogger(__name__)

USER_AGENT = "TwilioProxy/1.1"
#: Twilio's "HTTP retrieval failure" (non-2xx, read timeout) and "HTTP connection failure".
RETRIEVAL_FAILURE = 11200
CONNECTION_FAILURE = 11205
BODY_EXCERPT = 1024


def signature(auth_token: str, url: str, params: Iterable[tuple[str, str]] = ()) -> str:
    """X-Twilio-Signature (reference §9): HMAC-SHA1 over the URL plus sorted name+value pairs."""
    grouped: dict[str, set[str]] = {}
    for name, value in params:
        grouped.setdefault(name, set()).add(value)
    data = url
    for name in sorted(grouped):
        for value in sorted(grouped[name]):
            data += name + value
    digest = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def request_url(url: str, method: str, params: list[tuple[str, str]]) -> str:
    """The URL actually requested: no fragment (connection overrides are never sent); for GET the
    parameters are appended to any query string the URL already has."""
    parts = urlsplit(url)
    query = parts.query
    if method == "GET" and params:
        query = (query + "&" if query else "") + urlencode(params)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


@dataclass(frozen=True)
class Overrides:
    """A URL's connection settings: timeouts in seconds, retries, and which failures are retried."""

    connect: float
    read: float
    total: float
    retries: int
    policy: tuple[str, ...]
    warnings: tuple[str, ...] = ()

    def retries_on(self, failure: str | None) -> bool:
        """True if the policy retries this kind of failure (`ct`, `rt`, `4xx`, `5xx`)."""
        return failure is not None and ("all" in self.policy or failure in self.policy)


def overrides(url: str, timeout: float) -> Overrides:
    """The connection overrides in `url`'s fragment (`ct`, `rt`, `tt`, `rc`, `rp`); `timeout`
    (EMULATOR_WEBHOOK_TIMEOUT) stands for Twilio's 15 s read and total defaults. A value out of
    bounds or unreadable keeps the default, with a warning."""
    fragment = dict(parse_qsl(urlsplit(url).fragment))
    warnings: list[str] = []

    def number(key: str, bounds: tuple[int, int, int], default: float) -> float:
        raw = fragment.get(key)
        if raw is None:
            return default
        if not raw.isdigit() or not bounds[1] <= int(raw) <= bounds[2]:
            warnings.append(f"connection override {key}={raw!r} is not a whole number from {bounds[1]} to {bounds[2]}; the default is used")
            return default
        return int(raw)

    connect = number("ct", limits.CONNECT_TIMEOUT_MS, limits.CONNECT_TIMEOUT_MS[0]) / 1000
    read = number("rt", limits.READ_TIMEOUT_MS, timeout * 1000) / 1000
    total = number("tt", limits.TOTAL_TIME_MS, timeout * 1000) / 1000
    retries = int(number("rc", limits.RETRY_COUNT, limits.RETRY_COUNT[0]))
    policy = tuple(p for p in fragment.get("rp", "").split(",") if p) or limits.DEFAULT_RETRY_POLICY
    if any(p not in limits.RETRY_POLICIES for p in policy):
        warnings.append(f"Error 11243: retry policy rp={fragment['rp']!r} is invalid; the default (ct) is used")
        policy = limits.DEFAULT_RETRY_POLICY
    return Overrides(min(connect, total), read, total, retries, policy, tuple(warnings))


@dataclass
class Attempt:
    """One HTTP request the emulator made, and what came of it."""

    url: str
    method: str
    params: list[tuple[str, str]]
    signature: str
    token: str
    number: int
    status: int | None = None
    content_type: str = ""
    body: bytes = b""
    error: str | None = None
    #: Which retry-policy class the failure is (`ct`, `rt`, `4xx`, `5xx`), None on success.
    failure: str | None = None
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        """A 2xx answer."""
        return self.error is None and self.status is not None and 200 <= self.status < 300


@dataclass
class WebhookResponse:
    """What the app answered in the end (or why it could not be fetched)."""

    url: str
    status: int | None
    content_type: str
    body: bytes
    error: str | None = None
    attempts: int = 1
    failure: str | None = None

    @property
    def ok(self) -> bool:
        """A 2xx answer."""
        return self.error is None and self.status is not None and 200 <= self.status < 300

    @property
    def error_code(self) -> int:
        """11205 when no connection could be made, else 11200."""
        return CONNECTION_FAILURE if self.failure == "ct" else RETRIEVAL_FAILURE


class WebhookClient:
    """Makes signed requests the way Twilio does: keep-alive connections, redirects followed,
    retries as the URL's connection overrides say."""

    def __init__(self, auth_token: str, timeout: float = 15.0, pool_size: int = 64):
        self.auth_token = auth_token
        self.timeout = timeout
        # urllib3 (what requests is built on) directly: thread-safe pools, and a fraction of the
        # per-request work, which matters when hundreds of calls share one interpreter.
        self._http = urllib3.PoolManager(num_pools=64, maxsize=pool_size, block=False)
        self._defaults = overrides("", timeout)  # a URL without connection overrides

    def request(self, url: str, method: str, params: list[tuple[str, str]], token: str | None = None,
                on_attempt: Callable[[Attempt], None] | None = None) -> WebhookResponse:
        """Send one webhook, retrying as its connection overrides say; never raises. Every
        attempt carries the same `I-Twilio-Idempotency-Token` and goes to `on_attempt`."""
        method = (method or "POST").upper()
        settings = overrides(url, self.timeout) if "#" in url else self._defaults
        target = request_url(url, method, params)
        token = token or str(uuid.uuid4())
        deadline = time.monotonic() + settings.total
        last: Attempt | None = None
        for number in range(1, settings.retries + 2):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            last = self.attempt(target, method, params, token, number,
                                urllib3.Timeout(connect=min(settings.connect, left), read=min(settings.read, left), total=left))
            if on_attempt is not None:
                on_attempt(last)
            if last.ok or not settings.retries_on(last.failure):
                break
        if last is None:  # pragma: no cover - the first attempt always has time left
            return WebhookResponse(target, None, "", b"", error="no time left", failure="rt")
        return WebhookResponse(target, last.status, last.content_type, last.body, last.error, last.number, last.failure)

    def resend(self, target: str, method: str, params: list[tuple[str, str]]) -> Attempt:
        """Send a recorded request once more (`target` as requested), signed afresh, new token."""
        return self.attempt(target, method, params, str(uuid.uuid4()), 1, urllib3.Timeout(total=self.timeout))

    def attempt(self, target: str, method: str, params: list[tuple[str, str]], token: str, number: int,
                timeout: urllib3.Timeout) -> Attempt:
        """One signed HTTP request to `target` (the URL as requested); never raises."""
        signed_params = params if method == "POST" else []
        sig = signature(self.auth_token, target, signed_params)
        headers = {
            "X-Twilio-Signature": sig,
            "I-Twilio-Idempotency-Token": token,
            "User-Agent": USER_AGENT,
            "Accept": "*/*",
            "Cache-Control": "max-age=259200",
        }
        body = None
        if method == "POST":
            body = urlencode(params)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        attempt = Attempt(target, method, params, sig, token, number)
        started = time.monotonic()
        try:
            resp = self._http.request(method, target, body=body, headers=headers, timeout=timeout,
                                      retries=urllib3.Retry(total=None, connect=0, read=0, redirect=10, status=0))
        except (urllib3.exceptions.HTTPError, ValueError, OSError) as exc:
            reason = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason else exc
            attempt.error = f"{type(reason).__name__}: {reason}"
            attempt.failure = "ct" if isinstance(reason, urllib3.exceptions.ConnectTimeoutError | ConnectionError) else "rt"
        else:
            attempt.status, attempt.content_type, attempt.body = resp.status, resp.headers.get("Content-Type", ""), resp.data
            if not attempt.ok:
                attempt.failure = "5xx" if resp.status >= 500 else "4xx" if resp.status >= 400 else None
        attempt.elapsed = time.monotonic() - started
        return attempt
