"""Signed delivery of voice webhooks (synchronous, on the engine's thread) and status callbacks
(queued, on a delivery thread, so they never hold up a REST response or a call's TwiML)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import queue
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

import requests

log = logging.getLogger(__name__)

USER_AGENT = "TwilioProxy/1.1"


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


@dataclass
class WebhookResponse:
    """What the app answered (or why it could not be fetched)."""

    url: str
    status: int | None
    content_type: str
    body: bytes
    error: str | None = None

    @property
    def ok(self) -> bool:
        """A 2xx answer."""
        return self.error is None and self.status is not None and 200 <= self.status < 300


class WebhookClient:
    """Makes signed requests the way Twilio does."""

    def __init__(self, auth_token: str, timeout: float = 15.0):
        self.auth_token = auth_token
        self.timeout = timeout

    def request(self, url: str, method: str, params: list[tuple[str, str]]) -> WebhookResponse:
        """Send one webhook; never raises."""
        method = (method or "POST").upper()
        target = request_url(url, method, params)
        signed_params = params if method == "POST" else []
        headers = {
            "X-Twilio-Signature": signature(self.auth_token, target, signed_params),
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
            "User-Agent": USER_AGENT,
            "Accept": "*/*",
            "Cache-Control": "max-age=259200",
        }
        try:
            if method == "POST":
                resp = requests.post(target, data=params, headers=headers, timeout=self.timeout)
            else:
                resp = requests.get(target, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            return WebhookResponse(target, None, "", b"", error=f"{type(exc).__name__}: {exc}")
        content_type = resp.headers.get("Content-Type", "")
        return WebhookResponse(target, resp.status_code, content_type, resp.content)


class Deliverer:
    """A single delivery thread for status callbacks: FIFO, so SequenceNumbers arrive in order."""

    def __init__(self, client: WebhookClient, on_done: Callable[[], None] = lambda: None):
        self.client = client
        self.on_done = on_done
        self._queue: queue.Queue = queue.Queue()
        self._busy = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the delivery thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="emulator-callbacks", daemon=True)
            self._thread.start()

    def submit(self, url: str, method: str, params: list[tuple[str, str]], on_result: Callable[[bool, str], None]) -> None:
        """Queue a status callback."""
        with self._lock:
            self._busy += 1
        self._queue.put((url, method, params, on_result))

    def idle(self) -> bool:
        """True when nothing is queued or being sent."""
        with self._lock:
            return self._busy == 0

    def stop(self) -> None:
        """Stop after the callbacks already queued."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            url, method, params, on_result = item
            try:
                resp = self.client.request(url, method, params)
                if resp.ok:
                    on_result(True, "")
                else:
                    what = resp.error or f"HTTP {resp.status}"
                    on_result(False, f"Status callback to {resp.url} failed: {what}")
            except Exception:
                log.exception("status callback delivery failed")
            finally:
                with self._lock:
                    self._busy -= 1
                self.on_done()
