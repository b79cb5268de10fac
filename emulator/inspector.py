"""The inspector: a bounded record of every request the emulator sent (and, for the Call Events
resource, the REST requests it answered about a call).

Each HTTP attempt is one `Delivery`; retries of a webhook share its idempotency token and count
their `attempt`. The newest `EMULATOR_INSPECTOR_SIZE` deliveries are kept; older ones are
forgotten, so memory stays bounded however long the emulator runs.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .webhooks import BODY_EXCERPT, Attempt

#: What a delivery was: a TwiML request, a callback, a Debugger event, a replay, or (Events only)
#: a REST request the emulator answered.
KINDS = ("twiml", "status-callback", "recording-callback", "amd-callback", "debugger", "replay", "api")


@dataclass(frozen=True)
class Delivery:
    """One request and its outcome, as the inspector keeps it."""

    id: int
    kind: str
    call_sid: str | None
    url: str
    method: str
    params: tuple[tuple[str, str], ...]
    signature: str
    token: str
    attempt: int
    status: int | None
    content_type: str
    body: str
    error: str | None
    elapsed_ms: int
    at: float
    replay_of: int | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """A 2xx answer."""
        return self.error is None and self.status is not None and 200 <= self.status < 300

    @property
    def sent(self) -> bool:
        """False for a request chaos dropped (attempt 0): recorded, never sent."""
        return self.attempt > 0

    @property
    def sid(self) -> str:
        """The id as a string, for paging tokens."""
        return str(self.id)


class Inspector:
    """Thread-safe, bounded, newest last (`recent()` gives newest first)."""

    def __init__(self, size: int = 5000):
        self._items: deque[Delivery] = deque(maxlen=max(1, size))
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def record(self, kind: str, call_sid: str | None, attempt: Attempt, at: float, replay_of: int | None = None,
               notes: tuple[str, ...] = ()) -> Delivery:
        """Keep one HTTP attempt (the body only as an excerpt)."""
        body = attempt.body[:BODY_EXCERPT].decode("utf-8", "replace")
        with self._lock:
            delivery = Delivery(next(self._ids), kind, call_sid, attempt.url, attempt.method, tuple(attempt.params), attempt.signature,
                                attempt.token, attempt.number, attempt.status, attempt.content_type, body, attempt.error,
                                int(attempt.elapsed * 1000), at, replay_of, notes)
            self._items.append(delivery)
        return delivery

    def get(self, delivery_id: int) -> Delivery | None:
        """The delivery with this id, if still kept."""
        with self._lock:
            return next((d for d in self._items if d.id == delivery_id), None)

    def recent(self, call_sid: str | None = None, kinds: tuple[str, ...] | None = None, before: int | None = None,
               limit: int | None = None) -> list[Delivery]:
        """Newest first: those of `call_sid`, of `kinds`, older than id `before`, at most `limit`."""
        with self._lock:
            items = list(self._items)
        out: list[Delivery] = []
        for d in reversed(items):
            if (call_sid is None or d.call_sid == call_sid) and (kinds is None or d.kind in kinds) and (before is None or d.id < before):
                out.append(d)
                if limit is not None and len(out) >= limit:
                    break
        return out

    def as_json(self, d: Delivery, rfc2822: Any) -> dict[str, Any]:
        """A delivery as `GET /emulator/webhooks` shows it."""
        return {
            "id": d.id,
            "kind": d.kind,
            "call_sid": d.call_sid,
            "url": d.url,
            "method": d.method,
            "parameters": [list(p) for p in d.params],
            "signature": d.signature,
            "idempotency_token": d.token,
            "attempt": d.attempt,
            "response": {"status": d.status, "content_type": d.content_type, "body_excerpt": d.body, "error": d.error},
            "duration_ms": d.elapsed_ms,
            "sent_at": rfc2822(d.at),
            "replay_of": d.replay_of,
            "notes": list(d.notes),
        }
