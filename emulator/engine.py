"""Calls, their state machine, the injectable clock, and the scheduler that decides what happens next.

The engine is the only writer of call state. The REST layer and the console call its methods
(`create_outbound`, `incoming`, `update`, `delete`, `caller_hangs_up`, `press`, …) and read
snapshots (`get`, `all_calls`); none of them takes its lock.

What happens *after* a REST response (ringing, answering, running TwiML, status callbacks) is a
task in the call's lane (`lanes.Lanes`): one call's tasks run one at a time and in order, different
calls' tasks run in parallel on a bounded pool, and status callbacks have lanes and a pool of their
own. So an app URL or a callback URL that hangs delays only its own call. A task that raises ends
its call (error 12400 in the transcript and the log); the engine goes on.

Each call's TwiML is run by a `CallRunner` (interpreter.py), which owns the program and its
wake-up token and yields typed commands (`Sleep`, `AwaitInput`, `Fetch`, `DialLegs`, `Park`,
`End`); the engine decides when they happen.

Time: with `RealClock` a scheduler thread hands due timers to the lanes. With `ManualClock`
nothing happens until `Engine.advance(seconds)`, not even a zero-delay task: it moves emulated
time from one due timer to the next, and after each waits until every lane is idle. Tests assert
exact states, and never race.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import logging
import math
import random
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from . import limits
from .chaos import OFF, Chaos, plan_callback
from .inspector import Delivery, Inspector
from .lanes import Lanes
from .recordings import SOURCE_OUTBOUND_API, Recording, media_path
from .webhooks import Attempt, WebhookClient, WebhookResponse, overrides, request_url

log = logging.getLogger(__name__)

API_VERSION = "2010-04-01"

#: Statuses of a call that is still alive, and those that end it. One place for this fact.
LIVE_STATUSES = ("queued", "ringing", "in-progress")
FINAL_STATUSES = ("completed", "busy", "failed", "no-answer", "canceled")
ALL_STATUSES = ("queued", "ringing", "in-progress", "completed", "busy", "failed", "no-answer", "canceled")
CALLBACK_EVENTS = ("initiated", "ringing", "answered", "completed")

#: SIP response code Twilio reports on the terminal status callback for each final status.
SIP_RESPONSE_CODES = {"completed": 200, "busy": 486, "no-answer": 487, "canceled": 487, "failed": 500}

#: Our scenario numbers: calls to these never reach a person (see emulator/README.md).
SCENARIO_BUSY = "+15555550186"
SCENARIO_NO_ANSWER = "+15555550187"
SCENARIO_FAILED = "+15555550188"
SCENARIOS = {SCENARIO_BUSY: "busy", SCENARIO_NO_ANSWER: "no-answer", SCENARIO_FAILED: "failed"}
#: Who answers, for answering machine detection: these two are a machine and a fax; anyone else is human.
SCENARIO_MACHINE = "+15555550189"
SCENARIO_FAX = "+15555550190"
#: Emulated seconds AMD takes to decide (our choice): a greeting's start, and (DetectMessageEnd) its end.
AMD_SECONDS = 2.0
AMD_MESSAGE_END_SECONDS = 8.0
#: Emulated seconds to send one `SendDigits` key; `w` is half a second and `W` a second (Twilio's).
SEND_DIGIT_SECONDS = {"w": 0.5, "W": 1.0}
KEY_SECONDS = 0.5

#: How long a "lost" REST response is held back at most (the client has long given up by then).
LOST_RESPONSE_SECONDS = 60.0

#: How much later each further noun of a <Dial> answers than the one before it (our choice: no ties).
DIAL_STAGGER_SECONDS = 0.1

#: SHAKEN/STIR verification statuses Twilio reports on inbound calls (`StirVerstat`).
STIR_VERSTATS = ("TN-Validation-Passed-A", "TN-Validation-Passed-B", "TN-Validation-Passed-C", "TN-Validation-Failed-A",
                 "TN-Validation-Failed-B", "TN-Validation-Failed-C", "TN-Validation-Failed", "No-TN-Validation")

#: Errors about a request Twilio made: the Debugger event carries that request and its answer.
WEBHOOK_ERRORS = (11200, 11205, 11750, 12100, 12102, 12300, 15003)

#: Twilio's test credentials accept only this `From` (reference §13); it keeps its rule here.
TEST_FROM_NUMBER = "+15005550006"

#: Twilio's "Internal Failure": what a call that crashed the emulator shows in its transcript.
INTERNAL_FAILURE = 12400


# --------------------------------------------------------------------------- clocks


class RealClock:
    """Wall-clock time; the default. A scheduler thread hands due timers to the lanes."""

    manual = False

    def now(self) -> float:
        """Seconds since the epoch."""
        return time.time()

    def wait(self, cond: threading.Condition, seconds: float | None) -> None:
        """Block on `cond` (held) for at most `seconds`, and never more than a second at a time."""
        cond.wait(timeout=1.0 if seconds is None else min(max(seconds, 0.0), 1.0))


class ManualClock:
    """A clock that only moves when told to. Used by tests, through `Engine.advance`."""

    manual = True

    def __init__(self, start: float | datetime | None = None):
        if start is None:
            start = datetime(2026, 1, 5, 9, 0, 0, tzinfo=UTC)
        self._now = start.timestamp() if isinstance(start, datetime) else float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        """Seconds since the epoch, as last set."""
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward (Engine.advance does this, between due timers)."""
        with self._lock:
            self._now += max(0.0, seconds)


# --------------------------------------------------------------------------- helpers


def new_sid(prefix: str) -> str:
    """A random Twilio-style SID: two-letter prefix and 32 hex digits."""
    return prefix + secrets.token_hex(16)


def notification_sid(call_sid: str, index: int) -> str:
    """The Notification (and Debugger event) SID of a call's `index`-th transcript line: stable."""
    return "NO" + hashlib.sha1(f"{call_sid}:{index}".encode()).hexdigest()[:32]


def rfc2822(ts: float | None) -> str | None:
    """Format epoch seconds the way Twilio does in JSON and callbacks."""
    if ts is None:
        return None
    return format_datetime(datetime.fromtimestamp(int(ts), tz=UTC))


def geo(number: str) -> dict[str, str]:
    """Best-effort geo fields. Twilio often sends empty strings; we only know the country."""
    country = "US" if re.fullmatch(r"\+1\d{10}", number or "") else ""
    return {"City": "", "State": "", "Zip": "", "Country": country}


