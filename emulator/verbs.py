"""TwiML parsed once into typed verbs (after sprucehealth/twimulator's `twiml/ast.go`).

`parse()` turns a document into a `Document` of frozen verb objects. Attribute values Twilio
would warn about (a non-integer `<Pause length>`, a `<Dial timeout>` past its bound, …) are
replaced by Twilio's default or clamped to the bound, and the warning, with Twilio's code, rides
on the verb so the runner notes it when the verb runs.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from . import limits

#: A warning Twilio logs for an attribute: (code, message); code 0 when Twilio documents none.
AttrWarning = tuple[int, str]


class TwimlError(Exception):
    """A TwiML document Twilio would refuse, with Twilio's error code."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Say:
    """<Say>: `text` read `loop` times (0: until the call moves on)."""

    text: str
    voice: str = "man"
    language: str = "en-US"
    loop: int = 1
    warnings: tuple[AttrWarning, ...] = ()


@dataclass(frozen=True)
class Play:
    """<Play>: audio at `url` `loop` times, or DTMF `digits`."""

    url: str = ""
    loop: int = 1
    digits: str = ""
    warnings: tuple[AttrWarning, ...] = ()


@dataclass(frozen=True)
class Pause:
    """<Pause>: `length` seconds of silence."""

    length: int = 1
    warnings: tuple[AttrWarning, ...] = ()


@dataclass(frozen=True)
class Gather:
    """<Gather>: its `prompts`, then keys until `timeout`, `numDigits` or `finishOnKey`."""

    action: str | None = None
    method: str = "POST"
    timeout: int = limits.GATHER_DEFAULT_TIMEOUT
    num_digits: int | None = None
    finish_on_key: str = "#"
    input: str = "dtmf"
    action_on_empty_result: bool = False
    prompts: tuple[Say | Play | Pause, ...] = ()
    warnings: tuple[AttrWarning, ...] = ()


@dataclass(frozen=True)
class Redirect:
    """<Redirect>: go on with the TwiML at `url`."""

    url: str | None = None
    method: str = "POST"
    warnings: tuple[AttrWarning, ...] = ()


@dataclass(frozen=True)
class Hangup:
    """<Hangup>."""

    warnings: tuple[AttrWarning, ...] = ()


@dataclass(frozen=True)
class Reject:
    """<Reject>: leave an inbound call unanswered (`busy` or `rejected`)."""

    reason: str = "rejected"
    warnings: tuple[AttrWarning, ...] = ()


@dataclass(frozen=True)
class Leg:
    """What a <Dial> dials: a <Number>, <Client>, <Sip>, or the bare text of <Dial>."""

    to: str
    status_callback: str | None = None
    status_callback_method: str = "POST"
    events: tuple[str, ...] = ()


@dataclass(frozen=True)
class Room:
    """A <Conference> or <Queue> the caller waits in."""

    kind: str  # "conference" or "queue"
    name: str


@dataclass(frozen=True)
class Dial:
    """<Dial>: its `legs` (rung at once), or a `room` to wait in."""

    action: str | None = None
    method: str = "POST"
    timeout: int = limits.DIAL_DEFAULT_TIMEOUT
    time_limit: int = limits.DEFAULT_TIME_LIMIT
    caller_id: str | None = None
    legs: tuple[Leg, ...] = ()
    room: Room | None = None
    warnings: tuple[AttrWarning, ...] = ()


@dataclass(frozen=True)
class Enqueue:
    """<Enqueue>: wait in queue `name` until redirected or hung up."""

    name: str
    action: str | None = None
    method: str = "POST"
    warnings: tuple[AttrWarning, ...] = ()


@dataclass(frozen=True)
class Record:
    """<Record>: the caller speaks, then silence or a key ends it."""

    action: str | None = None
    method: str = "POST"
    max_length: int = limits.RECORD_DEFAULT_MAX_LENGTH
    timeout: int = limits.RECORD_DEFAULT_TIMEOUT
    finish_on_key: str = "1234567890*#"
    play_beep: bool = True
    recording_status_callback: str | None = None
    recording_status_callback_method: str = "POST"
    recording_status_callback_events: tuple[str, ...] = ("completed",)
    warnings: tuple[AttrWarning, ...] = ()


