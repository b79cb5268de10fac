"""The TwiML interpreter: each verb as the caller experiences it, and the app's side of each webhook."""

from __future__ import annotations

import requests

from emulator_testkit import ACCOUNT_SID, AUTH_TOKEN, CALLER, NUMBER, assert_signed, twiml


def ring(emu, receiver, doc, **kwargs):
    """An inbound call whose /voice answers `doc`."""
    receiver.answer("/voice", doc)
    return emu.engine.incoming(from_=CALLER, **kwargs).sid


def kinds(emu, sid, kind):
    return [line for line in emu.transcript(sid) if line["kind"] == kind]


def status(emu, sid):
    return emu.client.calls(sid).fetch().status


def test_say_play_pause_take_emulated_time_and_are_transcribed(emu, receiver):
    sid = ring(emu, receiver, twiml(
        "<Say voice='Polly.Joanna' language='en-GB'>Hello &amp; welcome</Say>",
        "<Play loop='2'>https://cdn.example/hold.mp3</Play>",
        "<Pause length='3'/>",
    ))
    emu.advance(0)
    (say,) = kinds(emu, sid, "say")
    assert (say["text"], say["voice"], say["language"]) == ("Hello & welcome", "Polly.Joanna", "en-GB")
    emu.advance(1)
    (play,) = kinds(emu, sid, "play")
    assert play["url"] == "https://cdn.example/hold.mp3" and play["loop"] == 2
    emu.advance(4)  # two plays of 2 s each
    assert kinds(emu, sid, "pause")[0]["length"] == 3
    assert status(emu, sid) == "in-progress"
    emu.advance(3)
    assert status(emu, sid) == "completed"
    assert emu.client.calls(sid).fetch().duration == "8"


def test_empty_response_hangs_up_at_once(emu, receiver):
    sid = ring(emu, receiver, twiml())
    emu.advance(0)
    assert status(emu, sid) == "completed"


def test_gather_collects_scripted_digits_and_posts_action(emu, receiver, validator):
    receiver.answer("/menu", twiml("<Say>You chose</Say>"))
    sid = ring(emu, receiver, twiml("<Gather action='/menu' method='POST' finishOnKey='#'><Say>Enter your account</Say></Gather><Say>unreached</Say>"), digits="1234#")
    emu.advance(2)
    (hit,) = receiver.on("/menu")
    assert hit.param("Digits") == "1234"
    assert hit.param("FinishedOnKey") == "#"
    assert_signed(hit, validator)
    assert emu.said(sid) == ["Enter your account", "You chose"]


def test_gather_timeout_falls_through_to_next_verb(emu, receiver):
    sid = ring(emu, receiver, twiml("<Gather action='/menu' timeout='4'><Say>Press a key</Say></Gather><Say>We did not get that</Say>"))
    emu.advance(1)
    assert emu.said(sid) == ["Press a key"]
    emu.advance(3.5)
    assert emu.said(sid) == ["Press a key"]
    emu.advance(0.5)
    assert emu.said(sid) == ["Press a key", "We did not get that"]
    assert receiver.on("/menu") == []


def test_gather_action_on_empty_result(emu, receiver):
    ring(emu, receiver, twiml("<Gather action='/menu' timeout='2' actionOnEmptyResult='true'/>"))
    emu.advance(3)
    (hit,) = receiver.on("/menu")
    assert hit.param("Digits") == ""


def test_gather_takes_digits_pressed_live(emu, receiver):
    sid = ring(emu, receiver, twiml("<Gather action='/menu' numDigits='2' timeout='10'/>"))
    emu.advance(1)
    emu.engine.press(sid, "42")
    emu.advance(0)
    (hit,) = receiver.on("/menu")
    assert hit.param("Digits") == "42"


def test_gather_without_action_posts_to_the_current_document(emu, receiver):
    calls = []

    def voice(hit):
        calls.append(hit.param("Digits"))
        if hit.param("Digits"):
            return twiml("<Say>Thanks</Say>")
        return twiml("<Gather numDigits='1'/>")

    receiver.answer("/voice", voice)
    sid = emu.engine.incoming(from_=CALLER, digits="7").sid
    emu.advance(2)
    assert calls == [None, "7"]
    assert emu.said(sid) == ["Thanks"]


