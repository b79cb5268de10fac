"""The history page: child legs under their parent, separate number and name searches, dates
and direction (bad values ignored with a message, never an error page), one duration format,
and a call's earlier calls with the same number."""
from __future__ import annotations

import re
from datetime import datetime

import pytest

from models import Call, db
from panel import format_duration
from support import OUR_NUMBER, inbound_params, log_in, new_call_sid


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


def leg(twilio, parent: str, to="+15555550142") -> str:
    """A <Dial> child leg of `parent`, reported by its status callback."""
    sid = new_call_sid()
    assert twilio.post("/status", {
        "AccountSid": "AC" + "0" * 31 + "1", "CallSid": sid, "ParentCallSid": parent,
        "CallStatus": "in-progress", "Direction": "outbound-dial", "From": OUR_NUMBER,
        "To": to, "SequenceNumber": "0"}).status_code == 204
    return sid


def rows(response) -> list[tuple[str, bool]]:
    """The history table's rows: (CallSid, listed under its parent)."""
    assert response.status_code == 200
    return [(sid, "depth-1" in cls) for sid, cls in re.findall(
        r'<tr id="history-[^"]+" data-sid="([^"]+)" class="([^"]*)"', response.get_data(as_text=True))]


def started(app, sid: str, when: str) -> None:
    with app.app_context():
        db.session.get(Call, sid).created_at = datetime.fromisoformat(when)
        db.session.commit()


def test_child_legs_are_listed_under_their_parent(panel, twilio):
    parent = inbound(twilio)
    other = inbound(twilio, "+15555550124")
    child = leg(twilio, parent)
    # Newest first, but the leg sits right under its call, not at its own place.
    assert rows(panel.get("/admin/history")) == [(other, False), (parent, False), (child, True)]


def test_a_leg_whose_parent_is_on_another_page_links_to_it(panel, twilio):
    parent = inbound(twilio)
    others = [inbound(twilio, f"+155555502{i:02d}") for i in range(50)]
    child = leg(twilio, parent)
    first = panel.get("/admin/history")
    assert rows(first)[0] == (child, False)
    assert f'leg of <a href="/admin/calls/{parent}">{parent}</a>' in first.get_data(as_text=True)
    assert rows(panel.get("/admin/history?page=2")) == [(others[0], False), (parent, False),
                                                        (child, True)]


def test_number_and_name_are_separate_searches(panel, twilio):
    ada = inbound(twilio, "+15555550161", "Ada Lovelace")
    grace = inbound(twilio, "+15555550162", "Grace 0161")
    assert rows(panel.get("/admin/history?name=ada")) == [(ada, False)]
    assert rows(panel.get("/admin/history?name=ADA")) == [(ada, False)]  # any case, every engine
    assert rows(panel.get("/admin/history?name=0161")) == [(grace, False)]  # names only
    assert rows(panel.get("/admin/history?number=0161")) == [(ada, False)]  # numbers only
    assert rows(panel.get("/admin/history?number=lovelace")) == []
    assert rows(panel.get("/admin/history?number=%2B1555555016")) == [(grace, False), (ada, False)]
    assert rows(panel.get("/admin/history?name=%25")) == []  # a wildcard is taken literally
    assert rows(panel.get("/admin/history?name=_")) == []
    page = panel.get("/admin/history").get_data(as_text=True)
    assert '<label for="filter-number">Number</label>' in page
    assert '<label for="filter-name">Caller name</label>' in page


