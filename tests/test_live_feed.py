"""The live list's change feed: a poll reads and sends only what changed since its cursor,
safe against commits that land out of order, on both engines."""
from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from sqlalchemy import event, update

from models import Call, db, utcnow
from panel import FEED_RESET_ROWS, mark_stale_calls
from support import inbound_params, log_in, new_call_sid

ROW = re.compile(r'<tr id="call-(CA[0-9a-f]{32})"[^>]*data-version="([^"]+)"')
GONE = re.compile(r'<tr data-sid="(CA[0-9a-f]{32})" data-version="([^"]+)" data-remove')


class Page:
    """What a live page holds: its cursor and the versions it received, as live.js keeps them."""

    def __init__(self, client, mine: bool = False):
        self.client, self.mine = client, mine
        html = client.get("/admin?mine=1" if mine else "/admin").get_data(as_text=True)
        self.cursor = re.search(r'id="live-calls"[^>]*data-cursor="([^"]+)"', html).group(1)
        self.rows = dict(ROW.findall(html))
        self.recent: dict[str, str] = {}

    def poll(self):
        """One poll; returns (status, rows sent, removals sent, bytes)."""
        seen = ",".join(f"{sid}@{version}" for sid, version in self.recent.items())
        response = self.client.get("/admin/live", query_string={
            "since": self.cursor, **({"mine": "1"} if self.mine else {})},
            headers={"X-Seen": seen})
        if response.status_code != 200:
            return response.status_code, {}, {}, 0
        html = response.get_data(as_text=True)
        self.cursor = re.search(r'data-cursor="([^"]+)"', html).group(1)
        rows, gone = dict(ROW.findall(html)), dict(GONE.findall(html))
        self.recent.update(rows)
        self.recent.update(gone)
        self.rows.update(rows)
        for sid in gone:
            self.rows.pop(sid, None)
        return 200, rows, gone, len(response.data)


@pytest.fixture
def operator(client):
    log_in(client)
    return client


def ring(twilio, sid=None, status="ringing", path="/status", **extra) -> str:
    sid = sid or new_call_sid()
    response = twilio.post(path, inbound_params(sid, status, **extra))
    assert response.status_code in (200, 204), response.get_data(as_text=True)
    return sid


def test_an_unchanged_poll_reads_no_call(app, operator, twilio):
    sids = [ring(twilio, status="in-progress") for _ in range(30)]
    page = Page(operator)
    assert set(page.rows) == set(sids)
    page.poll()  # the first poll may repeat what changed within FEED_LAG of the page
    statements = []
    with app.app_context():
        listen = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listen)
        try:
            assert page.poll()[0] == 204
        finally:
            event.remove(db.engine, "before_cursor_execute", listen)
    reads_calls = [s for s in statements if "FROM calls" in s]
    assert len(reads_calls) == 1, statements  # the index range on changed_at, nothing else
    assert "changed_at >" in reads_calls[0]


def test_a_poll_after_one_change_sends_only_that_row(app, operator, twilio):
    sids = [ring(twilio, status="in-progress") for _ in range(30)]
    page = Page(operator)
    page.poll()
    ring(twilio, sids[7], status="completed")
    status, rows, gone, size = page.poll()
    assert (status, rows, list(gone)) == (200, {}, [sids[7]])
    new = ring(twilio)
    status, rows, gone, size = page.poll()
    assert list(rows) == [new] and gone == {}
    assert size < 10_000
    assert page.poll()[0] == 204  # X-Seen: nothing is sent twice


def test_the_hold_loop_is_no_change_but_an_answer_is(app, operator, twilio):
    sid = ring(twilio)
    page = Page(operator)
    page.poll()
    ring(twilio, sid, path="/voice/hold")  # the first TwiML request answers the call
    assert sid in page.poll()[1]
    for _ in range(3):  # then "still here", every lap
        ring(twilio, sid, path="/voice/hold")
    assert page.poll()[0] == 204
    ring(twilio, sid, status="completed")
    assert sid in page.poll()[2]


def test_a_commit_that_lands_late_is_still_delivered(app, operator, twilio):
    late = ring(twilio, status="in-progress")
    page = Page(operator)
    page.poll()
    ring(twilio, status="in-progress")  # a change the page receives
    page.poll()
    stamped = datetime.fromisoformat(page.cursor) - timedelta(seconds=2)
    with app.app_context():  # a second worker's commit, stamped 2 s before the page's cursor
        db.session.execute(update(Call).where(Call.sid == late).values(
            status="completed", status_rank=4, changed_at=stamped))
        db.session.commit()
    status, rows, gone, _ = page.poll()
    assert list(gone) == [late]


def test_my_calls_loses_a_call_i_release(app, operator, twilio):
    sid = ring(twilio, status="in-progress")
    operator.post(f"/admin/calls/{sid}/claim", data={"csrf_token": _csrf(operator)})
    page = Page(operator, mine=True)
    assert list(page.rows) == [sid]
    page.poll()
    operator.post(f"/admin/calls/{sid}/release", data={"csrf_token": _csrf(operator)})
    status, rows, gone, _ = page.poll()
    assert list(gone) == [sid] and rows == {}


def test_a_call_gone_quiet_becomes_stale_and_hearing_from_it_is_a_change(app, operator, twilio):
    sid = ring(twilio, status="in-progress")
    page = Page(operator)
    page.poll()
    with app.app_context():
        db.session.execute(update(Call).where(Call.sid == sid)
                           .values(updated_at=utcnow() - timedelta(hours=1)))
        db.session.commit()
        with app.test_request_context():
            mark_stale_calls(force=True)
    status, rows, _, _ = page.poll()
    assert sid in rows
    assert "possibly stale" in operator.get("/admin").get_data(as_text=True)
    ring(twilio, sid, path="/voice/hold")  # heard from again: no longer stale
    status, rows, _, _ = page.poll()
    assert sid in rows
    assert "possibly stale" not in operator.get("/admin").get_data(as_text=True)


def test_too_many_changes_send_the_whole_list(app, operator, twilio):
    page = Page(operator)
    with app.app_context():
        for _ in range(FEED_RESET_ROWS + 1):
            db.session.add(Call(sid=new_call_sid(), status="in-progress", status_rank=3,
                                from_number="+15555550123", to_number="+15555550100"))
        db.session.commit()
    response = operator.get("/admin/live", query_string={"since": page.cursor})
    html = response.get_data(as_text=True)
    assert "data-reset" in html
    assert len(ROW.findall(html)) == FEED_RESET_ROWS + 1


@pytest.mark.parametrize("since", ["yesterday", "2026-13-45T00:00:00", "\u0661\u0662"])
def test_a_bad_cursor_is_a_400_with_a_message(operator, since):
    response = operator.get("/admin/live", query_string={"since": since})
    assert response.status_code == 400
    assert b"since must be an ISO 8601 time" in response.data


def test_the_tab_title_counts_live_and_ringing_calls(operator, twilio):
    ring(twilio)
    ring(twilio, status="in-progress")
    ring(twilio, status="in-progress")
    html = operator.get("/admin").get_data(as_text=True)
    assert "<title>(1 ringing) 3 live · Switchboard</title>" in html


def _csrf(client) -> str:
    html = client.get("/admin").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