def test_redirect_verb_follows_relative_url_with_method(emu, receiver):
    receiver.answer("/next", twiml("<Say>Next</Say>"))
    sid = ring(emu, receiver, twiml("<Redirect method='GET'>/next?step=2</Redirect><Say>unreached</Say>"))
    emu.advance(2)
    (hit,) = receiver.on("/next")
    assert hit.method == "GET" and hit.param("step") == "2" and hit.param("CallSid") == sid
    assert emu.said(sid) == ["Next"]


def test_hangup_ends_the_call(emu, receiver):
    sid = ring(emu, receiver, twiml("<Say>Bye</Say><Hangup/><Say>unreached</Say>"))
    emu.advance(2)
    assert status(emu, sid) == "completed"
    assert emu.said(sid) == ["Bye"]


def test_reject_leaves_inbound_call_unanswered(emu, receiver):
    sid = ring(emu, receiver, twiml("<Reject reason='busy'/>"))
    emu.advance(1)
    call = emu.client.calls(sid).fetch()
    assert call.status == "busy"
    assert (call.duration, call.end_time, call.price) == (None, None, None)  # never answered
    (final,) = receiver.on("/status")
    assert final.param("CallStatus") == "busy"


def test_dial_creates_child_leg_with_its_own_callbacks_and_posts_action(emu, receiver, validator):
    receiver.answer("/dialed", twiml("<Say>The call has ended</Say>"))
    sid = ring(emu, receiver, twiml(
        "<Dial action='/dialed' timeout='20' callerId='+15555550100'>",
        "<Number statusCallbackEvent='initiated ringing answered completed' statusCallback='/leg'>+15555550140</Number>",
        "</Dial>",
    ))
    emu.advance(1)
    (child,) = emu.client.calls.list(parent_call_sid=sid)
    assert child.direction == "outbound-dial" and child._from == NUMBER and child.status == "in-progress"
    emu.advance(5)  # the dialed party talks for EMULATOR_DIAL_TALK_SECONDS
    legs = receiver.on("/leg")
    assert [(int(h.param("SequenceNumber")), h.param("CallStatus")) for h in legs] == [
        (0, "initiated"), (1, "ringing"), (2, "in-progress"), (3, "completed")]
    for hit in legs:
        assert hit.param("ParentCallSid") == sid and hit.param("Direction") == "outbound-dial"
        assert_signed(hit, validator)
    (action,) = receiver.on("/dialed")
    p = action.params
    assert p["DialCallStatus"] == "completed" and p["DialCallSid"] == child.sid and p["DialCallDuration"] == "5"
    assert p["CallStatus"] == "in-progress"
    assert emu.said(sid) == ["The call has ended"]
    emu.advance(1)
    # the parent is inbound: only its end goes to the number's status callback
    assert receiver.statuses(sid) == [(0, "completed")]


def test_dial_busy_number_reports_dial_call_status(emu, receiver):
    sid = ring(emu, receiver, twiml("<Dial action='/dialed'>+15555550186</Dial>"))
    emu.advance(2)
    (action,) = receiver.on("/dialed")
    assert action.param("DialCallStatus") == "busy"
    assert "DialCallDuration" not in action.params
    assert status(emu, sid) == "completed"


def test_dial_without_action_continues_with_next_verb(emu, receiver):
    sid = ring(emu, receiver, twiml("<Dial timeout='5'><Client>alice</Client></Dial><Say>After the dial</Say>"))
    emu.advance(1)
    (child,) = emu.client.calls.list(parent_call_sid=sid)
    assert child.to == "client:alice"
    emu.advance(5)
    assert emu.said(sid) == ["After the dial"]


def test_dial_sip_leg_answers_after_ring_time(emu, receiver):
    sid = ring(emu, receiver, twiml("<Dial action='/dialed' timeout='8'><Sip>sip:desk@pbx.example</Sip></Dial>"))
    emu.advance(1)
    (child,) = emu.client.calls.list(parent_call_sid=sid)
    assert child.to == "sip:desk@pbx.example" and child.status == "in-progress"
    emu.advance(5)
    assert receiver.on("/dialed")[0].param("DialCallStatus") == "completed"


