"""A call's journey: everything that happened to it, in order, as it crossed the wire. The
webhooks Twilio sent (with the TwiML we answered), its status callbacks, the REST requests
the app made through the SDK (with Twilio's answers), the operators' actions (with the exact
SDK call and its curl), Debugger events, and, in demo mode, what the caller heard and what
"Twilio" saw: the emulator's Call Events, read through the SDK."""
from __future__ import annotations

import json
import re
import shlex
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from flask import current_app
from twilio.request_validator import RequestValidator

import call_control
import transcript as transcript_module
import wire_log
from models import DebuggerEvent, OperatorAction, WireEntry, db, isoformat
from twilio_errors import explain

_ACCOUNT_IN_PATH = re.compile(r"/Accounts/AC[0-9a-fA-F]{32}/")
# Twilio's Calls parameters whose SDK keyword is not plain snake_case.
_SDK_NAMES = {"From": "from_"}


@dataclass
class Entry:
    """One step of a call's journey."""

    kind: str  # webhook, status_callback, rest, action, debugger, transcript
    at: datetime
    summary: str
    request: dict | None = None
    response: dict | None = None
    error_code: int | None = None
    sdk_code: str | None = None
    curl: str | None = None
    details: dict = field(default_factory=dict)
    repeats: int = 1  # identical steps in a row (the hold loop) are one entry
    twilio: dict | None = None  # Twilio's side of this webhook (its Call Events): code, time

    @property
    def explanation(self):
        """What the error code means, with Twilio's page (None without a code)."""
        return explain(self.error_code)

    @property
    def failed(self) -> bool:
        """An error: a Twilio error code, or an HTTP error answer."""
        response = self.response or {}
        status = response.get("status")
        no_answer = "status" in response and status is None
        return self.error_code is not None or no_answer or (
            isinstance(status, int) and status >= 400)

    def to_dict(self) -> dict:
        """The entry as GET /api/calls/<sid>/journey gives it."""
        body = {"kind": self.kind, "at": isoformat(self.at), "summary": self.summary}
        for name in ("request", "response", "error_code", "sdk_code", "curl"):
            value = getattr(self, name)
            if value is not None:
                body[name] = value
        if self.explanation is not None:
            body["explanation"] = self.explanation.to_dict()
        if self.repeats > 1:
            body["repeats"] = self.repeats
        if self.twilio is not None:
            body["twilio"] = self.twilio
        body.update(self.details)
        return body


def journey(sid: str, auth_token: str, heard=(), twilio_events=()) -> list[Entry]:
    """Every step of the call `sid`, oldest first (what this process heard is written first).
    `auth_token` signs the webhooks' "copy as curl"; `heard` is the emulator's transcript as
    transcript.fold() gives it; `twilio_events` are Twilio's Call Events for the call
    (call_control.call_events)."""
    wire_log.flush()
    exchanges = db.session.scalars(select_wire(sid)).all()
    actions = db.session.scalars(
        db.select(OperatorAction).where(OperatorAction.call_sid == sid)
        .order_by(OperatorAction.id)).all()
    by_action: dict[int, list[WireEntry]] = {}
    entries: list[Entry] = []
    for exchange in exchanges:
        if exchange.kind == "rest" and exchange.action_id is not None:
            by_action.setdefault(exchange.action_id, []).append(exchange)
        elif exchange.kind == "rest":
            entries.append(_rest(exchange, "rest"))
        else:
            entries.append(_webhook(exchange, auth_token))
    entries.extend(_action(action, by_action.get(action.id, [])) for action in actions)
    entries.extend(_twilio_saw(entries, twilio_events))
    entries.extend(_debugger(event) for event in db.session.scalars(
        db.select(DebuggerEvent).where(DebuggerEvent.call_sid == sid)))
    entries.extend(_heard(heard, webhooks=not twilio_events))
    entries.sort(key=lambda entry: entry.at)
    return _fold_repeats(entries)


