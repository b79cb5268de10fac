"""Recordings: what `<Record>` and `Record=true` produce, and their media.

A `Recording` is written only by the engine (like a call). Its media is generated when it is
fetched, from its duration alone, and streamed: a WAV (8 kHz, 16-bit mono, as Twilio's) of a soft
tone, one beep a second, or an MP3 of digital silence (valid MPEG-1 Layer III frames). Nothing is
kept in memory but the record.
"""

from __future__ import annotations

import array
import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass, replace

#: Where a recording came from (the spec's `recording_enum_source`).
SOURCE_RECORD_VERB = "RecordVerb"
SOURCE_OUTBOUND_API = "OutboundAPI"
#: RecordingStatusCallbackEvent values; Twilio's default is `completed`.
RECORDING_EVENTS = ("in-progress", "completed", "absent")
#: What Twilio charges for recording, per started minute (USD; shown negative, as Twilio does).
PRICE_PER_MINUTE = 0.0025

WAV_RATE = 8_000
MP3_RATE = 32_000
MP3_SAMPLES_PER_FRAME = 1_152
#: One MPEG-1 Layer III frame, 32 kbit/s, 32 kHz, mono, no CRC: a header, then side information
#: and main data that are all zero (no spectral lines: silence). 144 bytes = 144 * 32000 / 32000.
MP3_FRAME = bytes((0xFF, 0xFB, 0x18, 0xC0)) + bytes(140)


@dataclass
class Recording:
    """One recording of one call. Only the engine writes it; others get snapshots."""

    sid: str
    account_sid: str
    call_sid: str
    source: str
    created: float
    start_time: float
    status: str = "in-progress"
    duration: int | None = None
    updated: float = 0.0
    channels: int = 1
    track: str = "both"
    callback: str | None = None
    callback_method: str = "POST"
    callback_events: tuple[str, ...] = ("completed",)

    def price(self) -> str | None:
        """Twilio's price once the recording is complete (e.g. "-0.0050"), else None."""
        if self.status != "completed" or self.duration is None:
            return None
        return f"{-math.ceil(self.duration / 60) * PRICE_PER_MINUTE:.4f}"

    def snapshot(self) -> Recording:
        """A copy later changes do not touch."""
        return replace(self)


def media_path(account_sid: str, sid: str) -> str:
    """The media's path: `RecordingUrl` is this on the emulator's URL (`.wav`/`.mp3` pick the format)."""
    return f"/2010-04-01/Accounts/{account_sid}/Recordings/{sid}"


# --------------------------------------------------------------------------- media


def _wav_second() -> bytes:
    """One second of audio: a 0.6 s beep at 440 Hz (about -20 dBFS), then silence."""
    beep = int(WAV_RATE * 0.6)
    samples = array.array("h", (int(3000 * math.sin(2 * math.pi * 440 * i / WAV_RATE)) if i < beep else 0 for i in range(WAV_RATE)))
    if samples.itemsize != 2:  # pragma: no cover - every CPython platform has 16-bit shorts
        raise RuntimeError("16-bit samples needed")
    if struct.pack("=h", 1) != struct.pack("<h", 1):  # WAV is little-endian
        samples.byteswap()
    return samples.tobytes()


_SECOND = _wav_second()


def wav_length(seconds: int) -> int:
    """Size in bytes of the WAV media of a recording this long."""
    return 44 + len(_SECOND) * max(0, seconds)


def wav_chunks(seconds: int) -> Iterator[bytes]:
    """The WAV media, streamed: a RIFF header, then one chunk per second."""
    seconds = max(0, seconds)
    data = len(_SECOND) * seconds
    yield struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + data, b"WAVE", b"fmt ", 16, 1, 1, WAV_RATE, WAV_RATE * 2, 2, 16, b"data", data)
    for _ in range(seconds):
        yield _SECOND


def mp3_frames(seconds: int) -> int:
    """How many MP3 frames cover `seconds` (rounded to the nearest frame)."""
    return round(max(0, seconds) * MP3_RATE / MP3_SAMPLES_PER_FRAME)


def mp3_length(seconds: int) -> int:
    """Size in bytes of the MP3 media of a recording this long."""
    return len(MP3_FRAME) * mp3_frames(seconds)


def mp3_chunks(seconds: int) -> Iterator[bytes]:
    """The MP3 media, streamed in chunks of up to 256 frames."""
    left = mp3_frames(seconds)
    while left > 0:
        count = min(left, 256)
        yield MP3_FRAME * count
        left -= count
