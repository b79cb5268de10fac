"""JSON API for scripts, the panel and tests (HTTP Basic with the operator's credentials)."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, g, jsonify, request, url_for
from sqlalchemy.orm import joinedload
from werkzeug.exceptions import HTTPException

import actions
import audit
from auth import basic_auth_required
from journey import demo_sources
from journey import journey as journey_of
from models import MAX_PAGE, STATUS_RANK, Call, db
from panel import relay_recording, viewers
from transcript import fold

bp = Blueprint("api", __name__, url_prefix="/api")

MAX_PER_PAGE = 100


@bp.errorhandler(HTTPException)
def json_error(error: HTTPException):
    """Answer every API error as JSON with its status and a message."""
    response = jsonify(error=error.name.lower().replace(" ", "_"), message=error.description)
    response.status_code = error.code or 500
    return response


def _positive_int_arg(name: str, default: int) -> int:
    """Read a positive integer query parameter, or answer 400."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9 and 1 <= int(raw) <= MAX_PAGE):
        abort(400, description=f"{name} must be an integer from 1 to {MAX_PAGE}")
    return int(raw)


@bp.get("/calls")
@basic_auth_required
def list_calls():
    """List calls newest first; ?status=…, ?active=1, ?handler=me (live calls I handle),
    ?page=, ?per_page= (at most 100)."""
    page = _positive_int_arg("page", 1)
    per_page = min(_positive_int_arg("per_page", 50), MAX_PER_PAGE)
    query = db.select(Call).options(joinedload(Call.handler_operator)) \
        .order_by(*Call.newest_first())
    handler = request.args.get("handler")
    if handler:
        if handler != "me":
            abort(400, description="handler takes one value: me")
        query = query.where(Call.handler_id == g.operator.id,
                            Call.live())
    status = request.args.get("status")
    if status:
        if status not in STATUS_RANK:
            abort(400, description=f"status must be one of: {', '.join(STATUS_RANK)}")
        query = query.where(Call.status == status)
    if request.args.get("active") in ("1", "true"):
        query = query.where(Call.live())
    pagination = db.paginate(query, page=page, per_page=per_page, error_out=False)
    return jsonify(
        calls=[call.to_dict() for call in pagination.items],
        page=pagination.page,
        per_page=pagination.per_page,
        total=pagination.total,
        pages=pagination.pages,
    )


@bp.get("/calls/<sid>")
@basic_auth_required
def get_call(sid: str):
    """One call with its recorded events (status timeline), operator actions, its handler,
    the operators who have its page open, and what the caller did: `recordings` (each with a
    `media_url` for its audio) and `gathered` (keys pressed, words said)."""
    call = db.get_or_404(Call, sid, description=f"No call with CallSid {sid[:40]} is recorded")
    return jsonify(
        **call.to_dict(),
        viewers=[operator.username for operator in viewers(call.sid)],
        events=[event.to_dict() for event in call.events],
        actions=[action.to_dict() for action in call.actions],
        recordings=[dict(recording.to_dict(), media_url=url_for(
            "api.recording_audio", sid=recording.recording_sid, fmt="mp3", _external=True)
            if recording.has_media else None) for recording in call.recordings],
        gathered=[answer.to_dict() for answer in call.gathered],
    )


@bp.get("/calls/<sid>/journey")
@basic_auth_required
def get_journey(sid: str):
    """Everything that happened to the call, oldest first: webhooks, status callbacks, the
    app's SDK requests, operator actions, Debugger events, and in demo mode what the caller
    heard and Twilio's Call Events. Each entry has kind, at, summary, and where they apply request, response,
    error_code (with its explanation), sdk_code and curl."""
    call = db.get_or_404(Call, sid, description=f"No call with CallSid {sid[:40]} is recorded")
    transcript, twilio_events, _ = demo_sources(call.sid)
    heard = fold((transcript or {}).get("transcript") or [], current_app.config["HOLD_MUSIC_URL"])
    entries = journey_of(call.sid, current_app.config["TWILIO_AUTH_TOKEN"], heard, twilio_events)
    return jsonify(call_sid=call.sid, entries=[entry.to_dict() for entry in entries])
@bp.get("/recordings/<sid>.<fmt>")
@basic_auth_required
def recording_audio(sid: str, fmt: str):
    """A recording's audio from Twilio (fmt: mp3 or wav), streamed; 404 if we have no such
    recording or Twilio has no audio for it, 502 if Twilio cannot give it."""
    return relay_recording(sid, fmt)


# Operator actions for scripts: the same validation and record as the panel (actions.py).

