"""Calls, their state machine, the injectable clock, and the scheduler that decides what happens next.

Everything that happens *after* a REST response (ringing, answering, running TwiML, status
callbacks) is a task on one scheduler thread, ordered by the clock. Tests use `ManualClock` and
`Engine.advance()`, which steps emulated time and waits until every task due by then has run and
every status callback has been delivered: fast, and never flaky.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

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

SUBRESOURCES = (
    ("notifications", "Notifications"),
    ("recordings", "Recordings"),
    ("payments", "Payments"),
    ("events", "Events"),
    ("siprec", "Siprec"),
    ("streams", "Streams"),
    ("transcriptions", "Transcriptions"),
    ("user_defined_message_subscriptions", "UserDefinedMessageSubscriptions"),
    ("user_defined_messages", "UserDefinedMessages"),
)


# --------------------------------------------------------------------------- clocks


class RealClock:
    """Wall-clock time; the default."""

    def now(self) -> float:
        """Seconds since the epoch."""
        return time.time()

    def wait(self, cond: threading.Condition, seconds: float | None) -> None:
        """Block on `cond` (held) for at most `seconds` of this clock's time."""
        cond.wait(timeout=seconds)


class ManualClock:
    """A clock that only moves when told to (`advance`). Used by tests, with `Engine.advance`."""

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
        """Move time forward; the engine notices on its next look (Engine.advance pokes it)."""
        with self._lock:
            self._now += seconds

    def wait(self, cond: threading.Condition, seconds: float | None) -> None:
        """Emulated time never passes by itself: wait until poked (with a real-time safety net)."""
        cond.wait(timeout=0.5)


# --------------------------------------------------------------------------- helpers


def new_sid(prefix: str) -> str:
    """A random Twilio-style SID: two-letter prefix and 32 hex digits."""
    return prefix + secrets.token_hex(16)


def rfc2822(ts: float | None) -> str | None:
    """Format epoch seconds the way Twilio does in JSON and callbacks."""
    if ts is None:
        return None
    return format_datetime(datetime.fromtimestamp(int(ts), tz=UTC))


def format_number(number: str | None) -> str | None:
    """Display form of a number: `(555) 555-0100` for NANP numbers, otherwise unchanged."""
    if number is None:
        return None
    m = re.fullmatch(r"\+1(\d{3})(\d{3})(\d{4})", number)
    if m:
        return f"({m.group(1)}) {m.group(2)}-{m.group(3)}"
    return number


def geo(number: str) -> dict[str, str]:
    """Best-effort geo fields. Twilio often sends empty strings; we only know the country."""
    country = "US" if re.fullmatch(r"\+1\d{10}", number or "") else ""
    return {"City": "", "State": "", "Zip": "", "Country": country}


# --------------------------------------------------------------------------- settings


@dataclass
class Settings:
    """Everything configurable, read once in create_app (see emulator/README.md)."""

    account_sid: str
    auth_token: str
    phone_number: str
    voice_url: str
    voice_method: str = "POST"
    voice_fallback_url: str = ""
    voice_fallback_method: str = "POST"
    status_callback: str = ""
    status_callback_method: str = "POST"
    public_url: str = "http://127.0.0.1:8010"
    ring_seconds: float = 1.0
    say_seconds: float = 1.0
    play_seconds: float = 2.0
    inbound_hangup_after: float = 60.0
    dial_talk_seconds: float = 5.0
    record_seconds: float = 3.0
    time_scale: float = 1.0
    webhook_timeout: float = 15.0

    def scaled(self, seconds: float) -> float:
        """An emulated duration, multiplied by EMULATOR_TIME_SCALE."""
        return max(0.0, float(seconds)) * self.time_scale


# --------------------------------------------------------------------------- calls