def test_dates_and_direction_narrow_the_list(panel, twilio, app):
    early, late = inbound(twilio), inbound(twilio)
    started(app, early, "2026-11-01 23:59:59")
    started(app, late, "2026-11-15 00:00:00")
    placed = new_call_sid()
    twilio.post("/status", {"CallSid": placed, "CallStatus": "initiated", "From": OUR_NUMBER,
                            "To": "+15555550142", "Direction": "outbound-api",
                            "SequenceNumber": "0"})
    started(app, placed, "2026-11-10 12:00:00")
    assert rows(panel.get("/admin/history?from=2026-11-02")) == [(late, False), (placed, False)]
    assert rows(panel.get("/admin/history?to=2026-11-01")) == [(early, False)]  # whole day
    assert rows(panel.get("/admin/history?from=2026-11-10&to=2026-11-10")) == [(placed, False)]
    assert rows(panel.get("/admin/history?direction=outbound-api")) == [(placed, False)]
    assert rows(panel.get("/admin/history?direction=inbound&from=2026-11-15")) == [(late, False)]
    # Filters stay in the page links.
    response = panel.get("/admin/history?direction=inbound&page=99")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/admin/history?page=1&direction=inbound")


@pytest.mark.parametrize("query, message", [
    ("from=2026-13-01", "Ignored the From date &#39;2026-13-01&#39;"),
    ("to=yesterday", "Ignored the To date &#39;yesterday&#39;"),
    ("direction=%3Cscript%3Ex%3C/script%3E", "Ignored the direction &#39;&lt;script&gt;"),
    ("status=bogus", "Ignored the status &#39;bogus&#39;"),
    ("from=2026-11-20&to=2026-11-01", "The From date is after the To date"),
])
def test_bad_filter_values_are_ignored_with_a_message(panel, twilio, query, message):
    sid = inbound(twilio)
    response = panel.get(f"/admin/history?{query}")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert message in text
    assert "<script>x" not in text
    if "after" not in message:
        assert rows(response) == [(sid, False)]  # the bad value was dropped, the rest applies


@pytest.mark.parametrize("seconds, text", [
    (None, "—"), (0, "0 s"), (45, "45 s"), (60, "1 min 00 s"), (245, "4 min 05 s"),
    (3725, "1 h 02 min 05 s")])
def test_one_duration_format(seconds, text):
    assert format_duration(seconds) == text


def test_durations_read_the_same_in_history_and_on_the_call_page(panel, twilio):
    sid = inbound(twilio, ended_after=245)
    assert '<td class="duration" data-label="Duration">4 min 05 s</td>' in panel.get("/admin/history").get_data(as_text=True)
    page = panel.get(f"/admin/calls/{sid}").get_data(as_text=True)
    assert "lasted 4 min 05 s" in page  # the action bar
    assert "status callback #0 · 4 min 05 s" in page


def test_the_call_page_lists_earlier_calls_with_the_same_number(panel, twilio, app):
    first = inbound(twilio, "+15555550171", ended_after=12)
    unrelated = inbound(twilio, "+15555550172")
    placed = new_call_sid()  # we called them back
    twilio.post("/status", {"CallSid": placed, "CallStatus": "completed", "From": OUR_NUMBER,
                            "To": "+15555550171", "Direction": "outbound-api",
                            "SequenceNumber": "0"})
    latest = inbound(twilio, "+15555550171")
    page = panel.get(f"/admin/calls/{latest}")
    assert page.status_code == 200
    section = page.get_data(as_text=True).split('id="earlier-heading"')[1].split("</section>")[0]
    assert "Earlier calls with <span class=\"number\">+15555550171</span>" in page.get_data(as_text=True)
    linked = re.findall(r'href="/admin/calls/(CA[0-9a-f]+)"', section)
    assert linked == [placed, first]  # newest first; not the call itself, not other numbers
    assert unrelated not in section
    first_page = panel.get(f"/admin/calls/{first}").get_data(as_text=True)
    assert "None: this is the first call with this number." in first_page


def test_the_live_list_says_how_long_in_the_same_words(panel, twilio):
    inbound(twilio)
    response = panel.get("/admin/live")
    assert response.status_code == 200
    # Rendered by the server in the filter's words; app.js then ticks it in the same words.
    assert re.search(r"data-since>\d{1,2} s</time>", response.get_data(as_text=True))
