"""Call lifecycle: the state machine, update rules, scenario numbers, status callbacks and signatures."""

from __future__ import annotations

import pytest
from twilio.base.exceptions import TwilioRestException

from emulator_testkit import CALLER, NUMBER, assert_signed, twiml

ALL_EVENTS = ["initiated", "ringing", "answered", "completed"]


def outbound(emu, receiver, **kwargs):
    args = {
        "to": "+15555550111",
        "from_": NUMBER,
        "url": receiver.url + "/voice",
        "status_callback": receiver.url + "/status",
    }
    args.update(kwargs)
    return emu.client.calls.create(**args)


def status(emu, sid):
    return emu.client.calls(sid).fetch().status


def test_outbound_call_rings_about_a_second_then_answers_and_runs_its_url(emu, receiver):
    receiver.answer("/voice", twiml("<Say>Hello</Say>"))
    call = outbound(emu, receiver, status_callback_event=ALL_EVENTS)
    emu.advance(0)
    assert status(emu, call.sid) == "ringing"
    assert receiver.on("/voice") == []
    emu.advance(1)
    assert status(emu, call.sid) == "in-progress"
    voice = receiver.on("/voice")
    assert len(voice) == 1
    assert voice[0].param("CallStatus") == "in-progress"
    assert voice[0].param("Direction") == "outbound-api"
    emu.advance(1)
    assert status(emu, call.sid) == "completed"
    assert receiver.statuses(call.sid) == [(0, "initiated"), (1, "ringing"), (2, "in-progress"), (3, "completed")]


def test_status_callbacks_carry_twilio_parameters_and_are_signed(emu, receiver, validator):
    receiver.answer("/voice", twiml("<Pause length='3'/>"))
    call = outbound(emu, receiver, status_callback_event=ALL_EVENTS)
    emu.advance(5)
    hits = [h for h in receiver.on("/status") if h.param("CallSid") == call.sid]
    assert len(hits) == 4
    for hit in hits + receiver.on("/voice"):
        assert_signed(hit, validator)
    for hit in hits:
        p = hit.params
        assert p["CallbackSource"] == "call-progress-events"
        assert p["AccountSid"] == call.account_sid and p["ApiVersion"] == "2010-04-01"
        assert p["From"] == p["Caller"] == NUMBER and p["To"] == p["Called"] == "+15555550111"
        assert p["Direction"] == "outbound-api"
        assert "Timestamp" in p and "ToCountry" in p and "FromCity" in p
    final = hits[-1].params
    assert final["CallStatus"] == "completed"
    assert final["CallDuration"] == "3" and final["Duration"] == "1" and final["SipResponseCode"] == "200"
    assert "CallDuration" not in hits[0].params
    assert emu.client.calls(call.sid).fetch().duration == "3"


def test_without_events_only_completed_is_sent(emu, receiver):
    call = outbound(emu, receiver)
    emu.advance(3)
    assert receiver.statuses(call.sid) == [(0, "completed")]


def test_get_status_callback_is_signed_over_its_query_string(emu, receiver, validator):
    call = outbound(emu, receiver, status_callback=receiver.url + "/status?leg=a", status_callback_method="GET")
    emu.advance(3)
    (hit,) = receiver.on("/status")
    assert hit.method == "GET"
    assert hit.param("leg") == "a" and hit.param("CallSid") == call.sid and hit.param("CallStatus") == "completed"
    assert_signed(hit, validator)


@pytest.mark.parametrize(
    "to,final,sip",
    [("+15555550186", "busy", "486"), ("+15555550187", "no-answer", "487"), ("+15555550188", "failed", "500")],
)
def test_scenario_numbers(emu, receiver, to, final, sip):
    call = outbound(emu, receiver, to=to, timeout=20, status_callback_event=ALL_EVENTS)
    emu.advance(25)
    fetched = emu.client.calls(call.sid).fetch()
    assert fetched.status == final
    assert receiver.on("/voice") == []
    callbacks = receiver.on("/status")
    assert callbacks[-1].param("CallStatus") == final
    assert callbacks[-1].param("SipResponseCode") == sip
    assert callbacks[-1].param("CallDuration") == "0"
    assert "in-progress" not in [h.param("CallStatus") for h in callbacks]