@dataclass
class Call:
    """One call leg and everything the emulator knows about it."""

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
    timeout: float = 60.0
    time_limit: float = 14400.0
    call_token: str | None = None
    scenario: str | None = None
    hangup_after: float | None = None
    #: What the simulated caller will press at successive <Gather>s, and what they pressed live.
    digit_groups: list[str] = field(default_factory=list)
    live_digits: str = ""
    sequence: int = 0
    transcript: list[dict[str, Any]] = field(default_factory=list)
    # Program state (only the scheduler thread touches these).
    program: Any = None
    wait_token: int = 0
    waiting_for: str | None = None
    #: For a <Dial> child leg: the parent's program waits for this leg to end.
    dial_parent_token: int | None = None
    talk_limit: float | None = None
    running: bool = False
    children: list[str] = field(default_factory=list)

    @property
    def ended(self) -> bool:
        """True once the call has a final status."""
        return self.status in FINAL_STATUSES

    @property
    def answered(self) -> bool:
        """True once somebody picked up."""
        return self.answered_at is not None

    def duration(self) -> int:
        """Whole seconds from answer to end (or to now for a live call)."""
        if self.answered_at is None or self.end_time is None:
            return 0
        return int(self.end_time - self.answered_at)

    def resource(self) -> dict[str, Any]:
        """The call as Twilio's Call resource (every field of the spec's schema, plus stir_verstat)."""
        base = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{self.sid}"
        if self.ended:
            duration: str | None = str(self.duration())
        else:
            duration = None
        return {
            "sid": self.sid,
            "date_created": rfc2822(self.created),
            "date_updated": rfc2822(self.updated or self.created),
            "parent_call_sid": self.parent_call_sid,
            "account_sid": self.account_sid,
            "to": self.to,
            "to_formatted": format_number(self.to),
            "from": self.from_,
            "from_formatted": format_number(self.from_),
            "phone_number_sid": self.phone_number_sid,
            "status": self.status,
            "start_time": rfc2822(self.start_time),
            "end_time": rfc2822(self.end_time),
            "duration": duration,
            "price": None,
            "price_unit": "USD",
            "direction": self.direction,
            "answered_by": None,
            "api_version": API_VERSION,
            "forwarded_from": None,
            "group_sid": None,
            "caller_name": self.caller_name,
            "queue_time": "0",
            "trunk_sid": None,
            "uri": base + ".json",
            "subresource_uris": {key: f"{base}/{name}.json" for key, name in SUBRESOURCES},
            "stir_verstat": None,
        }

    def webhook_params(self, status: str | None = None) -> list[tuple[str, str]]:
        """The parameters Twilio sends about this leg on every webhook (reference §5)."""
        params: dict[str, str] = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": self.sid,
            "CallStatus": status or self.status,
            "Called": self.to,
            "Caller": self.from_,
            "Direction": self.direction,
            "From": self.from_,
            "To": self.to,
        }
        for prefix, number in (("Called", self.to), ("Caller", self.from_), ("From", self.from_), ("To", self.to)):
            for key, value in geo(number).items():
                params[prefix + key] = value
        if self.caller_name:
            params["CallerName"] = self.caller_name
        if self.parent_call_sid:
            params["ParentCallSid"] = self.parent_call_sid
        if self.call_token:
            params["CallToken"] = self.call_token
        return sorted(params.items())


# --------------------------------------------------------------------------- engine


