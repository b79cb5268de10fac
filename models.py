"""Database models: the calls Twilio told us about, their callbacks, and operator actions."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

from flask import current_app
from flask_login import UserMixin
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy import false as sa_false
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import NullType

# Twilio's call statuses, in the order a call moves through them. `initiated` is not a
# REST status but the first status callback of an outbound call carries it (reference §4).
# Every terminal status shares the last rank: a call ends once and never reopens.
STATUS_RANK = {
    "queued": 0,
    "initiated": 1,
    "ringing": 2,
    "in-progress": 3,
    "completed": 4,
    "busy": 4,
    "failed": 4,
    "no-answer": 4,
    "canceled": 4,
}
TERMINAL_RANK = 4
ACTIVE_STATUSES = tuple(s for s, rank in STATUS_RANK.items() if rank < TERMINAL_RANK)
TERMINAL_STATUSES = tuple(s for s, rank in STATUS_RANK.items() if rank == TERMINAL_RANK)
# Statuses Twilio's Status=canceled can still end (it ignores it for an answered call).
CANCELABLE_STATUSES = ("queued", "initiated", "ringing")
# What Twilio accepts for a call in each state, so what the panel offers: new TwiML only for an
# answered call (else 21220), Status=canceled only before an answer, nothing once it ended.
CONTROLS = {
    **{status: ("cancel", "hangup") for status in CANCELABLE_STATUSES},
    "in-progress": ("redirect", "twiml", "hangup"),
}
# The highest page number a list accepts: far beyond any real history, and small enough that
# the offset it makes fits every database's integers.
MAX_PAGE = 1_000_000
# An operator "has a call's page open" if its page polled within this many seconds.
VIEWER_SECONDS = 10


def upsert_dialect(dialect_name: str):
    """The SQLAlchemy dialect module whose insert() has ON CONFLICT (SQLite, PostgreSQL), or
    None for a database without it."""
    return {"sqlite": sqlite, "postgresql": postgresql}.get(dialect_name)


class rare(ColumnElement):  # noqa: N801 (used like a SQL function)
    """A condition few rows meet, said so to SQLite's query planner. Its statistics (after an
    ANALYZE) average over all values: our own number fills to_number and NULL fills
    parent_call_sid, so an equality on them looks unselective and SQLite scans the table,
    although the values we look up are rare. PostgreSQL's statistics know better."""

    inherit_cache = True
    type = NullType()  # already a condition: no "= 1" added on SQLite
    _traverse_internals = [("condition", InternalTraversal.dp_clauseelement)]

    def __init__(self, condition):
        self.condition = condition


@compiles(rare)
def _rare(element, compiler, **kw):
    return compiler.process(element.condition, **kw)


@compiles(rare, "sqlite")
def _rare_on_sqlite(element, compiler, **kw):
    return f"likelihood({compiler.process(element.condition, **kw)}, 0.0001)"


def utcnow() -> datetime:
    """Return the current UTC time as a naive datetime (how every column stores time)."""
    return datetime.now(UTC).replace(tzinfo=None)


