"""Folding a transcript's repetition (the hold loop) into one line."""
from __future__ import annotations

from transcript import Fold, fold

MUSIC = "http://music.example/hold.mp3"


def hold_lap(t: float) -> list[dict]:
    return [
        {"t": t, "kind": "redirect", "text": "Redirect to http://app/voice/hold"},
        {"t": t + 0.01, "kind": "webhook", "text": "POST http://app/voice/hold → 200"},
        {"t": t + 0.02, "kind": "play", "text": f"Audio {MUSIC}", "url": MUSIC},
    ]


def test_hold_laps_fold_into_one_line_with_their_count_and_time():
    greeting = [{"t": 0, "kind": "say", "text": "Thanks for calling"}]
    laps = [line for n in range(12) for line in hold_lap(1 + 20 * n)]
    after = [{"t": 241, "kind": "say", "text": "Goodbye"}]
    folded = fold(greeting + laps + after, MUSIC)
    assert folded[0] == greeting[0] and folded[2] == after[0]
    assert isinstance(folded[1], Fold)
    assert (folded[1].laps, folded[1].label, folded[1].seconds) == (12, "hold music", 240)
    assert folded[1].lines == laps


def test_a_fold_at_the_end_counts_one_lap_past_the_last_start():
    folded = fold([line for n in range(3) for line in hold_lap(20 * n)], MUSIC)
    assert len(folded) == 1 and folded[0].laps == 3 and folded[0].seconds == 60


def test_lines_that_do_not_repeat_are_left_alone():
    lines = [{"t": n, "kind": "say", "text": f"line {n}"} for n in range(5)]
    assert fold(lines, MUSIC) == lines
    assert fold([], MUSIC) == []


def test_other_repetition_is_folded_and_says_what_repeats():
    lines = [{"t": n, "kind": "say", "text": "Please hold"} for n in range(4)]
    (only,) = fold(lines, MUSIC)
    assert (only.laps, only.label) == (4, "repeated: Please hold")
