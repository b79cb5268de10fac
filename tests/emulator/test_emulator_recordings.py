"""Recordings: `<Record>` and `Record=true` make Recording resources, with media and callbacks."""

from __future__ import annotations

import io
import struct
import wave

import jsonschema
import pytest
import requests
from twilio.base.exceptions import TwilioRestException

from emulator_testkit import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    CALLER,
    NUMBER,
    assert_signed,
    spec_schema,
    twiml,
)

AUTH = (ACCOUNT_SID, AUTH_TOKEN)


def mp3_seconds(data: bytes) -> float:
    """Walk MPEG-1 Layer III frame headers; the audio's length in seconds (fails on a bad frame)."""
    bitrates = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320]
    rates = [44100, 48000, 32000]
    pos = frames = 0
    rate = 0
    while pos < len(data):
        (header,) = struct.unpack(">I", data[pos : pos + 4])
        assert header >> 21 == 0x7FF, f"no frame sync at byte {pos}"
        assert (header >> 19) & 3 == 3 and (header >> 17) & 3 == 1, "not MPEG-1 Layer III"
        bitrate, rate = bitrates[(header >> 12) & 15] * 1000, rates[(header >> 10) & 3]
        pos += 144 * bitrate // rate + ((header >> 9) & 1)
        frames += 1
    assert pos == len(data)
    return frames * 1152 / rate


def test_record_verb_makes_a_recording_with_media_and_callbacks(emu, receiver, spec, validator):
    receiver.answer("/voice", twiml(
        "<Say>Leave a message</Say>",
        "<Record action='/recorded' maxLength='20' timeout='2' recordingStatusCallback='/rec-status' "
        "recordingStatusCallbackEvent='in-progress completed'/>",
    ))
    sid = emu.engine.incoming(from_=CALLER).sid
    emu.advance(1)
    (started,) = receiver.on("/rec-status")
    assert started.param("RecordingStatus") == "in-progress" and started.param("CallSid") == sid
    in_progress = emu.client.calls(sid).recordings.list()
    assert [r.status for r in in_progress] == ["in-progress"] and in_progress[0].duration is None
    emu.advance(5)  # the caller speaks 3 s (EMULATOR_RECORD_SECONDS), then 2 s of silence end it
    (action,) = receiver.on("/recorded")
    recording_sid, url = action.param("RecordingSid"), action.param("RecordingUrl")
    assert action.param("RecordingDuration") == "3"
    assert url == f"{emu.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{recording_sid}"

    (listed,) = emu.client.calls(sid).recordings.list()
    assert (listed.sid, listed.call_sid, listed.status, listed.duration, listed.source) == (recording_sid, sid, "completed", "3", "RecordVerb")
    fetched = emu.client.recordings(recording_sid).fetch()
    assert (fetched.call_sid, fetched.duration, fetched.media_url, fetched.price_unit) == (sid, "3", url, "USD")
    assert fetched.price == "-0.0025"
    assert emu.client.calls(sid).recordings(recording_sid).fetch().sid == recording_sid
    assert [r.sid for r in emu.client.recordings.list(call_sid=sid)] == [recording_sid]
    body = requests.get(f"{emu.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{recording_sid}.json", auth=AUTH, timeout=5).json()
    jsonschema.validate(body, spec_schema(spec, "api.v2010.account.recording"))
    listing = requests.get(f"{emu.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{sid}/Recordings.json", auth=AUTH, timeout=5).json()
    call_recording = spec_schema(spec, "api.v2010.account.call.call_recording")
    # The schema types this price as a number; the spec's own examples (Twilio's answers) send a string.
    call_recording["properties"]["price"]["type"] = ["string", "null"]
    jsonschema.validate(listing["recordings"][0], call_recording)

    done = receiver.on("/rec-status")[-1]
    assert (done.param("RecordingStatus"), done.param("RecordingDuration"), done.param("RecordingUrl")) == ("completed", "3", url)
    assert (done.param("RecordingSource"), done.param("RecordingChannels")) == ("RecordVerb", "1")
    assert_signed(done, validator)

    # The media needs no credentials (Twilio's default): WAV without an extension or with .wav, and MP3.
    for wav_url in (url, url + ".wav"):
        resp = requests.get(wav_url, timeout=5)
        assert resp.status_code == 200 and resp.headers["Content-Type"] == "audio/x-wav"
        with wave.open(io.BytesIO(resp.content)) as audio:
            assert (audio.getframerate(), audio.getnchannels(), audio.getsampwidth()) == (8000, 1, 2)
            assert audio.getnframes() == 3 * 8000
            assert any(audio.readframes(8000)), "the recording is not all silence"
    resp = requests.get(url + ".mp3", timeout=5)
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "audio/mpeg"
    assert mp3_seconds(resp.content) == pytest.approx(3, abs=0.05)
    assert int(resp.headers["Content-Length"]) == len(resp.content)
    assert requests.get(url + ".ogg", auth=AUTH, timeout=5).status_code == 404
    assert requests.get(f"{emu.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{recording_sid}.json", timeout=5).status_code == 401