def test_dial_to_no_answer_number_times_out(emu, receiver):
    ring(emu, receiver, twiml("<Dial action='/dialed' timeout='8'>+15555550187</Dial>"))
    emu.advance(7.5)
    assert receiver.on("/dialed") == []
    emu.advance(0.5)
    assert receiver.on("/dialed")[0].param("DialCallStatus") == "no-answer"


def test_redirect_during_dial_requests_dial_action_first_and_ignores_it(emu, receiver):
    receiver.answer("/dialed", twiml("<Say>ignored</Say>"))
    receiver.answer("/operator", twiml("<Say>Operator</Say>"))
    sid = ring(emu, receiver, twiml("<Dial action='/dialed'><Number>+15555550140</Number></Dial>"))
    emu.advance(2)
    (child,) = emu.client.calls.list(parent_call_sid=sid)
    assert child.status == "in-progress"
    emu.client.calls(sid).update(url=receiver.url + "/operator")
    emu.advance(0)
    paths = [p for p in receiver.paths() if p in ("/dialed", "/operator")]
    assert paths == ["/dialed", "/operator"]
    assert receiver.on("/dialed")[0].param("DialCallStatus") == "completed"
    assert emu.said(sid) == ["Operator"]
    assert emu.client.calls(child.sid).fetch().status == "completed"


def test_enqueue_waits_until_redirected_then_reports_queue_result(emu, receiver):
    receiver.answer("/left", twiml("<Say>ignored</Say>"))
    sid = ring(emu, receiver, twiml("<Enqueue action='/left'>support</Enqueue><Say>unreached</Say>"))
    emu.advance(30)
    assert status(emu, sid) == "in-progress"
    assert kinds(emu, sid, "queue")[0]["queue"] == "support"
    emu.client.calls(sid).update(twiml=twiml("<Say>An operator will help you</Say>"))
    emu.advance(0)
    (left,) = receiver.on("/left")
    assert left.param("QueueResult") == "redirected" and left.param("QueueTime") == "30"
    assert emu.said(sid) == ["An operator will help you"]


def test_enqueue_action_reports_hangup_when_caller_leaves(emu, receiver):
    sid = ring(emu, receiver, twiml("<Enqueue action='/left'>support</Enqueue>"), hangup_after=10)
    emu.advance(10)
    assert receiver.on("/left")[0].param("QueueResult") == "hangup"
    assert status(emu, sid) == "completed"


def test_conference_caller_waits(emu, receiver):
    sid = ring(emu, receiver, twiml("<Dial><Conference>room-1</Conference></Dial>"))
    emu.advance(60)
    assert status(emu, sid) == "in-progress"
    assert kinds(emu, sid, "conference")[0]["name"] == "room-1"
    emu.client.calls(sid).update(status="completed")
    emu.advance(0)
    assert status(emu, sid) == "completed"


def test_record_posts_recording_to_action(emu, receiver):
    ring(emu, receiver, twiml("<Say>Leave a message</Say><Record action='/recorded' maxLength='2' timeout='3'/>"))
    emu.advance(3)
    (hit,) = receiver.on("/recorded")
    assert hit.param("RecordingSid").startswith("RE")
    assert hit.param("RecordingDuration") == "2"
    assert "/Recordings/" in hit.param("RecordingUrl")


def test_malformed_twiml_ends_call_with_12100(emu, receiver):
    sid = ring(emu, receiver, "<Response><Say>oops</Response>")
    emu.advance(2)
    assert [line["code"] for line in kinds(emu, sid, "error")] == [12100]
    assert emu.said(sid) == ["We are sorry, an application error has occurred. Goodbye."]
    assert status(emu, sid) == "completed"


def test_wrong_root_is_12102(emu, receiver):
    sid = ring(emu, receiver, "<Document><Say>x</Say></Document>")
    emu.advance(2)
    assert [line["code"] for line in kinds(emu, sid, "error")] == [12102]


