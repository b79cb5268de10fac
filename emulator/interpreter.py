"""TwiML parsed into verbs and run, writing the caller's-eye transcript.

A call's program is a generator. It yields what it waits for — ("sleep", seconds),
("gather", timeout), ("dial", spec) or ("wait",) — and the engine resumes it when that happens.
A REST redirect or a hang-up is thrown into it as `Interrupt`, so an interrupted <Dial> or
<Enqueue> can request its action URL first, as Twilio does (reference §13).
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Generator
from typing import Any
from urllib.parse import urljoin, urlsplit

from .engine import Call, Engine, new_sid

log = logging.getLogger(__name__)

#: Twilio's limit on one TwiML document fetched from a URL (error 11750).
MAX_TWIML_BYTES = 64 * 1024
#: What Twilio says when it cannot get usable TwiML and there is no fallback.
APPLICATION_ERROR = "We are sorry, an application error has occurred. Goodbye."
TWIML_TYPES = ("text/xml", "application/xml", "text/html")

Program = Generator[tuple, Any, None]


class Interrupt(Exception):
    """Thrown into a running program: `kind` is "redirect" or "hangup"."""

    def __init__(self, kind: str):
        super().__init__(kind)
        self.kind = kind


class TwimlError(Exception):
    """A TwiML document Twilio would refuse, with Twilio's error code."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def parse_twiml(text: str | bytes) -> ET.Element:
    """Parse a TwiML document; raise TwimlError 12100 (not XML) or 12102 (root is not <Response>)."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise TwimlError(12100, f"Document parse failure: {exc}") from None
    if root.tag != "Response":
        raise TwimlError(12102, f"Invalid root element <{root.tag}>: the root element must be <Response>")
    return root


# --------------------------------------------------------------------------- driving


def start_program(engine: Engine, call: Call, source: tuple) -> None:
    """Start running TwiML from `source` ("url", url, method, extra) or ("twiml", text)."""
    call.program = _run(engine, call, source)
    drive(engine, call, None)


def drive(engine: Engine, call: Call, value: Any, throw: BaseException | None = None) -> None:
    """Step the call's program once and arrange for whatever it now waits on."""
    gen = call.program
    if gen is None:
        return
    call.waiting_for = None
    try:
        call.running = True
        cmd = gen.throw(throw) if throw is not None else gen.send(value)
    except (StopIteration, Interrupt):
        if call.program is gen:
            call.program = None
        return
    except Exception:
        log.exception("TwiML program crashed")
        if call.program is gen:
            call.program = None
        engine.note(call, "error", "Emulator error while running TwiML", code=12400)
        engine.hang_up(call)
        return
    finally:
        call.running = False
    with engine.lock:
        call.wait_token += 1
        token = call.wait_token
        call.waiting_for = cmd[0]
    if cmd[0] == "sleep":
        engine.schedule(cmd[1], lambda: engine.resume(call, token, None))
    elif cmd[0] == "gather":
        if call.live_digits:
            engine.schedule(0, lambda: engine.resume(call, token, ("digits", None)))
        else:
            engine.schedule(cmd[1], lambda: engine.resume(call, token, ("timeout", None)))
    elif cmd[0] == "dial":
        spec = cmd[1]
        engine.create_child(call, spec["to"], spec["from"], spec["noun"], spec["timeout"], token)
    # ("wait",): nothing to schedule; only a redirect or hang-up moves on.


def _interrupt(engine: Engine, call: Call, kind: str) -> None:
    gen = call.program
    if gen is None or getattr(call, "running", False):
        return  # a running program notices `call.ended` itself
    with engine.lock:
        call.wait_token += 1
    try:
        gen.throw(Interrupt(kind))
    except (StopIteration, Interrupt):
        pass
    except Exception:
        log.exception("TwiML program crashed while interrupted")
    finally:
        if call.program is gen:
            call.program = None
        gen.close()


def redirect_program(engine: Engine, call: Call, source: tuple) -> None:
    """REST `Url`/`Twiml`: interrupt what runs (firing Dial/Enqueue actions), then run `source`."""
    _interrupt(engine, call, "redirect")
    if not call.ended:
        what = source[1] if source[0] == "url" else "inline TwiML"
        engine.note(call, "redirect", f"Call redirected to {what}")
        start_program(engine, call, source)


