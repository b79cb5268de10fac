"""Recording what Twilio tells us: calls, status callbacks and what the caller did
(recordings, keys pressed, words said), idempotent and order-safe.

Twilio retries webhooks and delivers status callbacks out of order, and several gunicorn
workers write at once. So every write here is a single conditional statement: the call row
is upserted with its status moved forward only (never read, changed in Python and written
back), and an event is inserted only if its (CallSid, dedupe key) is new.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import cache

from sqlalchemy import Connection, and_, case, false, func, insert, literal, or_, select, update
from sqlalchemy.exc import IntegrityError

from database import (
    Discard,
    DriverStatement,
    driver_statement,
    driver_transaction,
    writers_in_turn,
)
from models import (
    DIGITS_MAX,
    RECORDING_FINAL_STATUSES,
    RECORDING_STATUSES,
    RECORDING_URL_MAX,
    SPEECH_MAX,
    STATUS_RANK,
    Call,
    CallEvent,
    CallRecording,
    DebuggerEvent,
    GatherResult,
    db,
    upsert_dialect,
    utcnow,
)
from twiml import is_http_url

CALL_SID_PATTERN = re.compile(r"^CA[0-9a-fA-F]{32}\Z")  # \Z: no trailing newline either
RECORDING_SID_PATTERN = re.compile(r"^RE[0-9a-fA-F]{32}\Z")
_GATHER_DIGITS = re.compile(r"[0-9*#]*")  # what a <Gather> collects (finishOnKey excluded)
# Caller-controlled text we store, and the column length it must fit (on any database).
_TEXT_LIMITS = {"From": 255, "To": 255, "CallerName": 255, "ForwardedFrom": 255,
                "Direction": 32, "AccountSid": 34, "SipResponseCode": 8}
# Timestamps outside these years are not Twilio's: stored as NULL (the raw text is kept).
_PLAUSIBLE_YEARS = range(2000, 2200)
_DIGITS = re.compile(r"[0-9]{1,9}")  # fits every integer column, on every database


class BadWebhook(ValueError):
    """A webhook whose parameters we refuse to record (answered with a 400)."""


@dataclass(frozen=True)
class CallUpdate:
    """What one webhook says about a call, validated."""

    sid: str
    status: str
    account_sid: str | None = None
    from_number: str | None = None
    to_number: str | None = None
    direction: str | None = None
    caller_name: str | None = None
    forwarded_from: str | None = None
    parent_call_sid: str | None = None
    duration: int | None = None


def parse_call_update(params, status_override: str | None = None) -> CallUpdate:
    """Validate a webhook's parameters (CallSid, CallStatus, …); raise BadWebhook if wrong."""
    params = _first_values(params)
    sid = params.get("CallSid", "")
    if not sid:
        raise BadWebhook("CallSid is missing")
    if not CALL_SID_PATTERN.match(sid):
        raise BadWebhook("CallSid must be CA followed by 32 hex digits")
    status = params.get("CallStatus", "")
    if not status:
        raise BadWebhook("CallStatus is missing")
    if status not in STATUS_RANK:
        raise BadWebhook(f"CallStatus {status[:32]!r} is not a Twilio call status")
    parent = params.get("ParentCallSid") or None
    if parent is not None and not CALL_SID_PATTERN.match(parent):
        raise BadWebhook("ParentCallSid must be CA followed by 32 hex digits")
    for name, limit in _TEXT_LIMITS.items():
        if len(params.get(name) or "") > limit:
            raise BadWebhook(f"{name} is longer than {limit} characters")
    if status_override and STATUS_RANK[status_override] > STATUS_RANK[status]:
        status = status_override
    return CallUpdate(
        sid=sid,
        status=status,
        account_sid=params.get("AccountSid") or None,
        from_number=params.get("From") or None,
        to_number=params.get("To") or None,
        direction=params.get("Direction") or None,
        caller_name=params.get("CallerName") or None,
        forwarded_from=params.get("ForwardedFrom") or None,
        parent_call_sid=parent,
        duration=_optional_int(params, "CallDuration"),
    )


def record_call(change: CallUpdate) -> None:
    """Insert the call, or move its status forward and fill in what we did not know yet
    (in the current session's transaction; the caller commits)."""
    _write_call(db.session.connection(), _call_values(change))


def _call_values(change: CallUpdate) -> dict:
    """The row a webhook describes, ready for the upsert."""
    now = utcnow()
    return {
        "sid": change.sid,
        "account_sid": change.account_sid,
        "from_number": change.from_number,
        "to_number": change.to_number,
        "direction": change.direction,
        "caller_name": change.caller_name,
        "forwarded_from": change.forwarded_from,
        "parent_call_sid": change.parent_call_sid,
        "status": change.status,
        "status_rank": STATUS_RANK[change.status],
        "duration": change.duration,
        "created_at": now,
        "updated_at": now,
        "changed_at": now,
        "shown_stale": False,
    }


