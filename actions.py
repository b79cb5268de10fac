"""Operator actions: validate, ask Twilio (via call_control), record what happened.

The panel and the JSON API both call these functions, so they share one validation and one
record. Every action that names a known call is stored as an OperatorAction, including the
ones refused before anything reached Twilio, with Twilio's answer or error.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from flask import current_app, has_request_context, request, url_for
from sqlalchemy import or_, select, update

import call_control
import twiml
import wire_log
from audit import Actor
from audit import record as audit
from call_control import ControlError
from call_records import CALL_SID_PATTERN, CallUpdate, record_call, record_event
from models import (
    CANCELABLE_STATUSES,
    STATUS_RANK,
    TERMINAL_RANK,
    Call,
    Operator,
    OperatorAction,
    db,
    utcnow,
)

# Twilio: "Call is not in-progress. Cannot redirect." (usually the caller just hung up).
CALL_NOT_IN_PROGRESS = 21220
REDIRECT_METHODS = ("POST", "GET")
_PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")
_ADDRESS = re.compile(r"^(client|sip):[^\s<>\"']{1,250}$")
_NUMBER_PUNCTUATION = re.compile(r"[\s().\-]")


@dataclass
class ActionResult:
    """What happened, for a flash message (panel) or a JSON answer (API)."""

    ok: bool
    message: str
    http_status: int
    call_sid: str | None = None
    action: OperatorAction | None = None
    twilio_code: int | None = None
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The result as the JSON API answers it."""
        body = {"ok": self.ok, "message": self.message, "call_sid": self.call_sid}
        if not self.ok:
            body["error"] = "twilio_error" if self.twilio_code else "refused"
        if self.twilio_code is not None:
            body["twilio_code"] = self.twilio_code
        if self.action is not None:
            body["action"] = self.action.to_dict()
        body.update(self.details)
        return body


def public_base_url() -> str:
    """Where Twilio reaches us: PUBLIC_URL, else this request's external root URL."""
    configured = current_app.config["PUBLIC_URL"]
    if configured:
        return configured.rstrip("/")
    if has_request_context():
        return request.url_root.rstrip("/")
    raise ControlError("PUBLIC_URL must be set to build URLs outside a request.")


def normalize_number(raw: str | None) -> str:
    """A phone number in E.164 form (punctuation dropped), or a client:/sip: address."""
    value = (raw or "").strip()
    if _ADDRESS.match(value):
        return value
    value = _NUMBER_PUNCTUATION.sub("", value)
    if value.isdigit() and len(value) == 10:
        value = "+1" + value  # a North American number typed without its country code
    return value


# -------------------------------------------------------------- actions on one call

class Refused(Exception):
    """An action refused before anything reached Twilio: what to tell the operator, and the
    HTTP status that goes with it."""

    def __init__(self, message: str, http_status: int = 400):
        super().__init__(message)
        self.message, self.http_status = message, http_status


def require_active(call: Call, verb: str) -> None:
    """Refuse an action on a call that has already ended (its status never moves back)."""
    if not call.is_active:
        raise Refused(f"Cannot {verb} this call: it has already ended ({call.status}).", 409)


def redirect_target(url: str | None, method: str) -> str:
    """The absolute URL a Redirect sends Twilio to (a path of ours, or an http(s) URL)."""
    if method not in REDIRECT_METHODS:
        raise Refused("Method must be POST or GET.")
    if not url or not url.strip():
        raise Refused("A Redirect URL is required.")
    try:
        return twiml.absolute_url(url, public_base_url(), rooted=True)
    except twiml.TwimlError as error:
        raise Refused(f"Redirect URL must be an http(s) URL or a path of ours: {error}") from None


def checked_twiml(text: str | None) -> str:
    """The TwiML document to send: well-formed, known verbs, absolute URLs."""
    try:
        return twiml.prepare(text or "", public_base_url())
    except twiml.TwimlError as error:
        raise Refused(str(error)) from None


def hang_up(sid: str, actor: Actor, takeover: bool = False) -> ActionResult:
    """End the call (Status=completed), whatever state it is in."""
    def prepare(call: Call):
        require_active(call, "hang up")
        return {"status": "completed"}, lambda: call_control.hang_up(call.sid)

    return _act_on_call(sid, actor, takeover, "hangup", {"status": "completed"}, prepare,
                        "Hung up.")


