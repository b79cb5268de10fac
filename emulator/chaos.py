"""Chaos: the faults real Twilio has, on purpose and reproducibly.

A `Chaos` says how often each fault happens. The engine holds the run's (EMULATOR_CHAOS,
`POST /emulator/chaos`); a simulated caller may bring its own. Decisions come from seeded random
generators: one for the REST API (drawn in request order) and one per call (drawn in the call's
own order, seeded with the run's seed and the call's ordinal), so the same seed and the same calls
in the same order get the same faults.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field, replace
from typing import Any


class ChaosError(ValueError):
    """A chaos setting that cannot be used (400 with this message)."""


@dataclass(frozen=True)
class CallbackFaults:
    """Status callbacks: each fault at a rate from 0 to 1."""

    duplicate: float = 0.0  # sent twice, with the same I-Twilio-Idempotency-Token
    reorder: float = 0.0  # held back until after the call's next status callback
    delay: float = 0.0  # sent `delay_ms` later (so later ones may overtake it)
    delay_ms: int = 0
    drop: float = 0.0  # never sent


@dataclass(frozen=True)
class WebhookFaults:
    """TwiML requests: added latency before each is sent."""

    latency_ms: int = 0


@dataclass(frozen=True)
class RestFaults:
    """The REST API: 429/20429 at a rate, creates queued at `calls_per_second` (0: not queued), and
    lost responses (the call is created, the client's request times out) at a rate."""

    rate_limit: float = 0.0
    calls_per_second: float = 0.0
    lost_response: float = 0.0


@dataclass(frozen=True)
class Chaos:
    """One chaos setting. All zero (the default) is no chaos."""

    seed: int = 0
    status_callbacks: CallbackFaults = field(default_factory=CallbackFaults)
    webhooks: WebhookFaults = field(default_factory=WebhookFaults)
    rest: RestFaults = field(default_factory=RestFaults)
    preset: str | None = None

    @property
    def active(self) -> bool:
        """True when any fault can happen."""
        return self.touches_calls or any(v for v in asdict(self.rest).values())

    @property
    def touches_calls(self) -> bool:
        """True when a call's callbacks or webhooks can be affected."""
        c = self.status_callbacks
        return bool(c.duplicate or c.reorder or c.drop or (c.delay and c.delay_ms) or self.webhooks.latency_ms)

    def as_json(self) -> dict[str, Any]:
        """The setting as `GET /emulator/chaos` shows it."""
        body = asdict(self)
        body["active"] = self.active
        return body

    def summary(self) -> str:
        """One line for the console: what is on."""
        if not self.active:
            return "off"
        c, rest = self.status_callbacks, self.rest
        parts = [f"{name} {getattr(c, name):.0%}" for name in ("duplicate", "reorder", "drop") if getattr(c, name)]
        if c.delay and c.delay_ms:
            parts.append(f"delay {c.delay:.0%} by {c.delay_ms} ms")
        if self.webhooks.latency_ms:
            parts.append(f"webhook latency {self.webhooks.latency_ms} ms")
        if rest.rate_limit:
            parts.append(f"429 {rest.rate_limit:.0%}")
        if rest.calls_per_second:
            parts.append(f"{rest.calls_per_second:g} call/s")
        if rest.lost_response:
            parts.append(f"lost responses {rest.lost_response:.0%}")
        return (f"{self.preset}: " if self.preset else "") + ", ".join(parts) + f" (seed {self.seed})"


OFF = Chaos()
#: The demo's "bad day": a mild mix of every fault.
PRESETS = {
    "off": OFF,
    "bad-day": Chaos(
        seed=2026,
        status_callbacks=CallbackFaults(duplicate=0.1, reorder=0.1, delay=0.2, delay_ms=1500, drop=0.02),
        webhooks=WebhookFaults(latency_ms=200),
        rest=RestFaults(rate_limit=0.05, calls_per_second=1, lost_response=0.02),
        preset="bad-day",
    ),
}

_RATE = (0.0, 1.0)
_LIMITS = {
    "duplicate": _RATE, "reorder": _RATE, "delay": _RATE, "drop": _RATE, "rate_limit": _RATE, "lost_response": _RATE,
    "delay_ms": (0, 60_000), "latency_ms": (0, 60_000), "calls_per_second": (0.0, 1000.0),
}


def parse(value: Any) -> Chaos:
    """A chaos setting from a preset name, a JSON string or a decoded JSON object (ChaosError if bad).

    `{"preset": "bad-day", "seed": 7}` starts from a preset and changes what is given.
    """
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return OFF
        if text in PRESETS:
            return PRESETS[text]
        try:
            value = json.loads(text)
        except ValueError:
            raise ChaosError(f"chaos must be a preset ({', '.join(PRESETS)}) or a JSON object") from None
    if not isinstance(value, dict):
        raise ChaosError("chaos must be a JSON object")
    value = dict(value)
    base = OFF
    if "preset" in value:
        name = value.pop("preset")
        if name not in PRESETS:
            raise ChaosError(f"unknown preset {name!r}: one of {', '.join(PRESETS)}")
        base = PRESETS[name]
    changes: dict[str, Any] = {}
    for key, item in value.items():
        if key == "seed":
            if isinstance(item, bool) or not isinstance(item, int):
                raise ChaosError("seed must be a whole number")
            changes["seed"] = item
        elif key in ("status_callbacks", "webhooks", "rest"):
            changes[key] = _section(getattr(base, key), key, item)
        else:
            raise ChaosError(f"unknown chaos setting {key!r}: seed, status_callbacks, webhooks, rest, preset")
    return replace(base, **changes)


def _section(base: Any, name: str, item: Any) -> Any:
    if not isinstance(item, dict):
        raise ChaosError(f"{name} must be a JSON object")
    fields = asdict(base)
    for key, number in item.items():
        if key not in fields:
            raise ChaosError(f"unknown {name} setting {key!r}: {', '.join(fields)}")
        low, high = _LIMITS[key]
        if isinstance(number, bool) or not isinstance(number, int | float) or not low <= number <= high:
            raise ChaosError(f"{name}.{key} must be a number from {low:g} to {high:g}")
        fields[key] = int(number) if key.endswith("_ms") else float(number)
    return type(base)(**fields)


@dataclass
class CallbackPlan:
    """What chaos does to one status callback."""

    drop: bool = False
    duplicate: bool = False
    reorder: bool = False
    delay_ms: int = 0

    def notes(self) -> tuple[str, ...]:
        """How the inspector says it."""
        out = []
        if self.duplicate:
            out.append("chaos: sent twice")
        if self.reorder:
            out.append("chaos: held back behind the next callback")
        if self.delay_ms:
            out.append(f"chaos: delayed {self.delay_ms} ms")
        return tuple(out)


def plan_callback(chaos: Chaos, rng: random.Random, final: bool) -> CallbackPlan:
    """Draw one status callback's faults (always four draws, so later decisions do not shift)."""
    c = chaos.status_callbacks
    drop, duplicate, reorder, delay = (rng.random() for _ in range(4))
    return CallbackPlan(
        drop=drop < c.drop,
        duplicate=duplicate < c.duplicate,
        reorder=reorder < c.reorder and not final,  # the last callback has nothing to follow
        delay_ms=c.delay_ms if delay < c.delay else 0,
    )