def stale_before() -> datetime:
    """A live call last heard of before this is "possibly stale" (STALE_AFTER_SECONDS)."""
    return utcnow() - timedelta(seconds=current_app.config["STALE_AFTER_SECONDS"])


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class Call(db.Model):
    """One call leg, keyed by Twilio's CallSid; its status only ever moves forward."""

    __tablename__ = "calls"
    __table_args__ = (
        # Every index is paid for on every webhook (each one it touches is another page to
        # fsync), so there is one per query the panel and the API make, and no more.
        Index("ix_calls_parent_call_sid", "parent_call_sid"),
        Index("ix_calls_from_number", "from_number"),
        Index("ix_calls_to_number", "to_number"),
        # History pages are ordered by (created_at, sid): covering indexes let a page's SIDs,
        # even the last page's, come from the index alone (bench/history_page.py).
        Index("ix_calls_created_at_sid", "created_at", "sid"),
        Index("ix_calls_status_created_at_sid", "status", "created_at", "sid"),
        # The live list's change feed: a poll reads only the calls changed since its last.
        Index("ix_calls_changed_at", "changed_at"),
    )

    sid: Mapped[str] = mapped_column(String(34), primary_key=True)
    account_sid: Mapped[str | None] = mapped_column(String(34))
    from_number: Mapped[str | None] = mapped_column(String(255))
    to_number: Mapped[str | None] = mapped_column(String(255))
    direction: Mapped[str | None] = mapped_column(String(32))
    caller_name: Mapped[str | None] = mapped_column(String(255))
    forwarded_from: Mapped[str | None] = mapped_column(String(255))
    parent_call_sid: Mapped[str | None] = mapped_column(String(34))
    status: Mapped[str] = mapped_column(String(16))
    status_rank: Mapped[int]
    duration: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)  # last heard from Twilio
    # When the call last changed in a way the panel shows (status, handler, staleness): a
    # webhook that only says "still here" leaves it, so the hold loop costs the panel nothing.
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The panel shows the call as possibly stale (set by panel.mark_stale_calls): hearing
    # from it again is then a change.
    shown_stale: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    # The operator who claimed the call ("I'm on it"). Webhooks never write these columns, and
    # the claim counts only while the call is live (`handler`), so ending a call costs nothing.
    handler_id: Mapped[int | None] = mapped_column(
        ForeignKey("operators.id", name="fk_calls_handler_id_operators"))
    claimed_at: Mapped[datetime | None]

    events: Mapped[list[CallEvent]] = relationship(
        back_populates="call", order_by="CallEvent.id", lazy="select"
    )
    actions: Mapped[list[OperatorAction]] = relationship(
        back_populates="call", order_by="OperatorAction.id", lazy="select"
    )
    handler_operator: Mapped[Operator | None] = relationship(lazy="select")
    recordings: Mapped[list[CallRecording]] = relationship(
        back_populates="call", order_by="CallRecording.id", lazy="select"
    )
    gathered: Mapped[list[GatherResult]] = relationship(
        back_populates="call", order_by="GatherResult.id", lazy="select"
    )

    @property
    def handler(self) -> Operator | None:
        """The operator handling the call: a claim ends when the call ends, and counts for
        nothing once its operator is deactivated."""
        operator = self.handler_operator
        return operator if self.is_active and operator is not None and operator.active else None

    @classmethod
    def live(cls):
        """SQL condition: the call has not ended (it uses the status index)."""
        return cls.status.in_(ACTIVE_STATUSES)

    @classmethod
    def newest_first(cls) -> tuple:
        """The order of every list of calls: newest first, CallSid breaking ties."""
        return cls.created_at.desc(), cls.sid.desc()

    @property
    def is_active(self) -> bool:
        """True while the call has not reached a terminal status."""
        return self.status_rank < TERMINAL_RANK

    @property
    def is_stale(self) -> bool:
        """Live, but nothing heard from Twilio for STALE_AFTER_SECONDS: a status callback
        may have been lost."""
        return self.is_active and self.updated_at < stale_before()

    @property
    def controls(self) -> tuple[str, ...]:
        """The controls Twilio accepts in the call's state (CONTROLS)."""
        return CONTROLS.get(self.status, ())

    def to_dict(self) -> dict:
        """The call as the JSON API shows it."""
        return {
            "sid": self.sid,
            "from": self.from_number,
            "to": self.to_number,
            "status": self.status,
            "direction": self.direction,
            "parent_call_sid": self.parent_call_sid,
            "caller_name": self.caller_name,
            "forwarded_from": self.forwarded_from,
            "created_at": isoformat(self.created_at),
            "updated_at": isoformat(self.updated_at),
            "duration": self.duration,
            "handler": self.handler.username if self.handler else None,
        }


class CallEvent(db.Model):
    """A status callback (or our answer to /voice), stored exactly once."""

    __tablename__ = "call_events"
    __table_args__ = (UniqueConstraint("call_sid", "dedupe_key", name="uq_call_events_dedupe"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_sid: Mapped[str] = mapped_column(ForeignKey("calls.sid"), index=True)
    # "seq:<n>" for callbacks with a SequenceNumber, "status:<CallStatus>" without one,
    # "voice:answered" for the moment /voice answered the call.
    dedupe_key: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))  # "callback" or "voice"
    status: Mapped[str] = mapped_column(String(16))
    sequence_number: Mapped[int | None]
    timestamp: Mapped[datetime | None]
    call_duration: Mapped[int | None]
    sip_response_code: Mapped[str | None] = mapped_column(String(8))
    params: Mapped[str] = mapped_column(Text)  # the raw parameters, as JSON
    received_at: Mapped[datetime] = mapped_column(default=utcnow)

    call: Mapped[Call] = relationship(back_populates="events")

    def to_dict(self) -> dict:
        """The event as the JSON API shows it."""
        return {
            "status": self.status,
            "source": self.source,
            "sequence_number": self.sequence_number,
            "timestamp": isoformat(self.timestamp),
            "call_duration": self.call_duration,
            "sip_response_code": self.sip_response_code,
            "received_at": isoformat(self.received_at),
        }


# Twilio's recording statuses (RecordingStatus of the recording status callback) that end a
# recording's processing: its file is ready (completed), or there will be none.
RECORDING_FINAL_STATUSES = ("completed", "absent", "failed", "deleted")
RECORDING_STATUSES = ("in-progress", "paused", "stopped", "processing") + RECORDING_FINAL_STATUSES
# Column sizes for what the caller did: Twilio's media URLs are ~130 characters; a <Gather>
# collects a few digits; a minute of speech is a few hundred characters.
RECORDING_URL_MAX = 500
DIGITS_MAX = 64
SPEECH_MAX = 2000