def test_no_answer_waits_for_timeout(emu, receiver):
    call = outbound(emu, receiver, to="+15555550187", timeout=10)
    emu.advance(9)
    assert status(emu, call.sid) == "ringing"
    emu.advance(1)
    assert status(emu, call.sid) == "no-answer"


def test_cancel_ends_queued_or_ringing_call_as_canceled(emu, receiver):
    queued = outbound(emu, receiver)
    result = emu.client.calls(queued.sid).update(status="canceled")
    assert result.status == "canceled"
    ringing = outbound(emu, receiver)
    emu.advance(0.5)
    assert status(emu, ringing.sid) == "ringing"
    assert emu.client.calls(ringing.sid).update(status="canceled").status == "canceled"
    emu.advance(3)
    assert receiver.on("/voice") == []
    assert receiver.statuses(queued.sid) == [(0, "canceled")]
    assert receiver.statuses(ringing.sid) == [(0, "canceled")]
    assert receiver.on("/status")[-1].param("SipResponseCode") == "487"


def test_cancel_on_in_progress_call_changes_nothing(emu, receiver):
    receiver.answer("/voice", twiml("<Pause length='30'/>"))
    call = outbound(emu, receiver)
    emu.advance(1)
    result = emu.client.calls(call.sid).update(status="canceled")
    assert result.status == "in-progress"
    emu.advance(1)
    assert status(emu, call.sid) == "in-progress"
    assert receiver.on("/status") == []


def test_completed_hangs_up_live_call(emu, receiver):
    receiver.answer("/voice", twiml("<Pause length='30'/>"))
    answered = outbound(emu, receiver)
    emu.advance(1)
    assert emu.client.calls(answered.sid).update(status="completed").status == "completed"
    ringing = outbound(emu, receiver)
    assert emu.client.calls(ringing.sid).update(status="completed").status == "canceled"
    emu.advance(1)
    assert receiver.statuses(answered.sid) == [(0, "completed")]
    assert receiver.statuses(ringing.sid) == [(0, "canceled")]


def test_status_callback_is_sent_after_the_api_response(emu, receiver):
    receiver.answer("/voice", twiml("<Pause length='30'/>"))
    call = outbound(emu, receiver)
    emu.advance(1)
    emu.client.calls(call.sid).update(status="completed")
    # The callback is only released once the response has gone out; emulated time has not moved.
    emu.advance(0)
    assert receiver.statuses(call.sid) == [(0, "completed")]


def test_any_update_of_ended_call_is_21220(emu, receiver):
    call = outbound(emu, receiver)
    emu.advance(3)
    assert status(emu, call.sid) == "completed"
    for kwargs in ({"status": "completed"}, {"url": receiver.url + "/x"}, {"twiml": twiml("<Say>x</Say>")}):
        with pytest.raises(TwilioRestException) as err:
            emu.client.calls(call.sid).update(**kwargs)
        assert (err.value.status, err.value.code) == (400, 21220)
        assert "Call is not in-progress. Cannot redirect." in err.value.msg


def test_redirect_of_call_not_in_progress_is_21220(emu, receiver):
    call = outbound(emu, receiver)
    emu.advance(0.5)
    with pytest.raises(TwilioRestException) as err:
        emu.client.calls(call.sid).update(url=receiver.url + "/other")
    assert (err.value.status, err.value.code) == (400, 21220)
    assert status(emu, call.sid) == "ringing"


def test_url_and_twiml_together_are_refused(emu, receiver):
    receiver.answer("/voice", twiml("<Pause length='30'/>"))
    call = outbound(emu, receiver)
    emu.advance(1)
    with pytest.raises(TwilioRestException) as err:
        emu.client.calls(call.sid).update(url=receiver.url + "/other", twiml=twiml("<Say>x</Say>"))
    assert (err.value.status, err.value.code) == (400, 20001)
    with pytest.raises(TwilioRestException) as err:
        emu.client.calls(call.sid).update(status="bogus")
    assert (err.value.status, err.value.code) == (400, 20001)
    with pytest.raises(TwilioRestException) as err:
        emu.client.calls(call.sid).update(url=receiver.url + "/other", method="PATCH")
    assert (err.value.status, err.value.code) == (400, 20001)
    with pytest.raises(TwilioRestException) as err:
        emu.client.calls(call.sid).update(twiml="<Response>" + " " * 4000 + "</Response>")
    assert (err.value.status, err.value.code) == (400, 32018)
    emu.advance(1)
    assert receiver.on("/other") == []
    assert status(emu, call.sid) == "in-progress"


