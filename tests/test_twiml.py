"""twiml.py: presets, validation and absolute URLs (parsed with an XML parser)."""
from __future__ import annotations

from xml.etree import ElementTree

import pytest

import twiml

BASE = "https://switchboard.example"
HOLD_MUSIC = "https://cdn.example/hold.mp3"


def verbs(document: str) -> list[str]:
    return [child.tag for child in ElementTree.fromstring(document)]


def test_every_preset_is_valid_twiml_within_the_limit():
    presets = twiml.presets(HOLD_MUSIC)
    assert [p.key for p in presets] == ["hold", "say", "transfer", "voicemail", "survey", "conference"]
    for preset in presets:
        sent = twiml.prepare(preset.twiml, BASE)
        assert ElementTree.fromstring(sent).tag == "Response"
        assert len(sent) <= twiml.MAX_TWIML_CHARS


def test_presets_use_the_verbs_they_promise():
    by_key = {p.key: ElementTree.fromstring(p.twiml) for p in twiml.presets(HOLD_MUSIC)}
    assert by_key["hold"].find("Play").text == HOLD_MUSIC
    assert by_key["say"].find("Say").text.startswith("An operator will be with you")
    assert by_key["transfer"].find("Dial/Number").text == "+15555550142"
    record = by_key["voicemail"].find("Record")
    assert record.get("action") == "/voice/recorded"
    # Twilio's word that the file is ready (or that there is none) comes to us.
    assert record.get("recordingStatusCallback") == "/voice/recording-status"
    assert record.get("recordingStatusCallbackEvent") == "completed absent"
    gather = by_key["survey"].find("Gather")
    assert gather.get("action") == "/voice/gathered" and gather.get("numDigits") == "1"
    assert by_key["conference"].find("Dial/Conference").text == "switchboard-room"


def test_relative_urls_become_absolute_before_sending():
    source = ('<Response><Gather action="/voice/gathered"><Say>Hi</Say></Gather>'
              '<Record action="recorded" recordingStatusCallback="/cb"/>'
              '<Play>/static/beep.mp3</Play><Redirect method="POST">/voice/hold</Redirect>'
              '<Dial action="https://other.example/next"><Number url="/whisper">+15555550142</Number></Dial>'
              '</Response>')
    root = ElementTree.fromstring(twiml.prepare(source, BASE))
    assert root.find("Gather").get("action") == f"{BASE}/voice/gathered"
    assert root.find("Record").get("action") == f"{BASE}/recorded"
    assert root.find("Record").get("recordingStatusCallback") == f"{BASE}/cb"
    assert root.find("Play").text == f"{BASE}/static/beep.mp3"
    assert root.find("Redirect").text == f"{BASE}/voice/hold"
    assert root.find("Dial").get("action") == "https://other.example/next"
    assert root.find("Dial/Number").get("url") == f"{BASE}/whisper"
    assert root.find("Gather/Say").text == "Hi"


@pytest.mark.parametrize("text, reason", [
    ("", "empty"),
    ("   ", "empty"),
    ("<Response><Say>hi</Response>", "not well-formed XML"),
    ("Say hello", "not well-formed XML"),
    ("<Reply/>", "root element must be <Response>"),
    ("<Response><Dance/></Response>", "<Dance> is not a TwiML verb allowed directly in <Response>"),
    ("<Response><say>hi</say></Response>", "case-sensitive"),
    ("<Response><Gather><Dial>+15555550142</Dial></Gather></Response>", "inside <Gather>"),
    ("<Response><Dial><Say>x</Say></Dial></Response>", "inside <Dial>"),
    ('<!DOCTYPE r [<!ENTITY a "aaaa">]><Response><Say>&a;</Say></Response>', "DOCTYPE"),
    ("<Response><Redirect>ftp://example.com/x</Redirect></Response>", "not an http(s) URL"),
])
def test_bad_twiml_is_refused_with_a_reason(text, reason):
    with pytest.raises(twiml.TwimlError) as refused:
        twiml.prepare(text, BASE)
    assert reason in str(refused.value)


def test_the_size_limit_counts_the_document_actually_sent():
    say = "a" * (twiml.MAX_TWIML_CHARS - 200)
    short = f'<Response><Say>{say}</Say><Redirect>/h</Redirect></Response>'
    assert len(short) < twiml.MAX_TWIML_CHARS
    long_base = "https://" + "x" * 300 + ".example"
    twiml.prepare(short, BASE)  # fits with a short base URL
    with pytest.raises(twiml.TwimlError) as refused:
        twiml.prepare(short, long_base)
    assert str(twiml.MAX_TWIML_CHARS) in str(refused.value)


def test_ssml_inside_say_is_allowed():
    sent = twiml.prepare('<Response><Say>Hello <break time="1s"/> <emphasis>there</emphasis></Say></Response>', BASE)
    assert verbs(sent) == ["Say"]


def test_absolute_url_accepts_only_http_and_https():
    assert twiml.absolute_url("/voice/hold", BASE) == f"{BASE}/voice/hold"
    assert twiml.absolute_url("https://x.example/t", BASE) == "https://x.example/t"
    for bad in ("javascript:alert(1)", "ftp://x.example/", "http://", "mailto:a@b.example",
                "not a url", "//evil.example/x", "https://x.example/a b", "/voice\nhold"):
        with pytest.raises(twiml.TwimlError):
            twiml.absolute_url(bad, BASE)
    assert twiml.absolute_url("hold", BASE) == f"{BASE}/hold"  # TwiML may use relative paths
    with pytest.raises(twiml.TwimlError, match="nor a path of ours starting with /"):
        twiml.absolute_url("hold", BASE, rooted=True)  # a Redirect URL field may not


def test_transfer_reports_its_child_leg_to_our_status_callback():
    transfer = next(p for p in twiml.presets(HOLD_MUSIC) if p.key == "transfer")
    number = ElementTree.fromstring(twiml.prepare(transfer.twiml, BASE)).find("Dial/Number")
    assert number.get("statusCallback") == f"{BASE}/status"
    assert number.get("statusCallbackEvent").split() == ["initiated", "ringing", "answered", "completed"]


def test_pretty_indents_twiml_and_leaves_anything_else_alone():
    assert twiml.pretty("<Response><Say>Hi</Say></Response>") == \
        "<Response>\n  <Say>Hi</Say>\n</Response>"
    for raw in ("<Response><Say>", '<!DOCTYPE r [<!ENTITY a "b">]><Response>&a;</Response>'):
        assert twiml.pretty(raw) == raw


def test_a_placed_calls_message_is_said_then_the_call_ends():
    document = twiml.say_then_hang_up("  Table 4 <ready> & waiting  ")
    assert verbs(document) == ["Say", "Hangup"]
    assert ElementTree.fromstring(document).find("Say").text == "Table 4 <ready> & waiting"
    assert twiml.prepare(document, BASE) == document  # valid as it is


@pytest.mark.parametrize("message, reason", [
    ("", "A message to say is required."), (" \n ", "A message to say is required."),
    ("x" * 1001, "at most 1000"), ("bell\x07", "control characters"),
    ("\ud800", "control characters"), ("&" * 1000, "Twilio accepts at most 4000"),
])
def test_a_message_that_cannot_be_said_is_refused(message, reason):
    with pytest.raises(twiml.TwimlError, match=reason):
        twiml.say_then_hang_up(message)