def _write_call(connection: Connection, values: dict) -> None:
    """Upsert one call row in a single conditional statement."""
    statements = _statements(connection.dialect.name)
    if statements is not None:
        connection.execute(statements.upsert_call, values)
        return
    # Any other database: insert in a savepoint, else the same conditional update.
    try:
        with connection.begin_nested():
            connection.execute(insert(Call.__table__), values)
    except IntegrityError:
        merged = _merge(lambda column: literal(values[column], Call.__table__.c[column].type))
        connection.execute(update(Call.__table__).where(Call.sid == values["sid"]).values(merged))


# Facts a later webhook may add (never change once known). From, To and ParentCallSid are
# not among them: every Twilio request about a call carries them, so the first one stores
# them, and leaving them out of the update spares their indexes a rewrite on every webhook.
_FILL_IN_COLUMNS = ("account_sid", "direction", "caller_name", "forwarded_from", "duration")


def _merge(incoming) -> dict:
    """SET clause for an existing call: status forward only, known facts kept, blanks filled."""
    calls = Call.__table__.c
    advance = incoming("status_rank") > calls.status_rank
    return {
        "status": case((advance, incoming("status")), else_=calls.status),
        "status_rank": case((advance, incoming("status_rank")), else_=calls.status_rank),
        "updated_at": incoming("updated_at"),
        # A change for the live list only if the status moved, or the panel showed the call
        # as possibly stale: "still here" from the hold loop changes nothing it shows.
        "changed_at": case((or_(advance, calls.shown_stale), incoming("changed_at")),
                           else_=calls.changed_at),
        "shown_stale": false(),
        **{c: func.coalesce(calls[c], incoming(c)) for c in _FILL_IN_COLUMNS},
    }


@dataclass(frozen=True)
class _Statements:
    upsert_call: object
    insert_event: object
    upsert_recording: object
    insert_gather: object


def _driver_statement(dialect, name: str, columns: tuple[str, ...]) -> DriverStatement:
    """Statement `name` of _statements() compiled for this engine's driver, once."""
    return driver_statement(dialect, getattr(_statements(dialect.name), name), columns)


def _write_webhook(call: dict, event: dict | None) -> bool:
    """The hot path of every webhook: upsert the call and insert its event (if any) in one
    transaction on a pooled driver connection, with the statements above compiled once. Per
    webhook this spares SQLAlchemy's execution machinery, which cost more than the writes
    (bench/webhooks.py); the statements are still the Core constructs built by _statements().
    False if the event was already stored (then nothing is written)."""
    dialect = db.engine.dialect
    if _statements(dialect.name) is None:  # other databases: the portable path
        with db.engine.connect() as connection, writers_in_turn(), \
                connection.begin() as transaction:
            _write_call(connection, call)
            if event is not None and not _write_event(connection, event):
                transaction.rollback()
                return False
        return True
    upsert = _driver_statement(dialect, "upsert_call", tuple(call))
    insert_event = event and _driver_statement(dialect, "insert_event", tuple(event))
    new = True
    with driver_transaction() as cursor:
        cursor.execute(upsert.sql, upsert.parameters(call))
        if event is not None:
            cursor.execute(insert_event.sql, insert_event.parameters(event))
            new = cursor.fetchone() is not None
            if not new:  # a retry: the call row's upsert goes back too
                raise Discard
    return new


@cache
def _statements(dialect_name: str) -> _Statements | None:
    """The writes, built once per dialect (building them per webhook costs more than running
    them); None where the database has no INSERT … ON CONFLICT."""
    dialect = upsert_dialect(dialect_name)
    if dialect is None:
        return None
    upsert = dialect.insert(Call.__table__)
    upsert = upsert.on_conflict_do_update(
        index_elements=["sid"], set_=_merge(lambda column: upsert.excluded[column])
    )
    # RETURNING says whether the row went in, the same way on every database: rowcount after
    # ON CONFLICT DO NOTHING differs between drivers (psycopg reports -1).
    insert_event = dialect.insert(CallEvent.__table__).on_conflict_do_nothing(
        index_elements=["call_sid", "dedupe_key"]
    ).returning(CallEvent.id)
    recording = dialect.insert(CallRecording.__table__)
    recording = recording.on_conflict_do_update(
        index_elements=["recording_sid"],
        set_=_merge_recording(lambda column: recording.excluded[column]),
    )
    gather = dialect.insert(GatherResult.__table__).on_conflict_do_nothing(
        index_elements=["call_sid", "dedupe_key"])
    return _Statements(upsert_call=upsert, insert_event=insert_event,
                       upsert_recording=recording, insert_gather=gather)