def stop_program(engine: Engine, call: Call) -> None:
    """The call ended: stop its program (an <Enqueue> still reports QueueResult=hangup)."""
    _interrupt(engine, call, "hangup")


# --------------------------------------------------------------------------- fetching TwiML


def _fetch(engine: Engine, call: Call, url: str, method: str, extra: list) -> tuple[ET.Element | None, int, str]:
    """Fetch and parse TwiML; returns (root, 0, "") or (None, error code, message)."""
    params = call.webhook_params() + list(extra)
    resp = engine.webhooks.request(url, method, params)
    engine.note(call, "webhook", f"{method} {resp.url} → {resp.status or resp.error}", url=resp.url, method=method)
    if not resp.ok:
        return None, 11200, f"HTTP retrieval failure: {resp.error or 'HTTP ' + str(resp.status)} from {url}"
    if len(resp.body) > MAX_TWIML_BYTES:
        return None, 11750, "TwiML response body too large"
    ctype = resp.content_type.split(";")[0].strip().lower()
    body = resp.body
    if ctype == "text/plain":
        root = ET.Element("Response")
        ET.SubElement(root, "Say").text = body.decode("utf-8", "replace")
        ET.SubElement(root, "Hangup")
        return root, 0, ""
    if ctype.startswith("audio/"):
        root = ET.Element("Response")
        ET.SubElement(root, "Play").text = url
        ET.SubElement(root, "Hangup")
        return root, 0, ""
    if ctype not in TWIML_TYPES:
        return None, 12300, f"Invalid Content-Type: {resp.content_type or '(none)'}"
    try:
        return parse_twiml(body), 0, ""
    except TwimlError as exc:
        return None, exc.code, exc.message


def _load(engine: Engine, call: Call, source: tuple) -> tuple[ET.Element | None, str | None]:
    """The TwiML to run next and its base URL; on failure the FallbackUrl, or the stock error."""
    if source[0] == "twiml":
        try:
            return parse_twiml(source[1]), None
        except TwimlError as exc:
            code, message, failed_url = exc.code, exc.message, None
    else:
        _, url, method, extra = source
        root, code, message = _fetch(engine, call, url, method, extra)
        if root is not None:
            return root, url
        failed_url = url
    engine.note(call, "error", f"Error {code}: {message}", code=code)
    if call.fallback_url and failed_url != call.fallback_url:
        extra = [("ErrorCode", str(code)), ("ErrorUrl", failed_url or "")]
        root, code, message = _fetch(engine, call, call.fallback_url, call.fallback_method, extra)
        if root is not None:
            return root, call.fallback_url
        engine.note(call, "error", f"Error {code}: {message}", code=code)
    return None, None


def _application_error(engine: Engine, call: Call) -> Program:
    if call.direction == "inbound":
        engine.answer_inbound(call)
    engine.note(call, "say", APPLICATION_ERROR, voice="woman", language="en-US")
    yield ("sleep", engine.settings.scaled(engine.settings.say_seconds))
    engine.hang_up(call)


def _run(engine: Engine, call: Call, source: tuple | None) -> Program:
    while source is not None and not call.ended:
        root, base = _load(engine, call, source)
        if call.ended:
            return
        if root is None:
            yield from _application_error(engine, call)
            return
        first = root[0].tag if len(root) else None
        if call.direction == "inbound" and first != "Reject":
            engine.answer_inbound(call)
        source = yield from _execute(engine, call, root, base)
    if not call.ended:
        engine.note(call, "hangup", "No more TwiML: Twilio hung up")
        engine.hang_up(call)


# --------------------------------------------------------------------------- verbs


def _attr_int(el: ET.Element, name: str, default: int) -> int:
    try:
        return int(el.get(name, default))
    except (TypeError, ValueError):
        return default


