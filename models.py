"""Database models: the calls Twilio told us about, their callbacks, and operator actions."""
from __future__ import annotations

from datetime import UTC, datetime

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

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
# The highest page number a list accepts: far beyond any real history, and small enough that
# the offset it makes fits every database's integers.
MAX_PAGE = 1_000_000


def utcnow() -> datetime:
    """Return the current UTC time as a naive datetime (how every column stores time)."""
    return datetime.now(UTC).replace(tzinfo=None)


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
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    events: Mapped[list[CallEvent]] = relationship(
        back_populates="call", order_by="CallEvent.id", lazy="select"
    )
    actions: Mapped[list[OperatorAction]] = relationship(
        back_populates="call", order_by="OperatorAction.id", lazy="select"
    )

    @property
    def is_active(self) -> bool:
        """True while the call has not reached a terminal status."""
        return self.status_rank < TERMINAL_RANK

    @property
    def can_cancel(self) -> bool:
        """True while Twilio would still honour Status=canceled for this call."""
        return self.status in CANCELABLE_STATUSES

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


class OperatorAction(db.Model):
    """Something an operator (or a script) asked Twilio to do to a call, and the answer."""

    __tablename__ = "operator_actions"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Empty when the action failed before Twilio gave the call a SID (a refused "place a call").
    call_sid: Mapped[str | None] = mapped_column(ForeignKey("calls.sid"), index=True)
    operator: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(32))  # hangup, cancel, redirect, twiml, place, sync
    params: Mapped[str] = mapped_column(Text)  # what was sent, as JSON
    ok: Mapped[bool]
    result: Mapped[str] = mapped_column(Text)  # Twilio's answer or error, as text
    error_code: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    call: Mapped[Call | None] = relationship(back_populates="actions")

    def to_dict(self) -> dict:
        """The action as the JSON API shows it."""
        return {
            "id": self.id,
            "call_sid": self.call_sid,
            "operator": self.operator,
            "action": self.action,
            "params": self.params,
            "ok": self.ok,
            "result": self.result,
            "error_code": self.error_code,
            "created_at": isoformat(self.created_at),
        }


def isoformat(value: datetime | None) -> str | None:
    """Format a stored (naive UTC) datetime as ISO 8601 with a Z, or None."""
    return None if value is None else value.isoformat(timespec="seconds") + "Z"