def record_event(call_sid: str, dedupe_key: str, source: str, status: str, params) -> bool:
    """Store one event unless (call_sid, dedupe_key) is already stored; True if it was new
    (in the current session's transaction; the caller commits)."""
    values = _event_values(call_sid, dedupe_key, source, status, params)
    return _write_event(db.session.connection(), values)


def _event_values(call_sid: str, dedupe_key: str, source: str, status: str, params) -> dict:
    """The event row for a webhook, ready to insert."""
    raw, params = params, _first_values(params)
    return {
        "call_sid": call_sid,
        "dedupe_key": dedupe_key,
        "source": source,
        "status": status,
        "sequence_number": _optional_int(params, "SequenceNumber"),
        "timestamp": _optional_rfc2822(params.get("Timestamp")),
        "call_duration": _optional_int(params, "CallDuration"),
        "sip_response_code": (params.get("SipResponseCode") or None),
        "params": json.dumps(_as_dict(raw), sort_keys=True),
        "received_at": utcnow(),
    }


def _write_event(connection: Connection, values: dict) -> bool:
    """Insert one event unless (call_sid, dedupe_key) is already stored; True if it was new."""
    statements = _statements(connection.dialect.name)
    if statements is not None:
        return connection.execute(statements.insert_event, values).first() is not None
    try:
        with connection.begin_nested():
            connection.execute(insert(CallEvent.__table__), values)
    except IntegrityError:
        return False
    return True


def record_status_callback(params) -> bool:
    """Record a status callback exactly once; True if it was new (a retry changes nothing)."""
    fields = _first_values(params)
    change = parse_call_update(fields)
    sequence = _optional_int(fields, "SequenceNumber")
    dedupe_key = f"seq:{sequence}" if sequence is not None else f"status:{change.status}"
    # Everything is computed before the first write: other workers wait while we hold the
    # writers' lock. The call row first (the event refers to it); a duplicate rolls both back.
    call = _call_values(change)
    event = _event_values(change.sid, dedupe_key, "callback", change.status, params)
    return _write_webhook(call, event)


def record_voice_webhook(params, first_answer: bool) -> CallUpdate:
    """Record a TwiML request: we answer it with TwiML that connects, so the call is in
    progress. `first_answer` (the Voice URL) also records that moment in the call's timeline;
    later requests (the hold loop, action URLs) only move the call forward."""
    change = parse_call_update(params, status_override="in-progress")
    call = _call_values(change)
    event = _event_values(change.sid, "voice:answered", "voice", change.status, params) \
        if first_answer else None
    _write_webhook(call, event)
    return change


# -------------------------------------------------------------- what the caller did

def _merge_recording(incoming) -> dict:
    """SET clause for a recording already stored: the <Record> action and the recording status
    callback arrive in either order, and either may be retried. The status callback's final
    status (and its duration) wins; the action never overwrites it; known facts are kept."""
    recordings = CallRecording.__table__.c
    final = incoming("status").in_(RECORDING_FINAL_STATUSES)
    newer_status = and_(incoming("status").is_not(None), or_(
        recordings.status.is_(None), recordings.status.not_in(RECORDING_FINAL_STATUSES)))
    return {
        "url": func.coalesce(recordings.url, incoming("url")),
        "duration": case((final, func.coalesce(incoming("duration"), recordings.duration)),
                         else_=func.coalesce(recordings.duration, incoming("duration"))),
        "status": case((newer_status, incoming("status")), else_=recordings.status),
        "error_code": func.coalesce(incoming("error_code"), recordings.error_code),
        "updated_at": incoming("updated_at"),
    }