class Engine:
    """Owns the calls and runs everything that happens to them, in emulated time."""

    def __init__(self, settings: Settings, clock: RealClock | ManualClock | None = None, webhooks: Any = None):
        from .webhooks import (  # late import: webhooks imports engine helpers
            Deliverer,
            WebhookClient,
        )

        self.settings = settings
        self.clock = clock or RealClock()
        self.webhooks = webhooks or WebhookClient(settings.auth_token, timeout=settings.webhook_timeout)
        self.deliverer = Deliverer(self.webhooks, on_done=self._delivery_done)
        self.calls: dict[str, Call] = {}
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self._tasks: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._running = 0
        self._open_batches = 0
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._local = threading.local()
        self.phone_number_sid = "PN" + secrets.token_hex(16)

    # ---- scheduler

    def _ensure_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="emulator-engine", daemon=True)
            self._thread.start()
            self.deliverer.start()

    def schedule(self, delay: float, fn: Callable[[], None]) -> None:
        """Run `fn` on the scheduler thread `delay` emulated seconds from now.

        Inside `batch()` (a REST request) the task is held back until the response has been sent.
        """
        due = self.clock.now() + max(0.0, delay)
        held = getattr(self._local, "held", None)
        if held is not None:
            held.append((delay, fn))
            return
        with self.cond:
            self._ensure_thread()
            heapq.heappush(self._tasks, (due, next(self._seq), fn))
            self.cond.notify_all()

    def batch(self) -> Batch:
        """Hold back tasks scheduled by this thread until `Batch.release()` (after the HTTP response)."""
        return Batch(self)

    def _loop(self) -> None:
        while True:
            with self.cond:
                while not self._stopping:
                    now = self.clock.now()
                    if self._tasks and self._tasks[0][0] <= now:
                        break
                    wait = (self._tasks[0][0] - now) if self._tasks else None
                    self.clock.wait(self.cond, wait)
                if self._stopping:
                    return
                _, _, fn = heapq.heappop(self._tasks)
                self._running += 1
            try:
                fn()
            except Exception:  # a bug in one call must not stop the others
                log.exception("emulator task failed")
            finally:
                with self.cond:
                    self._running -= 1
                    self.cond.notify_all()

    def _delivery_done(self) -> None:
        with self.cond:
            self.cond.notify_all()

    def _idle(self) -> bool:
        now = self.clock.now()
        due = bool(self._tasks) and self._tasks[0][0] <= now
        return not due and self._running == 0 and self._open_batches == 0 and self.deliverer.idle()

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Block until nothing is due, running, held in a batch, or waiting for delivery."""
        deadline = time.monotonic() + timeout
        with self.cond:
            self.cond.notify_all()
            while not self._idle():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("emulator did not settle")
                self.cond.wait(timeout=min(left, 0.05))

    def advance(self, seconds: float = 0.0, step: float = 0.25) -> None:
        """Manual clock only: move emulated time forward in small steps, settling after each."""
        self.wait_idle()
        remaining = seconds
        while True:
            self.wait_idle()
            if remaining <= 1e-9:
                break
            delta = min(step, remaining)
            self.clock.advance(delta)
            remaining -= delta
        self.wait_idle()

    def stop(self) -> None:
        """Stop the scheduler and delivery threads (tests, server shutdown)."""
        with self.cond:
            self._stopping = True
            self.cond.notify_all()
        self.deliverer.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # ---- transcript and callbacks

    def note(self, call: Call, kind: str, text: str, **details: Any) -> None:
        """Add a line to the call's caller's-eye transcript."""
        now = self.clock.now()
        entry = {"at": rfc2822(now), "t": round(now - call.created, 3), "kind": kind, "text": text}
        entry.update(details)
        with self.lock:
            call.transcript.append(entry)

    def _status_callback(self, call: Call, event: str) -> None:
        """Queue one status callback (reference §4.1, §6) if the call asked for this event."""
        if not call.status_callback:
            return
        if event != "completed" and event not in call.status_callback_events:
            return
        status = {"initiated": "initiated", "ringing": "ringing", "answered": "in-progress"}.get(event, call.status)
        with self.lock:
            seq = call.sequence
            call.sequence += 1
        params = dict(call.webhook_params(status))
        params.update(
            {
                "CallbackSource": "call-progress-events",
                "SequenceNumber": str(seq),
                "Timestamp": rfc2822(self.clock.now()),
            }
        )
        if event == "completed":
            seconds = call.duration()
            params["CallDuration"] = str(seconds)
            params["Duration"] = str(math.ceil(seconds / 60))
            params["SipResponseCode"] = str(SIP_RESPONSE_CODES.get(call.status, 200))
        self.deliverer.submit(
            call.status_callback,
            call.status_callback_method,
            sorted(params.items()),
            on_result=lambda ok, detail: None if ok else self.note(call, "warning", detail, code=15003),
        )

    # ---- creating calls

    def _add(self, call: Call) -> Call:
        with self.lock:
            call.updated = call.created
            self.calls[call.sid] = call
        return call

    def create_outbound(self, **fields: Any) -> Call:
        """A call created through the REST API: queued now, dialed once the response is out."""
        call = Call(
            sid=new_sid("CA"),
            account_sid=self.settings.account_sid,
            direction="outbound-api",
            created=self.clock.now(),
            status="queued",
            phone_number_sid=self.phone_number_sid if fields.get("from_") == self.settings.phone_number else None,
            scenario=SCENARIOS.get(fields.get("to", "")),
            **fields,
        )
        self._add(call)
        self.note(call, "status", f"Call queued to {call.to}", status="queued")
        self.schedule(0, lambda: self._dial(call))
        return call

    def incoming(
        self,
        from_: str,
        to: str | None = None,
        caller_name: str | None = None,
        hangup_after: float | None = None,
        digits: str = "",
    ) -> Call:
        """A simulated caller rings the emulator's phone number."""
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
            phone_number_sid=self.phone_number_sid,
            caller_name=caller_name or None,
            url=s.voice_url,
            method=s.voice_method,
            fallback_url=s.voice_fallback_url or None,
            fallback_method=s.voice_fallback_method,
            status_callback=s.status_callback or None,
            status_callback_method=s.status_callback_method,
            status_callback_events=(),  # inbound calls get only the end (reference §4.1)
            call_token=f"%7B%22parentCallInfoToken%22%3A%22{secrets.token_hex(8)}%22%7D",
            hangup_after=hangup_after,
            digit_groups=[g for g in digits.split(",")] if digits else [],
        )
        call.start_time = call.created
        self._add(call)
        who = f"{call.from_} ({call.caller_name})" if call.caller_name else call.from_
        self.note(call, "status", f"{who} calls {call.to}; ringing", status="ringing")
        if hangup_after:
            self.schedule(s.scaled(hangup_after), lambda: self._caller_hangs_up(call))
        self.schedule(0, lambda: self._start_program(call, ("url", call.url, call.method, [])))
        return call

    def create_child(self, parent: Call, to: str, from_: str, noun: dict[str, Any], timeout: float, token: int) -> Call:
        """A <Dial> leg: outbound-dial, with the parent's SID; skips queued (reference §4.1)."""
        events = tuple(e for e in noun.get("events", ()) if e in CALLBACK_EVENTS)
        call = Call(
            sid=new_sid("CA"),
            account_sid=parent.account_sid,
            to=to,
            from_=from_,
            direction="outbound-dial",
            created=self.clock.now(),
            status="ringing",
            parent_call_sid=parent.sid,
            status_callback=noun.get("status_callback"),
            status_callback_method=noun.get("status_callback_method") or "POST",
            status_callback_events=events,
            timeout=timeout,
            scenario=SCENARIOS.get(to),
            dial_parent_token=token,
            talk_limit=noun.get("talk_limit"),
        )
        call.start_time = call.created
        self._add(call)
        parent.children.append(call.sid)
        self._status_callback(call, "initiated")
        self._status_callback(call, "ringing")
        self._ring(call, answer=lambda: self._answer_child(parent, call))
        return call

    # ---- the state machine

    def _touch(self, call: Call, status: str) -> bool:
        """Set the call's status, unless it has ended: a final status never changes (False then).

        Checked under the lock, so a REST cancel and the scheduler's next step cannot interleave.
        """
        with self.lock:
            if call.ended:
                return False
            call.status = status
            call.updated = self.clock.now()
            return True

    def _dial(self, call: Call) -> None:
        """queued → ringing (or straight to failed for a failing number)."""
        if call.ended:
            return
        self._status_callback(call, "initiated")
        if call.scenario == "failed":
            self.finish(call, "failed", reason="the number could not be reached")
            return
        with self.lock:
            if call.ended:
                return
            call.start_time = self.clock.now()
        if not self._touch(call, "ringing"):
            return
        self.note(call, "status", f"Ringing {call.to}", status="ringing")
        self._status_callback(call, "ringing")
        self._ring(call, answer=lambda: self._answer_outbound(call))

    def _ring(self, call: Call, answer: Callable[[], None]) -> None:
        s = self.settings
        ring = s.scaled(s.ring_seconds)
        timeout = s.scaled(call.timeout)
        if call.scenario == "failed":
            self.schedule(0, lambda: self.finish(call, "failed", reason="the number could not be reached"))
        elif call.scenario == "busy":
            self.schedule(min(ring, timeout), lambda: self.finish(call, "busy", reason="the line is busy"))
        elif call.scenario == "no-answer" or ring >= timeout:
            self.schedule(timeout, lambda: self.finish(call, "no-answer", reason="nobody answered"))
        else:
            self.schedule(ring, lambda: None if call.status != "ringing" else answer())

    def _answer(self, call: Call) -> None:
        now = self.clock.now()
        with self.lock:
            if not self._touch(call, "in-progress"):
                return
            call.answered_at = now
        self.note(call, "status", "Answered", status="in-progress")
        self._status_callback(call, "answered")
        limit = call.time_limit
        self.schedule(self.settings.scaled(limit), lambda: self._time_limit(call, now, limit))

    def _answer_outbound(self, call: Call) -> None:
        self._answer(call)
        if call.hangup_after:
            self.schedule(self.settings.scaled(call.hangup_after), lambda: self._caller_hangs_up(call))
        if call.twiml is not None and not call.url:
            source: tuple = ("twiml", call.twiml)
        else:
            source = ("url", call.url, call.method, [])
        self._start_program(call, source)

    def _answer_child(self, parent: Call, child: Call) -> None:
        if parent.ended:
            self.finish(child, "canceled", reason="the caller hung up")
            return
        self._answer(child)
        self.note(parent, "dial", f"{child.to} answered; connected", call_sid=child.sid)
        talk = self.settings.dial_talk_seconds
        if child.talk_limit is not None:
            talk = min(talk, child.talk_limit)
        self.schedule(self.settings.scaled(talk), lambda: self.finish(child, "completed", reason="the callee hung up"))

    def answer_inbound(self, call: Call) -> None:
        """The app's TwiML picked up an inbound call: ringing → in-progress."""
        if call.status == "ringing":
            self._answer(call)

    def set_time_limit(self, call: Call, seconds: float) -> None:
        """REST `TimeLimit`: a new maximum length, counted from the answer."""
        with self.lock:
            call.time_limit = seconds
        if call.answered_at is not None:
            left = call.answered_at + self.settings.scaled(seconds) - self.clock.now()
            at = call.answered_at
            self.schedule(max(0.0, left), lambda: self._time_limit(call, at, seconds))

    def _time_limit(self, call: Call, answered_at: float, limit: float) -> None:
        if not call.ended and call.answered_at == answered_at and call.time_limit == limit:
            self.note(call, "status", "Time limit reached")
            self.hang_up(call)

    def _caller_hangs_up(self, call: Call) -> None:
        if call.ended:
            return
        self.note(call, "hangup", "Caller hung up")
        self.hang_up(call)

    def hang_up(self, call: Call, status: str | None = None) -> None:
        """End a live call: completed if it was answered, else canceled (or the given status)."""
        if call.ended:
            return
        final = status or ("completed" if call.answered else "canceled")
        self.finish(call, final)

    def finish(self, call: Call, status: str, reason: str | None = None, sync: bool = False) -> None:
        """Move a call to its final status; stop its TwiML, its dialed legs, and send the end callback.

        With `sync`, only the state changes now (REST thread); the side effects are scheduled.
        """
        with self.lock:
            if call.ended:
                return
            call.end_time = self.clock.now()
            call.wait_token += 1
            self._touch(call, status)
        text = f"Call ended: {status}" + (f" ({reason})" if reason else "")
        self.note(call, "status", text, status=status)
        if sync:
            self.schedule(0, lambda: self._after_finish(call))
        else:
            self._after_finish(call)

    def _after_finish(self, call: Call) -> None:
        from .interpreter import stop_program

        stop_program(self, call)
        for sid in call.children:
            child = self.calls.get(sid)
            if child and not child.ended:
                self.hang_up(child)
        self._status_callback(call, "completed")
        if call.dial_parent_token is not None and call.parent_call_sid:
            parent = self.calls.get(call.parent_call_sid)
            if parent is not None:
                self.resume(parent, call.dial_parent_token, ("dial-ended", call))

    # ---- programs (TwiML) — the interpreter drives, the engine keeps time

    def _start_program(self, call: Call, source: tuple) -> None:
        from .interpreter import start_program

        if not call.ended:
            start_program(self, call, source)

    def resume(self, call: Call, token: int, value: Any) -> None:
        """Resume the call's waiting program with `value`, if it is still waiting on `token`."""
        from .interpreter import drive

        if call.program is not None and call.wait_token == token and not call.ended:
            drive(self, call, value)

    def redirect(self, call: Call, source: tuple) -> None:
        """Replace what the call is running (REST `Url`/`Twiml`), with the interrupted verb's side effects."""
        from .interpreter import redirect_program

        if not call.ended:
            redirect_program(self, call, source)

    def press(self, call: Call, digits: str) -> None:
        """The simulated caller presses keys now (a waiting <Gather> takes them)."""
        with self.lock:
            call.live_digits += digits
        self.note(call, "digits", f"Caller pressed {digits}", digits=digits)
        if call.waiting_for == "gather":
            self.resume(call, call.wait_token, ("digits", None))

    # ---- queries

    def get(self, sid: str) -> Call | None:
        """The call with this SID, or None."""
        with self.lock:
            return self.calls.get(sid)

    def all_calls(self) -> list[Call]:
        """Every call, newest first (Twilio's list order)."""
        with self.lock:
            calls = list(self.calls.values())
        return sorted(calls, key=lambda c: c.created, reverse=True)

    def delete(self, sid: str) -> None:
        """Forget a call (REST DELETE)."""
        with self.lock:
            self.calls.pop(sid, None)


class Batch:
    """Tasks scheduled during one REST request, released after its response has been sent."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.tasks: list[tuple[float, Callable[[], None]]] = []
        self.released = False

    def __enter__(self) -> Batch:
        with self.engine.cond:
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
        for delay, fn in self.tasks:
            self.engine.schedule(delay, fn)
        with self.engine.cond:
            self.engine._open_batches -= 1
            self.engine.cond.notify_all()
