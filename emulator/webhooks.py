"""Signed webhook requests, made the way Twilio makes them.

The engine calls `WebhookClient.request` from its lanes: TwiML fetches from the call's lane,
status callbacks from the call's callback lane (see engine.py), so a slow URL holds up only
its own call.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

import urllib3

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
    """Makes signed requests the way Twilio does: keep-alive connections, redirects followed."""

    def __init__(self, auth_token: str, timeout: float = 15.0, pool_size: int = 64):
        self.auth_token = auth_token
        self.timeout = timeout
        # urllib3 (what requests is built on) directly: thread-safe pools, and a fraction of the
        # per-request work, which matters when hundreds of calls share one interpreter.
        self._http = urllib3.PoolManager(num_pools=64, maxsize=pool_size, block=False)

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
        body = None
        if method == "POST":
            body = urlencode(params)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            resp = self._http.request(
                method, target, body=body, headers=headers,
                timeout=urllib3.Timeout(total=self.timeout), retries=urllib3.Retry(total=None, connect=0, read=0, redirect=10, status=0),
            )
        except (urllib3.exceptions.HTTPError, ValueError, OSError) as exc:
            return WebhookResponse(target, None, "", b"", error=f"{type(exc).__name__}: {exc}")
        return WebhookResponse(target, resp.status, resp.headers.get("Content-Type", ""), resp.data)