def _recording_values(params: dict, call_sid: str, callback: bool) -> dict | None:
    """The recording a <Record> action (callback=False) or a recording status callback
    describes, validated; None for an action without a RecordingSid (nothing was recorded)."""
    sid = params.get("RecordingSid") or ""
    if not sid:
        if callback:
            raise BadWebhook("RecordingSid is missing")
        return None
    if not RECORDING_SID_PATTERN.match(sid):
        raise BadWebhook("RecordingSid must be RE followed by 32 hex digits")
    url = params.get("RecordingUrl") or None
    if url is not None:
        if len(url) > RECORDING_URL_MAX:
            raise BadWebhook(f"RecordingUrl is longer than {RECORDING_URL_MAX} characters")
        if not is_http_url(url):
            raise BadWebhook("RecordingUrl must be an http(s) URL")
    status = None
    if callback:
        status = params.get("RecordingStatus", "")
        if status not in RECORDING_STATUSES:
            raise BadWebhook(f"RecordingStatus {status[:32]!r} is not a Twilio recording status")
    # A recording still in progress has a duration of -1 in Twilio's API: not known yet.
    duration = None if params.get("RecordingDuration") == "-1" \
        else _optional_int(params, "RecordingDuration")
    now = utcnow()
    return {
        "call_sid": call_sid,
        "recording_sid": sid,
        "url": url,
        "duration": duration,
        "status": status,
        "error_code": _optional_int(params, "ErrorCode") if callback else None,
        "received_at": now,
        "updated_at": now,
    }


def _gather_values(params: dict, call_sid: str, delivery: str | None) -> dict | None:
    """What the caller answered a <Gather> (Digits, SpeechResult, Confidence), validated;
    None when they answered nothing. `delivery` is Twilio's I-Twilio-Idempotency-Token, the
    same on every retry of one request: with it, a retry is stored once. Without it, the
    parameters themselves are the key (two identical answers on one call are then one)."""
    digits = params.get("Digits") or None
    speech = params.get("SpeechResult") or None
    if digits is None and speech is None:
        return None
    if digits is not None:
        if len(digits) > DIGITS_MAX:
            raise BadWebhook(f"Digits is longer than {DIGITS_MAX} characters")
        if not _GATHER_DIGITS.fullmatch(digits):
            raise BadWebhook("Digits may only contain 0-9, * and #")
    if speech is not None and len(speech) > SPEECH_MAX:
        raise BadWebhook(f"SpeechResult is longer than {SPEECH_MAX} characters")
    confidence = _optional_confidence(params.get("Confidence"))
    if delivery:
        key = "token:" + hashlib.sha256(delivery.encode()).hexdigest()[:48]
    else:
        blob = json.dumps(_as_dict(params), sort_keys=True)
        key = "params:" + hashlib.sha256(blob.encode()).hexdigest()[:48]
    return {
        "call_sid": call_sid,
        "dedupe_key": key,
        "digits": digits,
        "speech_result": speech,
        "confidence": confidence,
        "received_at": utcnow(),
    }


def _optional_confidence(raw: str | None) -> float | None:
    """Twilio's speech Confidence, a number from 0.0 to 1.0; absent or empty is None."""
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (len(raw) <= 32 and math.isfinite(value) and 0.0 <= value <= 1.0):
        raise BadWebhook("Confidence must be a number from 0.0 to 1.0")
    return value


def record_gathered(params, delivery: str | None) -> CallUpdate:
    """Record the action request of a <Gather>: the call (as any TwiML request) and what the
    caller answered, in one transaction, once per delivery."""
    change = parse_call_update(params, status_override="in-progress")
    result = _gather_values(_first_values(params), change.sid, delivery)
    _write_call_and_result(_call_values(change), result and ("insert_gather", result))
    return change


def record_recorded(params) -> CallUpdate:
    """Record the action request of a <Record>: the call and its recording (RecordingSid,
    RecordingUrl, RecordingDuration), in one transaction; a retry changes nothing."""
    change = parse_call_update(params, status_override="in-progress")
    result = _recording_values(_first_values(params), change.sid, callback=False)
    _write_call_and_result(_call_values(change), result and ("upsert_recording", result))
    return change


def record_recording_status(params) -> bool:
    """Record a recording status callback (recordingStatusCallback): its status, final
    duration and error. It carries no call status, so the call must be known already (it ran
    our TwiML); False (nothing written) if it is not."""
    fields = _first_values(params)
    sid = fields.get("CallSid", "")
    if not sid:
        raise BadWebhook("CallSid is missing")
    if not CALL_SID_PATTERN.match(sid):
        raise BadWebhook("CallSid must be CA followed by 32 hex digits")
    result = _recording_values(fields, sid, callback=True)
    return _write_call_and_result(None, ("upsert_recording", result))


def _write_call_and_result(call: dict | None, result: tuple[str, dict] | None) -> bool:
    """Upsert the call (if given, else it must exist) and write one result row (a recording
    or a gather answer) in one transaction. Not the webhooks' hot path: plain Core statements.
    False if the call is unknown (then nothing is written)."""
    with db.engine.connect() as connection, writers_in_turn(), connection.begin():
        if call is not None:
            _write_call(connection, call)
        elif connection.execute(select(Call.sid).where(Call.sid == result[1]["call_sid"])) \
                .first() is None:
            return False
        if result is not None:
            _write_result(connection, *result)
    return True


