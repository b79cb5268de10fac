"""Routes Twilio requests: the Voice URL, the TwiML it fetches next, and status callbacks."""
from __future__ import annotations

from flask import Blueprint, Response, current_app, g, request, url_for
from twilio.twiml.voice_response import VoiceResponse
from werkzeug.exceptions import HTTPException

import wire_log
from call_records import (
    BadWebhook,
    record_debugger_event,
    record_gathered,
    record_recorded,
    record_recording_status,
    record_status_callback,
    record_voice_webhook,
)
from signatures import signature_verdict, twilio_signed

bp = Blueprint("voice", __name__)

WEBHOOK_METHODS = ["GET", "POST"]  # a number can be configured with either
# Where Twilio's requests arrive: they never carry our session cookie (app.py opens none).
WEBHOOK_PATH_PREFIXES = ("/voice", "/status", "/debugger")
_CONSTANT_TWIML = "switchboard.constant_twiml"
_KINDS = {"voice.status": "status_callback", "voice.debugger": "debugger"}


@bp.before_request
def _arrived():
    wire_log.webhook_started()


@bp.after_request
def _log_exchange(response):
    """Every webhook goes in the wire log with our answer, refused ones too."""
    verdict = g.get("signature")
    if verdict is None:
        try:
            verdict = signature_verdict()
        except HTTPException:  # a body refused unread (413): its signature cannot be checked
            verdict = "unread"
    wire_log.record_webhook(response, _KINDS.get(request.endpoint, "webhook"), verdict)
    return response
# Twilio's header that is the same on every retry of one webhook delivery (reference §5).
IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"


def _webhook_params():
    """Twilio's parameters: the form body for POST, the query string for GET."""
    return request.form if request.method == "POST" else request.args


def _answer(build, first_answer: bool = False, constant: str | None = None,
            record=None) -> Response:
    """Record the webhook (the call is live once we answer), then answer with TwiML. A
    `constant` answer (the same for every call) is built once per app and kept by that name:
    the SDK's TwiML builder costs more than the rest of the request. `record(params)` records
    a request that carries more than the call (what the caller did)."""
    try:
        if record is None:
            record_voice_webhook(_webhook_params(), first_answer)
        else:
            record(_webhook_params())
    except BadWebhook as error:
        return _bad_request(error)
    cache = current_app.extensions.setdefault(_CONSTANT_TWIML, {})
    text = cache.get(constant) if constant else None
    if text is None:
        response = VoiceResponse()
        build(response)
        text = str(response)
        if constant:
            cache[constant] = text
    return Response(text, mimetype="text/xml")


def _bad_request(error: BadWebhook) -> Response:
    """A 400 with a one-line reason; nothing was written."""
    return Response(f"Bad request: {error}\n", status=400, mimetype="text/plain")


@bp.route("/voice", methods=WEBHOOK_METHODS)
@twilio_signed
def voice():
    """The Voice URL: greet the caller and put them on hold for an operator."""

    def build(response: VoiceResponse) -> None:
        response.say(current_app.config["GREETING"])
        response.redirect(url_for("voice.hold"), method="POST")

    return _answer(build, first_answer=True, constant="voice")


@bp.route("/voice/hold", methods=WEBHOOK_METHODS)
@twilio_signed
def hold():
    """The hold loop: play music, then come back here (each lap tells us the call is alive)."""

    def build(response: VoiceResponse) -> None:
        response.play(current_app.config["HOLD_MUSIC_URL"])
        response.redirect(url_for("voice.hold"), method="POST")

    return _answer(build, constant="hold")


@bp.route("/voice/gathered", methods=WEBHOOK_METHODS)
@twilio_signed
def gathered():
    """Action of a <Gather> (the feedback survey): keep what the caller pressed or said, and
    thank them for it."""

    def build(response: VoiceResponse) -> None:
        params = _webhook_params()
        digits, speech = params.get("Digits", ""), params.get("SpeechResult", "")
        if digits:
            response.say(f"Thank you. You pressed {' '.join(digits[:8])}. Goodbye.")
        elif speech:
            response.say("Thank you for your answer. Goodbye.")
        else:
            response.say("We did not get your answer. Goodbye.")
        response.hangup()

    delivery = request.headers.get(IDEMPOTENCY_HEADER)
    return _answer(build, record=lambda params: record_gathered(params, delivery))


@bp.route("/voice/recorded", methods=WEBHOOK_METHODS)
@twilio_signed
def recorded():
    """Action of the voicemail preset's <Record>: keep the recording, confirm and hang up."""

    def build(response: VoiceResponse) -> None:
        response.say("Your message has been recorded. Goodbye.")
        response.hangup()

    return _answer(build, record=record_recorded)


@bp.route("/voice/recording-status", methods=WEBHOOK_METHODS)
@twilio_signed
def recording_status():
    """Recording status callback of a <Record> (recordingStatusCallback): Twilio's word that
    the file is ready (completed) or that there is none (absent). Answered 204; 404 for a call
    we never recorded (its recording has nowhere to go)."""
    try:
        known = record_recording_status(_webhook_params())
    except BadWebhook as error:
        return _bad_request(error)
    if not known:
        sid = _webhook_params().get("CallSid", "")
        current_app.logger.warning("Recording status callback for unknown call %s", sid)
        return Response(f"No call with CallSid {sid} is recorded.\n", status=404,
                        mimetype="text/plain")
    return Response(status=204)


@bp.post("/debugger")
@twilio_signed
def debugger():
    """Twilio's Debugger webhook (Console → Monitor → Debugger): each error or warning event
    is stored once, by its Sid, and shown on its call's page. Answers 204."""
    try:
        record_debugger_event(request.form)
    except BadWebhook as error:
        return _bad_request(error)
    return Response(status=204)


@bp.route("/status", methods=WEBHOOK_METHODS)
@twilio_signed
def status():
    """Status callbacks: record each exactly once; Twilio ignores the body, so answer 204."""
    try:
        record_status_callback(_webhook_params())
    except BadWebhook as error:
        return _bad_request(error)
    return Response(status=204)