def _resolve(engine: Engine, call: Call, url: str | None, base: str | None) -> str | None:
    """Make an action/Redirect URL absolute; inline TwiML has no base (error 15004)."""
    url = (url or "").strip()
    if not url:
        return base
    if urlsplit(url).scheme in ("http", "https"):
        return url
    if base is None:
        engine.note(call, "error", f"Error 15004: relative URL {url!r} in TwiML that has no base URL", code=15004)
        return None
    return urljoin(base, url)


def _execute(engine: Engine, call: Call, root: ET.Element, base: str | None) -> Generator[tuple, Any, tuple | None]:
    """Run the verbs of one document; return where to go next (or None when they run out)."""
    for verb in list(root):
        if call.ended:
            return None
        handler = VERBS.get(verb.tag)
        if handler is None:
            engine.note(call, "warning", f"Warning 12200: <{verb.tag}> is not a verb the emulator runs; skipped", code=12200)
            continue
        nxt = yield from handler(engine, call, verb, base)
        if nxt == "stop":
            return None
        if nxt is not None:
            return nxt
    return None


def _say(engine: Engine, call: Call, el: ET.Element, base: str | None) -> Program:
    text = "".join(el.itertext()).strip()
    voice = el.get("voice", "man")
    language = el.get("language", "en-US")
    loop = _attr_int(el, "loop", 1)
    times = "repeating" if loop == 0 else loop
    engine.note(call, "say", text, voice=voice, language=language, loop=times)
    if loop == 0:
        yield ("wait",)
    yield ("sleep", engine.settings.scaled(engine.settings.say_seconds * max(loop, 1)))


def _play(engine: Engine, call: Call, el: ET.Element, base: str | None) -> Program:
    digits = el.get("digits")
    if digits:
        engine.note(call, "play", f"Tones {digits}", digits=digits)
        yield ("sleep", engine.settings.scaled(0.5 * len(digits)))
        return
    url = (el.text or "").strip()
    if base and url:
        url = urljoin(base, url)
    loop = _attr_int(el, "loop", 1)
    times = "repeating" if loop == 0 else loop
    engine.note(call, "play", f"Audio {url}", url=url, loop=times)
    if loop == 0:
        yield ("wait",)
    yield ("sleep", engine.settings.scaled(engine.settings.play_seconds * max(loop, 1)))


def _pause(engine: Engine, call: Call, el: ET.Element, base: str | None) -> Program:
    length = _attr_int(el, "length", 1)
    engine.note(call, "pause", f"Silence for {length} s", length=length)
    yield ("sleep", engine.settings.scaled(length))


def _take_digits(keys: str, num_digits: int | None, finish_on_key: str) -> tuple[str, str | None, bool]:
    """Digits a Gather collects from `keys`: (digits, finishing key, complete?)."""
    for i, key in enumerate(keys):
        if finish_on_key and key == finish_on_key:
            return keys[:i], key, True
        if num_digits and i + 1 >= num_digits:
            return keys[: i + 1], None, True
    return keys, None, False


def _gather(engine: Engine, call: Call, el: ET.Element, base: str | None) -> Program:
    timeout = _attr_int(el, "timeout", 5)
    num_digits = _attr_int(el, "numDigits", 0) or None
    finish_on_key = el.get("finishOnKey", "#")
    inputs = el.get("input", "dtmf")
    for child in list(el):
        handler = VERBS.get(child.tag) if child.tag in ("Say", "Play", "Pause") else None
        if handler is None:
            engine.note(call, "warning", f"Warning 12200: <{child.tag}> is not allowed in <Gather>", code=12200)
            continue
        yield from handler(engine, call, child, base)
        if call.ended:
            return "stop"
    engine.note(call, "gather", f"Waiting for input ({inputs}, timeout {timeout} s)", input=inputs)
    keys = ""
    if call.digit_groups:
        keys = call.digit_groups.pop(0)
        if keys:
            engine.note(call, "digits", f"Caller pressed {keys}", digits=keys)
    keys += call.live_digits
    call.live_digits = ""
    digits, finished_on, complete = _take_digits(keys, num_digits, finish_on_key)
    while not complete and "dtmf" in inputs:
        got = yield ("gather", engine.settings.scaled(timeout))
        if got[0] == "timeout":
            break
        keys += call.live_digits
        call.live_digits = ""
        digits, finished_on, complete = _take_digits(keys, num_digits, finish_on_key)
    if "speech" in inputs and not digits:
        engine.note(call, "gather", "The simulated caller says nothing (speech is not emulated)")
    action = _resolve(engine, call, el.get("action"), base)
    method = el.get("method", "POST").upper()
    if digits or el.get("actionOnEmptyResult") == "true":
        if digits:
            engine.note(call, "gather", f"Gathered digits {digits}", digits=digits)
        if action is None:
            return "stop" if el.get("action") else None
        extra = [("Digits", digits)]
        if finished_on:
            extra.append(("FinishedOnKey", finished_on))
        return ("url", action, method, extra)
    engine.note(call, "gather", "No input; Gather timed out")
    return None