def demo_sources(sid: str) -> tuple[dict | None, list[dict], str | None]:
    """In demo mode (EMULATOR_URL set): the caller's transcript of the call, Twilio's Call
    Events for it, and what went wrong reading them (None if nothing). Outside demo mode,
    nothing: Twilio publishes Call Events minutes after a call ends."""
    if not current_app.config["EMULATOR_URL"]:
        return None, [], None
    try:
        return call_control.transcript(sid), call_control.call_events(sid), None
    except call_control.ControlError as error:
        return None, [], str(error)


def select_wire(sid: str):
    """The wire log's entries for a call, in the order they were written."""
    return db.select(WireEntry).where(WireEntry.call_sid == sid).order_by(WireEntry.id)


# -------------------------------------------------------------- the kinds of entry

def _webhook(exchange: WireEntry, auth_token: str) -> Entry:
    params = exchange.parameters
    path = urlsplit(exchange.url).path or "/"
    kind = exchange.kind
    if kind == "status_callback":
        status = params.get("CallStatus", "?")
        summary = f"Status callback: {status}"
        if params.get("CallDuration"):
            summary += f" ({params['CallDuration']} s)"
    else:
        summary = f"Twilio requested {exchange.method} {path}"
    summary += f" → {exchange.status}"
    if exchange.signature in ("invalid", "missing"):
        summary += f" (signature {exchange.signature}: refused)"
    body = exchange.response or ""
    return Entry(
        kind=kind, at=exchange.at, summary=summary,
        request={"method": exchange.method, "url": exchange.url, "params": params,
                 "signature": exchange.signature},
        response={"status": exchange.status, "body": body},
        details={"duration_ms": round(exchange.duration_ms or 0, 1),
                 "twiml": body if body.lstrip().startswith("<") and "<Response" in body else None},
        curl=_signed_curl(exchange, auth_token) if auth_token else None,
    )


def _rest(exchange: WireEntry, kind: str) -> Entry:
    answer = _json_or_text(exchange.response)
    summary = f"SDK: {exchange.method} {_short_path(exchange.url)} → {exchange.status or 'no answer'}"
    return Entry(
        kind=kind, at=exchange.at, summary=summary,
        request={"method": exchange.method, "url": exchange.url, "params": exchange.parameters},
        response={"status": exchange.status, "body": answer},
        error_code=exchange.error_code, sdk_code=sdk_code(exchange), curl=curl(exchange),
        details={"duration_ms": round(exchange.duration_ms or 0, 1)},
    )


def _action(action: OperatorAction, exchanges: list[WireEntry]) -> Entry:
    entry = Entry(kind="action", at=action.created_at,
                  summary=f"{action.action} by {action.operator} ({action.via}): {action.result}",
                  error_code=action.error_code,
                  details={"ok": action.ok, "operator": action.operator, "action": action.action,
                           "params": action.parameters})
    if exchanges:  # the SDK call the action made (the first), and Twilio's answer
        made = _rest(exchanges[0], "rest")
        entry.request, entry.response = made.request, made.response
        entry.sdk_code, entry.curl = made.sdk_code, made.curl
        entry.error_code = entry.error_code or made.error_code
        entry.details["exchanges"] = [_rest(e, "rest").to_dict() for e in exchanges]
    return entry


def _debugger(event: DebuggerEvent) -> Entry:
    details = event.details
    more = details.get("more_info") if isinstance(details.get("more_info"), dict) else {}
    message = more.get("msg") or more.get("Msg") or ""
    summary = f"Debugger {event.level.lower()}" + (f" {event.error_code}" if event.error_code else "")
    if message:
        summary += f": {message}"
    # Ordered by when it reached us: Twilio's Timestamp comes from another clock.
    return Entry(kind="debugger", at=event.received_at, summary=summary,
                 error_code=event.error_code, response={"payload": details},
                 details={"level": event.level, "sid": event.sid,
                          "twilio_timestamp": isoformat(event.timestamp)})


_OK_WEBHOOK = re.compile(r"→ 2\d\d$")