def bounded_seconds(value: float, high: float = limits.MAX_DELAY_SECONDS) -> float:
    """A duration the clock can hold: NaN and negatives are 0, anything past `high` is `high`."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return 0.0
    if math.isnan(value) or value < 0:
        return 0.0
    return min(value, high)


# --------------------------------------------------------------------------- settings


@dataclass
class Settings:
    """Everything configurable, read once in create_app (see emulator/README.md)."""

    account_sid: str
    auth_token: str
    phone_number: str
    voice_url: str
    #: Numbers the account owns (TWILIO_PHONE_NUMBER is always one) and verified caller IDs:
    #: the only `From` numbers CreateCall accepts (21210 otherwise).
    numbers: tuple[str, ...] = ()
    verified_caller_ids: tuple[str, ...] = ()
    voice_method: str = "POST"
    voice_fallback_url: str = ""
    voice_fallback_method: str = "POST"
    status_callback: str = ""
    status_callback_method: str = "POST"
    public_url: str = "http://127.0.0.1:8010"
    #: The Switchboard panel's URL in demo mode: the console links each call to its panel page.
    panel_url: str = ""
    #: Where Debugger events are posted (Twilio's Console Debugger webhook); empty: nowhere.
    debugger_url: str = ""
    ring_seconds: float = 1.0
    say_seconds: float = 1.0
    play_seconds: float = 2.0
    inbound_hangup_after: float = 60.0
    dial_talk_seconds: float = 5.0
    record_seconds: float = 3.0
    time_scale: float = 1.0
    webhook_timeout: float = 15.0
    #: What a call costs per started minute once answered (USD).
    price_per_minute: float = 0.014
    #: How many requests the inspector keeps (the newest).
    inspector_size: int = 5000
    #: The run's chaos at start (EMULATOR_CHAOS); `Engine.set_chaos` changes it.
    chaos: Chaos = OFF
    call_workers: int = 64
    callback_workers: int = 64

    def owned_numbers(self) -> tuple[str, ...]:
        """The account's phone numbers: TWILIO_PHONE_NUMBER and EMULATOR_NUMBERS."""
        return tuple(dict.fromkeys((self.phone_number, *self.numbers)))

    def scaled(self, seconds: float) -> float:
        """An emulated duration (at most a call's longest), multiplied by EMULATOR_TIME_SCALE."""
        return bounded_seconds(bounded_seconds(seconds, limits.MAX_CALL_SECONDS) * bounded_seconds(self.time_scale))


# --------------------------------------------------------------------------- calls


@dataclass
class Call:
    """One call leg as the engine knows it. Only the engine writes it; others get snapshots."""

    sid: str
    account_sid: str
    to: str
    from_: str
    direction: str
    created: float
    status: str = "queued"
    parent_call_sid: str | None = None
    phone_number_sid: str | None = None
    caller_name: str | None = None
    #: Inbound calls: the number that forwarded the call, and the SHAKEN/STIR verification status.
    forwarded_from: str | None = None
    stir_verstat: str | None = None
    updated: float = 0.0
    start_time: float | None = None
    answered_at: float | None = None
    end_time: float | None = None
    url: str | None = None
    method: str = "POST"
    twiml: str | None = None
    fallback_url: str | None = None
    fallback_method: str = "POST"
    status_callback: str | None = None
    status_callback_method: str = "POST"
    status_callback_events: tuple[str, ...] = ()
    timeout: float = float(limits.DEFAULT_TIMEOUT)
    time_limit: float = float(limits.DEFAULT_TIME_LIMIT)
    call_token: str | None = None
    #: Milliseconds the create waited in the account's calls-per-second queue (Twilio's `queue_time`).
    queue_time: int = 0
    scenario: str | None = None
    hangup_after: float | None = None
    #: What the simulated caller will press at successive <Gather>s, and what they pressed live.
    digit_groups: list[str] = field(default_factory=list)
    live_digits: str = ""
    #: What the simulated caller will say at successive <Gather>s, and what they said live.
    speech_groups: list[str] = field(default_factory=list)
    live_speech: list[str] = field(default_factory=list)
    sequence: int = 0
    transcript: list[dict[str, Any]] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    #: A <Dial> leg: the parent call and the wake-up token its runner waits on.
    dial_parent: tuple[str, int] | None = None
    talk_limit: float | None = None
    #: A call whose <Dial> rings legs: those of the current <Dial>, and the one that answered first.
    dial_group: list[str] = field(default_factory=list)
    connected_leg: str | None = None
    #: CreateCall's MachineDetection (a MachineDetection), its result, and SendDigits.
    amd: Any = None
    answered_by: str | None = None
    send_digits: str | None = None
    #: Chaos: the simulated caller's own (else the run's applies), the call's ordinal since the run's
    #: chaos was set (it seeds the call's generator), the generator, and a status callback held back.
    chaos: Chaos | None = None
    ordinal: int = 0
    chaos_rng: random.Random | None = None
    held_callback: Callable[[], None] | None = None
    #: `Record=true` on create: how to record the call (a RecordingOptions), and its recording.
    record: Any = None
    recording_sid: str | None = None
    recordings: list[str] = field(default_factory=list)

    @property
    def ended(self) -> bool:
        """True once the call has a final status."""
        return self.status in FINAL_STATUSES

    @property
    def answered(self) -> bool:
        """True once somebody picked up."""
        return self.answered_at is not None

    def duration(self) -> int:
        """Whole seconds from answer to end (0 until both are known)."""
        if self.answered_at is None or self.end_time is None:
            return 0
        return int(self.end_time - self.answered_at)

    def snapshot(self) -> Call:
        """A copy that later changes do not touch (take it under the engine's lock)."""
        return replace(self, digit_groups=list(self.digit_groups), speech_groups=list(self.speech_groups), live_speech=list(self.live_speech), transcript=list(self.transcript), children=list(self.children),
                       recordings=list(self.recordings), dial_group=list(self.dial_group))


def webhook_params(call: Call, status: str | None = None) -> list[tuple[str, str]]:
    """The parameters Twilio sends about this leg on every webhook (reference §5)."""
    params: dict[str, str] = {
        "AccountSid": call.account_sid,
        "ApiVersion": API_VERSION,
        "CallSid": call.sid,
        "CallStatus": status or call.status,
        "Called": call.to,
        "Caller": call.from_,
        "Direction": call.direction,
        "From": call.from_,
        "To": call.to,
    }
    for prefix, number in (("Called", call.to), ("Caller", call.from_), ("From", call.from_), ("To", call.to)):
        for key, value in geo(number).items():
            params[prefix + key] = value
    if call.caller_name:
        params["CallerName"] = call.caller_name
    if call.forwarded_from:
        params["ForwardedFrom"] = call.forwarded_from
    if call.stir_verstat:
        params["StirVerstat"] = call.stir_verstat
    if call.parent_call_sid:
        params["ParentCallSid"] = call.parent_call_sid
    if call.call_token:
        params["CallToken"] = call.call_token
    if call.answered_by:
        params["AnsweredBy"] = call.answered_by
    return sorted(params.items())


@dataclass(frozen=True)
class MachineDetection:
    """CreateCall's `MachineDetection` (`Enable` or `DetectMessageEnd`) and its options."""

    mode: str
    timeout: float = 30.0
    asynchronous: bool = False
    callback: str | None = None
    callback_method: str = "POST"

    def result(self, to: str) -> tuple[float, str]:
        """(seconds until decided, AnsweredBy) for a call to `to`; `unknown` when the timeout comes first."""
        if to == SCENARIO_MACHINE:
            seconds, who = (AMD_MESSAGE_END_SECONDS, "machine_end_beep") if self.mode == "DetectMessageEnd" else (AMD_SECONDS, "machine_start")
        else:
            seconds, who = AMD_SECONDS, "fax" if to == SCENARIO_FAX else "human"
        return (self.timeout, "unknown") if self.timeout < seconds else (seconds, who)


@dataclass(frozen=True)
class RecordingOptions:
    """How to record: `Record=true` and its RecordingStatusCallback* parameters, or `<Record>`'s."""

    callback: str | None = None
    callback_method: str = "POST"
    callback_events: tuple[str, ...] = ("completed",)
    channels: int = 1
    track: str = "both"


class CallNotFound(Exception):
    """No call with that SID (REST: 20404)."""


class CallStateError(Exception):
    """The call is not in a state that allows this (REST: 21220)."""


@dataclass(frozen=True)
class Source:
    """Where a call's next TwiML comes from: a URL (with extra parameters) or inline TwiML."""

    url: str | None = None
    method: str = "POST"
    twiml: str | None = None
    extra: tuple[tuple[str, str], ...] = ()

    def describe(self) -> str:
        """The URL, or "inline TwiML", as the transcript says it."""
        return self.url if self.url is not None else "inline TwiML"


# --------------------------------------------------------------------------- engine


class Engine:
    """Owns the calls and runs everything that happens to them, in emulated time."""

    def __init__(self, settings: Settings, clock: RealClock | ManualClock | None = None, webhooks: Any = None):
        from .interpreter import CallRunner  # late import: the interpreter uses engine types

        self._runner_class = CallRunner
        self.settings = settings
        self.clock = clock or RealClock()
        self.webhooks = webhooks or WebhookClient(settings.auth_token, timeout=settings.webhook_timeout)
        self.inspector = Inspector(settings.inspector_size)
        self._stopped = threading.Event()
        #: A PN SID for each owned number and verified caller ID (IncomingPhoneNumber / OutgoingCallerId).
        self.number_sids = {n: "PN" + secrets.token_hex(16) for n in (*settings.owned_numbers(), *settings.verified_caller_ids)}
        self.phone_number_sid = self.number_sids[settings.phone_number]
        self._calls: dict[str, Call] = {}
        self._recordings: dict[str, Recording] = {}
        self._runners: dict[str, Any] = {}
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._timers: list[tuple[float, int, Call, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._open_batches = 0
        self._stopping = False
        self._local = threading.local()
        self.set_chaos(settings.chaos)
        self._lanes = Lanes("emulator-call", settings.call_workers, on_done=self._notify)
        self._callbacks = Lanes("emulator-callback", settings.callback_workers, on_done=self._notify)
        self._thread: threading.Thread | None = None
        if not self.clock.manual:
            self._thread = threading.Thread(target=self._scheduler, name="emulator-scheduler", daemon=True)
            self._thread.start()

    # ---- scheduling

    def _at(self, delay: float, call: Call, task: Callable[[], None]) -> None:
        """Run `task` in the call's lane `delay` emulated seconds from now.

        Inside `batch()` (a REST request) it is held back until the response has been sent.
        """
        delay = bounded_seconds(delay)
        held = getattr(self._local, "held", None)
        if held is not None:
            held.append((delay, call, task))
            return
        if delay == 0 and not self.clock.manual:
            # Due now on the real clock: straight to the lane, without a hop through the scheduler.
            # (Every task checks the call's state and its runner's token, so it may overtake a timer
            # that fell due a moment earlier.)
            self._lanes.submit(call.sid, self._guarded(call, task))
            return
        with self._cond:
            heapq.heappush(self._timers, (self.clock.now() + delay, next(self._seq), call, task))
            self._cond.notify_all()

    def _post(self, call: Call, task: Callable[[], None]) -> None:
        """Run `task` in the call's lane next: at once from a lane, else as a zero-delay timer."""
        if getattr(self._local, "in_lane", False):
            self._lanes.submit(call.sid, self._guarded(call, task))
        else:
            self._at(0, call, task)

    def _guarded(self, call: Call, task: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            self._local.in_lane = True
            try:
                task()
            except Exception:
                log.exception("emulator: call %s crashed; ending it", call.sid)
                self._crashed(call)
            finally:
                self._local.in_lane = False

        return run

    def _crashed(self, call: Call) -> None:
        """A task of this call raised: end the call, never the engine."""
        try:
            self._runners.pop(call.sid, None)
            self.note(call, "error", "Internal failure in the emulator while running this call; the call is ended", code=INTERNAL_FAILURE)
            self._end(call, "completed" if call.answered else "failed", "internal failure")
        except Exception:
            log.exception("emulator: could not end crashed call %s", call.sid)

    def _due(self) -> list[tuple[float, int, Call, Callable[[], None]]]:
        """Pop the timers that are due (lock held)."""
        now = self.clock.now()
        due = []
        while self._timers and self._timers[0][0] <= now:
            due.append(heapq.heappop(self._timers))
        return due

    def _dispatch(self, due: Iterable[tuple[float, int, Call, Callable[[], None]]]) -> None:
        for _, _, call, task in due:
            self._lanes.submit(call.sid, self._guarded(call, task))

    def _scheduler(self) -> None:
        """Real clock: hand due timers to the lanes. Survives anything a timer or clock does."""
        while True:
            try:
                with self._cond:
                    if self._stopping:
                        return
                    due = self._due()
                    if not due:
                        wait = self._timers[0][0] - self.clock.now() if self._timers else None
                        self.clock.wait(self._cond, wait)
                        continue
                self._dispatch(due)
            except Exception:
                log.exception("emulator scheduler: unexpected error; going on")

    def _notify(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _busy(self, stalled: tuple[str, ...] = (), stalled_callbacks: tuple[str, ...] = ()) -> bool:
        return self._open_batches > 0 or self._lanes.busy(stalled) or self._callbacks.busy(stalled_callbacks)

    def _settle(self, stalled: tuple[str, ...], stalled_callbacks: tuple[str, ...], timeout: float) -> None:
        """Manual clock: run what is due now, and wait until every lane (but the stalled ones) is idle."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                due = self._due()
                if due:
                    self._dispatch(due)
                    continue
                if not self._busy(stalled, stalled_callbacks):
                    return
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("the emulator did not settle")
                self._cond.wait(timeout=min(left, 0.05))

    def advance(self, seconds: float = 0.0, stalled: Iterable[str] = (), stalled_callbacks: Iterable[str] = (),
                timeout: float = 30.0) -> None:
        """Manual clock only: move emulated time forward by `seconds`, running everything due.

        Time moves from one due timer to the next; after each, this waits until all lanes are
        idle, except the TwiML lanes of the calls in `stalled` and the status-callback lanes of
        those in `stalled_callbacks` (SIDs whose app URL, or callback URL, a test keeps hanging).
        """
        if not self.clock.manual:
            raise RuntimeError("advance() needs the ManualClock")
        stalled, stalled_callbacks = tuple(stalled), tuple(stalled_callbacks)
        target = self.clock.now() + bounded_seconds(seconds)
        self._settle(stalled, stalled_callbacks, timeout)
        while True:
            with self._cond:
                nxt = self._timers[0][0] if self._timers else None
            if nxt is None or nxt > target:
                break
            self.clock.advance(nxt - self.clock.now())
            self._settle(stalled, stalled_callbacks, timeout)
        self.clock.advance(target - self.clock.now())
        self._settle(stalled, stalled_callbacks, timeout)

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Manual clock: run what is due now and wait until nothing is left to do."""
        if not self.clock.manual:
            raise RuntimeError("wait_idle() needs the ManualClock")
        self._settle((), (), timeout)

    def healthy(self) -> bool:
        """True while the engine can run calls: not stopped, and (real clock) its scheduler alive."""
        if self._stopping:
            return False
        return self.clock.manual or (self._thread is not None and self._thread.is_alive())

    def stop(self) -> None:
        """Stop the scheduler and the worker pools (tests, server shutdown)."""
        self._stopped.set()
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._lanes.stop()
        self._callbacks.stop()

    def batch(self) -> Batch:
        """Hold back tasks scheduled by this thread until `Batch.release()` (after the HTTP response)."""
        return Batch(self)

    # ---- transcript, snapshots

    def note(self, call: Call, kind: str, text: str, **details: Any) -> None:
        """Add a line to the call's caller's-eye transcript; an error or warning with a code also
        goes to the Debugger webhook."""
        now = self.clock.now()
        entry = {"at": rfc2822(now), "t": round(now - call.created, 3), "kind": kind, "text": text}
        entry.update(details)
        with self._lock:
            call.transcript.append(entry)
            index = len(call.transcript) - 1
        if kind in ("error", "warning") and details.get("code") and self.settings.debugger_url:
            self._debugger_event(call, notification_sid(call.sid, index), int(details["code"]), text, "Error" if kind == "error" else "Warning")

    def _debugger_event(self, call: Call, sid: str, code: int, message: str, level: str) -> None:
        """Post a Debugger event (Twilio's Console Debugger webhook) about `call`, with the request
        that failed when the error is about one (the call's latest TwiML request or callback)."""
        kinds = ("status-callback", "recording-callback", "amd-callback") if code == 15003 else ("twiml",)
        failed = next(iter(self.inspector.recent(call.sid, kinds, limit=1)), None) if code in WEBHOOK_ERRORS else None
        payload: dict[str, Any] = {
            "resource_sid": call.sid,
            "service_sid": None,
            "error_code": str(code),
            "more_info": {"msg": message, "ErrorCode": str(code), "LogLevel": level.upper(),
                          "docs": f"https://www.twilio.com/docs/errors/{code}"},
        }
        if failed is not None:
            payload["more_info"]["url"] = failed.url
            payload["webhook"] = {
                "type": "application/json",
                "request": {"url": failed.url, "method": failed.method, "parameters": dict(failed.params)},
                "response": {"status_code": failed.status, "content_type": failed.content_type, "body": failed.body, "error": failed.error},
            }
        params = {
            "Sid": sid,
            "AccountSid": call.account_sid,
            "Timestamp": datetime.fromtimestamp(self.clock.now(), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Level": level,
            "PayloadType": "application/json",
            "Payload": json.dumps(payload, separators=(",", ":")),
        }
        url = self.settings.debugger_url
        self._callbacks.submit(call.sid, lambda: self.deliver(call, "debugger", url, "POST", sorted(params.items())))

    def get(self, sid: str) -> Call | None:
        """A snapshot of the call with this SID, or None."""
        with self._lock:
            call = self._calls.get(sid)
            return call.snapshot() if call else None

    def all_calls(self) -> list[Call]:
        """Snapshots of every call, newest first (Twilio's list order)."""
        with self._lock:
            calls = [c.snapshot() for c in reversed(self._calls.values())]
        return sorted(calls, key=lambda c: c.created, reverse=True)  # stable: ties stay newest first

    def may_call_from(self, number: str) -> bool:
        """True for a `From` CreateCall accepts: an owned number, a verified caller ID, a client
        identity, or Twilio's test From number +15005550006."""
        return (number in self.number_sids or number.startswith("client:") or number == TEST_FROM_NUMBER)

    def _live(self, sid: str) -> Call:
        call = self._calls.get(sid)
        if call is None:
            raise CallNotFound(sid)
        return call

    # ---- status callbacks

    def _status_callback(self, call: Call, event: str) -> None:
        """Queue one status callback (reference §4.1, §6) if the call asked for this event."""
        with self._lock:
            if not call.status_callback:
                return
            if event != "completed" and event not in call.status_callback_events:
                return
            status = {"initiated": "initiated", "ringing": "ringing", "answered": "in-progress"}.get(event, call.status)
            seq = call.sequence
            call.sequence += 1
            url, method = call.status_callback, call.status_callback_method
            params = dict(webhook_params(call, status))
            params.update({"CallbackSource": "call-progress-events", "SequenceNumber": str(seq), "Timestamp": rfc2822(self.clock.now())})
            if event == "completed":
                seconds = call.duration()
                params["CallDuration"] = str(seconds)
                params["Duration"] = str(math.ceil(seconds / 60))
                params["SipResponseCode"] = str(SIP_RESPONSE_CODES.get(call.status, 200))
                recording = self._recordings.get(call.recording_sid or "")
                if recording is not None and recording.status == "completed":
                    # Record=true: "The recording_url is sent to the status_callback URL" (spec CreateCall).
                    params.update(RecordingUrl=self.recording_url(recording), RecordingSid=recording.sid,
                                  RecordingDuration=str(recording.duration))
        self._send_callback(call, "status-callback", url, method, params, final=event == "completed")

    def _send_callback(self, call: Call, kind: str, url: str, method: str, params: dict[str, str], final: bool = False) -> None:
        """Deliver a callback (status, recording, AMD) in the call's callback lane, in order; status
        callbacks as the call's chaos says (dropped, sent twice, held back, delayed)."""
        items = sorted(params.items())
        chaos = self._chaos_of(call)
        if kind != "status-callback" or not chaos.touches_calls:
            self._callbacks.submit(call.sid, lambda: self._deliver_callback(call, kind, url, method, items))
            return
        plan = plan_callback(chaos, self._rng(call), final)
        token, notes = str(uuid.uuid4()), plan.notes()
        job: Callable[[], None] | None = None
        if plan.drop:
            dropped = Attempt(request_url(url, method, items), method, items, "", token, 0, error="dropped by chaos: never sent")
            self.inspector.record(kind, call.sid, dropped, self.clock.now(), notes=("chaos: dropped",))
        else:
            def job() -> None:
                self._deliver_callback(call, kind, url, method, items, token, notes)
                if plan.duplicate:
                    self._deliver_callback(call, kind, url, method, items, token, (*notes, "chaos: the duplicate"))
        with self._lock:
            held, call.held_callback = call.held_callback, job if plan.reorder else None
        if job is not None and not plan.reorder:
            if plan.delay_ms:
                self._at(plan.delay_ms / 1000, call, lambda: self._callbacks.submit(call.sid, job))
            else:
                self._callbacks.submit(call.sid, job)
        if held is not None:  # the callback held back before goes after this one
            self._callbacks.submit(call.sid, held)

    def _deliver_callback(self, call: Call, kind: str, url: str, method: str, items: list[tuple[str, str]],
                          token: str | None = None, notes: tuple[str, ...] = ()) -> None:
        resp = self.deliver(call, kind, url, method, items, token, notes)
        if not resp.ok:
            self.note(call, "warning", f"Callback to {resp.url} failed: {resp.error or 'HTTP ' + str(resp.status)}", code=15003)

    def deliver(self, call: Call, kind: str, url: str, method: str, params: list[tuple[str, str]], token: str | None = None,
                notes: tuple[str, ...] = ()) -> WebhookResponse:
        """Send a webhook of `call` (retries as its connection overrides say); the inspector
        records every attempt. Runs in one of the call's lanes."""
        if "#" in url:
            for warning in overrides(url, self.settings.webhook_timeout).warnings:
                self.note(call, "warning", f"{url}: {warning}", code=11243 if "11243" in warning else None)
        record = lambda attempt: self.inspector.record(kind, call.sid, attempt, self.clock.now(), notes=notes)  # noqa: E731
        return self.webhooks.request(url, method, params, token=token, on_attempt=record)

    # ---- chaos

    def set_chaos(self, chaos: Chaos) -> None:
        """The run's chaos from now on; its generators start afresh from its seed."""
        with self._lock:
            self.chaos = chaos
            self._rest_rng = random.Random(f"{chaos.seed}:rest")
            self._ordinals = itertools.count(1)
            self._next_slot = 0.0

    def _chaos_of(self, call: Call) -> Chaos:
        return call.chaos if call.chaos is not None else self.chaos

    def _rng(self, call: Call) -> random.Random:
        """The call's own generator: the chaos seed and the call's ordinal (stable across runs)."""
        with self._lock:
            if call.chaos_rng is None:
                call.chaos_rng = random.Random(f"{self._chaos_of(call).seed}:{call.ordinal}")
            return call.chaos_rng

    def rest_fault(self) -> tuple[bool, bool]:
        """REST chaos for one request: (answer 429?, lose the response?). Two draws per request."""
        with self._lock:
            rest = self.chaos.rest
            if not (rest.rate_limit or rest.lost_response):
                return False, False
            limited, lost = self._rest_rng.random(), self._rest_rng.random()
        return limited < rest.rate_limit, lost < rest.lost_response

    def hold_lost_response(self) -> None:
        """A lost response: keep the client waiting until it gives up (or the engine stops)."""
        self._stopped.wait(LOST_RESPONSE_SECONDS)

    def _queue_slot(self) -> float:
        """Seconds a new call waits behind the account's calls-per-second limit (CPS chaos only)."""
        if not self.chaos.rest.calls_per_second:
            return 0.0
        with self._lock:
            cps = self.chaos.rest.calls_per_second
            if not cps:
                return 0.0
            now = self.clock.now()
            slot = max(now, self._next_slot)
            self._next_slot = slot + 1 / cps
            return slot - now

    def replay(self, delivery_id: int) -> Delivery | None:
        """Send a recorded request again, signed afresh, with a new idempotency token (console)."""
        original = self.inspector.get(delivery_id)
        if original is None:
            return None
        attempt = self.webhooks.resend(original.url, original.method, list(original.params))
        return self.inspector.record("replay", original.call_sid, attempt, self.clock.now(), replay_of=original.id)

    # ---- recordings

    def recording_url(self, rec: Recording) -> str:
        """The RecordingUrl Twilio sends: the media, without an extension (WAV)."""
        return self.settings.public_url.rstrip("/") + media_path(rec.account_sid, rec.sid)

    def start_recording(self, call: Call, source: str, options: RecordingOptions) -> Recording:
        """A recording of `call` begins now (`in-progress`)."""
        now = self.clock.now()
        rec = Recording(sid=new_sid("RE"), account_sid=call.account_sid, call_sid=call.sid, source=source, created=now,
                        start_time=now, updated=now, channels=options.channels, track=options.track,
                        callback=options.callback, callback_method=options.callback_method, callback_events=options.callback_events)
        with self._lock:
            self._recordings[rec.sid] = rec
            call.recordings.append(rec.sid)
        self._recording_callback(call, rec)
        return rec.snapshot()

    def finish_recording(self, call: Call, sid: str, seconds: float, notify: bool = True) -> Recording | None:
        """The recording ends, `seconds` long (`completed`); its callback follows unless `notify` is False."""
        with self._lock:
            rec = self._recordings.get(sid)
            if rec is None or rec.status != "in-progress":
                return None
            rec.status, rec.duration, rec.updated = "completed", int(bounded_seconds(seconds)), self.clock.now()
        if notify:
            self._recording_callback(call, rec)
        return rec.snapshot()

    def _recording_callback(self, call: Call, rec: Recording) -> None:
        """RecordingStatusCallback for the recording's current status, if asked for."""
        with self._lock:
            if not rec.callback or rec.status not in rec.callback_events:
                return
            params = {
                "AccountSid": rec.account_sid, "CallSid": rec.call_sid, "RecordingSid": rec.sid,
                "RecordingUrl": self.recording_url(rec), "RecordingStatus": rec.status,
                "RecordingDuration": "" if rec.duration is None else str(rec.duration),
                "RecordingChannels": str(rec.channels), "RecordingStartTime": rfc2822(rec.start_time),
                "RecordingSource": rec.source, "RecordingTrack": rec.track, "ErrorCode": "0",
            }
        self._send_callback(call, "recording-callback", rec.callback, rec.callback_method, params)

    def recording(self, sid: str) -> Recording | None:
        """A snapshot of the recording with this SID, or None."""
        with self._lock:
            rec = self._recordings.get(sid)
            return rec.snapshot() if rec else None

    def all_recordings(self, call_sid: str | None = None) -> list[Recording]:
        """Snapshots of the recordings (of one call), newest first."""
        with self._lock:
            recs = [r.snapshot() for r in reversed(self._recordings.values()) if call_sid is None or r.call_sid == call_sid]
        return sorted(recs, key=lambda r: r.created, reverse=True)

    def delete_recording(self, sid: str) -> bool:
        """DELETE a recording; False if there is none."""
        with self._lock:
            return self._recordings.pop(sid, None) is not None

    # ---- creating calls

    def _add(self, call: Call) -> Call:
        with self._lock:
            call.updated = call.created
            call.ordinal = next(self._ordinals)
            self._calls[call.sid] = call
        return call

    def create_outbound(self, **fields: Any) -> Call:
        """A call created through the REST API: queued now, dialed once the response is out."""
        call = Call(
            sid=new_sid("CA"),
            account_sid=self.settings.account_sid,
            direction="outbound-api",
            created=self.clock.now(),
            status="queued",
            phone_number_sid=self.number_sids.get(fields.get("from_", "")),
            scenario=SCENARIOS.get(fields.get("to", "")),
            **fields,
        )
        self._add(call)
        self.note(call, "status", f"Call queued to {call.to}", status="queued")
        delay = self._queue_slot()
        if delay:
            with self._lock:
                call.queue_time = int(delay * 1000)
            self.note(call, "status", f"Queued {delay:g} s behind the account's calls-per-second limit (chaos)")
        self._at(delay, call, lambda: self._dial(call))
        with self._lock:
            return call.snapshot()

    def incoming(self, from_: str, to: str | None = None, caller_name: str | None = None, hangup_after: float | None = None,
                 digits: str = "", speech: list[str] | tuple[str, ...] = (), forwarded_from: str | None = None,
                 stir_verstat: str | None = None, chaos: Chaos | None = None) -> Call:
        """A simulated caller rings the emulator's phone number (with its own `chaos`, if given)."""
        s = self.settings
        if hangup_after is None:
            hangup_after = s.inbound_hangup_after or None
        call = Call(
            sid=new_sid("CA"),
            account_sid=s.account_sid,
            to=to or s.phone_number,
            from_=from_,
            direction="inbound",
            created=self.clock.now(),
            status="ringing",
            phone_number_sid=self.number_sids.get(to or s.phone_number, self.phone_number_sid),
            caller_name=caller_name or None,
            forwarded_from=forwarded_from or None,
            stir_verstat=stir_verstat or None,
            url=s.voice_url,
            method=s.voice_method,
            fallback_url=s.voice_fallback_url or None,
            fallback_method=s.voice_fallback_method,
            status_callback=s.status_callback or None,
            status_callback_method=s.status_callback_method,
            status_callback_events=(),  # inbound calls get only the end (reference §4.1)
            call_token=f"%7B%22parentCallInfoToken%22%3A%22{secrets.token_hex(8)}%22%7D",
            hangup_after=hangup_after,
            digit_groups=digits.split(",") if digits else [],
            speech_groups=list(speech),
            chaos=chaos,
        )
        call.start_time = call.created
        self._add(call)
        who = f"{call.from_} ({call.caller_name})" if call.caller_name else call.from_
        self.note(call, "status", f"{who} calls {call.to}; ringing", status="ringing")
        if hangup_after:
            self._at(s.scaled(hangup_after), call, lambda: self._planned_hang_up(call))
        self._at(0, call, lambda: self._start(call, Source(url=call.url, method=call.method)))
        with self._lock:
            return call.snapshot()

    # ---- REST and console actions (any thread)

    def update(
        self,
        sid: str,
        *,
        status: str | None = None,
        source: Source | None = None,
        fallback_url: str | None = None,
        fallback_method: str | None = None,
        status_callback: str | None = None,
        status_callback_method: str | None = None,
        time_limit: float | None = None,
    ) -> Call:
        """UpdateCall's state rules (reference §3.2, §13); returns the call as it now is.

        Raises CallNotFound, or CallStateError where Twilio answers 21220.
        """
        with self._lock:
            call = self._live(sid)
            if call.ended:
                raise CallStateError(sid)
            if status == "canceled":
                if call.status in ("queued", "ringing"):
                    self._end(call, "canceled", "canceled through the REST API")
                return call.snapshot()  # an in-progress call is returned as it is
            if status == "completed":
                self._end(call, "completed" if call.answered else "canceled", "ended through the REST API")
                return call.snapshot()
            if source is not None and call.status != "in-progress":
                raise CallStateError(sid)
            if time_limit is not None:
                call.time_limit = bounded_seconds(time_limit, limits.MAX_CALL_SECONDS)
                self._arm_time_limit(call)
            if source is not None:
                if fallback_url is not None:
                    call.fallback_url = fallback_url
                if fallback_method is not None:
                    call.fallback_method = fallback_method
                # StatusCallback changes only take effect together with a redirect (reference §13).
                if status_callback is not None:
                    call.status_callback = status_callback
                if status_callback_method is not None:
                    call.status_callback_method = status_callback_method
                call.updated = self.clock.now()
                self._post(call, lambda: self._redirect(call, source))
            return call.snapshot()

    def delete(self, sid: str) -> None:
        """REST DELETE: a live call is hung up first, so nothing keeps running unseen."""
        with self._lock:
            call = self._live(sid)
            if not call.ended:
                self._end(call, "completed" if call.answered else "canceled", "deleted through the REST API")
            del self._calls[sid]

    def caller_hangs_up(self, sid: str) -> Call:
        """The console: the caller (or callee) hangs up now. Returns the call as it was."""
        with self._lock:
            call = self._live(sid)
            if not call.ended:
                self._at(0, call, lambda: self._caller_hangs_up(call))
            return call.snapshot()

    def stay(self, sid: str) -> Call:
        """The console: the caller stays on the line (the hang-up `hangup_after` planned is
        called off). Raises CallStateError once the call has ended."""
        with self._lock:
            call = self._live(sid)
            if call.ended:
                raise CallStateError(sid)
            call.hangup_after = None
            return call.snapshot()

    def press(self, sid: str, digits: str) -> Call:
        """The console: the caller presses keys now (a waiting <Gather> takes them)."""
        with self._lock:
            call = self._live(sid)
            if call.ended:
                raise CallStateError(sid)
            self._at(0, call, lambda: self._pressed(call, digits))
            return call.snapshot()

    def speak(self, sid: str, words: str) -> Call:
        """The console: the caller says `words` now (a waiting speech <Gather> takes them)."""
        with self._lock:
            call = self._live(sid)
            if call.ended:
                raise CallStateError(sid)
            self._at(0, call, lambda: self._spoke(call, words))
            return call.snapshot()

    # ---- the state machine (lane tasks, or under the lock)

    def _set_status(self, call: Call, status: str) -> bool:
        """Set the call's status unless it has ended: a final status never changes (False then)."""
        with self._lock:
            if call.ended:
                return False
            call.status = status
            call.updated = self.clock.now()
            return True

    def _end(self, call: Call, status: str, reason: str | None = None) -> None:
        """Give the call its final status now; its program, legs and end callback follow in its lane."""
        with self._lock:
            if call.ended:
                return
            call.end_time = self.clock.now()
            call.status = status
            call.updated = call.end_time
        self.note(call, "status", f"Call ended: {status}" + (f" ({reason})" if reason else ""), status=status)
        self._post(call, lambda: self._after_end(call))

    def _after_end(self, call: Call) -> None:
        runner = self._runners.pop(call.sid, None)
        if runner is not None:
            self._wind_down(call, runner, runner.interrupt("hangup"))
        with self._lock:
            children = [self._calls.get(sid) for sid in call.children]
        for child in children:
            if child is not None and not child.ended:
                self._end(child, "completed" if child.answered else "canceled", "the caller hung up")
        recording = self.finish_recording(call, call.recording_sid, call.duration(), notify=False) if call.recording_sid else None
        self._status_callback(call, "completed")
        if recording is not None:
            self.note(call, "record", f"Call recording ended: {recording.duration} s", recording_url=self.recording_url(recording))
            self._recording_callback(call, recording)
        if call.dial_parent is not None:
            self._leg_ended(call)

    def _leg_ended(self, leg: Call) -> None:
        """A <Dial> leg ended: its <Dial> goes on when the connected leg ends, or when every leg
        ended without an answer (canceled losers of the race change nothing)."""
        from .interpreter import DialEnded

        parent_sid, token = leg.dial_parent
        with self._lock:
            parent = self._calls.get(parent_sid)
            if parent is None or leg.sid not in parent.dial_group:
                return
            if parent.connected_leg == leg.sid:
                result = DialEnded(leg.sid, leg.status)
            elif parent.connected_leg is None and all(self._calls[sid].ended for sid in parent.dial_group if sid in self._calls):
                statuses = {self._calls[sid].status for sid in parent.dial_group if sid in self._calls}
                result = DialEnded(leg.sid, statuses.pop() if len(statuses) == 1 else "no-answer")
            else:
                return
        self._post(parent, lambda: self._resume(parent, token, result))

    def _dial(self, call: Call) -> None:
        """queued → ringing (or straight to failed for a failing number)."""
        if call.ended:
            return
        self._status_callback(call, "initiated")
        if call.scenario == "failed":
            self._end(call, "failed", "the number could not be reached")
            return
        with self._lock:
            if call.ended:
                return
            call.start_time = self.clock.now()
        if not self._set_status(call, "ringing"):
            return
        self.note(call, "status", f"Ringing {call.to}", status="ringing")
        self._status_callback(call, "ringing")
        self._ring(call, answer=lambda: self._answer_outbound(call))

    def _ring(self, call: Call, answer: Callable[[], None], later: float = 0.0) -> None:
        """Ring for the ring time (plus `later` seconds), then answer, unless the number's scenario says otherwise."""
        s = self.settings
        ring = s.scaled(s.ring_seconds + later)
        timeout = s.scaled(call.timeout)
        if call.scenario == "failed":
            self._at(0, call, lambda: self._end(call, "failed", "the number could not be reached"))
        elif call.scenario == "busy":
            self._at(min(ring, timeout), call, lambda: self._end(call, "busy", "the line is busy"))
        elif call.scenario == "no-answer" or ring >= timeout:
            self._at(timeout, call, lambda: self._end(call, "no-answer", "nobody answered"))
        else:
            self._at(ring, call, lambda: None if call.status != "ringing" else answer())

    def _answer(self, call: Call) -> None:
        with self._lock:
            if not self._set_status(call, "in-progress"):
                return
            call.answered_at = self.clock.now()
            self._arm_time_limit(call)
        self.note(call, "status", "Answered", status="in-progress")
        self._status_callback(call, "answered")

    def _arm_time_limit(self, call: Call) -> None:
        """(Lock held.) End the call `time_limit` seconds after its answer."""
        if call.answered_at is None:
            return
        answered_at, limit = call.answered_at, call.time_limit
        left = answered_at + self.settings.scaled(limit) - self.clock.now()
        self._at(left, call, lambda: self._time_limit(call, answered_at, limit))

    def _time_limit(self, call: Call, answered_at: float, limit: float) -> None:
        if not call.ended and call.answered_at == answered_at and call.time_limit == limit:
            self.note(call, "status", "Time limit reached (32015: call terminated for exceeding its maximum duration)", code=32015)
            self._end(call, "completed", "time limit")

    def _answer_outbound(self, call: Call) -> None:
        self._answer(call)
        if call.ended:
            return
        if call.record is not None:
            recording = self.start_recording(call, SOURCE_OUTBOUND_API, call.record)
            with self._lock:
                call.recording_sid = recording.sid
            self.note(call, "record", "Recording the call (Record=true)", recording_url=self.recording_url(recording))
        if call.hangup_after:
            self._at(self.settings.scaled(call.hangup_after), call, lambda: self._planned_hang_up(call))
        if call.send_digits:
            # Sent before the TwiML runs; with SendDigits, MachineDetection is ignored (spec CreateCall).
            self.note(call, "digits", f"Twilio sends the digits {call.send_digits} to {call.to}", digits=call.send_digits)
            seconds = sum(SEND_DIGIT_SECONDS.get(key, KEY_SECONDS) for key in call.send_digits)
            self._at(self.settings.scaled(seconds), call, lambda: self._run_create_source(call))
        elif call.amd is not None:
            self._detect_machine(call)
        else:
            self._run_create_source(call)

    def _run_create_source(self, call: Call, extra: tuple[tuple[str, str], ...] = ()) -> None:
        """Run the `Url` (or `Twiml`) given on create."""
        if call.twiml is not None and not call.url:
            self._start(call, Source(twiml=call.twiml))
        else:
            self._start(call, Source(url=call.url, method=call.method, extra=extra))

    def _detect_machine(self, call: Call) -> None:
        """AMD: synchronous, the TwiML waits for `AnsweredBy`; `AsyncAmd`, it runs at once and the
        result goes to AsyncAmdStatusCallback."""
        amd = call.amd
        seconds, answered_by = amd.result(call.to)
        duration = ("MachineDetectionDuration", str(int(seconds * 1000)))

        def decided() -> None:
            if call.ended:
                return
            with self._lock:
                call.answered_by = answered_by
            self.note(call, "status", f"Answering machine detection: {answered_by} (after {seconds:g} s)", answered_by=answered_by)
            if not amd.asynchronous:
                self._run_create_source(call, (duration,))
            elif amd.callback:
                params = {"AccountSid": call.account_sid, "CallSid": call.sid, "AnsweredBy": answered_by, duration[0]: duration[1]}
                self._send_callback(call, "amd-callback", amd.callback, amd.callback_method, params)

        if amd.asynchronous:
            self._run_create_source(call)
        self._at(self.settings.scaled(seconds), call, decided)

    def answer_inbound(self, call: Call) -> None:
        """The app's TwiML picked up an inbound call: ringing → in-progress (the runner calls this)."""
        if call.status == "ringing":
            self._answer(call)

    def _planned_hang_up(self, call: Call) -> None:
        """The caller's patience ran out (`hangup_after`), unless they were asked to stay."""
        if call.hangup_after:
            self._caller_hangs_up(call)

    def _caller_hangs_up(self, call: Call) -> None:
        if call.ended:
            return
        self.note(call, "hangup", "Caller hung up")
        self._end(call, "completed" if call.answered else "canceled")

    def _pressed(self, call: Call, digits: str) -> None:
        if call.ended:
            return
        with self._lock:
            call.live_digits += digits
        self.note(call, "digits", f"Caller pressed {digits}", digits=digits)
        runner = self._runners.get(call.sid)
        if runner is not None and runner.waiting_for_input:
            self._resume(call, runner.token, "digits")

    def _spoke(self, call: Call, words: str) -> None:
        if call.ended:
            return
        with self._lock:
            call.live_speech.append(words)
        self.note(call, "speech", f"Caller says: {words}", speech=words)
        runner = self._runners.get(call.sid)
        if runner is not None and runner.waiting_for_input:
            self._resume(call, runner.token, "speech")

    def take_speech(self, call: Call, scripted: bool) -> str:
        """Words for a <Gather>: the next scripted group (when `scripted`) and those said live."""
        words = ""
        with self._lock:
            if scripted and call.speech_groups:
                words = call.speech_groups.pop(0)
            said, call.live_speech = call.live_speech, []
        if words:
            self.note(call, "speech", f"Caller says: {words}", speech=words)
        return " ".join(w for w in (words, *said) if w)

    def take_digits(self, call: Call, scripted: bool) -> str:
        """Keys for a <Gather>/<Record>: the next scripted group (when `scripted`) and those pressed live."""
        keys = ""
        with self._lock:
            if scripted and call.digit_groups:
                keys = call.digit_groups.pop(0)
            pressed, call.live_digits = call.live_digits, ""
        if keys:
            self.note(call, "digits", f"Caller pressed {keys}", digits=keys)
        return keys + pressed

    def has_input(self, call: Call) -> bool:
        """True when the caller pressed keys or said words no <Gather> took yet."""
        return bool(call.live_digits or call.live_speech)

    # ---- <Dial> legs

    def _dial_legs(self, parent: Call, token: int, cmd: Any) -> None:
        """A <Dial>'s legs, all ringing at once: outbound-dial, with the parent's SID; they skip
        `queued` (reference §4.1). The first to answer is connected, the others are canceled."""
        legs = []
        for target in cmd.targets:
            leg = Call(
                sid=new_sid("CA"),
                account_sid=parent.account_sid,
                to=target.to,
                from_=cmd.from_,
                direction="outbound-dial",
                created=self.clock.now(),
                status="ringing",
                parent_call_sid=parent.sid,
                status_callback=target.status_callback,
                status_callback_method=target.status_callback_method,
                status_callback_events=tuple(e for e in target.events if e in CALLBACK_EVENTS),
                timeout=float(cmd.timeout),
                scenario=SCENARIOS.get(target.to),
                dial_parent=(parent.sid, token),
                talk_limit=float(cmd.time_limit),
            )
            leg.start_time = leg.created
            self._add(leg)
            legs.append(leg)
        with self._lock:
            parent.children.extend(leg.sid for leg in legs)
            parent.dial_group = [leg.sid for leg in legs]
            parent.connected_leg = None
        for index, leg in enumerate(legs):
            self._post(leg, lambda leg=leg, index=index: self._ring_leg(parent, leg, index))

    def _ring_leg(self, parent: Call, leg: Call, index: int) -> None:
        self._status_callback(leg, "initiated")
        self._status_callback(leg, "ringing")
        # The n-th noun picks up n × 0.1 s after the first, so a run repeats exactly: the first noun wins a tie.
        self._ring(leg, answer=lambda: self._answer_leg(parent, leg), later=DIAL_STAGGER_SECONDS * index)

    def _answer_leg(self, parent: Call, leg: Call) -> None:
        with self._lock:
            first = not parent.ended and parent.connected_leg is None and leg.sid in parent.dial_group
            if first:
                parent.connected_leg = leg.sid
                losers = [self._calls[sid] for sid in parent.dial_group if sid != leg.sid and sid in self._calls]
        if not first:
            self._end(leg, "canceled", "the caller hung up" if parent.ended else "another leg answered first")
            return
        self._answer(leg)
        self.note(parent, "dial", f"{leg.to} answered; connected", call_sid=leg.sid)
        for loser in losers:
            self._end(loser, "canceled", "another leg answered first")
        talk = self.settings.dial_talk_seconds
        if leg.talk_limit is not None:
            talk = min(talk, leg.talk_limit)
        self._at(self.settings.scaled(talk), leg, lambda: self._end(leg, "completed", "the callee hung up"))

    def end_legs(self, call: Call, reason: str) -> Call | None:
        """The runner drops its <Dial>'s legs (the <Dial> was interrupted); returns the connected
        leg (else the last one) as it ended."""
        with self._lock:
            legs = [self._calls[sid] for sid in call.dial_group if sid in self._calls]
            connected = call.connected_leg
        for leg in legs:
            self._end(leg, "completed" if leg.answered else "canceled", reason)
        chosen = connected or (legs[-1].sid if legs else None)
        return self.get(chosen) if chosen else None

    # ---- programs (TwiML): the runner decides what comes next, the engine when

    def _start(self, call: Call, source: Source) -> None:
        if call.ended:
            return
        runner = self._runner_class(self, call, source)
        self._runners[call.sid] = runner
        self._follow(call, runner, runner.start())

    def _redirect(self, call: Call, source: Source) -> None:
        """REST `Url`/`Twiml`: the runner winds down what runs (Dial/Enqueue actions), then runs `source`."""
        if call.ended:
            return
        runner = self._runners.get(call.sid)
        if runner is None or runner.done:
            self.note(call, "redirect", f"Call redirected to {source.describe()}")
            self._start(call, source)
        else:
            self._follow(call, runner, runner.interrupt("redirect", source))

    def _resume(self, call: Call, token: int, value: Any) -> None:
        """Resume the call's runner with `value`, if it still waits on `token`."""
        runner = self._runners.get(call.sid)
        if runner is None or call.ended:
            return
        self._follow(call, runner, runner.resume(token, value))

    def _follow(self, call: Call, runner: Any, cmd: Any) -> None:
        """Arrange for what the runner now waits on (a typed command from interpreter.py)."""
        from .interpreter import AwaitInput, DialLegs, End, Fetch, Park, Sleep

        if cmd is None:
            if runner.done and self._runners.get(call.sid) is runner:
                del self._runners[call.sid]
            return
        if call.ended:
            self._wind_down(call, runner, cmd)
            return
        token = runner.token
        if isinstance(cmd, Sleep):
            self._at(self.settings.scaled(cmd.seconds), call, lambda: self._resume(call, token, None))
        elif isinstance(cmd, AwaitInput):
            if self.has_input(call):
                self._at(0, call, lambda: self._resume(call, token, "input"))
            else:
                self._at(self.settings.scaled(cmd.timeout), call, lambda: self._resume(call, token, "timeout"))
        elif isinstance(cmd, Fetch):
            # Its own lane task: between two documents the worker goes back to the pool.
            latency = self._chaos_of(call).webhooks.latency_ms / 1000
            if latency:
                self._at(latency, call, lambda: self._fetch(call, runner, token, cmd))
            else:
                self._post(call, lambda: self._fetch(call, runner, token, cmd))
        elif isinstance(cmd, DialLegs):
            self._dial_legs(call, token, cmd)
        elif isinstance(cmd, End):
            self._end(call, cmd.status or ("completed" if call.answered else "canceled"), cmd.reason)
        elif isinstance(cmd, Park):
            pass  # only a redirect or the end of the call moves it on
        else:
            raise TypeError(f"unknown command {cmd!r}")

    def _fetch(self, call: Call, runner: Any, token: int, cmd: Any) -> None:
        if self._runners.get(call.sid) is not runner or runner.token != token:
            return  # interrupted meanwhile
        resp = self._request(call, cmd)
        if call.ended:
            return  # the end of the call interrupts the runner (see _after_end)
        self._follow(call, runner, runner.resume(token, resp))

    def _request(self, call: Call, cmd: Any) -> Any:
        with self._lock:
            params = webhook_params(call)
        return self.deliver(call, "twiml", cmd.url, cmd.method, params + list(cmd.extra))

    def _wind_down(self, call: Call, runner: Any, cmd: Any) -> None:
        """The call has ended: only the requests the runner makes on its way out still happen."""
        from .interpreter import Fetch

        for _ in range(limits.MAX_DOCUMENT_CHAIN):
            if cmd is None:
                return
            if isinstance(cmd, Fetch):
                cmd = runner.resume(runner.token, self._request(call, cmd))
            else:
                cmd = runner.interrupt("hangup")


class Batch:
    """Tasks scheduled during one REST request, released after its response has been sent."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.tasks: list[tuple[float, Call, Callable[[], None]]] = []
        self.released = False

    def __enter__(self) -> Batch:
        with self.engine._cond:
            self.engine._open_batches += 1
        self.engine._local.held = self.tasks
        return self

    def __exit__(self, *exc: Any) -> None:
        self.engine._local.held = None

    def release(self) -> None:
        """Hand the held tasks to the scheduler (idempotent)."""
        if self.released:
            return
        self.released = True
        for delay, call, task in self.tasks:
            self.engine._at(delay, call, task)
        with self.engine._cond:
            self.engine._open_batches -= 1
            self.engine._cond.notify_all()
