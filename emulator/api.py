"""Twilio's `/2010-04-01` surface for Calls: paths, form keys, JSON and error bodies as Twilio's."""

from __future__ import annotations

import base64
import hmac
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from functools import cache, wraps
from typing import Any
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, Response, current_app, g, json, request
from werkzeug.routing import BaseConverter

from . import limits, recordings, resources
from .engine import (
    ALL_STATUSES,
    API_VERSION,
    CALLBACK_EVENTS,
    Call,
    CallNotFound,
    CallStateError,
    Engine,
    MachineDetection,
    RecordingOptions,
    Source,
)
from .resources import call_resource, recording_resource
from .webhooks import Attempt

bp = Blueprint("twilio_api", __name__, url_prefix=f"/{API_VERSION}")

MAX_TWIML_CHARS = limits.MAX_TWIML_CHARS
METHODS = ("GET", "POST")
UPDATE_STATUSES = ("canceled", "completed")
#: Twilio's documented test numbers (reference §13): To → (code, message).
MAGIC_TO = {
    "+15005550001": (21217, "Phone number does not appear to be valid"),
    "+15005550002": (21214, "'To' phone number cannot be reached"),
    "+15005550003": (21215, "Account not authorized to call +15005550003. Perhaps you need to enable some international permissions"),
    "+15005550004": (21216, "Account not allowed to call +15005550004"),
}
#: Generic "invalid parameter" code used where Twilio documents none (see emulator/README.md).
INVALID_PARAMETER = 20001
#: "Invalid Timeout" (CreateCall `Timeout`).
INVALID_TIMEOUT = 21208
NOT_IN_PROGRESS = (21220, "Call is not in-progress. Cannot redirect.")

E164 = re.compile(r"^\+[1-9]\d{1,14}$")


def engine() -> Engine:
    """The engine of the running emulator app."""
    return current_app.extensions["emulator"]


class TwilioError(Exception):
    """An error answered in Twilio's JSON shape."""

    def __init__(self, code: int, message: str, status: int = 400, **extra: Any):
        super().__init__(message)
        self.code, self.message, self.status, self.extra = code, message, status, extra


def wants_xml() -> bool:
    """A v2010 path without `.json` (no extension, or `.xml`): Twilio answers in its XML form."""
    return request.path.startswith(f"/{API_VERSION}/") and not request.path.endswith(".json")


def error_response(code: int, message: str, status: int, **extra: Any) -> Response:
    """`{"code", "message", "more_info", "status"}` (+ `detail` for auth errors), or in the XML
    form `<TwilioResponse><RestException>…` for a path without `.json`."""
    body = {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}
    body.update(extra)
    resp = xml_response(resources.error_xml(body), status) if wants_xml() else json_response(body, status)
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
    return resp


def json_response(body: Any, status: int = 200) -> Response:
    """JSON the way Twilio sends it."""
    return Response(json.dumps(body), status=status, content_type="application/json; charset=utf-8")


def xml_response(element: ET.Element, status: int = 200) -> Response:
    """Twilio's XML form: the element inside `<TwilioResponse>`."""
    return Response(resources.xml_document(element), status=status, content_type="application/xml")


def reply_call(call: Call, status: int = 200) -> Response:
    """The Call resource, in the form the path asks for."""
    body = _call_json(call)
    return xml_response(resources.resource_xml("Call", body), status) if wants_xml() else json_response(body, status)


def rest_route(rule: str, methods: list[str]) -> Callable[[Callable], Callable]:
    """Register a view for `rule.json` and, as Twilio answers them too, `rule.xml` and `rule`."""

    def register(view: Callable) -> Callable:
        for suffix in (".json", ".xml", ""):
            bp.add_url_rule(rule + suffix, endpoint=view.__name__, view_func=view, methods=methods)
        return view

    return register


class SidConverter(BaseConverter):
    """A SID path segment: letters and digits only, so `CA….json` is never taken for a SID."""

    regex = r"[A-Za-z0-9]+"


@bp.errorhandler(TwilioError)
def twilio_error(exc: TwilioError) -> Response:
    """Answer a TwilioError in Twilio's shape."""
    return error_response(exc.code, exc.message, exc.status, **exc.extra)