def _json_body(optional: bool = False) -> dict:
    """The request's JSON object. Every action needs Content-Type: application/json (else 415):
    an HTML form on another site cannot send that, so it cannot act with an operator's cached
    HTTP Basic credentials. A non-object is a 400; actions without parameters take `{}` or an
    empty body."""
    if not request.is_json:
        abort(415, description="Send a JSON body with Content-Type: application/json.")
    if optional and not request.get_data():
        return {}
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, description="The body must be a JSON object.")
    return body


def _string_field(body: dict, name: str, required: bool = True) -> str | None:
    """A string member of the body, or a 400 saying what is wrong."""
    value = body.get(name)
    if value is None or value == "":
        if required:
            abort(400, description=f"{name} is required.")
        return None
    if not isinstance(value, str):
        abort(400, description=f"{name} must be a string.")
    return value


def _takeover(body: dict) -> bool:
    """The body's "takeover" member: act although another operator handles the call."""
    value = body.get("takeover", False)
    if not isinstance(value, bool):
        abort(400, description="takeover must be true or false.")
    return value


def _answer(result: actions.ActionResult):
    """An action's result as JSON, with its HTTP status."""
    response = jsonify(result.to_dict())
    response.status_code = result.http_status
    return response


@bp.post("/calls/<sid>/hangup")
@basic_auth_required
def hang_up(sid: str):
    """Hang up a call (Status=completed)."""
    body = _json_body(optional=True)
    return _answer(actions.hang_up(sid, g.actor, _takeover(body)))


@bp.post("/calls/<sid>/cancel")
@basic_auth_required
def cancel(sid: str):
    """Cancel a queued or ringing call; 409 once it is answered (hang up instead)."""
    body = _json_body(optional=True)
    return _answer(actions.cancel(sid, g.actor, _takeover(body)))


@bp.post("/calls/<sid>/redirect")
@basic_auth_required
def redirect_call(sid: str):
    """Redirect a call: {"url": "https://…" or "/voice/hold", "method": "POST"|"GET"}."""
    body = _json_body()
    url = _string_field(body, "url")
    method = _string_field(body, "method", required=False) or "POST"
    return _answer(actions.redirect(sid, url, method, g.actor, _takeover(body)))


@bp.post("/calls/<sid>/twiml")
@basic_auth_required
def send_twiml(sid: str):
    """Send TwiML to a call: {"twiml": "<Response>…</Response>"} (checked before sending)."""
    body = _json_body()
    return _answer(actions.send_twiml(sid, _string_field(body, "twiml"), g.actor,
                                      _takeover(body)))


@bp.post("/calls")
@basic_auth_required
def place_call():
    """Place a call: {"to": "+1…", "from": optional, default TWILIO_PHONE_NUMBER, "answer":
    "hold" (default: our hold loop) | "say" (with "message": read out, then the call ends) |
    "url" (with "url": an http(s) URL or a path of ours, and "method": POST or GET)}."""
    body = _json_body()
    to = _string_field(body, "to")
    from_ = _string_field(body, "from", required=False)
    answer = _string_field(body, "answer", required=False)
    return _answer(actions.place_call(
        to, from_, g.actor, answer=answer,
        message=_string_field(body, "message", required=answer == "say"),
        url=_string_field(body, "url", required=answer == "url"),
        method=_string_field(body, "method", required=False)))


@bp.post("/sync")
@basic_auth_required
def sync():
    """Fetch the real status of every call we think is live, and record what changed."""
    _json_body(optional=True)
    return _answer(actions.sync_live_calls(g.actor))


@bp.post("/calls/<sid>/claim")
@basic_auth_required
def claim(sid: str):
    """Claim a call ("I'm on it"): 409 with the holder's name if another operator has it.
    {"takeover": true} takes it over from them."""
    body = _json_body(optional=True)
    return _answer(actions.claim(sid, g.actor, takeover=_takeover(body)))


@bp.post("/calls/<sid>/release")
@basic_auth_required
def release(sid: str):
    """Give up a call you handle."""
    _json_body(optional=True)
    return _answer(actions.release(sid, g.actor))


@bp.get("/audit")
@basic_auth_required
def audit_trail():
    """The audit trail, newest first (admins only): ?operator=, ?call=, ?from=, ?to=
    (YYYY-MM-DD), ?page=, ?per_page=."""
    if not g.operator.is_admin:
        abort(403, description="Only admins can read the audit trail.")
    try:
        filters = audit.Filters.from_args(request.args)
    except audit.BadFilter as error:
        abort(400, description=str(error))
    page = _positive_int_arg("page", 1)
    per_page = min(_positive_int_arg("per_page", audit.PER_PAGE), MAX_PER_PAGE)
    entries, total = audit.search(filters, page, per_page)
    return jsonify(entries=[entry.to_dict() for entry in entries], page=page, per_page=per_page,
                   total=total, pages=max(1, -(-total // per_page)))