def _heard(folded, webhooks: bool = True) -> list[Entry]:
    """The caller's side. Status lines and webhooks that worked are left out: the wire log
    has them from our side. With Twilio's Call Events at hand, so are the webhooks that
    failed: the events have them, with the request and the answer. The transcript's times
    are whole seconds, so a line goes after what we recorded within its second (the webhook
    that caused it comes first)."""
    heard = []
    for item in folded:
        first = item.first if isinstance(item, transcript_module.Fold) else item
        at = _rfc2822(first.get("at"))
        kind = first.get("kind")
        if at is None or kind == "status" or (kind == "webhook" and (
                not webhooks or _OK_WEBHOOK.search(first.get("text", "")))):
            continue
        at = at.replace(microsecond=999_999)
        if isinstance(item, transcript_module.Fold):
            summary = f"Caller heard: {item.label}, {item.laps} laps, {round(item.seconds)} s"
        else:
            summary = f"Caller heard: {first.get('kind', '')} {first.get('text', '')}".rstrip()
        heard.append(Entry(kind="transcript", at=at, summary=summary,
                           error_code=first.get("code") if isinstance(first.get("code"), int)
                           else None))
    return heard


def _twilio_saw(ours: list[Entry], events) -> list[Entry]:
    """Twilio's Call Events beside our own record. Each request Twilio made or answered that
    we have (same method, path and parameters; the first not yet matched) gets Twilio's side:
    the answer code and the time Twilio measured. Each webhook we never logged (a URL that is
    not ours, an attempt refused or lost on the way) becomes an entry of its own, between the
    steps Twilio made before and after it (Twilio's clock is another clock). A 2xx answer from
    our own origin that is not logged yet is on its way from another worker's queue, so it
    waits; so does a REST request, which only this app makes."""
    waiting: dict[tuple, deque[Entry]] = {}  # our requests by key, oldest first
    origins = {_origin(current_app.config["PUBLIC_URL"])}
    for entry in ours:
        if entry.request and "method" in entry.request:
            key = _key(entry.request["method"], entry.request["url"], entry.request.get("params"))
            waiting.setdefault(key, deque()).append(entry)
            origins.add(_origin(entry.request["url"]))
    matched: list[Entry | None] = []
    for event in events:
        request = event.get("request") or {}
        same = waiting.get(_key(request.get("method"), request.get("url"),
                                request.get("parameters")))
        matched.append(same.popleft() if same else None)
        if matched[-1] is not None:
            matched[-1].twilio = _answer(event)
    next_at: list[datetime | None] = []  # the next matched step's time, for each event
    for match in reversed(matched):
        next_at.append(match.at if match is not None else (next_at[-1] if next_at else None))
    next_at.reverse()
    unmatched, previous_at = [], None
    for index, event in enumerate(events):
        if matched[index] is not None:
            previous_at = matched[index].at
            continue
        request, saw = event.get("request") or {}, _answer(event)
        url, method = str(request.get("url") or ""), str(request.get("method") or "")
        code = saw["response_code"]
        if "/2010-04-01/Accounts/" in urlsplit(url).path or (
                _origin(url) in origins and code is not None and 200 <= code < 300):
            continue
        at = _rfc2822(saw["date_created"]) or datetime.min
        if previous_at is not None:
            at = max(at, previous_at + timedelta(microseconds=1))
        if next_at[index] is not None:
            at = min(at, next_at[index] - timedelta(microseconds=len(events) - index))
        previous_at = at
        params = request.get("parameters") if isinstance(request.get("parameters"), dict) else {}
        callback = "CallbackSource" in params or "RecordingStatus" in params
        unmatched.append(Entry(
            kind="status_callback" if callback else "webhook", at=at,
            summary=f"Twilio requested {method} {url} → {code or 'no answer'}"
                    " (in Twilio's Call Events, not in our log)",
            request={"method": method, "url": url, "params": params},
            response={"status": code, "body": (event.get("response") or {}).get("response_body")},
            details={"source": "twilio_events"},
            twilio=saw))
    return unmatched


