"""What the caller heard (demo mode: the emulator's transcript), made readable: a caller on
hold for ten minutes hears the same three lines every lap, so repetition is folded."""
from __future__ import annotations

from dataclasses import dataclass

# The longest run of lines that can repeat as one lap (the hold loop is three: redirect,
# webhook, play), and how many laps make a fold.
MAX_LAP_LINES = 4
MIN_LAPS = 2


@dataclass
class Fold:
    """Consecutive repetitions of the same lines, shown as one expandable line."""

    lines: list[dict]
    laps: int
    label: str
    seconds: float

    @property
    def first(self) -> dict:
        """The first line of the fold (its time is the fold's)."""
        return self.lines[0]


def _key(line: dict) -> tuple:
    return line.get("kind"), line.get("text")


def _laps_at(lines: list[dict], start: int, size: int) -> int:
    """How many times lines[start:start+size] repeats back to back from `start`."""
    laps = 1
    while start + (laps + 1) * size <= len(lines) and all(
            _key(lines[start + laps * size + j]) == _key(lines[start + j]) for j in range(size)):
        laps += 1
    return laps


def _span(lines: list[dict], start: int, end: int, size: int) -> float:
    """Seconds from the fold's first line to the line after it (or one lap past its last)."""
    first = lines[start].get("t") or 0
    if end < len(lines):
        return (lines[end].get("t") or 0) - first
    last_lap = lines[end - size].get("t") or 0
    lap = last_lap - (lines[end - 2 * size].get("t") or 0) if end - 2 * size >= start else 0
    return last_lap + lap - first


def fold(lines: list[dict], hold_music_url: str | None = None) -> list[dict | Fold]:
    """The transcript with back-to-back repetitions (MIN_LAPS or more) folded into a Fold;
    a lap that plays the hold music is labelled "hold music"."""
    folded: list[dict | Fold] = []
    i = 0
    while i < len(lines):
        best_laps, best_size = 1, 1
        for size in range(1, MAX_LAP_LINES + 1):
            laps = _laps_at(lines, i, size)
            if laps >= MIN_LAPS and laps * size > best_laps * best_size:
                best_laps, best_size = laps, size
        if best_laps < MIN_LAPS:
            folded.append(lines[i])
            i += 1
            continue
        end = i + best_laps * best_size
        lap = lines[i:i + best_size]
        hold = hold_music_url and any(line.get("kind") == "play" and
                                      line.get("url") == hold_music_url for line in lap)
        label = "hold music" if hold else f"repeated: {lap[0].get('text', '')}"
        folded.append(Fold(lines[i:end], best_laps, label, _span(lines, i, end, best_size)))
        i = end
    return folded