def test_http_failure_is_11200(emu, receiver):
    receiver.answer("/voice", "boom", status=500, content_type="text/plain")
    sid = emu.engine.incoming(from_=CALLER).sid
    emu.advance(2)
    assert [line["code"] for line in kinds(emu, sid, "error")] == [11200]
    assert status(emu, sid) == "completed"


def test_fallback_url_gets_error_code_and_url(emu, receiver, validator):
    receiver.answer("/voice", "nope", status=404, content_type="text/plain")
    receiver.answer("/fallback", twiml("<Say>Fallback speaking</Say>"))
    call = emu.client.calls.create(to="+15555550111", from_=NUMBER, url=receiver.url + "/voice", fallback_url=receiver.url + "/fallback")
    emu.advance(3)
    (hit,) = receiver.on("/fallback")
    assert hit.param("ErrorCode") == "11200"
    assert hit.param("ErrorUrl") == receiver.url + "/voice"
    assert_signed(hit, validator)
    assert emu.said(call.sid) == ["Fallback speaking"]


def test_plain_text_response_is_read_aloud(emu, receiver):
    receiver.answer("/voice", "Hello from text", content_type="text/plain")
    sid = emu.engine.incoming(from_=CALLER).sid
    emu.advance(2)
    assert emu.said(sid) == ["Hello from text"]
    assert status(emu, sid) == "completed"


def test_inline_twiml_with_relative_url_fails_with_15004(emu, receiver):
    call = emu.client.calls.create(to="+15555550111", from_=NUMBER, twiml=twiml("<Redirect>/relative</Redirect>"))
    emu.advance(2)
    assert [line["code"] for line in kinds(emu, call.sid, "error")] == [15004]
    assert receiver.on("/relative") == []


def test_get_voice_webhook_is_signed_with_query(emu, receiver, validator):
    receiver.answer("/voice", twiml("<Say>Hi</Say>"))
    emu.client.calls.create(to="+15555550111", from_=NUMBER, url=receiver.url + "/voice?lang=en", method="GET")
    emu.advance(2)
    (hit,) = receiver.on("/voice")
    assert hit.method == "GET" and hit.param("lang") == "en" and hit.param("CallStatus") == "in-progress"
    assert_signed(hit, validator)


def test_dial_with_several_nouns_rings_them_all_and_connects_the_first_to_answer(emu, receiver, validator):
    events = "statusCallbackEvent='initiated ringing answered completed'"
    sid = ring(emu, receiver, twiml(
        "<Dial action='/dialed' timeout='20'>",
        f"<Number statusCallback='/never' {events}>+15555550187</Number>",
        f"<Number statusCallback='/busy' {events}>+15555550186</Number>",
        f"<Client statusCallback='/bob' {events}>bob</Client>",
        f"<Sip statusCallback='/desk' {events}>sip:desk@pbx.example</Sip>",
        "</Dial>",
    ))
    emu.advance(0)
    legs = {leg.to: leg for leg in emu.client.calls.list(parent_call_sid=sid)}
    assert set(legs) == {"+15555550187", "+15555550186", "client:bob", "sip:desk@pbx.example"}
    assert {leg.status for leg in legs.values()} == {"ringing"}
    emu.advance(1.2)  # busy at 1 s; bob (the third noun) answers at 1.2 s, before the desk at 1.3 s
    status_of = {to: emu.client.calls(leg.sid).fetch().status for to, leg in legs.items()}
    assert status_of == {"+15555550187": "canceled", "+15555550186": "busy", "client:bob": "in-progress", "sip:desk@pbx.example": "canceled"}
    assert receiver.on("/dialed") == []
    emu.advance(5)  # bob talks for EMULATOR_DIAL_TALK_SECONDS
    (action,) = receiver.on("/dialed")
    assert (action.param("DialCallStatus"), action.param("DialCallSid"), action.param("DialCallDuration")) == ("completed", legs["client:bob"].sid, "5")
    for path, statuses in (("/never", ["initiated", "ringing", "canceled"]), ("/busy", ["initiated", "ringing", "busy"]),
                           ("/bob", ["initiated", "ringing", "in-progress", "completed"]), ("/desk", ["initiated", "ringing", "canceled"])):
        hits = receiver.on(path)
        assert [h.param("CallStatus") for h in hits] == statuses, path
        assert [int(h.param("SequenceNumber")) for h in hits] == list(range(len(statuses)))
        assert {h.param("ParentCallSid") for h in hits} == {sid}
        for hit in hits:
            assert_signed(hit, validator)


