"""The emulator's own pages and control endpoints: ring the app as a caller, press keys, hang up,
read transcripts; and the `flask --app emulator ring` command."""

from __future__ import annotations

import hmac
import math
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import click
import requests
from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)

from . import chaos, limits
from .api import E164, json_response, wrap_auth
from .engine import STIR_VERSTATS, Call, CallNotFound, CallStateError, Engine, rfc2822
from .inspector import KINDS, Delivery
from .resources import call_resource

bp = Blueprint("emulator_console", __name__)


def engine() -> Engine:
    """The engine of the running emulator app."""
    return current_app.extensions["emulator"]


def call_summary(call: Call) -> dict[str, Any]:
    """A call as the console's JSON shows it."""
    return {
        "call_sid": call.sid,
        "status": call.status,
        "direction": call.direction,
        "from": call.from_,
        "to": call.to,
        "caller_name": call.caller_name,
        "parent_call_sid": call.parent_call_sid,
        "duration": call.duration() if call.ended else None,
    }


def _form_or_json() -> dict[str, Any]:
    if request.is_json:
        data = request.get_json(silent=True)
        return data if isinstance(data, dict) else {}
    return request.form.to_dict()


def _number(value: Any, name: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        abort(json_response({"error": f"{name} must be a number of seconds"}, 400))
    if not math.isfinite(number) or number < 0 or number > limits.MAX_CALL_SECONDS:
        abort(json_response({"error": f"{name} must be between 0 and {limits.MAX_CALL_SECONDS} seconds"}, 400))
    return number


MAX_WORDS = 500


def _speech_groups(value: Any) -> list[str]:
    """What the caller says at successive <Gather>s: a JSON list of strings, or one string with `|`
    between Gathers (`billing|yes please`); an empty group keeps the caller silent at that Gather."""
    if value is None or value == "":
        return []
    groups = value if isinstance(value, list) else str(value).split("|")
    if len(groups) > 64 or not all(isinstance(g, str) and len(g) <= MAX_WORDS and g.isprintable() for g in groups):
        abort(json_response({"error": f"speech must be up to 64 phrases of up to {MAX_WORDS} printable characters"}, 400))
    return [g.strip() for g in groups]


def _known_call(sid: str) -> Call:
    """A snapshot of the call, or a JSON 404 for a control endpoint."""
    call = engine().get(sid)
    if call is None:
        abort(json_response({"error": f"no call {sid}"}, 404))
    return call


@bp.get("/emulator/health")
def health() -> Response:
    """Readiness probe for launchers (no credentials needed; reveals nothing): 503 when the
    engine cannot run calls (its scheduler has stopped)."""
    if not engine().healthy():
        return json_response({"ok": False, "error": "the emulator's scheduler is not running"}, 503)
    return json_response({"ok": True})


@bp.post("/emulator/incoming")
@wrap_auth
def incoming() -> Response:
    """Ring the emulator's phone number as a caller: 201 with the new call's SID."""
    data = _form_or_json()
    from_ = str(data.get("from") or "").strip()
    if not from_:
        return json_response({"error": "from is required (the caller's number)"}, 400)
    hangup_after = _number(data.get("hangup_after"), "hangup_after")
    digits = str(data.get("digits") or "")
    if any(ch not in "0123456789*#," for ch in digits):
        return json_response({"error": "digits may contain only 0-9, * and #, with commas between Gathers"}, 400)
    forwarded_from = str(data.get("forwarded_from") or "").strip() or None
    if forwarded_from is not None and not E164.match(forwarded_from):
        return json_response({"error": "forwarded_from must be an E.164 number, e.g. +15555550142"}, 400)
    stir_verstat = str(data.get("stir_verstat") or "").strip() or None
    if stir_verstat is not None and stir_verstat not in STIR_VERSTATS:
        return json_response({"error": f"stir_verstat must be one of {', '.join(STIR_VERSTATS)}"}, 400)
    caller_chaos = None
    if data.get("chaos") not in (None, ""):
        try:
            caller_chaos = chaos.parse(data["chaos"])
        except chaos.ChaosError as exc:
            return json_response({"error": f"chaos: {exc}"}, 400)
    call = engine().incoming(
        chaos=caller_chaos,
        from_=from_,
        to=str(data.get("to") or "").strip() or None,
        caller_name=str(data.get("caller_name") or "").strip() or None,
        hangup_after=hangup_after,
        digits=digits,
        speech=_speech_groups(data.get("speech")),
        forwarded_from=forwarded_from,
        stir_verstat=stir_verstat,
    )
    body = call_summary(call)
    body["transcript_url"] = f"/emulator/calls/{call.sid}/transcript"
    return json_response(body, 201)


@bp.get("/emulator/chaos")
@wrap_auth
def chaos_json() -> Response:
    """The run's chaos setting."""
    current = engine().chaos
    return json_response({**current.as_json(), "summary": current.summary(), "presets": list(chaos.PRESETS)})


@bp.post("/emulator/chaos")
@wrap_auth
def set_chaos() -> Response:
    """Set the run's chaos: a JSON object (`{"preset": "bad-day"}`, `{"seed": 7, "status_callbacks": {…}}`); `{}` is off."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return json_response({"error": "send a JSON object, e.g. {\"preset\": \"bad-day\"} ({} turns chaos off)"}, 400)
    try:
        setting = chaos.parse(body)
    except chaos.ChaosError as exc:
        return json_response({"error": str(exc)}, 400)
    engine().set_chaos(setting)
    return chaos_json()


@bp.get("/emulator/calls")
@wrap_auth
def list_calls_json() -> Response:
    """Every call, newest first, as JSON."""
    return json_response({"calls": [call_summary(c) for c in engine().all_calls()]})


@bp.get("/emulator/calls/<sid>/transcript")
@wrap_auth
def transcript(sid: str) -> Response:
    """The caller's-eye transcript of one call."""
    call = _known_call(sid)
    body = call_summary(call)
    body["transcript"] = call.transcript
    return json_response(body)


@bp.post("/emulator/calls/<sid>/digits")
@wrap_auth
def press(sid: str) -> Response:
    """The caller presses keys now."""
    _known_call(sid)
    digits = str(_form_or_json().get("digits") or "")
    if not digits or len(digits) > 64 or any(ch not in "0123456789*#" for ch in digits):
        return json_response({"error": "digits must be one to 64 of 0-9, * and #"}, 400)
    try:
        call = engine().press(sid, digits)
    except CallNotFound:
        abort(json_response({"error": f"no call {sid}"}, 404))
    except CallStateError:
        return json_response({"error": "the call has ended"}, 409)
    return json_response(call_summary(call), 202)


@bp.post("/emulator/calls/<sid>/speech")
@wrap_auth
def speak(sid: str) -> Response:
    """The caller says words now (a waiting speech <Gather> takes them as SpeechResult)."""
    _known_call(sid)
    words = str(_form_or_json().get("speech") or "").strip()
    if not words or len(words) > MAX_WORDS or not words.isprintable():
        return json_response({"error": f"speech must be 1 to {MAX_WORDS} printable characters"}, 400)
    try:
        call = engine().speak(sid, words)
    except CallNotFound:
        abort(json_response({"error": f"no call {sid}"}, 404))
    except CallStateError:
        return json_response({"error": "the call has ended"}, 409)
    return json_response(call_summary(call), 202)


WEBHOOK_KINDS = tuple(k for k in KINDS if k != "api")


def _limit(value: Any, default: int = 50, high: int = 500) -> int:
    try:
        number = int(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        abort(json_response({"error": f"limit must be a whole number from 1 to {high}"}, 400))
    if not 1 <= number <= high:
        abort(json_response({"error": f"limit must be a whole number from 1 to {high}"}, 400))
    return number


def webhook_page(args: Any) -> tuple[list[Delivery], int | None]:
    """The deliveries `?call_sid=`, `?before=` (an id) and `?limit=` ask for, newest first, and
    the id to page on from (None on the last page)."""
    limit = _limit(args.get("limit"))
    before = args.get("before")
    if before not in (None, "") and not str(before).isdigit():
        abort(json_response({"error": "before must be a delivery id"}, 400))
    items = engine().inspector.recent(args.get("call_sid") or None, WEBHOOK_KINDS, int(before) if before else None, limit + 1)
    return items[:limit], items[limit - 1].id if len(items) > limit else None


@bp.get("/emulator/webhooks")
@wrap_auth
def webhooks_json() -> Response:
    """Every request the emulator sent (newest first; `?call_sid=`, `?limit=`, `?before=`)."""
    items, more = webhook_page(request.args)
    query = {k: v for k, v in (("call_sid", request.args.get("call_sid")), ("limit", request.args.get("limit"))) if v}
    next_uri = f"/emulator/webhooks?{urlencode({**query, 'before': more})}" if more else None
    return json_response({"webhooks": [engine().inspector.as_json(d, rfc2822) for d in items], "next_page_uri": next_uri})


@bp.post("/emulator/webhooks/<int:delivery_id>/replay")
@wrap_auth
def replay(delivery_id: int) -> Response:
    """Send a recorded request again, signed afresh; 201 with the new delivery."""
    delivery = engine().replay(delivery_id)
    if delivery is None:
        return json_response({"error": f"no delivery {delivery_id} (it may have been forgotten)"}, 404)
    return json_response(engine().inspector.as_json(delivery, rfc2822), 201)


@bp.post("/emulator/calls/<sid>/hangup")
@wrap_auth
def hangup(sid: str) -> Response:
    """The caller (or callee, for an outbound call) hangs up now."""
    try:
        call = engine().caller_hangs_up(sid)
    except CallNotFound:
        abort(json_response({"error": f"no call {sid}"}, 404))
    return json_response(call_summary(call), 200 if call.ended else 202)


@bp.post("/emulator/calls/<sid>/stay")
@wrap_auth
def stay(sid: str) -> Response:
    """The caller stays on the line: a hang-up planned with `hangup_after` is called off."""
    try:
        call = engine().stay(sid)
    except CallNotFound:
        abort(json_response({"error": f"no call {sid}"}, 404))
    except CallStateError:
        return json_response({"error": "the call has ended"}, 409)
    return json_response(call_summary(call), 202)


# --------------------------------------------------------------------------- console pages

#: Seconds between refreshes of a page that can still change.
REFRESH_SECONDS = 3
CALLS_PER_PAGE = 50
#: The console's pages: only our own stylesheets, no scripts at all, forms only to us.
CONSOLE_CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
               "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
PANEL_STYLESHEET = Path(__file__).resolve().parents[1] / "static" / "app.css"


@bp.after_request
def console_headers(resp: Response) -> Response:
    """A strict CSP on the console's pages."""
    if resp.mimetype == "text/html":
        resp.headers["Content-Security-Policy"] = CONSOLE_CSP
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "same-origin"
    return resp


def _page(template: str, **context: Any) -> str:
    eng = engine()
    return render_template(template, chaos=eng.chaos, csrf_token=current_app.config["EMULATOR_CONSOLE_TOKEN"],
                           panel_url=eng.settings.panel_url.rstrip("/"), rfc2822=rfc2822, clock=_clock, **context)


def _clock(ts: float) -> str:
    """`09:00:18` (UTC): the time of day of emulated time `ts`."""
    return time.strftime("%H:%M:%S", time.gmtime(ts))


def _check_form_token() -> None:
    """The console's forms carry a token only its pages show (no cross-site form can)."""
    sent = request.form.get("csrf_token", "")
    if not hmac.compare_digest(sent.encode(), current_app.config["EMULATOR_CONSOLE_TOKEN"].encode()):
        abort(Response("The form is out of date: reload the page and try again.\n", 400, content_type="text/plain; charset=utf-8"))


def _back(default: str) -> Response:
    """Back to the page the form was on (a path of ours only)."""
    target = request.form.get("next") or default
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        target = default
    return redirect(target, 303)


@bp.get("/emulator/static/panel.css")
def panel_stylesheet() -> Response:
    """The panel's stylesheet (static/app.css), so the console looks like the panel."""
    if not PANEL_STYLESHEET.is_file():
        abort(404)
    return send_file(PANEL_STYLESHEET, mimetype="text/css", max_age=60)


@bp.get("/")
def index() -> str:
    """The console: every call, newest first, a page at a time."""
    eng = engine()
    calls = eng.all_calls()
    pages = max(1, math.ceil(len(calls) / CALLS_PER_PAGE))
    page = min(max(request.args.get("page", 1, type=int) or 1, 1), pages)
    shown = calls[(page - 1) * CALLS_PER_PAGE : page * CALLS_PER_PAGE]
    return _page("calls.html", calls=shown, page=page, pages=pages, number=eng.settings.phone_number, refresh=REFRESH_SECONDS)


@bp.get("/emulator/calls/<sid>")
def call_page(sid: str) -> str:
    """One call: what it is, what its caller heard, its recordings and legs."""
    eng = engine()
    call = eng.get(sid)
    if call is None:
        abort(404)
    return _page("call.html", call=call, resource=call_resource(call, eng.settings.price_per_minute),
                 recordings=eng.all_recordings(sid), recording_url=eng.recording_url,
                 legs=[leg for leg in map(eng.get, call.children) if leg is not None],
                 refresh=None if call.ended else REFRESH_SECONDS)


@bp.get("/webhooks")
def webhooks_page() -> str:
    """The inspector: every request sent (`?call_sid=`), newest first, a page at a time."""
    items, older = webhook_page(request.args)
    return _page("webhooks.html", items=items, older=older, before=request.args.get("before"),
                 call_sid=request.args.get("call_sid") or None, kept=engine().settings.inspector_size, refresh=REFRESH_SECONDS)


@bp.post("/emulator/console/chaos")
def toggle_chaos() -> Response:
    """The console's switch: `preset` bad-day or off."""
    _check_form_token()
    preset = request.form.get("preset", "")
    if preset not in chaos.PRESETS:
        abort(Response(f"Unknown preset {preset[:40]!r}\n", 400, content_type="text/plain; charset=utf-8"))
    engine().set_chaos(chaos.PRESETS[preset])
    return _back(url_for("emulator_console.index"))


@bp.post("/emulator/console/webhooks/<int:delivery_id>/replay")
def replay_form(delivery_id: int) -> Response:
    """The console's Replay button."""
    _check_form_token()
    if engine().replay(delivery_id) is None:
        abort(404)
    return _back(url_for("emulator_console.webhooks_page"))


def init_app(app: Flask) -> None:
    """The console's form token, and `flask --app emulator ring`."""
    app.config.setdefault("EMULATOR_CONSOLE_TOKEN", secrets.token_urlsafe(24))
    init_cli(app)


def init_cli(app: Flask) -> None:
    """Register `flask --app emulator ring`."""

    @app.cli.command("ring")
    @click.option("--from", "from_", required=True, help="The caller's number, e.g. +15555550123.")
    @click.option("--to", default=None, help="The number called (default: the emulator's number).")
    @click.option("--caller-name", default=None, help="Sent to the app as CallerName.")
    @click.option("--hangup-after", type=float, default=None, help="Seconds until the caller hangs up (0: stay).")
    @click.option("--digits", default="", help="Keys to press at successive <Gather>s, comma-separated: '1,42#'.")
    @click.option("--speech", default="", help="Words to say at successive speech <Gather>s, '|'-separated: 'billing|yes'.")
    @click.option("--forwarded-from", default=None, help="Sent to the app as ForwardedFrom.")
    @click.option("--stir-verstat", default=None, help="Sent to the app as StirVerstat, e.g. TN-Validation-Passed-A.")
    @click.option("--url", "emulator_url", default=None, envvar="EMULATOR_URL", help="The running emulator.")
    def ring(from_: str, to: str | None, caller_name: str | None, hangup_after: float | None, digits: str, speech: str,
             forwarded_from: str | None, stir_verstat: str | None, emulator_url: str | None) -> None:
        """Ring the app through a running emulator, as a caller would."""
        settings = app.extensions["emulator"].settings
        base = (emulator_url or settings.public_url).rstrip("/")
        payload: dict[str, Any] = {"from": from_, "digits": digits, "speech": speech}
        if forwarded_from:
            payload["forwarded_from"] = forwarded_from
        if stir_verstat:
            payload["stir_verstat"] = stir_verstat
        if to:
            payload["to"] = to
        if caller_name:
            payload["caller_name"] = caller_name
        if hangup_after is not None:
            payload["hangup_after"] = hangup_after
        try:
            resp = requests.post(f"{base}/emulator/incoming", json=payload, auth=(settings.account_sid, settings.auth_token), timeout=10)
        except requests.RequestException as exc:
            raise click.ClickException(f"Cannot reach the emulator at {base}: {exc}") from None
        if resp.status_code != 201:
            raise click.ClickException(f"The emulator refused: HTTP {resp.status_code} {resp.text.strip()}")
        sid = resp.json()["call_sid"]
        click.echo(sid)
        click.echo(f"Transcript: {base}/emulator/calls/{sid}", err=True)
