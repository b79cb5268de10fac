"""Twilio's numeric limits, one place per fact. Each is cited in emulator/README.md ("What Twilio does")."""

from __future__ import annotations

#: A call lasts at most 24 hours; `TimeLimit` (REST) and `<Dial timeLimit>` may be set from one
#: minute up to that. Default: 4 hours.
MAX_CALL_SECONDS = 86_400
MIN_TIME_LIMIT = 60
DEFAULT_TIME_LIMIT = 14_400

#: REST `Timeout` (ring time): default 60, at most 600 seconds (21208 when invalid).
DEFAULT_TIMEOUT = 60
MAX_TIMEOUT = 600

#: `<Dial timeout>`: default 30 s; the ring bound is the same 600 s (13212 when invalid).
DIAL_DEFAULT_TIMEOUT = 30

#: `<Gather timeout>`: default 5 s (13313). `<Record timeout>` (silence): default 5 s (13611).
GATHER_DEFAULT_TIMEOUT = 5
RECORD_DEFAULT_TIMEOUT = 5
#: `<Record maxLength>`: default 3600 s (13612).
RECORD_DEFAULT_MAX_LENGTH = 3_600

#: The `Twiml` parameter (32018) and a fetched TwiML document (11750).
MAX_TWIML_CHARS = 4_000
MAX_TWIML_BYTES = 64 * 1024

#: Documents fetched in a row while the caller hears nothing (a `<Redirect>` loop) before the
#: call is cut with 14106 (Twilio's documented document-retrieval limit, 50).
MAX_DOCUMENT_CHAIN = 50

#: No emulated wait is longer than a call can last; the scheduler also caps what it is given,
#: so no value (times EMULATOR_TIME_SCALE) can overflow the clock.
MAX_DELAY_SECONDS = 10 * 365 * 86_400.0

#: Webhook connection overrides (`#ct=…&rt=…&tt=…&rc=…&rp=…`): (default, low, high), in
#: milliseconds or a count; the retry policies and the default one.
CONNECT_TIMEOUT_MS = (5_000, 100, 10_000)
READ_TIMEOUT_MS = (15_000, 100, 15_000)
TOTAL_TIME_MS = (15_000, 100, 15_000)
RETRY_COUNT = (1, 0, 5)
RETRY_POLICIES = ("4xx", "5xx", "rt", "ct", "all")
DEFAULT_RETRY_POLICY = ("ct",)

#: `SendDigits`: at most 32 keys. `MachineDetectionTimeout`: 3 to 59 seconds, default 30.
MAX_SEND_DIGITS = 32
MACHINE_DETECTION_TIMEOUT = (30, 3, 59)
