"""One duration format everywhere: history, the call page and the live list."""
from __future__ import annotations

import re

import pytest

from panel import format_duration
from support import inbound_params, log_in, new_call_sid


@pytest.fixture
def panel(client):
    log_in(client)
    return client


def inbound(twilio, number="+15555550123", name=None, ended_after=None) -> str:
    """An inbound call (answered by /voice), ended after `ended_after` seconds if given."""
    sid = new_call_sid()
    extra = {"CallerName": name} if name else {}
    assert twilio.post("/voice", inbound_params(sid, From=number, Caller=number, **extra)
                       ).status_code == 200
    if ended_after is not None:
        assert twilio.post("/status", inbound_params(
            sid, "completed", From=number, SequenceNumber="0", CallDuration=str(ended_after))
        ).status_code == 204
    return sid


@pytest.mark.parametrize("seconds, text", [
    (None, "—"), (0, "0 s"), (45, "45 s"), (60, "1 min 00 s"), (245, "4 min 05 s"),
    (3725, "1 h 02 min 05 s")])
def test_one_duration_format(seconds, text):
    assert format_duration(seconds) == text


def test_durations_read_the_same_in_history_and_on_the_call_page(panel, twilio):
    sid = inbound(twilio, ended_after=245)
    assert '<td class="duration">4 min 05 s</td>' in panel.get("/admin/history").get_data(as_text=True)
    page = panel.get(f"/admin/calls/{sid}").get_data(as_text=True)
    assert "<dt>Duration</dt>\n        <dd>4 min 05 s</dd>" in page
    assert "status callback #0 · 4 min 05 s" in page


def test_the_live_list_says_how_long_in_the_same_words(panel, twilio):
    inbound(twilio)
    response = panel.get("/admin/live")
    assert response.status_code == 200
    # Rendered by the server in the filter's words; app.js then ticks it in the same words.
    assert re.search(r"data-since>\d{1,2} s</time>", response.get_data(as_text=True))