def check_basic_auth() -> Response | None:
    """HTTP Basic with the account SID and auth token; a 20003 error response when wrong."""
    s = current_app.extensions["emulator"].settings
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("basic "):
        return error_response(20003, "Authentication Error - No credentials provided", 401, detail="Your AccountSid or AuthToken was incorrect.")
    try:
        user, _, password = base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        user, password = "", ""
    ok_user = hmac.compare_digest(user.encode(), s.account_sid.encode())
    ok_pass = hmac.compare_digest(password.encode(), s.auth_token.encode())
    if not (ok_user and ok_pass):
        return error_response(20003, "Authentication Error - invalid username", 401, detail="Your AccountSid or AuthToken was incorrect.")
    return None


@bp.before_request
def authenticate() -> Response | None:
    """Every /2010-04-01 request needs Basic auth (but recording media, public on Twilio by
    default); a REST request's side effects wait for its response."""
    account = (request.view_args or {}).get("account_sid")
    if _is_media_request():
        if account != engine().settings.account_sid:
            return error_response(20404, f"The requested resource {request.path} was not found", 404)
        return None
    failed = check_basic_auth()
    if failed is not None:
        return failed
    if account is not None and account != engine().settings.account_sid:
        # Another account's resources: Twilio answers as if they did not exist (reference §8.1).
        return error_response(20404, f"The requested resource {request.path} was not found", 404)
    g.started = time.monotonic()
    if engine().chaos.active:
        limited, g.emulator_lose_response = engine().rest_fault()
        if limited:
            return error_response(20429, "Too Many Requests", 429)
    g.emulator_batch = engine().batch().__enter__()
    return None


@bp.after_request
def release_side_effects(resp: Response) -> Response:
    """Status callbacks and dialing start only once this response has been sent. A create or
    update of a call is kept for the call's Events."""
    call_sid = g.pop("event_call_sid", None)
    if call_sid is not None:
        _record_api_request(call_sid, resp)
    batch = g.pop("emulator_batch", None)
    if batch is not None:
        batch.__exit__(None, None, None)
        resp.call_on_close(batch.release)
    return resp


@bp.teardown_request
def release_on_error(exc: BaseException | None) -> None:
    """Never leave a batch open (it would stall Engine.wait_idle)."""
    batch = g.pop("emulator_batch", None)
    if batch is not None:
        batch.__exit__(None, None, None)
        batch.release()


# --------------------------------------------------------------------------- validation


def _valid_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not re.search(r"\s", url)


def _url_param(form: Any, name: str) -> str | None:
    value = form.get(name)
    if value is None or value == "":
        return None
    if not _valid_url(value):
        raise TwilioError(21205, f"{name} is not a valid URL: {value}")
    if name.startswith("StatusCallback") and "_" in (urlsplit(value).hostname or ""):
        raise TwilioError(21205, f"{name} is not a valid URL: {value}")
    return value


def _enum_param(form: Any, name: str, allowed: tuple[str, ...], default: str | None = None) -> str | None:
    value = form.get(name)
    if value is None or value == "":
        return default
    if name.endswith("Method"):
        value = value.upper()
    if value not in allowed:
        raise TwilioError(INVALID_PARAMETER, f"Invalid {name}: {value!r} is not one of {', '.join(allowed)}")
    return value