def test_redirect_replaces_running_twiml_at_once(emu, receiver):
    receiver.answer("/voice", twiml("<Pause length='30'/><Say>never heard</Say>"))
    receiver.answer("/other", twiml("<Say>Redirected</Say>"))
    call = outbound(emu, receiver)
    emu.advance(2)
    updated = emu.client.calls(call.sid).update(url=receiver.url + "/other", method="POST")
    assert updated.status == "in-progress"
    emu.advance(0)
    (hit,) = receiver.on("/other")
    assert hit.param("CallStatus") == "in-progress"
    emu.advance(2)
    assert emu.said(call.sid) == ["Redirected"]
    assert status(emu, call.sid) == "completed"


def test_injected_twiml_runs_at_once(emu, receiver):
    receiver.answer("/voice", twiml("<Pause length='30'/>"))
    call = outbound(emu, receiver)
    emu.advance(1)
    emu.client.calls(call.sid).update(twiml=twiml("<Say voice='alice'>Operator here</Say>"))
    emu.advance(0)
    assert emu.said(call.sid) == ["Operator here"]


def test_status_callback_update_alone_does_not_take_effect(emu, receiver):
    receiver.answer("/voice", twiml("<Pause length='5'/>"))
    call = outbound(emu, receiver)
    emu.advance(1)
    emu.client.calls(call.sid).update(status_callback=receiver.url + "/new-status")
    emu.advance(6)
    assert receiver.on("/new-status") == []
    assert receiver.statuses(call.sid) == [(0, "completed")]


def test_time_limit_update_ends_call(emu, receiver):
    receiver.answer("/voice", twiml("<Pause length='100'/>"))
    call = outbound(emu, receiver)
    emu.advance(1)
    emu.client.calls(call.sid).update(time_limit=60)
    emu.advance(59)
    assert status(emu, call.sid) == "in-progress"
    emu.advance(1)
    assert status(emu, call.sid) == "completed"
    assert emu.client.calls(call.sid).fetch().duration == "60"


def test_inbound_call_gets_only_the_final_status_callback(emu, receiver, validator):
    receiver.answer("/voice", twiml("<Say>Welcome</Say><Pause length='2'/>"))
    sid = emu.engine.incoming(from_=CALLER, caller_name="Ada").sid
    emu.advance(5)
    (voice,) = receiver.on("/voice")
    p = voice.params
    assert p["CallStatus"] == "ringing" and p["Direction"] == "inbound"
    assert p["From"] == CALLER and p["To"] == NUMBER and p["CallerName"] == "Ada"
    assert p["CallToken"]
    assert_signed(voice, validator)
    hits = receiver.on("/status")
    assert [(int(h.param("SequenceNumber")), h.param("CallStatus")) for h in hits] == [(0, "completed")]
    assert hits[0].param("CallDuration") == "3"
    assert_signed(hits[0], validator)
    assert emu.client.calls(sid).fetch().direction == "inbound"


def test_inbound_caller_hangs_up_after_n_seconds(emu, receiver):
    receiver.answer("/voice", twiml("<Enqueue>support</Enqueue>"))
    sid = emu.engine.incoming(from_=CALLER, hangup_after=7).sid
    emu.advance(6)
    assert status(emu, sid) == "in-progress"
    emu.advance(1)
    assert status(emu, sid) == "completed"
    assert receiver.statuses(sid) == [(0, "completed")]


def test_later_webhooks_of_answered_inbound_call_say_in_progress(emu, receiver):
    receiver.answer("/voice", twiml("<Gather action='/menu' numDigits='1'><Say>Press one</Say></Gather>"))
    receiver.answer("/menu", twiml("<Redirect>/next</Redirect>"))
    receiver.answer("/next", twiml("<Hangup/>"))
    emu.engine.incoming(from_=CALLER, digits="1")
    emu.advance(3)
    assert [h.param("CallStatus") for h in receiver.on("/voice")] == ["ringing"]
    assert receiver.on("/menu")[0].param("CallStatus") == "in-progress"
    assert receiver.on("/menu")[0].param("Digits") == "1"
    assert receiver.on("/next")[0].param("CallStatus") == "in-progress"


