"""TwiML run for one call, writing the caller's-eye transcript.

A `CallRunner` owns its call's program (a generator over typed verbs from verbs.py) and its
wake-up token. It yields typed commands — `Sleep`, `AwaitInput`, `Fetch`, `DialLegs`, `Park`,
`End` — and the engine decides when each happens and resumes it with the result (`resume`). A
REST redirect or the end of the call is thrown into it (`interrupt`), so an interrupted <Dial> or
<Enqueue> can request its action URL first, as Twilio does (reference §13). The runner changes
no call state itself: it asks the engine (`answer_inbound`, `take_digits`, `end_legs`, `note`).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from . import limits, verbs
from .engine import Call, Engine, RecordingOptions, Source, new_sid
from .recordings import SOURCE_RECORD_VERB
from .verbs import Document, TwimlError

#: What Twilio says when it cannot get usable TwiML and there is no fallback.
APPLICATION_ERROR = "We are sorry, an application error has occurred. Goodbye."
TWIML_TYPES = ("text/xml", "application/xml", "text/html")
#: How long the simulated caller speaks at a speech <Gather>, and how sure the recognizer is (our choices).
SPEAKING_SECONDS = 1.0
SPEECH_CONFIDENCE = "0.9"


# --------------------------------------------------------------------------- commands


@dataclass(frozen=True)
class Sleep:
    """The caller listens (or waits) this many emulated seconds."""

    seconds: float


@dataclass(frozen=True)
class AwaitInput:
    """A <Gather> waits up to `timeout` seconds for keys or words; resumed with "timeout" or what came."""

    timeout: float


@dataclass(frozen=True)
class Fetch:
    """Request TwiML (or an action URL) with the call's parameters plus `extra`; resumed with the WebhookResponse."""

    url: str
    method: str = "POST"
    extra: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class DialTarget:
    """One noun of a <Dial>: whom to ring, and where its leg's status callbacks go."""

    to: str
    status_callback: str | None
    status_callback_method: str
    events: tuple[str, ...]


@dataclass(frozen=True)
class DialLegs:
    """Ring every target at once; resumed with `DialEnded` when the connected leg ends, or when
    all legs ended unanswered."""

    targets: tuple[DialTarget, ...]
    from_: str
    timeout: int
    time_limit: int


@dataclass(frozen=True)
class Park:
    """Wait until a redirect or the end of the call (<Enqueue>, <Conference>, `loop="0"`)."""


@dataclass(frozen=True)
class End:
    """End the call: `status`, or completed/canceled depending on whether it was answered."""

    status: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class DialEnded:
    """What `DialLegs` is resumed with: the leg that ended and the <Dial>'s outcome (DialCallStatus)."""

    sid: str
    status: str


Command = Sleep | AwaitInput | Fetch | DialLegs | Park | End
Program = Generator[Command, Any, Any]


class Interrupt(Exception):
    """Thrown into a running program: `kind` is "redirect" (with its new source) or "hangup"."""

    def __init__(self, kind: str, source: Source | None = None):
        super().__init__(kind)
        self.kind = kind
        self.source = source


# --------------------------------------------------------------------------- the runner