class CallRecording(db.Model):
    """A recording of the caller (<Record>), unique by Twilio's RecordingSid. The <Record>
    action and the recording status callback both describe it, in either order."""

    __tablename__ = "call_recordings"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_sid: Mapped[str] = mapped_column(ForeignKey("calls.sid"), index=True)
    recording_sid: Mapped[str] = mapped_column(String(34), unique=True)
    url: Mapped[str | None] = mapped_column(String(RECORDING_URL_MAX))  # Twilio's RecordingUrl
    duration: Mapped[int | None]
    status: Mapped[str | None] = mapped_column(String(16))  # None until the status callback
    error_code: Mapped[int | None]  # e.g. 16101 (too short) with status "absent"
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    call: Mapped[Call] = relationship(back_populates="recordings")

    @property
    def has_media(self) -> bool:
        """False once Twilio said there is no file (too short, silent, failed, deleted)."""
        return self.status is None or self.status not in ("absent", "failed", "deleted")

    def to_dict(self) -> dict:
        """The recording as the JSON API shows it (the media link is added by the API)."""
        return {
            "sid": self.recording_sid,
            "url": self.url,
            "duration": self.duration,
            "status": self.status,
            "error_code": self.error_code,
            "received_at": isoformat(self.received_at),
        }


class GatherResult(db.Model):
    """What a caller answered a <Gather>: keys pressed and/or words said, stored once per
    webhook delivery (Twilio's retries carry the same I-Twilio-Idempotency-Token)."""

    __tablename__ = "gather_results"
    __table_args__ = (UniqueConstraint("call_sid", "dedupe_key", name="uq_gather_results_dedupe"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_sid: Mapped[str] = mapped_column(ForeignKey("calls.sid"), index=True)
    dedupe_key: Mapped[str] = mapped_column(String(64))
    digits: Mapped[str | None] = mapped_column(String(DIGITS_MAX))
    speech_result: Mapped[str | None] = mapped_column(String(SPEECH_MAX))
    confidence: Mapped[float | None] = mapped_column(Float)  # 0.0 to 1.0
    received_at: Mapped[datetime] = mapped_column(default=utcnow)

    call: Mapped[Call] = relationship(back_populates="gathered")

    def to_dict(self) -> dict:
        """The answer as the JSON API shows it."""
        return {
            "digits": self.digits,
            "speech_result": self.speech_result,
            "confidence": self.confidence,
            "received_at": isoformat(self.received_at),
        }


class OperatorAction(db.Model):
    """The audit trail: everything an operator did, and what came of it. Actions on calls
    (Twilio's answer or error), claims, releases and takeovers carry the call; logins, logouts
    and changes to operator accounts carry none."""

    __tablename__ = "operator_actions"
    __table_args__ = (Index("ix_operator_actions_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Empty when the action failed before Twilio gave the call a SID (a refused "place a call").
    call_sid: Mapped[str | None] = mapped_column(ForeignKey("calls.sid"), index=True)
    # The operator's username (kept as it was when they acted; also for unknown usernames of
    # failed logins), and their account when there is one.
    operator: Mapped[str] = mapped_column(String(255))
    operator_id: Mapped[int | None] = mapped_column(
        ForeignKey("operators.id", name="fk_operator_actions_operator_id_operators"), index=True)
    via: Mapped[str] = mapped_column(String(8), default="panel", server_default="panel")  # panel, api, cli
    # hangup, cancel, redirect, twiml, place, sync, claim, release, takeover, login,
    # login-failed, logout, operator-add, operator-deactivate, …
    action: Mapped[str] = mapped_column(String(32))
    params: Mapped[str] = mapped_column(Text)  # what was sent, as JSON
    ok: Mapped[bool]
    result: Mapped[str] = mapped_column(Text)  # Twilio's answer or error, as text
    error_code: Mapped[int | None]
    address: Mapped[str | None] = mapped_column(String(64))  # the client's IP address
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    call: Mapped[Call | None] = relationship(back_populates="actions")

    def to_dict(self) -> dict:
        """The action as the JSON API shows it."""
        return {
            "id": self.id,
            "call_sid": self.call_sid,
            "operator": self.operator,
            "via": self.via,
            "action": self.action,
            "params": self.parameters,
            "ok": self.ok,
            "result": self.result,
            "error_code": self.error_code,
            "address": self.address,
            "created_at": isoformat(self.created_at),
        }

    @property
    def parameters(self) -> dict:
        """What was sent, as an object."""
        try:
            value = json.loads(self.params or "{}")
        except ValueError:
            return {"raw": self.params}
        return value if isinstance(value, dict) else {"value": value}


ROLES = ("operator", "admin")


class Operator(UserMixin, db.Model):
    """A person who uses the panel or the API, with their own login."""

    __tablename__ = "operators"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(255))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="operator")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]

    def get_id(self) -> str | None:
        """Flask-Login keeps this in the session cookie: the session's token, never the id."""
        return getattr(self, "session_token", None)

    @property
    def is_admin(self) -> bool:
        """Admins also manage operators and read the whole audit trail."""
        return self.role == "admin"

    @property
    def is_active(self) -> bool:  # Flask-Login: a deactivated operator is logged out
        return self.active

    @property
    def name(self) -> str:
        """How other operators see them."""
        return self.display_name or self.username

    def to_dict(self) -> dict:
        """The operator as the API and `operators list` show them."""
        return {
            "username": self.username, "name": self.display_name, "role": self.role,
            "active": self.active, "created_at": isoformat(self.created_at),
            "last_login_at": isoformat(self.last_login_at),
        }


class OperatorSession(db.Model):
    """A logged-in browser. The cookie carries a random token; only its hash is stored, and
    deleting the row (logout, deactivation, a new password) ends the session everywhere."""

    __tablename__ = "operator_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    operator: Mapped[Operator] = relationship(lazy="joined")


class LoginFailure(db.Model):
    """One failed login, kept for the throttle's window (shared by every worker and instance)."""

    __tablename__ = "login_failures"
    __table_args__ = (
        Index("ix_login_failures_username_at", "username", "at"),
        Index("ix_login_failures_address_at", "address", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64))  # lower case, cut to the column
    address: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class CallView(db.Model):
    """An operator had a call's page open at `seen_at` (its polling refreshes it)."""

    __tablename__ = "call_views"

    call_sid: Mapped[str] = mapped_column(ForeignKey("calls.sid"), primary_key=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)

    operator: Mapped[Operator] = relationship(lazy="joined")


def isoformat(value: datetime | None) -> str | None:
    """Format a stored (naive UTC) datetime as ISO 8601 with a Z, or None."""
    return None if value is None else value.isoformat(timespec="seconds") + "Z"


class WireEntry(db.Model):
    """One HTTP exchange with Twilio, as it crossed the wire: a webhook Twilio sent us (the
    Voice URL and its TwiML requests, a status callback, a Debugger event), refused ones too,
    or a REST request the app made through the SDK (never its credentials)."""

    __tablename__ = "wire_log"
    __table_args__ = (
        Index("ix_wire_log_call_sid_id", "call_sid", "id"),
        Index("ix_wire_log_at", "at"),  # retention (REQUEST_LOG_DAYS) deletes by age
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(16))  # webhook, status_callback, debugger, rest
    # The call it belongs to: for a webhook only when its signature was valid.
    call_sid: Mapped[str | None] = mapped_column(String(34))
    method: Mapped[str] = mapped_column(String(8))
    url: Mapped[str] = mapped_column(Text)  # for a webhook, the URL its signature was checked on
    params: Mapped[str] = mapped_column(Text)  # the form body or query string, urlencoded as sent
    signature: Mapped[str | None] = mapped_column(String(16))  # valid, invalid, missing, unchecked
    status: Mapped[int | None]  # the response's HTTP status; None: no response (timeout, refused)
    response: Mapped[str | None] = mapped_column(Text)  # its body (bounded), or the failure
    duration_ms: Mapped[float | None] = mapped_column(Float)
    action_id: Mapped[int | None] = mapped_column(
        ForeignKey("operator_actions.id", name="fk_wire_log_action_id_operator_actions"))
    error_code: Mapped[int | None]  # Twilio's code in a REST error answer

    @property
    def parameters(self) -> dict:
        """The parameters in the order they were sent; a repeated one as a list."""
        parameters: dict = {}
        for name, value in parse_qsl(self.params or "", keep_blank_values=True):
            if name in parameters:
                earlier = parameters[name]
                parameters[name] = (earlier if isinstance(earlier, list) else [earlier]) + [value]
            else:
                parameters[name] = value
        return parameters


class DebuggerEvent(db.Model):
    """An error or warning from Twilio's Debugger webhook, stored once (by its Sid)."""

    __tablename__ = "debugger_events"

    sid: Mapped[str] = mapped_column(String(34), primary_key=True)
    call_sid: Mapped[str | None] = mapped_column(String(34), index=True)
    level: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[int | None]
    timestamp: Mapped[datetime | None]
    payload: Mapped[str] = mapped_column(Text)  # Twilio's Payload (JSON text), as sent
    received_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def details(self) -> dict:
        """The payload as a dict ({} if it was not JSON)."""
        try:
            value = json.loads(self.payload or "{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}