def test_a_finish_key_pressed_in_the_silence_ends_the_recording_at_once(emu, receiver):
    """Twilio ends a <Record> the moment the caller presses a finishOnKey key; the emulator
    waited out the whole silence timeout first."""
    receiver.answer("/voice", twiml("<Record action='/recorded' maxLength='20' timeout='10' finishOnKey='#'/>"))
    sid = emu.engine.incoming(from_=CALLER).sid
    emu.advance(4)  # the caller speaks 3 s (EMULATOR_RECORD_SECONDS), then is silent
    emu.engine.speak(sid, "and another thing")  # words are part of the recording, not a key
    emu.engine.press(sid, "5")  # not a finishOnKey key
    emu.advance(0)
    assert receiver.on("/recorded") == []
    emu.engine.press(sid, "#")
    emu.advance(0)
    (action,) = receiver.on("/recorded")
    assert (action.param("Digits"), action.param("RecordingDuration")) == ("#", "3")
    emu.advance(30)
    assert len(receiver.on("/recorded")) == 1


def test_silence_ends_the_recording_after_its_timeout(emu, receiver):
    receiver.answer("/voice", twiml("<Record action='/recorded' maxLength='20' timeout='4' finishOnKey='#'/>"))
    sid = emu.engine.incoming(from_=CALLER).sid
    emu.advance(5)
    emu.engine.press(sid, "5")  # not the finish key: the silence goes on
    emu.advance(1.9)
    assert receiver.on("/recorded") == []
    emu.advance(0.2)
    (action,) = receiver.on("/recorded")
    assert action.param("Digits") is None and action.param("RecordingDuration") == "3"


def test_record_true_on_create_records_the_whole_call(emu, receiver, validator):
    receiver.answer("/voice", twiml("<Say>Hello</Say><Pause length='6'/>"))
    call = emu.client.calls.create(to="+15555550111", from_=NUMBER, url=receiver.url + "/voice", record=True,
                                   status_callback=receiver.url + "/status", recording_status_callback=receiver.url + "/rec-status",
                                   recording_channels="dual")
    emu.advance(1)
    (live,) = emu.client.calls(call.sid).recordings.list()
    assert (live.status, live.source, live.channels) == ("in-progress", "OutboundAPI", 2)
    assert receiver.on("/rec-status") == []  # only `completed` is asked for by default
    emu.advance(7)
    assert emu.client.calls(call.sid).fetch().duration == "7"
    (final,) = receiver.on("/status")
    (rec,) = emu.client.calls(call.sid).recordings.list()
    assert (rec.status, rec.duration) == ("completed", "7")
    assert final.param("RecordingSid") == rec.sid and final.param("RecordingDuration") == "7"
    assert final.param("RecordingUrl") == f"{emu.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{rec.sid}"
    (done,) = receiver.on("/rec-status")
    assert (done.param("RecordingStatus"), done.param("RecordingSource"), done.param("RecordingChannels")) == ("completed", "OutboundAPI", "2")
    assert receiver.paths().index("/status") < receiver.paths().index("/rec-status")
    assert_signed(done, validator)
    with wave.open(io.BytesIO(requests.get(final.param("RecordingUrl"), timeout=5).content)) as audio:
        assert audio.getnframes() == 7 * 8000


def test_caller_hanging_up_during_record_still_posts_the_action(emu, receiver):
    receiver.answer("/voice", twiml("<Record action='/recorded' maxLength='60'/>"))
    sid = emu.engine.incoming(from_=CALLER, hangup_after=2).sid
    emu.advance(3)
    (action,) = receiver.on("/recorded")
    assert action.param("RecordingDuration") == "2"
    assert emu.client.calls(sid).fetch().status == "completed"
    assert emu.client.recordings(action.param("RecordingSid")).fetch().duration == "2"


def test_recordings_can_be_deleted_and_bad_record_values_are_refused(emu, receiver):
    receiver.answer("/voice", twiml("<Record maxLength='2' action='/done'/>"))
    sid = emu.engine.incoming(from_=CALLER).sid
    emu.advance(8)
    (rec,) = emu.client.calls(sid).recordings.list()
    assert emu.client.recordings(rec.sid).delete() is True
    with pytest.raises(TwilioRestException) as err:
        emu.client.recordings(rec.sid).fetch()
    assert (err.value.status, err.value.code) == (404, 20404)
    assert requests.get(f"{emu.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{rec.sid}.wav", timeout=5).status_code == 404
    for bad in ({"Record": "maybe"}, {"Record": "true", "RecordingChannels": "stereo"}, {"Record": "true", "RecordingStatusCallbackEvent": "done"}):
        resp = requests.post(f"{emu.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json", auth=AUTH, timeout=5,
                             data={"To": "+15555550111", "From": NUMBER, "Url": receiver.url + "/voice", **bad})
        assert (resp.status_code, resp.json()["code"]) == (400, 20001), bad