class CallRunner:
    """One call's TwiML program and its wake-up token. Driven only from the call's lane."""

    def __init__(self, engine: Engine, call: Call, source: Source):
        self.engine = engine
        self.call = call  # read only: the engine writes it
        self.token = 0
        self.done = False
        self.waiting_for_input = False
        self._chain = 0
        self._gen = self._main(source)

    # ---- driving (the engine calls these)

    def start(self) -> Command | None:
        """Run to the first command."""
        return self._step(lambda: next(self._gen))

    def resume(self, token: int, value: Any) -> Command | None:
        """Resume with `value` if the program still waits on `token` (None otherwise)."""
        if self.done or token != self.token:
            return None
        return self._step(lambda: self._gen.send(value))

    def interrupt(self, kind: str, source: Source | None = None) -> Command | None:
        """Throw a redirect or hang-up into the program; whatever it yields next is returned."""
        if self.done:
            return None
        return self._step(lambda: self._gen.throw(Interrupt(kind, source)))

    def _step(self, step: Callable[[], Command]) -> Command | None:
        try:
            cmd = step()
        except (StopIteration, Interrupt):
            self.done = True
            return None
        except BaseException:
            self.done = True
            raise
        self.token += 1
        self.waiting_for_input = isinstance(cmd, AwaitInput)
        if not isinstance(cmd, Fetch | End):
            self._chain = 0  # the caller hears or waits: a document chain is broken
        return cmd

    # ---- helpers

    def note(self, kind: str, text: str, **details: Any) -> None:
        self.engine.note(self.call, kind, text, **details)

    def warn(self, verb: Any) -> None:
        for code, message in verb.warnings:
            if code:
                self.note("warning", f"Warning {code}: {message}", code=code)
            else:
                self.note("warning", message)

    def resolve(self, url: str | None, base: str | None) -> str | None:
        """Make an action/Redirect URL absolute; inline TwiML has no base (error 15004)."""
        url = (url or "").strip()
        if not url:
            return base
        if urlsplit(url).scheme in ("http", "https"):
            return url
        if base is None:
            self.note("error", f"Error 15004: relative URL {url!r} in TwiML that has no base URL", code=15004)
            return None
        return urljoin(base, url)

    # ---- the program

    def _main(self, source: Source) -> Program:
        """Run `source`; a redirect starts over with its new source."""
        while source is not None:
            try:
                yield from self._run(source)
                return
            except Interrupt as exc:
                if exc.kind != "redirect" or self.call.ended:
                    raise
                source = exc.source
                self.note("redirect", f"Call redirected to {source.describe()}")

    def _run(self, source: Source | None) -> Program:
        call = self.call
        while source is not None and not call.ended:
            self._chain += 1
            if self._chain > limits.MAX_DOCUMENT_CHAIN:
                self.note("error", f"Error 14106: document retrieval limit reached: {limits.MAX_DOCUMENT_CHAIN} documents in a row "
                          "without the caller hearing anything (a <Redirect> loop?)", code=14106)
                yield from self._application_error()
                return
            doc, base = yield from self._load(source)
            if call.ended:
                return
            if doc is None:
                yield from self._application_error()
                return
            first = doc.verbs[0] if doc.verbs else None
            if call.direction == "inbound" and not isinstance(first, verbs.Reject):
                self.engine.answer_inbound(call)
            source = yield from self._execute(doc, base)
        if not call.ended:
            self.note("hangup", "No more TwiML: Twilio hung up")
            yield End()

    def _fetch(self, url: str, method: str, extra: tuple = ()) -> Generator[Command, Any, tuple[Document | None, int, str]]:
        """Fetch and parse TwiML; returns (document, 0, "") or (None, error code, message)."""
        resp = yield Fetch(url, method, tuple(extra))
        self.note("webhook", f"{method} {resp.url} → {resp.status or resp.error}", url=resp.url, method=method)
        if not resp.ok:
            what = "HTTP connection failure" if resp.error_code == 11205 else "HTTP retrieval failure"
            tries = f" after {resp.attempts} attempts" if resp.attempts > 1 else ""
            return None, resp.error_code, f"{what}: {resp.error or 'HTTP ' + str(resp.status)} from {url}{tries}"
        if len(resp.body) > limits.MAX_TWIML_BYTES:
            return None, 11750, "TwiML response body too large"
        ctype = resp.content_type.split(";")[0].strip().lower()
        if ctype == "text/plain":
            return verbs.spoken(resp.body.decode("utf-8", "replace")), 0, ""
        if ctype.startswith("audio/"):
            return verbs.played(url), 0, ""
        if ctype not in TWIML_TYPES:
            return None, 12300, f"Invalid Content-Type: {resp.content_type or '(none)'}"
        try:
            return verbs.parse(resp.body), 0, ""
        except TwimlError as exc:
            return None, exc.code, exc.message

    def _load(self, source: Source) -> Generator[Command, Any, tuple[Document | None, str | None]]:
        """The TwiML to run next and its base URL; on failure the FallbackUrl's, or None."""
        call = self.call
        if source.twiml is not None:
            try:
                return verbs.parse(source.twiml), None
            except TwimlError as exc:
                code, message, failed_url = exc.code, exc.message, None
        else:
            doc, code, message = yield from self._fetch(source.url, source.method, source.extra)
            if doc is not None:
                return doc, source.url
            failed_url = source.url
        self.note("error", f"Error {code}: {message}", code=code)
        if call.fallback_url and failed_url != call.fallback_url and not call.ended:
            extra = (("ErrorCode", str(code)), ("ErrorUrl", failed_url or ""))
            doc, code, message = yield from self._fetch(call.fallback_url, call.fallback_method, extra)
            if doc is not None:
                return doc, call.fallback_url
            self.note("error", f"Error {code}: {message}", code=code)
        return None, None

    def _application_error(self) -> Program:
        if self.call.direction == "inbound":
            self.engine.answer_inbound(self.call)
        self.note("say", APPLICATION_ERROR, voice="woman", language="en-US")
        yield Sleep(self.engine.settings.say_seconds)
        yield End()

    def _execute(self, doc: Document, base: str | None) -> Generator[Command, Any, Source | None]:
        """Run the verbs of one document; return where to go next (None when they run out)."""
        for verb in doc.verbs:
            if self.call.ended:
                return None
            self.warn(verb)
            handler = _HANDLERS.get(type(verb))
            if handler is None:
                continue  # Unknown: its warning (12200) said so
            nxt = yield from handler(self, verb, base)
            if nxt is not None:
                return nxt
        return None

    # ---- verbs

    def _say(self, verb: verbs.Say, base: str | None) -> Program:
        times = "repeating" if verb.loop == 0 else verb.loop
        self.note("say", verb.text, voice=verb.voice, language=verb.language, loop=times)
        if verb.loop == 0:
            yield Park()
        yield Sleep(self.engine.settings.say_seconds * verb.loop)

    def _play(self, verb: verbs.Play, base: str | None) -> Program:
        if verb.digits:
            self.note("play", f"Tones {verb.digits}", digits=verb.digits)
            yield Sleep(0.5 * len(verb.digits))
            return
        url = urljoin(base, verb.url) if base and verb.url else verb.url
        times = "repeating" if verb.loop == 0 else verb.loop
        self.note("play", f"Audio {url}", url=url, loop=times)
        if verb.loop == 0:
            yield Park()
        yield Sleep(self.engine.settings.play_seconds * verb.loop)

    def _pause(self, verb: verbs.Pause, base: str | None) -> Program:
        self.note("pause", f"Silence for {verb.length} s", length=verb.length)
        yield Sleep(verb.length)

    def _gather(self, verb: verbs.Gather, base: str | None) -> Generator[Command, Any, Source | None]:
        call = self.call
        for prompt in verb.prompts:
            self.warn(prompt)
            yield from _HANDLERS[type(prompt)](self, prompt, base)
            if call.ended:
                return None
        self.note("gather", f"Waiting for input ({verb.input}, timeout {verb.timeout} s)", input=verb.input)
        dtmf, speech = "dtmf" in verb.input, "speech" in verb.input
        # The n-th Gather takes the n-th scripted group of keys and of words, whatever its input.
        keys = self.engine.take_digits(call, scripted=True) if dtmf else _ignored(self.engine.take_digits(call, scripted=True))
        words = self.engine.take_speech(call, scripted=True) if speech else _ignored(self.engine.take_speech(call, scripted=True))
        digits, finished_on, complete = _take_digits(keys, verb.num_digits, verb.finish_on_key)
        while not complete and not words:
            got = yield AwaitInput(verb.timeout)
            if got == "timeout":
                break
            pressed, said = self.engine.take_digits(call, scripted=False), self.engine.take_speech(call, scripted=False)
            keys, words = keys + (pressed if dtmf else ""), said if speech else ""
            digits, finished_on, complete = _take_digits(keys, verb.num_digits, verb.finish_on_key)
        extra: list[tuple[str, str]] = []
        if words and not digits:
            yield Sleep(SPEAKING_SECONDS)
            self.note("gather", f"Gathered speech: {words}", speech=words)
            extra = [("SpeechResult", words), ("Confidence", SPEECH_CONFIDENCE)]
        elif digits or verb.action_on_empty_result:
            if digits:
                self.note("gather", f"Gathered digits {digits}", digits=digits)
            extra = [("Digits", digits)]
            if finished_on:
                extra.append(("FinishedOnKey", finished_on))
        if extra:
            if call.ended:
                return None
            action = self.resolve(verb.action, base)
            if action is None:
                if verb.action:
                    yield End()
                return None
            return Source(url=action, method=verb.method, extra=tuple(extra))
        self.note("gather", "No input; Gather timed out")
        return None

    def _redirect(self, verb: verbs.Redirect, base: str | None) -> Generator[Command, Any, Source | None]:
        url = self.resolve(verb.url, base)
        if url is None:
            yield End()
            return None
        self.note("redirect", f"Redirect to {url}", url=url)
        return Source(url=url, method=verb.method)

    def _hangup(self, verb: verbs.Hangup, base: str | None) -> Program:
        self.note("hangup", "Twilio hung up (<Hangup>)")
        yield End()

    def _reject(self, verb: verbs.Reject, base: str | None) -> Program:
        if self.call.answered:
            self.note("warning", "<Reject> after the call was answered acts as <Hangup>")
            yield End()
            return
        hears = "busy tone" if verb.reason == "busy" else "not-in-service message"
        self.note("reject", f"Call rejected ({verb.reason}): the caller hears a {hears}", reason=verb.reason)
        yield End("busy" if verb.reason == "busy" else "no-answer", f"rejected: {verb.reason}")

    def _dial(self, verb: verbs.Dial, base: str | None) -> Generator[Command, Any, Source | None]:
        call = self.call
        action = self.resolve(verb.action, base) if verb.action else None
        if verb.room is not None:
            return (yield from self._wait_in_room(verb.room, action, verb.method))
        targets = tuple(DialTarget(leg.to, self.resolve(leg.status_callback, base) if leg.status_callback else None,
                                   leg.status_callback_method, leg.events) for leg in verb.legs)
        who = ", ".join(t.to for t in targets)
        self.note("dial", f"Dialing {who}" + (" at once" if len(targets) > 1 else ""), target=who, timeout=verb.timeout)
        try:
            ended = yield DialLegs(targets, verb.caller_id or call.from_, verb.timeout, verb.time_limit)
        except Interrupt as exc:
            child = self.engine.end_legs(call, "the Dial was interrupted")
            if action and exc.kind == "redirect":
                self.note("dial", "Interrupted <Dial>: requesting its action (answer ignored)")
                yield Fetch(action, verb.method, tuple(_dial_params(child, "completed")))
            raise
        child = self.engine.get(ended.sid)
        self.note("dial", f"Dial ended: {ended.status}", dial_status=ended.status, call_sid=child.sid)
        if action:
            return Source(url=action, method=verb.method, extra=tuple(_dial_params(child, ended.status)))
        return None

    def _wait_in_room(self, room: verbs.Room, action: str | None, method: str) -> Generator[Command, Any, None]:
        self.note(room.kind, f"Caller joins {room.kind} {room.name!r} and waits", name=room.name)
        started = self.engine.clock.now()
        try:
            yield Park()
        except Interrupt:
            if action:
                waited = int(self.engine.clock.now() - started)
                yield Fetch(action, method, (("DialCallStatus", "completed"), ("DialCallDuration", str(waited))))
            raise
        return None

    def _room(self, verb: verbs.Room, base: str | None) -> Generator[Command, Any, None]:
        return (yield from self._wait_in_room(verb, None, "POST"))

    def _enqueue(self, verb: verbs.Enqueue, base: str | None) -> Generator[Command, Any, None]:
        action = self.resolve(verb.action, base) if verb.action else None
        queue_sid = "QU" + new_sid("")[:32]
        self.note("queue", f"Caller waits in queue {verb.name!r}", queue=verb.name)
        started = self.engine.clock.now()
        try:
            yield Park()
        except Interrupt as exc:
            result = "redirected" if exc.kind == "redirect" else "hangup"
            self.note("queue", f"Left queue {verb.name!r}: {result}", queue_result=result)
            if action:
                waited = int(self.engine.clock.now() - started)
                yield Fetch(action, verb.method, (("QueueResult", result), ("QueueSid", queue_sid), ("QueueTime", str(waited))))
            raise
        return None

    def _record(self, verb: verbs.Record, base: str | None) -> Generator[Command, Any, Source | None]:
        s, engine = self.engine.settings, self.engine
        if verb.play_beep:
            self.note("play", "Beep")
        callback = self.resolve(verb.recording_status_callback, base) if verb.recording_status_callback else None
        options = RecordingOptions(callback, verb.recording_status_callback_method, verb.recording_status_callback_events)
        rec = engine.start_recording(self.call, SOURCE_RECORD_VERB, options)
        self.note("record", "Recording the caller", recording_sid=rec.sid)
        spoken = min(s.record_seconds, verb.max_length)
        started = engine.clock.now()
        action = self.resolve(verb.action, base)
        try:
            yield Sleep(spoken)
            finished_with = self._finish_key(verb)
            if not finished_with and spoken < verb.max_length:
                finished_with = yield from self._silence(verb)
        except Interrupt as exc:
            # The caller hung up while recording: Twilio keeps what was said and still requests the action.
            heard = engine.clock.now() - started
            scale = s.time_scale or 1.0
            rec = engine.finish_recording(self.call, rec.sid, min(spoken, heard / scale)) or rec
            if exc.kind == "hangup" and action:
                yield Fetch(action, verb.method, tuple(_recording_params(engine, rec)))
            raise
        rec = engine.finish_recording(self.call, rec.sid, spoken) or rec
        self.note("record", f"Recorded {rec.duration} s", recording_url=engine.recording_url(rec), duration=rec.duration)
        if action is None:
            if verb.action:
                yield End()
            return None
        extra = _recording_params(engine, rec)
        if finished_with:
            extra.append(("Digits", finished_with))
        return Source(url=action, method=verb.method, extra=tuple(extra))

    def _finish_key(self, verb: verbs.Record) -> str:
        """The first of `finishOnKey`'s keys among those pressed since the last look, or ""."""
        pressed = self.engine.take_digits(self.call, scripted=False)
        return next((k for k in pressed if k in verb.finish_on_key), "")

    def _silence(self, verb: verbs.Record) -> Generator[Command, Any, str]:
        """The caller has said their piece: `timeout` seconds of silence end the recording, and
        a `finishOnKey` key ends it the moment it is pressed (that key, else "")."""
        engine = self.engine
        scale = engine.settings.time_scale or 1.0
        started = engine.clock.now()
        while True:
            left = verb.timeout - (engine.clock.now() - started) / scale
            if left <= 0 or (yield AwaitInput(left)) == "timeout":
                return ""
            engine.take_speech(self.call, scripted=False)  # part of the recording, not a key
            key = self._finish_key(verb)
            if key:
                return key