def _write_result(connection: Connection, name: str, values: dict) -> None:
    """Upsert a recording or insert a gather answer (a duplicate is ignored)."""
    statements = _statements(connection.dialect.name)
    if statements is not None:
        connection.execute(getattr(statements, name), values)
        return
    table = CallRecording.__table__ if name == "upsert_recording" else GatherResult.__table__
    try:  # any other database: insert in a savepoint, else merge (or ignore) the duplicate
        with connection.begin_nested():
            connection.execute(insert(table), values)
    except IntegrityError:
        if name == "upsert_recording":
            merged = _merge_recording(
                lambda column: literal(values[column], table.c[column].type))
            connection.execute(update(table).where(
                table.c.recording_sid == values["recording_sid"]).values(merged))


def _optional_int(params, name: str) -> int | None:
    """Read a non-negative integer parameter; absent or empty is None, anything else is a 400."""
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if not _DIGITS.fullmatch(raw):
        raise BadWebhook(f"{name} must be a non-negative integer")
    return int(raw)


def _optional_rfc2822(raw: str | None) -> datetime | None:
    """Parse Twilio's RFC 2822 Timestamp into naive UTC; an unreadable one is kept only raw."""
    if not raw:
        return None
    try:
        parsed = parsedate_to_datetime(raw)
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    except (TypeError, ValueError, OverflowError):
        return None
    return parsed if parsed.year in _PLAUSIBLE_YEARS else None


def _first_values(params) -> dict:
    """The first value of each parameter, in a plain dict: a MultiDict builds an exception for
    every key it lacks, and a webhook asks for a dozen that Twilio may leave out."""
    return params.to_dict() if hasattr(params, "to_dict") else params


def _as_dict(params) -> dict:
    """Flatten a MultiDict into a plain dict, keeping lists only for repeated keys."""
    if hasattr(params, "lists"):
        return {k: (v[0] if len(v) == 1 else v) for k, v in params.lists()}
    return dict(params)


# -------------------------------------------------------------- Twilio's Debugger webhook

_DEBUGGER_SID = re.compile(r"^NO[0-9a-fA-F]{32}\Z")
_DEBUGGER_LEVELS = ("Error", "Warning", "Info")
MAX_DEBUGGER_PAYLOAD = 32_000


def record_debugger_event(params) -> bool:
    """Store one Debugger event (Sid, Level, Timestamp, Payload) unless its Sid is stored;
    True if it was new. The call it concerns is the payload's resource_sid."""
    fields = _first_values(params)
    sid = fields.get("Sid", "")
    if not _DEBUGGER_SID.match(sid):
        raise BadWebhook("Sid must be NO followed by 32 hex digits")
    level = fields.get("Level", "")
    if level not in _DEBUGGER_LEVELS:
        raise BadWebhook(f"Level must be one of {', '.join(_DEBUGGER_LEVELS)}")
    raw = fields.get("Payload") or "{}"
    if len(raw) > MAX_DEBUGGER_PAYLOAD:
        raise BadWebhook(f"Payload is longer than {MAX_DEBUGGER_PAYLOAD} characters")
    try:
        payload = json.loads(raw)
    except ValueError:
        raise BadWebhook("Payload must be JSON") from None
    if not isinstance(payload, dict):
        raise BadWebhook("Payload must be a JSON object")
    resource = payload.get("resource_sid")
    code = str(payload.get("error_code") or "")
    values = {
        "sid": sid, "level": level,
        "call_sid": resource if isinstance(resource, str) and CALL_SID_PATTERN.match(resource)
        else None,
        "error_code": int(code) if _DIGITS.fullmatch(code) else None,
        "timestamp": _optional_iso_or_rfc2822(fields.get("Timestamp")),
        "payload": raw, "received_at": utcnow(),
    }
    dialect = upsert_dialect(db.engine.dialect.name)
    with writers_in_turn():
        if dialect is None:
            if db.session.get(DebuggerEvent, sid) is not None:
                return False
            db.session.add(DebuggerEvent(**values))
            new = True
        else:
            new = db.session.execute(dialect.insert(DebuggerEvent).values(values)
                                     .on_conflict_do_nothing(index_elements=["sid"])
                                     .returning(DebuggerEvent.sid)).first() is not None
        db.session.commit()
    return new


def _optional_iso_or_rfc2822(raw: str | None) -> datetime | None:
    """The Debugger's Timestamp (ISO 8601; RFC 2822 accepted too) as naive UTC, or None."""
    if not raw:
        return None
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return _optional_rfc2822(raw)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed if parsed.year in _PLAUSIBLE_YEARS else None