@dataclass(frozen=True)
class Unknown:
    """A verb the emulator does not run (warning 12200 when reached)."""

    tag: str
    warnings: tuple[AttrWarning, ...] = ()


Verb = Say | Play | Pause | Gather | Redirect | Hangup | Reject | Dial | Enqueue | Record | Room | Unknown


@dataclass(frozen=True)
class Document:
    """A parsed TwiML document: its verbs, in order."""

    verbs: tuple[Verb, ...] = field(default_factory=tuple)


# --------------------------------------------------------------------------- attributes


class _Attrs:
    """Reads one element's attributes, collecting Twilio's warnings for bad values."""

    def __init__(self, el: ET.Element):
        self.el = el
        self.warnings: list[AttrWarning] = []

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self.el.get(name)
        return default if value is None else value

    def method(self, name: str = "method", code: int = 0, verb: str = "") -> str:
        value = (self.el.get(name) or "POST").upper()
        if value not in ("GET", "POST"):
            if code:
                self.warnings.append((code, f"{verb}: Invalid method value {value!r}; POST is used"))
            return "POST"
        return value

    def integer(self, name: str, default: int, low: int, high: int, code: int, label: str) -> int:
        """A whole number in [low, high]: Twilio's default when invalid, the bound when past it."""
        raw = self.el.get(name)
        if raw is None:
            return default
        try:
            value = int(raw.strip())
        except ValueError:
            self.warnings.append((code, f"{label}: Invalid {name} value {raw!r}; using the default {default}"))
            return default
        if value < low:
            self.warnings.append((code, f"{label}: Invalid {name} value {value}; using the default {default}"))
            return default
        if value > high:
            self.warnings.append((code, f"{label}: {name} {value} is past the limit; using {high}"))
            return high
        return value


def _text(el: ET.Element) -> str:
    return "".join(el.itertext()).strip()


# --------------------------------------------------------------------------- verbs

MAX = limits.MAX_CALL_SECONDS


def _say(el: ET.Element, code: int = 13510, label: str = "Say") -> Say:
    a = _Attrs(el)
    loop = a.integer("loop", 1, 0, MAX, code, label)
    return Say(_text(el), a.text("voice", "man") or "man", a.text("language", "en-US") or "en-US", loop, tuple(a.warnings))


def _play(el: ET.Element, code: int = 13410, label: str = "Play") -> Play:
    a = _Attrs(el)
    loop = a.integer("loop", 1, 0, MAX, code, label)
    return Play((el.text or "").strip(), loop, el.get("digits") or "", tuple(a.warnings))


def _pause(el: ET.Element) -> Pause:
    a = _Attrs(el)
    return Pause(a.integer("length", 1, 1, MAX, 13910, "Pause"), tuple(a.warnings))


def _gather(el: ET.Element) -> Gather:
    a = _Attrs(el)
    prompts: list[Say | Play | Pause] = []
    for child in el:
        if child.tag == "Say":
            prompts.append(_say(child, 13322, "Gather->Say"))
        elif child.tag == "Play":
            prompts.append(_play(child))
        elif child.tag == "Pause":
            prompts.append(_pause(child))
        else:
            a.warnings.append((12200, f"<{child.tag}> is not allowed in <Gather>"))
    num_digits = a.integer("numDigits", 0, 1, 10_000, 0, "Gather") or None
    return Gather(
        action=a.text("action"),
        method=a.method(),
        timeout=a.integer("timeout", limits.GATHER_DEFAULT_TIMEOUT, 1, MAX, 13313, "Gather"),
        num_digits=num_digits,
        finish_on_key=a.text("finishOnKey", "#") or "",
        input=a.text("input", "dtmf") or "dtmf",
        action_on_empty_result=el.get("actionOnEmptyResult") == "true",
        prompts=tuple(prompts),
        warnings=tuple(a.warnings),
    )