# --------------------------------------------------------------------------- AMD and SendDigits


@pytest.mark.parametrize(
    "to,mode,decided_after,answered_by",
    [
        ("+15555550111", "Enable", 2, "human"),
        ("+15555550189", "Enable", 2, "machine_start"),
        ("+15555550190", "Enable", 2, "fax"),
        ("+15555550189", "DetectMessageEnd", 8, "machine_end_beep"),
        ("+15555550111", "DetectMessageEnd", 2, "human"),
    ],
)
def test_machine_detection_holds_the_twiml_until_answered_by_is_known(emu, receiver, validator, to, mode, decided_after, answered_by):
    call = outbound(emu, receiver, to=to, machine_detection=mode)
    emu.advance(1)
    assert status(emu, call.sid) == "in-progress"
    emu.advance(decided_after - 0.5)
    assert receiver.on("/voice") == []
    emu.advance(0.5)
    (voice,) = receiver.on("/voice")
    assert voice.param("AnsweredBy") == answered_by
    assert voice.param("MachineDetectionDuration") == str(decided_after * 1000)
    assert_signed(voice, validator)
    assert emu.client.calls(call.sid).fetch().answered_by == answered_by
    emu.advance(2)
    assert receiver.on("/status")[-1].param("AnsweredBy") == answered_by


def test_machine_detection_timeout_answers_unknown(emu, receiver):
    outbound(emu, receiver, to="+15555550189", machine_detection="DetectMessageEnd", machine_detection_timeout=3)
    emu.advance(4)
    (voice,) = receiver.on("/voice")
    assert (voice.param("AnsweredBy"), voice.param("MachineDetectionDuration")) == ("unknown", "3000")


def test_async_amd_runs_the_twiml_at_once_and_posts_the_result(emu, receiver, validator):
    receiver.answer("/voice", twiml("<Pause length='10'/>"))
    call = outbound(emu, receiver, to="+15555550189", machine_detection="Enable", async_amd="true",
                    async_amd_status_callback=receiver.url + "/amd")
    emu.advance(1)
    (voice,) = receiver.on("/voice")
    assert voice.param("AnsweredBy") is None
    assert receiver.on("/amd") == []
    emu.advance(2)
    (amd,) = receiver.on("/amd")
    assert amd.params == {"AccountSid": call.account_sid, "CallSid": call.sid, "AnsweredBy": "machine_start", "MachineDetectionDuration": "2000"}
    assert_signed(amd, validator)
    assert emu.client.calls(call.sid).fetch().answered_by == "machine_start"


def test_send_digits_reach_the_called_party_before_the_twiml_and_override_amd(emu, receiver):
    receiver.answer("/voice", twiml("<Say>Extension reached</Say>"))
    call = outbound(emu, receiver, send_digits="W1234#", machine_detection="Enable")
    emu.advance(1)
    digits = [line for line in emu.transcript(call.sid) if line["kind"] == "digits"]
    assert [line["digits"] for line in digits] == ["W1234#"]
    assert digits[0]["t"] == 1.0
    emu.advance(3)  # W (1 s) and five keys (0.5 s each)
    assert receiver.on("/voice") == []
    emu.advance(0.5)
    (voice,) = receiver.on("/voice")
    assert voice.param("AnsweredBy") is None
    assert emu.said(call.sid) == ["Extension reached"]


def test_bad_amd_and_send_digits_values_are_refused(emu, receiver):
    for kwargs in ({"machine_detection": "Maybe"}, {"machine_detection": "Enable", "machine_detection_timeout": 60},
                   {"machine_detection": "Enable", "async_amd": "sometimes"}, {"send_digits": "12x"}, {"send_digits": "1" * 33}):
        with pytest.raises(TwilioRestException) as err:
            outbound(emu, receiver, **kwargs)
        assert (err.value.status, err.value.code) == (400, 20001), kwargs
    assert emu.client.calls.list() == []