def _redirect(engine: Engine, call: Call, el: ET.Element, base: str | None) -> Program:
    url = _resolve(engine, call, (el.text or "").strip() or None, base)
    if url is None:
        engine.hang_up(call)
        return "stop"
    engine.note(call, "redirect", f"Redirect to {url}", url=url)
    return ("url", url, el.get("method", "POST").upper(), [])
    yield  # pragma: no cover - makes this a generator


def _hangup(engine: Engine, call: Call, el: ET.Element, base: str | None) -> Program:
    engine.note(call, "hangup", "Twilio hung up (<Hangup>)")
    engine.hang_up(call)
    return "stop"
    yield  # pragma: no cover


def _reject(engine: Engine, call: Call, el: ET.Element, base: str | None) -> Program:
    reason = el.get("reason", "rejected")
    if call.answered:
        engine.note(call, "warning", "<Reject> after the call was answered acts as <Hangup>")
        engine.hang_up(call)
        return "stop"
    engine.note(call, "reject", f"Call rejected ({reason}): the caller hears a {'busy tone' if reason == 'busy' else 'not-in-service message'}", reason=reason)
    engine.finish(call, "busy" if reason == "busy" else "no-answer", reason=f"rejected: {reason}")
    return "stop"
    yield  # pragma: no cover


def _dial_target(noun: ET.Element) -> str:
    text = "".join(noun.itertext()).strip()
    if noun.tag == "Client":
        identity = noun.findtext("Identity") or text
        return f"client:{identity.strip()}"
    return text


def _dial(engine: Engine, call: Call, el: ET.Element, base: str | None) -> Program:
    action = _resolve(engine, call, el.get("action"), base) if el.get("action") else None
    method = el.get("method", "POST").upper()
    timeout = _attr_int(el, "timeout", 30)
    time_limit = _attr_int(el, "timeLimit", 14400)
    caller_id = el.get("callerId") or call.from_
    nouns = list(el)
    room = next((n for n in nouns if n.tag in ("Conference", "Queue")), None)
    if room is not None:
        return (yield from _wait_in_room(engine, call, room, action, method))
    targets = [n for n in nouns if n.tag in ("Number", "Client", "Sip")]
    if targets:
        noun = targets[0]
        if len(targets) > 1:
            engine.note(call, "warning", "Only the first noun of a multi-target <Dial> is dialed by the emulator")
    else:
        noun = el
    to = _dial_target(noun) if noun is not el else (el.text or "").strip()
    spec_noun = {
        "events": tuple((noun.get("statusCallbackEvent") or "").replace(",", " ").split()),
        "status_callback": _resolve(engine, call, noun.get("statusCallback"), base) if noun.get("statusCallback") else None,
        "status_callback_method": noun.get("statusCallbackMethod", "POST").upper(),
        "talk_limit": float(time_limit),
    }
    engine.note(call, "dial", f"Dialing {to}", target=to, timeout=timeout)
    try:
        result = yield ("dial", {"to": to, "from": caller_id, "noun": spec_noun, "timeout": timeout})
    except Interrupt as exc:
        child = engine.get(call.children[-1]) if call.children else None
        if child is not None and not child.ended:
            engine.finish(child, "completed" if child.answered else "canceled", reason="the Dial was interrupted")
        if action and exc.kind == "redirect":
            params = _dial_params(child, "completed")
            engine.note(call, "dial", "Interrupted <Dial>: requesting its action (answer ignored)")
            _fetch(engine, call, action, method, params)
        raise
    child = result[1]
    status = child.status
    engine.note(call, "dial", f"Dial ended: {status}", dial_status=status, call_sid=child.sid)
    if action:
        return ("url", action, method, _dial_params(child, status))
    return None


def _dial_params(child: Call | None, status: str) -> list[tuple[str, str]]:
    params = [("DialCallStatus", status)]
    if child is not None:
        params.append(("DialCallSid", child.sid))
        params.append(("DialBridged", "true" if child.answered else "false"))
        if child.answered:
            params.append(("DialCallDuration", str(child.duration())))
    return params


def _wait_in_room(engine: Engine, call: Call, room: ET.Element, action: str | None, method: str) -> Program:
    name = "".join(room.itertext()).strip()
    kind = "conference" if room.tag == "Conference" else "queue"
    engine.note(call, kind, f"Caller joins {kind} {name!r} and waits", name=name)
    started = engine.clock.now()
    try:
        yield ("wait",)
    except Interrupt:
        if action:
            params = [("DialCallStatus", "completed"), ("DialCallDuration", str(int(engine.clock.now() - started)))]
            _fetch(engine, call, action, method, params)
        raise
    return None


def _enqueue(engine: Engine, call: Call, el: ET.Element, base: str | None) -> Program:
    name = (el.text or "").strip()
    action = _resolve(engine, call, el.get("action"), base) if el.get("action") else None
    method = el.get("method", "POST").upper()
    queue_sid = "QU" + new_sid("")[:32]
    engine.note(call, "queue", f"Caller waits in queue {name!r}", queue=name)
    started = engine.clock.now()
    try:
        yield ("wait",)
    except Interrupt as exc:
        result = "redirected" if exc.kind == "redirect" else "hangup"
        engine.note(call, "queue", f"Left queue {name!r}: {result}", queue_result=result)
        if action:
            params = [("QueueResult", result), ("QueueSid", queue_sid), ("QueueTime", str(int(engine.clock.now() - started)))]
            _fetch(engine, call, action, method, params)
        raise
    return None


def _record(engine: Engine, call: Call, el: ET.Element, base: str | None) -> Program:
    s = engine.settings
    max_length = _attr_int(el, "maxLength", 3600)
    silence = _attr_int(el, "timeout", 5)
    finish_keys = el.get("finishOnKey", "1234567890*#")
    if el.get("playBeep", "true") != "false":
        engine.note(call, "play", "Beep")
    engine.note(call, "record", "Recording the caller")
    spoken = min(s.record_seconds, max_length)
    yield ("sleep", s.scaled(spoken))
    finished_with = ""
    pressed = call.live_digits
    call.live_digits = ""
    hit = next((k for k in pressed if k in finish_keys), None)
    if hit:
        finished_with = hit
    elif spoken < max_length:
        yield ("sleep", s.scaled(silence))
    recording_sid = new_sid("RE")
    url = f"{s.public_url.rstrip('/')}/2010-04-01/Accounts/{call.account_sid}/Recordings/{recording_sid}"
    engine.note(call, "record", f"Recorded {int(spoken)} s", recording_url=url, duration=int(spoken))
    action = _resolve(engine, call, el.get("action"), base)
    if action is None:
        return "stop" if el.get("action") else None
    extra = [("RecordingUrl", url), ("RecordingSid", recording_sid), ("RecordingDuration", str(int(spoken)))]
    if finished_with:
        extra.append(("Digits", finished_with))
    return ("url", action, el.get("method", "POST").upper(), extra)


def _top_level_room(engine: Engine, call: Call, el: ET.Element, base: str | None) -> Program:
    return (yield from _wait_in_room(engine, call, el, None, "POST"))


VERBS = {
    "Say": _say,
    "Play": _play,
    "Pause": _pause,
    "Gather": _gather,
    "Redirect": _redirect,
    "Hangup": _hangup,
    "Reject": _reject,
    "Dial": _dial,
    "Enqueue": _enqueue,
    "Record": _record,
    "Conference": _top_level_room,
}