def _redirect(el: ET.Element) -> Redirect:
    a = _Attrs(el)
    return Redirect((el.text or "").strip() or None, a.method(code=13710, verb="Redirect"), tuple(a.warnings))


def _leg(noun: ET.Element) -> Leg:
    text = _text(noun)
    if noun.tag == "Client":
        identity = noun.findtext("Identity") or text
        to = f"client:{identity.strip()}"
    else:
        to = text
    events = tuple((noun.get("statusCallbackEvent") or "").replace(",", " ").split())
    method = (noun.get("statusCallbackMethod") or "POST").upper()
    return Leg(to, noun.get("statusCallback") or None, method if method in ("GET", "POST") else "POST", events)


def _dial(el: ET.Element) -> Dial:
    a = _Attrs(el)
    timeout = a.integer("timeout", limits.DIAL_DEFAULT_TIMEOUT, 1, limits.MAX_TIMEOUT, 13212, "Dial")
    time_limit = a.integer("timeLimit", limits.DEFAULT_TIME_LIMIT, 1, MAX, 13216, "Dial")
    nouns = list(el)
    room = next((Room("conference" if n.tag == "Conference" else "queue", _text(n)) for n in nouns if n.tag in ("Conference", "Queue")), None)
    targets = [n for n in nouns if n.tag in ("Number", "Client", "Sip")]
    legs: tuple[Leg, ...] = ()
    if room is None:
        legs = tuple(_leg(n) for n in targets) if targets else (Leg((el.text or "").strip()),)
    return Dial(a.text("action"), a.method(code=13210, verb="Dial"), timeout, time_limit, el.get("callerId") or None, legs, room, tuple(a.warnings))


def _enqueue(el: ET.Element) -> Enqueue:
    a = _Attrs(el)
    return Enqueue((el.text or "").strip(), a.text("action"), a.method(), tuple(a.warnings))


def _record(el: ET.Element) -> Record:
    a = _Attrs(el)
    return Record(
        action=a.text("action"),
        method=a.method(),
        max_length=a.integer("maxLength", limits.RECORD_DEFAULT_MAX_LENGTH, 1, MAX, 13612, "Record"),
        timeout=a.integer("timeout", limits.RECORD_DEFAULT_TIMEOUT, 1, MAX, 13611, "Record"),
        finish_on_key=a.text("finishOnKey", "1234567890*#") or "",
        play_beep=el.get("playBeep", "true") != "false",
        recording_status_callback=a.text("recordingStatusCallback") or None,
        recording_status_callback_method=a.method("recordingStatusCallbackMethod"),
        recording_status_callback_events=tuple((el.get("recordingStatusCallbackEvent") or "completed").replace(",", " ").split()),
        warnings=tuple(a.warnings),
    )


_PARSERS = {
    "Say": _say,
    "Play": _play,
    "Pause": _pause,
    "Gather": _gather,
    "Redirect": _redirect,
    "Hangup": lambda el: Hangup(),
    "Reject": lambda el: Reject(el.get("reason", "rejected")),
    "Dial": _dial,
    "Enqueue": _enqueue,
    "Record": _record,
    "Conference": lambda el: Room("conference", _text(el)),
}


def parse(text: str | bytes) -> Document:
    """Parse a TwiML document; raise TwimlError 12100 (not XML) or 12102 (root is not <Response>)."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise TwimlError(12100, f"Document parse failure: {exc}") from None
    if root.tag != "Response":
        raise TwimlError(12102, f"Invalid root element <{root.tag}>: the root element must be <Response>")
    verbs: list[Verb] = []
    for el in root:
        parser = _PARSERS.get(el.tag)
        verbs.append(parser(el) if parser else Unknown(el.tag, ((12200, f"<{el.tag}> is not a verb the emulator runs; skipped"),)))
    return Document(tuple(verbs))


def spoken(text: str) -> Document:
    """A `text/plain` answer: read aloud, then hang up."""
    return Document((Say(text), Hangup()))


def played(url: str) -> Document:
    """An `audio/*` answer: played, then hang up."""
    return Document((Play(url), Hangup()))