def cancel(sid: str, actor: Actor, takeover: bool = False) -> ActionResult:
    """End a queued or ringing call (Status=canceled); never sent for an answered call."""
    def prepare(call: Call):
        require_active(call, "cancel")
        if call.status not in CANCELABLE_STATUSES:
            raise Refused(f"The call is {call.status}: Twilio ignores Cancel once a call is "
                          "answered. Use Hang up instead.", 409)
        return {"status": "canceled"}, lambda: call_control.cancel(call.sid)

    return _act_on_call(sid, actor, takeover, "cancel", {"status": "canceled"}, prepare,
                        "Canceled.")


def redirect(sid: str, url: str | None, method: str | None, actor: Actor,
             takeover: bool = False) -> ActionResult:
    """Make Twilio fetch new TwiML for the call from `url` (relative paths are ours)."""
    method = (method or "POST").upper()

    def prepare(call: Call):
        require_active(call, "redirect")
        target = redirect_target(url, method)
        return ({"url": target, "method": method},
                lambda: call_control.redirect(call.sid, target, method))

    return _act_on_call(sid, actor, takeover, "redirect", {"url": url or "", "method": method},
                        prepare, "Redirected.")


def send_twiml(sid: str, text: str | None, actor: Actor, takeover: bool = False) -> ActionResult:
    """Replace the call's TwiML with `text`, checked and with absolute URLs, or refuse."""
    def prepare(call: Call):
        require_active(call, "send TwiML to")
        document = checked_twiml(text)
        return {"twiml": document}, lambda: call_control.send_twiml(call.sid, document)

    return _act_on_call(sid, actor, takeover, "twiml", {"twiml": text or ""}, prepare,
                        "TwiML sent.")


def _find_call(sid: str | None) -> Call | None:
    return db.session.get(Call, sid) if sid and CALL_SID_PATTERN.match(sid) else None


def _not_found(sid: str | None) -> ActionResult:
    return ActionResult(False, f"No call with CallSid {(sid or '')[:40]!r} is recorded.", 404)


def _act_on_call(sid, actor, takeover, name, params, prepare, success) -> ActionResult:
    """Shared flow: find the call, check another operator's claim (unless this is a
    takeover), `prepare(call)` (the parameters to record and the SDK call to make, or
    Refused), perform, record; 21220 refreshes the call's status."""
    call = _find_call(sid)
    if call is None:
        return _not_found(sid)
    holder = call.handler
    if holder is not None and holder.id != actor.operator_id:
        if not takeover:
            message = f"{holder.name} is handling this call. Take it over to act on it."
            record = _record(call.sid, actor, name, params, False,
                             f"Refused before sending to Twilio: {message}")
            return ActionResult(False, message, 409, call.sid, record,
                                details={"handler": holder.username})
        taken = claim(call.sid, actor, takeover=True)
        if not taken.ok:
            return taken
        db.session.refresh(call)
    try:
        params, perform = prepare(call)
    except Refused as refusal:
        record = _record(call.sid, actor, name, params, False,
                         f"Refused before sending to Twilio: {refusal.message}")
        return ActionResult(False, refusal.message, refusal.http_status, call.sid, record)
    try:
        instance = perform()
    except ControlError as error:
        return _failed(call, actor, name, params, error)
    _record_instance(instance, event_source=None)
    status = getattr(instance, "status", None)
    record = _record(call.sid, actor, name, params, True,
                     f"Accepted by Twilio; the call is {status}." if status else "Accepted by Twilio.")
    message = f"{success} Twilio reports the call {status}." if status else success
    return ActionResult(True, message, 200, call.sid, record, details={"call_status": status})


def http_status(error: ControlError) -> int:
    """The HTTP status our answer carries when Twilio refused or could not be reached."""
    if error.code == CALL_NOT_IN_PROGRESS:
        return 409
    if error.http_status == 404:
        return 404
    if error.code is not None:
        return 400
    return 504 if error.timed_out else 502


def _failed(call: Call, actor: Actor, name, params, error: ControlError) -> ActionResult:
    """Record a failure; after a 21220, fetch the call's real status so the list is right."""
    if error.code is None:
        message = error.message
    else:
        message = f"Twilio refused: {error.message} (error {error.code})"
    if error.code == CALL_NOT_IN_PROGRESS:
        refreshed = refresh_status(call.sid)
        if refreshed in CANCELABLE_STATUSES:
            message += (f". The call is {refreshed}: nobody has answered it yet, so it "
                        "can only be canceled or hung up.")
        elif refreshed:
            message += (f". The caller probably hung up a moment before; Twilio now reports "
                        f"the call {refreshed}.")
        else:
            message += ". Its current status could not be fetched."
    record = _record(call.sid, actor, name, params, False, message, error.code)
    return ActionResult(False, message, http_status(error), call.sid, record,
                        twilio_code=error.code)


# -------------------------------------------------------------- who handles which call