def _answer(event: dict) -> dict:
    """What Twilio got for one of its Call Events: the answer's code, time and date."""
    response = event.get("response") or {}
    code = response.get("response_code")
    return {"response_code": code if isinstance(code, int) else None,
            "request_duration": response.get("request_duration"),
            "date_created": response.get("date_created")}


def _key(method, url, params) -> tuple:
    """What identifies a request on both sides: method, path and parameters, named as Call
    Events name them (a REST request's in snake_case, a repeated one's values joined)."""
    path = urlsplit(str(url or "")).path
    rest = "/2010-04-01/Accounts/" in path
    flat = {(_snake(name) if rest else name): " ".join(value) if isinstance(value, list)
            else str(value) for name, value in (params or {}).items()}
    return str(method or ""), path, tuple(sorted(flat.items()))


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url or "")
    return parts.scheme, parts.netloc


def _fold_repeats(entries: list[Entry]) -> list[Entry]:
    """Identical steps in a row (each lap of the hold loop: the same request, the same answer)
    become one entry with a count."""
    folded: list[Entry] = []
    for entry in entries:
        last = folded[-1] if folded else None
        if last is not None and last.kind == entry.kind and last.summary == entry.summary \
                and entry.kind in ("webhook", "transcript") and not entry.failed:
            last.repeats += 1
            continue
        folded.append(entry)
    return folded


# -------------------------------------------------------------- the SDK call and curl

def sdk_code(exchange: WireEntry) -> str | None:
    """The Python SDK call that makes this REST request, e.g.
    client.calls("CA…").update(twiml="<Response>…</Response>")."""
    path = urlsplit(exchange.url).path
    call = wire_log.call_sid_in(path)
    args = ", ".join(f"{_SDK_NAMES.get(name, _snake(name))}={_literal(value)}"
                     for name, value in exchange.parameters.items())
    if call and exchange.method == "POST":
        return f'client.calls("{call}").update({args})'
    if call and exchange.method == "GET":
        return f'client.calls("{call}").fetch()'
    if call and exchange.method == "DELETE":
        return f'client.calls("{call}").delete()'
    if path.endswith("/Calls.json") and exchange.method == "POST":
        return f"client.calls.create({args})"
    if path.endswith("/Calls.json") and exchange.method == "GET":
        return "client.calls.list()"
    return None


def curl(exchange: WireEntry) -> str:
    """The same request as a curl command, credentials from the environment (never the token
    itself): "$TWILIO_ACCOUNT_SID:$TWILIO_AUTH_TOKEN"."""
    url = _ACCOUNT_IN_PATH.sub("/Accounts/$TWILIO_ACCOUNT_SID/", exchange.url)
    lines = [f'curl -X {exchange.method} "{url}"']
    for name, value in exchange.parameters.items():
        for one in value if isinstance(value, list) else [value]:
            lines.append(f"--data-urlencode {shlex.quote(f'{name}={one}')}")
    lines.append('-u "$TWILIO_ACCOUNT_SID:$TWILIO_AUTH_TOKEN"')
    return " \\\n  ".join(lines)


def _signed_curl(exchange: WireEntry, auth_token: str) -> str:
    """The webhook as a curl command, with a fresh valid X-Twilio-Signature for its URL, to
    replay it against the app from a terminal."""
    params = exchange.parameters if exchange.method == "POST" else {}
    flat = {k: v for k, v in params.items() if not isinstance(v, list)}
    signature = RequestValidator(auth_token).compute_signature(exchange.url, flat)
    lines = [f"curl -X {exchange.method} {shlex.quote(exchange.url)}",
             f"-H {shlex.quote('X-Twilio-Signature: ' + signature)}"]
    lines.extend(f"--data-urlencode {shlex.quote(f'{k}={v}')}" for k, v in flat.items())
    return " \\\n  ".join(lines)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _literal(value) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(json.dumps(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _short_path(url: str) -> str:
    path = urlsplit(url).path
    return _ACCOUNT_IN_PATH.sub("/Accounts/AC…/", path)


def _json_or_text(body: str | None):
    try:
        return json.loads(body) if body else None
    except ValueError:
        return body


def _rfc2822(raw) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed
