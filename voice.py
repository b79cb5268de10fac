"""Routes Twilio requests: the Voice URL, the TwiML it fetches next, and status callbacks."""
from __future__ import annotations

from flask import Blueprint, Response, current_app, g, request, url_for
from twilio.twiml.voice_response import VoiceResponse
from werkzeug.exceptions import HTTPException

import wire_log
from call_records import (
    BadWebhook,
    record_debugger_event,
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


def _webhook_params():
    """Twilio's parameters: the form body for POST, the query string for GET."""
    return request.form if request.method == "POST" else request.args


def _answer(build, first_answer: bool = False, constant: str | None = None) -> Response:
    """Record the webhook (the call is live once we answer), then answer with TwiML. A
    `constant` answer (the same for every call) is built once per app and kept by that name:
    the SDK's TwiML builder costs more than the rest of the request."""
    try:
        record_voice_webhook(_webhook_params(), first_answer)
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
    """Action of the feedback survey's <Gather>: thank the caller for the key they pressed."""

    def build(response: VoiceResponse) -> None:
        digits = _webhook_params().get("Digits", "")
        if digits:
            response.say(f"Thank you. You pressed {' '.join(digits[:8])}. Goodbye.")
        else:
            response.say("We did not get your answer. Goodbye.")
        response.hangup()

    return _answer(build)


@bp.route("/voice/recorded", methods=WEBHOOK_METHODS)
@twilio_signed
def recorded():
    """Action of the voicemail preset's <Record>: confirm and hang up."""

    def build(response: VoiceResponse) -> None:
        response.say("Your message has been recorded. Goodbye.")
        response.hangup()

    return _answer(build)


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