def _recording_params(engine: Engine, rec: Any) -> list[tuple[str, str]]:
    """What `<Record>`'s action gets about the recording."""
    return [("RecordingUrl", engine.recording_url(rec)), ("RecordingSid", rec.sid), ("RecordingDuration", str(rec.duration or 0))]


_HANDLERS: dict[type, Callable[..., Generator[Command, Any, Any]]] = {
    verbs.Say: CallRunner._say,
    verbs.Play: CallRunner._play,
    verbs.Pause: CallRunner._pause,
    verbs.Gather: CallRunner._gather,
    verbs.Redirect: CallRunner._redirect,
    verbs.Hangup: CallRunner._hangup,
    verbs.Reject: CallRunner._reject,
    verbs.Dial: CallRunner._dial,
    verbs.Enqueue: CallRunner._enqueue,
    verbs.Record: CallRunner._record,
    verbs.Room: CallRunner._room,
}


def _ignored(_: str) -> str:
    """Input the <Gather>'s `input` does not take: consumed, and dropped."""
    return ""


def _take_digits(keys: str, num_digits: int | None, finish_on_key: str) -> tuple[str, str | None, bool]:
    """Digits a Gather collects from `keys`: (digits, finishing key, complete?)."""
    for i, key in enumerate(keys):
        if finish_on_key and key == finish_on_key:
            return keys[:i], key, True
        if num_digits and i + 1 >= num_digits:
            return keys[: i + 1], None, True
    return keys, None, False


def _dial_params(child: Call | None, status: str) -> list[tuple[str, str]]:
    params = [("DialCallStatus", status)]
    if child is not None:
        params.append(("DialCallSid", child.sid))
        params.append(("DialBridged", "true" if child.answered else "false"))
        if child.answered:
            params.append(("DialCallDuration", str(child.duration())))
    return params