def test_dial_with_several_nouns_none_answering(emu, receiver):
    receiver.answer("/dialed", twiml("<Pause length='60'/>"))
    sid = ring(emu, receiver, twiml("<Dial action='/dialed' timeout='5'><Number>+15555550186</Number><Number>+15555550187</Number></Dial>"))
    emu.advance(4)
    assert receiver.on("/dialed") == []
    emu.advance(1)
    (action,) = receiver.on("/dialed")
    assert action.param("DialCallStatus") == "no-answer" and "DialCallDuration" not in action.params
    receiver.hits.clear()
    emu.client.calls(sid).update(twiml=twiml(f"<Dial action='{receiver.url}/again'><Number>+15555550186</Number><Number>+15555550186</Number></Dial>"))
    emu.advance(2)
    assert receiver.on("/again")[0].param("DialCallStatus") == "busy"


def test_speech_gather_delivers_what_the_caller_says(emu, receiver, validator):
    receiver.answer("/voice", twiml("<Gather input='speech' action='/heard' timeout='5'><Say>How can we help?</Say></Gather>"))
    receiver.answer("/heard", twiml("<Gather input='dtmf speech' action='/keys' numDigits='1'/>"))
    resp = requests.post(emu.url + "/emulator/incoming", json={"from": CALLER, "speech": ["I need billing", "never used"], "digits": ",7"},
                         auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5)
    assert resp.status_code == 201
    sid = resp.json()["call_sid"]
    emu.advance(3)
    (heard,) = receiver.on("/heard")
    assert (heard.param("SpeechResult"), heard.param("Confidence"), heard.param("Digits")) == ("I need billing", "0.9", None)
    assert_signed(heard, validator)
    (keys,) = receiver.on("/keys")  # the second Gather takes dtmf and speech: the scripted key wins over the words
    assert (keys.param("Digits"), keys.param("SpeechResult")) == ("7", None)
    assert any(line["kind"] == "speech" and line["speech"] == "I need billing" for line in emu.transcript(sid))


def test_live_speech_reaches_a_waiting_gather_and_silence_times_out(emu, receiver):
    receiver.answer("/voice", twiml("<Gather input='speech' action='/heard' timeout='10'/><Gather input='speech' timeout='3'/>",
                                    "<Say>We did not hear you</Say><Pause length='30'/>"))
    receiver.answer("/heard", twiml("<Gather input='speech' timeout='3' action='/again'/><Say>We did not hear you</Say><Pause length='30'/>"))
    sid = emu.engine.incoming(from_=CALLER).sid
    emu.advance(2)
    resp = requests.post(f"{emu.url}/emulator/calls/{sid}/speech", json={"speech": "Operator please"}, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5)
    assert resp.status_code == 202
    emu.advance(1)
    (heard,) = receiver.on("/heard")
    assert heard.param("SpeechResult") == "Operator please"
    emu.advance(3)
    assert receiver.on("/again") == []
    assert emu.said(sid) == ["We did not hear you"]
    for bad in ({"speech": ""}, {"speech": "x" * 501}, {"speech": "bell\x07"}):
        assert requests.post(f"{emu.url}/emulator/calls/{sid}/speech", json=bad, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5).status_code == 400


def test_a_dtmf_gather_ignores_speech(emu, receiver):
    receiver.answer("/voice", twiml("<Gather action='/keys' timeout='2'/><Say>No keys</Say>"))
    sid = emu.engine.incoming(from_=CALLER, speech=["hello"]).sid
    emu.advance(3)
    assert receiver.on("/keys") == []
    assert emu.said(sid) == ["No keys"]
