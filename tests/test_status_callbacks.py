"""Status callbacks: recorded exactly once, order-safe, and never a partial write."""
from __future__ import annotations

import json
import random

import pytest

from models import Call, CallEvent, db
from support import ACCOUNT_SID, OUR_NUMBER, inbound_params, new_call_sid


def outbound_callback(sid: str, status: str, sequence: int | None, **extra) -> dict:
    """A status callback of an outbound API call, as Twilio sends it (reference §6)."""
    params = {
        "AccountSid": ACCOUNT_SID, "ApiVersion": "2010-04-01", "CallSid": sid,
        "CallStatus": status, "Direction": "outbound-api", "From": OUR_NUMBER,
        "To": "+15555550142", "CallbackSource": "call-progress-events",
        "Timestamp": "Mon, 23 Nov 2026 09:53:19 +0000",
    }
    if sequence is not None:
        params["SequenceNumber"] = str(sequence)
    params.update(extra)
    return params


OUTBOUND_LIFE = ["initiated", "ringing", "in-progress", "completed"]


def call_and_events(app, sid):
    with app.app_context():
        call = db.session.get(Call, sid)
        events = db.session.scalars(
            db.select(CallEvent).where(CallEvent.call_sid == sid).order_by(CallEvent.id)
        ).all()
        return call, events


def test_unseen_outbound_call_is_created_by_its_first_callback(app, twilio):
    sid = new_call_sid()
    response = twilio.post("/status", outbound_callback(sid, "initiated", 0))
    assert response.status_code == 204
    assert response.data == b""
    call, events = call_and_events(app, sid)
    assert call.status == "initiated"
    assert call.is_active  # initiated counts as live
    assert call.direction == "outbound-api"
    assert call.to_number == "+15555550142"
    assert [(e.status, e.sequence_number) for e in events] == [("initiated", 0)]


def test_a_full_life_in_order(app, twilio):
    sid = new_call_sid()
    for seq, status in enumerate(OUTBOUND_LIFE):
        extra = {"CallDuration": "42", "SipResponseCode": "200"} if status == "completed" else {}
        assert twilio.post("/status", outbound_callback(sid, status, seq, **extra)).status_code == 204
    call, events = call_and_events(app, sid)
    assert call.status == "completed"
    assert call.duration == 42
    assert [e.status for e in events] == OUTBOUND_LIFE
    assert events[-1].sip_response_code == "200"
    assert events[-1].timestamp.isoformat() == "2026-11-23T09:53:19"
    assert json.loads(events[-1].params)["CallbackSource"] == "call-progress-events"


@pytest.mark.parametrize("seed", range(6))
def test_reordered_callbacks_end_in_the_right_status(app, twilio, seed):
    sid = new_call_sid()
    order = list(enumerate(OUTBOUND_LIFE))
    random.Random(seed).shuffle(order)
    for seq, status in order:
        assert twilio.post("/status", outbound_callback(sid, status, seq)).status_code == 204
    call, events = call_and_events(app, sid)
    assert call.status == "completed"
    assert sorted(e.sequence_number for e in events) == [0, 1, 2, 3]


def test_late_ringing_never_reopens_an_ended_call(app, twilio):
    sid = new_call_sid()
    twilio.post("/status", outbound_callback(sid, "busy", 2, CallDuration="0", SipResponseCode="486"))
    twilio.post("/status", outbound_callback(sid, "ringing", 1))
    twilio.post("/status", outbound_callback(sid, "in-progress", 1))
    call, events = call_and_events(app, sid)
    assert call.status == "busy"
    # Both callbacks are kept in the history even though they did not change the status.
    assert [e.status for e in events] == ["busy", "ringing"]


def test_retried_callback_changes_nothing(app, twilio):
    sid = new_call_sid()
    params = outbound_callback(sid, "ringing", 1)
    for _ in range(3):
        assert twilio.post("/status", params).status_code == 204
    _, events = call_and_events(app, sid)
    assert len(events) == 1
    call_before, _ = call_and_events(app, sid)
    twilio.post("/status", params)
    call_after, _ = call_and_events(app, sid)
    assert call_after.updated_at == call_before.updated_at


def test_callback_without_sequence_number_is_deduplicated_by_status(app, twilio):
    sid = new_call_sid()
    for _ in range(2):
        assert twilio.post("/status", outbound_callback(sid, "ringing", None)).status_code == 204
    assert twilio.post("/status", outbound_callback(sid, "completed", None)).status_code == 204
    call, events = call_and_events(app, sid)
    assert call.status == "completed"
    assert [(e.status, e.sequence_number) for e in events] == [("ringing", None), ("completed", None)]


