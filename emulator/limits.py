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