def _int_param(form: Any, name: str, low: int, high: int | None = None, code: int = INVALID_PARAMETER) -> int | None:
    """A whole number in [low, high], else 400 with `code`. Digits only: no sign games, no floats."""
    value = form.get(name)
    if value is None or value == "":
        return None
    text = value.strip()
    if not re.fullmatch(r"[+-]?\d{1,30}", text):
        raise TwilioError(code, f"Invalid {name}: {value[:40]!r} is not an integer")
    number = int(text)
    if number < low or (high is not None and number > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise TwilioError(code, f"Invalid {name}: {number} must be {bound}")
    return number


def _bool_param(form: Any, name: str) -> bool:
    """`true`/`false` (any case), absent is false; anything else is 400/20001."""
    value = (form.get(name) or "").strip().lower()
    if value not in ("", "true", "false"):
        raise TwilioError(INVALID_PARAMETER, f"Invalid {name}: {form.get(name)[:40]!r} is not true or false")
    return value == "true"


def _list_param(form: Any, name: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """A list parameter: repeated keys, or values separated by spaces or commas; each one of `allowed`."""
    values = tuple(v for item in form.getlist(name) for v in item.replace(",", " ").split())
    for value in values:
        if value not in allowed:
            raise TwilioError(INVALID_PARAMETER, f"Invalid {name}: {value!r} is not one of {', '.join(allowed)}")
    return values


def _recording_options(form: Any) -> RecordingOptions | None:
    """`Record=true` and its RecordingStatusCallback*, RecordingChannels, RecordingTrack (else None)."""
    if not _bool_param(form, "Record"):
        return None
    return RecordingOptions(
        callback=_url_param(form, "RecordingStatusCallback"),
        callback_method=_enum_param(form, "RecordingStatusCallbackMethod", METHODS, "POST"),
        callback_events=_list_param(form, "RecordingStatusCallbackEvent", recordings.RECORDING_EVENTS) or ("completed",),
        channels=2 if _enum_param(form, "RecordingChannels", ("mono", "dual"), "mono") == "dual" else 1,
        track=_enum_param(form, "RecordingTrack", ("inbound", "outbound", "both"), "both"),
    )


def _machine_detection(form: Any) -> MachineDetection | None:
    """`MachineDetection` and its options (spec CreateCall), or None."""
    mode = _enum_param(form, "MachineDetection", ("Enable", "DetectMessageEnd"))
    if mode is None:
        return None
    return MachineDetection(
        mode=mode,
        timeout=float(_int_param(form, "MachineDetectionTimeout", *limits.MACHINE_DETECTION_TIMEOUT[1:]) or limits.MACHINE_DETECTION_TIMEOUT[0]),
        asynchronous=_bool_param(form, "AsyncAmd"),
        callback=_url_param(form, "AsyncAmdStatusCallback"),
        callback_method=_enum_param(form, "AsyncAmdStatusCallbackMethod", METHODS, "POST"),
    )


def _send_digits(form: Any) -> str | None:
    """`SendDigits`: up to 32 of 0-9, A-D, # and *, with w/W pauses."""
    value = form.get("SendDigits") or ""
    if value and not re.fullmatch(rf"[0-9A-D#*wW]{{1,{limits.MAX_SEND_DIGITS}}}", value):
        raise TwilioError(INVALID_PARAMETER, f"Invalid SendDigits: {value[:40]!r} (up to {limits.MAX_SEND_DIGITS} of 0-9, A-D, #, *, w and W)")
    return value or None


def _twiml_param(form: Any) -> str | None:
    twiml = form.get("Twiml")
    if twiml is None or twiml == "":
        return None
    if len(twiml) > MAX_TWIML_CHARS:
        raise TwilioError(32018, f"Twiml size exceeded maximum allowed value of {MAX_TWIML_CHARS} characters")
    return twiml


def _endpoint_ok(value: str) -> bool:
    return bool(E164.match(value)) or value.startswith(("client:", "sip:")) or bool(re.match(r"^[^@\s]+@[^@\s]+$", value))


# --------------------------------------------------------------------------- routes


def _call_json(call: Call) -> dict[str, Any]:
    return call_resource(call, engine().settings.price_per_minute)


def _not_found() -> TwilioError:
    return TwilioError(20404, f"The requested resource {request.path} was not found", 404)


def _existing_call(call_sid: str) -> Call:
    """A snapshot of the call, or Twilio's 20404 for this path."""
    call = engine().get(call_sid)
    if call is None:
        raise _not_found()
    return call


@rest_route("/Accounts/<account_sid>/Calls", methods=["POST"])
def create_call(account_sid: str) -> Response:
    """CreateCall: 201 with the queued call; it rings once this response is out."""
    form = request.form
    to = (form.get("To") or "").strip()
    from_ = (form.get("From") or "").strip()
    if not to:
        raise TwilioError(21201, "No 'To' number is specified")
    if not from_:
        raise TwilioError(21213, "No 'From' number is specified")
    if to in MAGIC_TO:
        code, message = MAGIC_TO[to]
        raise TwilioError(code, message)
    if not _endpoint_ok(to):
        raise TwilioError(21211, f"Invalid 'To' Phone Number: {to}")
    if not (E164.match(from_) or from_.startswith("client:")) or from_ == "+15005550001":
        raise TwilioError(21212, f"Invalid From Number (caller ID): {from_}")
    if not engine().may_call_from(from_):
        raise TwilioError(21210, f"The source phone number provided, {from_}, is not yet verified for your account. "
                          "You may only make calls from phone numbers that you've verified or purchased from Twilio.")
    if form.get("ApplicationSid"):
        raise TwilioError(21218, "Invalid ApplicationSid: the emulator has no TwiML Applications; use Url or Twiml")
    url = _url_param(form, "Url")
    twiml = _twiml_param(form)
    if url is None and twiml is None:
        raise TwilioError(21205, "Url parameter is required. Please provide a Url, Twiml or ApplicationSid")
    if url is not None:
        twiml = None  # documented for CreateCall: with both, Twiml is ignored
    events = form.getlist("StatusCallbackEvent")
    for event in events:
        if event not in CALLBACK_EVENTS:
            raise TwilioError(INVALID_PARAMETER, f"Invalid StatusCallbackEvent: {event!r} is not one of {', '.join(CALLBACK_EVENTS)}")
    fields = {
        "to": to,
        "from_": from_,
        "url": url,
        "method": _enum_param(form, "Method", METHODS, "POST"),
        "twiml": twiml,
        "fallback_url": _url_param(form, "FallbackUrl"),
        "fallback_method": _enum_param(form, "FallbackMethod", METHODS, "POST"),
        "status_callback": _url_param(form, "StatusCallback"),
        "status_callback_method": _enum_param(form, "StatusCallbackMethod", METHODS, "POST"),
        "status_callback_events": tuple(events),
        "timeout": float(_int_param(form, "Timeout", 1, limits.MAX_TIMEOUT, INVALID_TIMEOUT) or limits.DEFAULT_TIMEOUT),
        "time_limit": float(_time_limit_param(form) or limits.DEFAULT_TIME_LIMIT),
        "record": _recording_options(form),
        "amd": _machine_detection(form),
        "send_digits": _send_digits(form),
    }
    call = engine().create_outbound(**fields)
    g.event_call_sid = call.sid
    if g.pop("emulator_lose_response", False):
        # Chaos: the call is placed, but its response never reaches the client, which times out.
        release_on_error(None)
        engine().hold_lost_response()
    return reply_call(call, 201)


def _time_limit_param(form: Any) -> int | None:
    return _int_param(form, "TimeLimit", limits.MIN_TIME_LIMIT, limits.MAX_CALL_SECONDS)


@rest_route("/Accounts/<account_sid>/Calls/<sid:call_sid>", methods=["GET"])
def fetch_call(account_sid: str, call_sid: str) -> Response:
    """FetchCall."""
    return reply_call(_existing_call(call_sid))


@rest_route("/Accounts/<account_sid>/Calls/<sid:call_sid>", methods=["POST"])
def update_call(account_sid: str, call_sid: str) -> Response:
    """UpdateCall: redirect (Url/Twiml), end (Status), TimeLimit — Twilio's rules (reference §3.2, §13)."""
    existing = _existing_call(call_sid)
    g.event_call_sid = existing.sid
    if existing.ended:
        raise TwilioError(*NOT_IN_PROGRESS)
    form = request.form
    url = _url_param(form, "Url")
    twiml = _twiml_param(form)
    method = _enum_param(form, "Method", METHODS, "POST")
    status = _enum_param(form, "Status", UPDATE_STATUSES)
    if url is not None and twiml is not None:
        raise TwilioError(INVALID_PARAMETER, "Url and Twiml are mutually exclusive: provide only one of them")
    source = Source(url=url, method=method) if url is not None else Source(twiml=twiml) if twiml is not None else None
    try:
        call = engine().update(
            call_sid,
            status=status,
            source=source,
            fallback_url=_url_param(form, "FallbackUrl"),
            fallback_method=_enum_param(form, "FallbackMethod", METHODS),
            status_callback=_url_param(form, "StatusCallback"),
            status_callback_method=_enum_param(form, "StatusCallbackMethod", METHODS),
            time_limit=_time_limit_param(form),
        )
    except CallNotFound:
        raise _not_found() from None
    except CallStateError:
        raise TwilioError(*NOT_IN_PROGRESS) from None
    return reply_call(call)


@rest_route("/Accounts/<account_sid>/Calls/<sid:call_sid>", methods=["DELETE"])
def delete_call(account_sid: str, call_sid: str) -> Response:
    """DeleteCall: 204, no body. A live call is hung up first, so nothing keeps running unseen."""
    try:
        engine().delete(call_sid)
    except CallNotFound:
        raise _not_found() from None
    return Response(status=204)


# --------------------------------------------------------------------------- listing

LIST_FILTERS = ("To", "From", "ParentCallSid", "Status")
DATE_FILTERS = tuple(f"{f}{op}" for f in ("StartTime", "EndTime") for op in ("", "<", ">"))


#: Time zone abbreviations seen in the spec's examples (`06/11/2019 22:05:25 MST`): hours from UTC.
TZ_ABBREVIATIONS = {"UTC": 0, "GMT": 0, "Z": 0, "EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6,
                    "PST": -8, "PDT": -7, "AKST": -9, "AKDT": -8, "HST": -10}
US_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?(?:\s*([A-Za-z]{1,5}|[+-]\d{2}:?\d{2}))?")


def _parse_date(name: str, value: str) -> tuple[datetime, bool]:
    """A date filter's value, as the spec documents and exemplifies them: `YYYY-MM-DD` (a whole UTC
    day), ISO timestamps (`2019-06-11 22:05:25.000`, the SDK's `…T…Z`), `MM/DD/YYYY HH:MM:SS TZ`
    (`06/11/2019 22:05:25 MST`) and RFC 2822. Returns (when, whole day?)."""
    text = value.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC), True
        us = US_DATE.fullmatch(text)
        if us:
            month, day, year, hour, minute, second, zone = us.groups()
            parsed = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
            return parsed.replace(tzinfo=_zone(zone)), hour is None
        if re.match(r"\d{4}-", text):
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        else:
            parsed = parsedate_to_datetime(text)
    except (ValueError, TypeError, OverflowError):
        raise TwilioError(INVALID_PARAMETER, f"Invalid {name}: {value[:60]!r} is not a date (YYYY-MM-DD) or timestamp") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed, False


def _zone(zone: str | None) -> timezone:
    """A time zone abbreviation or offset (`MST`, `-0700`); none is UTC."""
    if not zone:
        return UTC
    if zone[0] in "+-":
        digits = zone[1:].replace(":", "")
        minutes = int(digits[:2]) * 60 + int(digits[2:])
        return timezone(timedelta(minutes=minutes if zone[0] == "+" else -minutes))
    if zone.upper() not in TZ_ABBREVIATIONS:
        raise ValueError(zone)
    return timezone(timedelta(hours=TZ_ABBREVIATIONS[zone.upper()]))


def _date_matcher(name: str, value: str) -> Callable[[Call], bool]:
    field = "start_time" if name.startswith("StartTime") else "end_time"
    op = name[-1] if name[-1] in "<>" else "="
    when, whole_day = _parse_date(name, value)
    bound = when.timestamp()

    def match(call: Call) -> bool:
        ts = getattr(call, field) if field == "start_time" or call.answered else None
        if ts is None:
            return False
        if op == "<":
            return ts < bound
        if op == ">":
            return ts >= bound
        if whole_day:
            return bound <= ts < bound + 86400
        return int(ts) == int(bound)

    return match


def _filters(args: Any) -> tuple[list[Callable[[Call], bool]], list[tuple[str, str]]]:
    matchers: list[Callable[[Call], bool]] = []
    kept: list[tuple[str, str]] = []
    for name in LIST_FILTERS:
        value = args.get(name)
        if value is None or value == "":
            continue
        kept.append((name, value))
        if name == "Status":
            if value not in ALL_STATUSES:
                raise TwilioError(INVALID_PARAMETER, f"Invalid Status: {value!r} is not one of {', '.join(ALL_STATUSES)}")
            matchers.append(lambda c, v=value: c.status == v)
        elif name == "To":
            matchers.append(lambda c, v=value: c.to == v)
        elif name == "From":
            matchers.append(lambda c, v=value: c.from_ == v)
        else:
            matchers.append(lambda c, v=value: c.parent_call_sid == v)
    for name in DATE_FILTERS:
        value = args.get(name)
        if value:
            kept.append((name, value))
            matchers.append(_date_matcher(name, value))
    return matchers, kept


@rest_route("/Accounts/<account_sid>/Calls", methods=["GET"])
def list_calls(account_sid: str) -> Response:
    """ListCall: newest first, Twilio's page envelope, host-relative paging links."""
    matchers, kept = _filters(request.args)
    calls = [c for c in engine().all_calls() if all(m(c) for m in matchers)]
    if wants_xml():
        page = page_of(calls, "calls", f"/{API_VERSION}/Accounts/{account_sid}/Calls", kept, _call_json)
        return xml_response(resources.page_xml(page, "calls", "Calls"))
    return json_response(page_of(calls, "calls", f"/{API_VERSION}/Accounts/{account_sid}/Calls.json", kept, _call_json))


def page_of(items: list[Any], key: str, base: str, kept: list[tuple[str, str]], render: Callable[[Any], Any]) -> dict[str, Any]:
    """One page of `items` (newest first, each with a `.sid`) in Twilio's list envelope under `key`.

    `PageSize` (1–1000, default 50), `Page` and `PageToken` come from the request; a token pins the
    page to an item, so items created while paging do not shift it.
    """
    args = request.args
    page_size = _int_param(args, "PageSize", 1, 1000) or 50
    page = _int_param(args, "Page", 0) or 0
    start = page * page_size
    token = args.get("PageToken") or ""
    sids = [item.sid for item in items]
    if token.startswith("PA") and token[2:] in sids:
        start = sids.index(token[2:]) + 1
    elif token.startswith("PB") and token[2:] in sids:
        start = max(0, sids.index(token[2:]) - page_size)
    chunk = items[start : start + page_size]

    def link(page_no: int, page_token: str | None = None) -> str:
        query = kept + [("PageSize", str(page_size)), ("Page", str(page_no))]
        if page_token:
            query.append(("PageToken", page_token))
        return f"{base}?{urlencode(query)}"

    more = start + page_size < len(items)
    return {
        key: [render(item) for item in chunk],
        "end": start + len(chunk) - 1 if chunk else start,
        "first_page_uri": link(0),
        "next_page_uri": link(page + 1, "PA" + chunk[-1].sid) if more and chunk else None,
        "page": page,
        "page_size": page_size,
        "previous_page_uri": link(page - 1, "PB" + chunk[0].sid) if page > 0 and chunk else None,
        "start": start,
        "uri": link(page, token or None),
    }


# --------------------------------------------------------------------------- events


@cache
def _snake(name: str) -> str:
    """`StatusCallbackMethod` → `status_callback_method`, as Call Events show REST parameters."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _record_api_request(call_sid: str, resp: Response) -> None:
    """Keep a create or update of a call (and our answer) among the call's Events."""
    params = [(_snake(name), value) for name, value in request.form.items(multi=True)]
    body = b"" if resp.is_streamed else resp.get_data()
    url = f"{request.scheme}://{request.host}{request.path}"
    attempt = Attempt(url, request.method, params, "", "", 1, resp.status_code, resp.content_type or "", body,
                      elapsed=time.monotonic() - g.get("started", time.monotonic()))
    engine().inspector.record("api", call_sid, attempt, engine().clock.now())


#: What the Events of a call are: the REST requests about it and the requests made for it.
EVENT_KINDS = ("api", "twiml", "status-callback", "recording-callback", "amd-callback", "replay")


@bp.get("/Accounts/<account_sid>/Calls/<sid:call_sid>/Events.json")
def list_call_events(account_sid: str, call_sid: str) -> Response:
    """ListCallEvent: every request for the call and the answer it got, oldest first, at once
    (Twilio makes them available some minutes after the call)."""
    _existing_call(call_sid)
    events = [d for d in reversed(engine().inspector.recent(call_sid, EVENT_KINDS)) if d.sent]
    base = f"/{API_VERSION}/Accounts/{account_sid}/Calls/{call_sid}/Events.json"
    return json_response(page_of(events, "events", base, [], resources.event_resource))


@bp.get("/Accounts/<account_sid>/Calls/<sid:call_sid>/Notifications.json")
def list_call_notifications(account_sid: str, call_sid: str) -> Response:
    """ListCallNotification: the call's errors and warnings, newest first (`Log`: 0 errors, 1 warnings)."""
    log = _enum_param(request.args, "Log", ("0", "1"))
    items = [n for n in resources.notifications(_existing_call(call_sid)) if log is None or n.log == log]
    base = f"/{API_VERSION}/Accounts/{account_sid}/Calls/{call_sid}/Notifications.json"
    return json_response(page_of(items, "notifications", base, [("Log", log)] if log else [], lambda n: n.resource()))


@bp.get("/Accounts/<account_sid>/Calls/<sid:call_sid>/Notifications/<sid:sid>.json")
def fetch_call_notification(account_sid: str, call_sid: str, sid: str) -> Response:
    """FetchCallNotification."""
    found = next((n for n in resources.notifications(_existing_call(call_sid)) if n.sid == sid), None)
    if found is None:
        raise _not_found()
    return json_response(found.resource(instance=True))


# --------------------------------------------------------------------------- recordings


def _recording_of(sid: str, call_sid: str | None = None) -> recordings.Recording:
    rec = engine().recording(sid)
    if rec is None or (call_sid is not None and rec.call_sid != call_sid):
        raise _not_found()
    return rec


@bp.get("/Accounts/<account_sid>/Calls/<call_sid>/Recordings.json")
def list_call_recordings(account_sid: str, call_sid: str) -> Response:
    """ListCallRecording: the call's recordings, newest first."""
    _existing_call(call_sid)
    public = engine().settings.public_url
    base = f"/{API_VERSION}/Accounts/{account_sid}/Calls/{call_sid}/Recordings.json"
    return json_response(page_of(engine().all_recordings(call_sid), "recordings", base, [],
                                 lambda r: recording_resource(r, public, of_call=True)))


@bp.get("/Accounts/<account_sid>/Calls/<call_sid>/Recordings/<sid>.json")
def fetch_call_recording(account_sid: str, call_sid: str, sid: str) -> Response:
    """FetchCallRecording."""
    return json_response(recording_resource(_recording_of(sid, call_sid), engine().settings.public_url, of_call=True))


@bp.delete("/Accounts/<account_sid>/Calls/<call_sid>/Recordings/<sid>.json")
def delete_call_recording(account_sid: str, call_sid: str, sid: str) -> Response:
    """DeleteCallRecording: 204."""
    engine().delete_recording(_recording_of(sid, call_sid).sid)
    return Response(status=204)


@bp.get("/Accounts/<account_sid>/Recordings.json")
def list_recordings(account_sid: str) -> Response:
    """ListRecording: every recording (or those of `CallSid`), newest first."""
    call_sid = request.args.get("CallSid") or None
    kept = [("CallSid", call_sid)] if call_sid else []
    public = engine().settings.public_url
    return json_response(page_of(engine().all_recordings(call_sid), "recordings", f"/{API_VERSION}/Accounts/{account_sid}/Recordings.json",
                                 kept, lambda r: recording_resource(r, public)))


MEDIA_TYPES = {"": "audio/x-wav", ".wav": "audio/x-wav", ".mp3": "audio/mpeg"}


def _is_media_request() -> bool:
    """A GET of a recording's media (no extension, `.wav` or `.mp3`): public, like Twilio's default."""
    if request.endpoint != "twilio_api.recording" or request.method not in ("GET", "HEAD"):
        return False
    name = (request.view_args or {}).get("name", "")
    return "." not in name or name.endswith((".wav", ".mp3"))


@bp.route("/Accounts/<account_sid>/Recordings/<name>", methods=["GET", "DELETE"])
def recording(account_sid: str, name: str) -> Response:
    """`RE….json`: FetchRecording (DELETE: DeleteRecording); `RE…`, `RE….wav`, `RE….mp3`: the media."""
    sid, dot, ext = name.partition(".")
    ext = dot + ext
    if ext not in (".json", *MEDIA_TYPES):
        raise _not_found()
    rec = _recording_of(sid)
    if request.method == "DELETE":
        if ext != ".json":
            raise TwilioError(20004, "Method not allowed", 405)
        engine().delete_recording(rec.sid)
        return Response(status=204)
    if ext == ".json":
        return json_response(recording_resource(rec, engine().settings.public_url))
    if rec.status != "completed":
        raise _not_found()  # no media until the recording is complete
    seconds = rec.duration or 0
    if ext == ".mp3":
        body, length = recordings.mp3_chunks(seconds), recordings.mp3_length(seconds)
    else:
        body, length = recordings.wav_chunks(seconds), recordings.wav_length(seconds)
    resp = Response(body, mimetype=MEDIA_TYPES[ext], direct_passthrough=True)
    resp.headers["Content-Length"] = str(length)
    return resp


def wrap_auth(view: Callable) -> Callable:
    """Protect an emulator control endpoint with the account's HTTP Basic credentials."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        failed = check_basic_auth()
        return failed if failed is not None else view(*args, **kwargs)

    return wrapper