def claim(sid: str, actor: Actor, takeover: bool = False) -> ActionResult:
    """Make `actor` the call's handler. One conditional statement decides, so when two
    operators claim at once exactly one wins; the other gets 409 with the holder's name.
    A takeover wins over another operator's claim, and is recorded as such."""
    call = _find_call(sid)
    if call is None:
        return _not_found(sid)
    previous = call.handler
    if previous is not None and previous.id == actor.operator_id:
        return ActionResult(True, "You are handling this call.", 200, call.sid,
                            details={"handler": actor.username})
    condition = [Call.sid == call.sid, Call.status_rank < TERMINAL_RANK]
    if not takeover:
        condition.append(or_(Call.handler_id.is_(None), Call.handler_id == actor.operator_id,
                             Call.handler_id.in_(select(Operator.id).where(Operator.active.is_(False)))))
    won = db.session.execute(
        update(Call).where(*condition).values(handler_id=actor.operator_id, claimed_at=utcnow(), changed_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    db.session.commit()
    db.session.expire(call)
    name = "takeover" if takeover else "claim"
    params = {"from": previous.username} if takeover and previous else {}
    if won:
        message = (f"You took this call over from {previous.name}." if takeover and previous
                   else "You are handling this call.")
        record = _record(call.sid, actor, name, params, True, message)
        return ActionResult(True, message, 200, call.sid, record,
                            details={"handler": actor.username})
    if not call.is_active:
        message = f"The call has already ended ({call.status})."
    else:
        message = f"{call.handler.name} is handling this call."
    record = _record(call.sid, actor, name, params, False, message)
    return ActionResult(False, message, 409, call.sid, record,
                        details={"handler": call.handler.username if call.handler else None})


def release(sid: str, actor: Actor) -> ActionResult:
    """Give the call up, so another operator can claim it."""
    call = _find_call(sid)
    if call is None:
        return _not_found(sid)
    released = db.session.execute(
        update(Call).where(Call.sid == call.sid, Call.handler_id == actor.operator_id)
        .values(handler_id=None, claimed_at=None, changed_at=utcnow()).execution_options(synchronize_session=False)
    ).rowcount == 1
    db.session.commit()
    db.session.expire(call)
    if not released:
        holder = call.handler
        message = (f"{holder.name} is handling this call, not you." if holder
                   else "Nobody is handling this call.")
        return ActionResult(holder is None, message, 409 if holder else 200, call.sid,
                            details={"handler": holder.username if holder else None})
    record = _record(call.sid, actor, "release", {}, True, "Released the call.")
    return ActionResult(True, "You released this call.", 200, call.sid, record,
                        details={"handler": None})


# -------------------------------------------------------------- place a call

# What the person a placed call reaches gets once they answer: our hold loop, a message read
# out (then the call ends), or TwiML fetched from a URL (absolute, or a path of ours).
PLACE_ANSWERS = ("hold", "say", "url")


def place_call(to: str | None, from_: str | None, actor: Actor, answer: str | None = None,
               message: str | None = None, url: str | None = None,
               method: str | None = None) -> ActionResult:
    """Start an outbound call that reports to our /status; once answered it hears our hold
    loop (`answer` "hold", the default), `message` and then the end ("say"), or the TwiML at
    `url` ("url", fetched with `method`)."""
    to_number = normalize_number(to)
    from_number = normalize_number(from_) if from_ else current_app.config["TWILIO_PHONE_NUMBER"]
    answer = answer or "hold"
    params = {"to": to_number, "from": from_number, "answer": answer}
    if not (_PHONE.match(to_number) or _ADDRESS.match(to_number)):
        message = "To must be a phone number in E.164 form, like +15555550123."
        return _refused_place(actor, params, message)
    if not from_number:
        return _refused_place(actor, params, "From is required: TWILIO_PHONE_NUMBER is not set.")
    if not (_PHONE.match(from_number) or _ADDRESS.match(from_number)):
        return _refused_place(actor, params,
                              "From must be a phone number in E.164 form, like +15555550100.")
    if answer not in PLACE_ANSWERS:
        params["answer"] = answer[:32]
        return _refused_place(actor, params, "The answer must be one of: hold, say, url.")
    try:
        base = public_base_url()
    except ControlError as error:
        return _refused_place(actor, params, error.message)
    document = None
    if answer == "say":
        params["message"] = (message or "").strip()
        try:
            document = twiml.say_then_hang_up(message or "")
        except twiml.TwimlError as error:
            return _refused_place(actor, params, str(error))
    else:
        params["method"] = method = (method or "POST").upper()
        if answer == "hold":
            params["url"] = base + url_for("voice.hold")
        else:
            params["url"] = url or ""
            if method not in REDIRECT_METHODS:
                return _refused_place(actor, params, "Method must be POST or GET.")
            if not url or not url.strip():
                return _refused_place(actor, params, "A TwiML URL is required.")
            try:
                params["url"] = twiml.absolute_url(url, base, rooted=True)
            except twiml.TwimlError as error:
                return _refused_place(actor, params,
                                      f"The TwiML URL must be an http(s) URL: {error}")
    params["status_callback"] = base + url_for("voice.status")
    try:
        instance = call_control.place_call(to_number, from_number, params["status_callback"],
                                           url=params.get("url"), method=params.get("method"),
                                           twiml=document)
    except ControlError as error:
        message = (f"Twilio refused: {error.message} (error {error.code})" if error.code
                   else error.message)
        record = _record(None, actor, "place", params, False, message, error.code)
        return ActionResult(False, message, http_status(error), None, record,
                            twilio_code=error.code)
    _record_instance(instance, event_source=None)
    record = _record(instance.sid, actor, "place", params, True,
                     f"Accepted by Twilio; the call is {instance.status}.")
    return ActionResult(True, f"Calling {to_number}: the call is {instance.status}.", 201,
                        instance.sid, record, details={"call_status": instance.status})


def _refused_place(actor: Actor, params, message) -> ActionResult:
    record = _record(None, actor, "place", params, False,
                     f"Refused before sending to Twilio: {message}")
    return ActionResult(False, message, 400, None, record)


# -------------------------------------------------------------- sync with Twilio

def refresh_status(sid: str) -> str | None:
    """Fetch one call from Twilio and record its status (forward only); None if that failed."""
    try:
        instance = call_control.fetch(sid)
    except ControlError:
        return None
    _record_instance(instance, event_source="sync")
    return getattr(instance, "status", None)


def sync_live_calls(actor: Actor) -> ActionResult:
    """Fetch every call we think is live from Twilio and record what changed."""
    sids = db.session.scalars(
        select(Call.sid).where(Call.live()).order_by(Call.created_at)
    ).all()
    changed, failed = [], []
    for sid in sids:
        before = db.session.get(Call, sid).status
        try:
            instance = call_control.fetch(sid)
        except ControlError as error:
            failed.append(sid)
            _record(sid, actor, "sync", {}, False,
                    f"Could not fetch the call: {error}", error.code)
            continue
        _record_instance(instance, event_source="sync")
        db.session.expire_all()
        after = db.session.get(Call, sid).status
        if after != before:  # a call sync leaves as it was gets no entry in its log
            changed.append(sid)
            _record(sid, actor, "sync", {}, True,
                    f"Twilio reports {instance.status}; recorded {before} → {after}.")
    message = (f"Checked {len(sids)} live call{'s' if len(sids) != 1 else ''} with Twilio: "
               f"{len(changed)} changed" + (f", {len(failed)} could not be fetched." if failed else "."))
    return ActionResult(not failed, message, 200 if not failed else 502,
                        details={"checked": len(sids), "changed": changed, "failed": failed})


# -------------------------------------------------------------- records

def _record_instance(instance, event_source: str | None) -> None:
    """Record the call as Twilio described it (status forward only), and maybe an event."""
    status = getattr(instance, "status", None)
    sid = getattr(instance, "sid", None)
    if status not in STATUS_RANK or not sid or not CALL_SID_PATTERN.match(sid):
        return
    duration = getattr(instance, "duration", None)
    change = CallUpdate(
        sid=sid,
        status=status,
        account_sid=getattr(instance, "account_sid", None),
        from_number=getattr(instance, "_from", None),  # the SDK names it `_from` (9.13)
        to_number=getattr(instance, "to", None),
        direction=getattr(instance, "direction", None),
        caller_name=getattr(instance, "caller_name", None),
        forwarded_from=getattr(instance, "forwarded_from", None),
        parent_call_sid=getattr(instance, "parent_call_sid", None),
        duration=int(duration) if duration and str(duration).isdigit() else None,
    )
    record_call(change)
    if event_source:
        params = {"CallSid": sid, "CallStatus": status, "Source": "REST fetch"}
        if change.duration is not None:
            params["CallDuration"] = str(change.duration)
        record_event(sid, f"{event_source}:{status}", event_source, status, params)
    db.session.commit()


def _record(sid, actor: Actor, name, params, ok, result, code=None) -> OperatorAction:
    """Store one operator action in the audit trail, with the REST requests made for it."""
    action = audit(actor, name, params, ok, result, call_sid=sid, code=code)
    wire_log.claim_exchanges(action.id, sid)
    return action