def test_inbound_call_hears_only_the_end(app, twilio):
    """Reference §4.1: /voice (ringing), then nothing until the number's callback at the end."""
    sid = new_call_sid()
    twilio.post("/voice", inbound_params(sid))
    assert call_and_events(app, sid)[0].status == "in-progress"
    twilio.post("/status", inbound_params(sid, "completed", SequenceNumber="0", CallDuration="65"))
    call, events = call_and_events(app, sid)
    assert call.status == "completed" and call.duration == 65
    assert [(e.source, e.status) for e in events] == [("voice", "in-progress"), ("callback", "completed")]


def test_dial_child_leg_is_created_with_its_parent(app, twilio):
    parent, child = new_call_sid(), new_call_sid()
    twilio.post("/voice", inbound_params(parent))
    params = outbound_callback(child, "ringing", 1, Direction="outbound-dial", ParentCallSid=parent)
    assert twilio.post("/status", params).status_code == 204
    call, _ = call_and_events(app, child)
    assert call.parent_call_sid == parent
    assert call.direction == "outbound-dial"


def test_get_status_callback(app, client):
    from support import Twilio
    sid = new_call_sid()
    assert Twilio(client).get("/status", outbound_callback(sid, "ringing", 0)).status_code == 204
    assert call_and_events(app, sid)[0].status == "ringing"


@pytest.mark.parametrize("change, reason", [
    ({"CallSid": ""}, "CallSid is missing"),
    ({"CallSid": "CA" + "z" * 32}, "CallSid must be CA"),
    ({"CallStatus": "answered"}, "not a Twilio call status"),
    ({"CallStatus": ""}, "CallStatus is missing"),
    ({"SequenceNumber": "two"}, "SequenceNumber must be a non-negative integer"),
    ({"SequenceNumber": "-1"}, "SequenceNumber must be a non-negative integer"),
    ({"SequenceNumber": "99999999999999999999999"}, "SequenceNumber must be a non-negative integer"),
    ({"CallDuration": "12s"}, "CallDuration must be a non-negative integer"),
])
def test_bad_callbacks_get_400_and_leave_nothing(app, twilio, change, reason):
    sid = new_call_sid()
    twilio.post("/status", outbound_callback(sid, "initiated", 0))
    before = call_and_events(app, sid)
    params = outbound_callback(sid, "completed", 3)
    params.update(change)
    response = twilio.post("/status", params)
    assert response.status_code == 400
    assert reason in response.get_data(as_text=True)
    call, events = call_and_events(app, sid)
    # Nothing written, and what was recorded before is intact.
    assert call.status == before[0].status == "initiated"
    assert len(events) == len(before[1]) == 1
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Call)) == 1


def test_databases_without_upsert_get_the_same_guarantees(app, twilio, monkeypatch):
    """DATABASE_URL may name any SQLAlchemy database: without INSERT … ON CONFLICT the writes
    fall back to a savepointed insert and the same conditional update."""
    import call_records
    monkeypatch.setattr(call_records, "_statements", lambda dialect_name: None)
    sid = new_call_sid()
    twilio.post("/voice", inbound_params(sid))
    for seq, status in [(2, "in-progress"), (3, "completed"), (1, "ringing"), (3, "completed")]:
        assert twilio.post("/status", outbound_callback(sid, status, seq)).status_code == 204
    call, events = call_and_events(app, sid)
    assert call.status == "completed"
    assert [(e.source, e.sequence_number) for e in events] == [
        ("voice", None), ("callback", 2), ("callback", 3), ("callback", 1)]


def test_the_call_page_timeline_has_one_entry_per_status(app, twilio):
    """An outbound call's answer is told twice (the in-progress callback and /voice), and a
    retried callback is stored once: the timeline shows each status once."""
    from support import log_in
    sid = new_call_sid()
    for seq, status in enumerate(OUTBOUND_LIFE[:3]):
        twilio.post("/status", outbound_callback(sid, status, seq))
    twilio.post("/voice", outbound_callback(sid, "in-progress", None))
    client = twilio.client
    log_in(client)
    page = client.get(f"/admin/calls/{sid}").get_data(as_text=True)
    timeline = page.split('class="timeline"')[1].split("</ol>")[0]
    assert timeline.count("<li>") == 3
    for status in ("initiated", "ringing", "in-progress"):
        assert timeline.count(f">{status}</span>") == 1, status
