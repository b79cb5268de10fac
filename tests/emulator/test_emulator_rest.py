"""The Calls REST API through the unmodified official SDK, over real HTTP on loopback."""

from __future__ import annotations

import copy
from datetime import UTC
from email.utils import parsedate_to_datetime

import jsonschema
import pytest
import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from emulator_testkit import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    NUMBER,
    VERIFIED,
    make_emulator,
    openapi_to_jsonschema,
    parse,
    twiml,
)

CALLS = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"


@pytest.fixture(scope="module")
def call_schema(spec):
    components = spec["components"]["schemas"]
    return openapi_to_jsonschema(copy.deepcopy(components["api.v2010.account.call"]), components)


@pytest.fixture(scope="module")
def list_schema(spec):
    components = spec["components"]["schemas"]
    raw = spec["paths"]["/2010-04-01/Accounts/{AccountSid}/Calls.json"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    schema = openapi_to_jsonschema(copy.deepcopy(raw), components)
    schema["required"] = sorted(raw["properties"])
    return schema


def raw(emu, method, path, **kwargs):
    return requests.request(method, emu.url + path, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5, **kwargs)


def create(emu, receiver, **kwargs):
    args = {"to": "+15555550111", "from_": NUMBER, "url": receiver.url + "/voice"}
    args.update(kwargs)
    return emu.client.calls.create(**args)


def test_create_returns_queued_call_matching_spec_schema(emu, receiver, call_schema, spec):
    resp = raw(emu, "POST", CALLS, data={"To": "+15555550111", "From": NUMBER, "Url": receiver.url + "/voice"})
    assert resp.status_code == 201
    body = resp.json()
    jsonschema.validate(body, call_schema)
    assert set(spec["components"]["schemas"]["api.v2010.account.call"]["properties"]) <= set(body)
    assert body["status"] == "queued"
    assert body["direction"] == "outbound-api"
    assert body["api_version"] == "2010-04-01"
    assert body["to_formatted"] == "(555) 555-0111"
    assert body["uri"] == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{body['sid']}.json"
    assert body["subresource_uris"]["recordings"] == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{body['sid']}/Recordings.json"
    assert parsedate_to_datetime(body["date_created"]).year == 2026
    assert body["duration"] is None


def test_sdk_fetch_update_delete_round_trip(emu, receiver, call_schema):
    receiver.answer("/voice", twiml("<Pause length='30'/>"))
    call = create(emu, receiver)
    assert call.status == "queued"
    emu.advance(1)
    fetched = emu.client.calls(call.sid).fetch()
    assert fetched.status == "in-progress"
    assert fetched.start_time is not None
    jsonschema.validate(raw(emu, "GET", f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{call.sid}.json").json(), call_schema)
    ended = emu.client.calls(call.sid).update(status="completed")
    assert ended.status == "completed"
    emu.advance(2)
    final = emu.client.calls(call.sid).fetch()
    assert final.duration == "0" and final.end_time is not None and final.price == "-0.01400"
    assert emu.client.calls(call.sid).delete() is True
    with pytest.raises(TwilioRestException) as err:
        emu.client.calls(call.sid).fetch()
    assert (err.value.status, err.value.code) == (404, 20404)
    assert f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{call.sid}.json was not found" in err.value.msg


def test_delete_answers_204_with_empty_body(emu, receiver):
    call = create(emu, receiver)
    resp = raw(emu, "DELETE", f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{call.sid}.json")
    assert resp.status_code == 204
    assert resp.content == b""


def test_list_pages_walk_every_call_with_sdk(emu, receiver, list_schema):
    sids = {create(emu, receiver).sid for _ in range(7)}
    resp = raw(emu, "GET", CALLS, params={"PageSize": 3})
    assert resp.status_code == 200
    page = resp.json()
    jsonschema.validate(page, list_schema)
    assert (page["page"], page["page_size"], page["start"], page["end"]) == (0, 3, 0, 2)
    assert page["next_page_uri"].startswith(f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json?")
    assert page["previous_page_uri"] is None
    second = raw(emu, "GET", page["next_page_uri"]).json()
    assert (second["page"], second["start"], second["end"]) == (1, 3, 5)
    assert second["previous_page_uri"] is not None
    assert {c.sid for c in emu.client.calls.list(page_size=3)} == sids
    assert len(list(emu.client.calls.stream(page_size=2))) == 7
    assert len(emu.client.calls.list(limit=4)) == 4
    # newest first, like Twilio
    listed = [c["sid"] for c in raw(emu, "GET", CALLS).json()["calls"]]
    created_order = [c.sid for c in sorted(emu.engine.all_calls(), key=lambda c: c.created, reverse=True)]
    assert listed == created_order


def test_list_filters(emu, receiver):
    receiver.answer("/voice", twiml("<Pause length='60'/>"))
    busy = create(emu, receiver, to="+15555550186")
    other = create(emu, receiver, to="+15555550112", from_=VERIFIED)
    emu.advance(2)
    assert [c.sid for c in emu.client.calls.list(status="busy")] == [busy.sid]
    assert [c.sid for c in emu.client.calls.list(to="+15555550112")] == [other.sid]
    assert [c.sid for c in emu.client.calls.list(from_=VERIFIED)] == [other.sid]
    assert {c.sid for c in emu.client.calls.list(start_time="2026-01-05")} == {busy.sid, other.sid}
    assert emu.client.calls.list(start_time="2026-01-06") == []
    from datetime import datetime

    assert len(emu.client.calls.list(start_time_after=datetime(2026, 1, 5, 8, tzinfo=UTC))) == 2
    assert emu.client.calls.list(start_time_before=datetime(2026, 1, 5, 8, tzinfo=UTC)) == []
    assert emu.client.calls.list(end_time_after="2026-01-05") == []  # an unanswered (busy) call has no end_time
    emu.client.calls(other.sid).update(status="completed")
    assert [c.sid for c in emu.client.calls.list(end_time_after="2026-01-05")] == [other.sid]
    with pytest.raises(TwilioException):
        emu.client.calls.list(status="bogus")


def test_list_parent_call_sid_finds_dial_legs(emu, receiver):
    receiver.answer("/voice", twiml("<Dial><Number>+15555550140</Number></Dial>"))
    parent = create(emu, receiver)
    emu.advance(3)
    legs = emu.client.calls.list(parent_call_sid=parent.sid)
    assert len(legs) == 1
    assert legs[0].direction == "outbound-dial"
    assert legs[0].parent_call_sid == parent.sid
    assert legs[0].to == "+15555550140"


@pytest.mark.parametrize(
    "to,code",
    [("+15005550001", 21217), ("+15005550002", 21214), ("+15005550003", 21215), ("+15005550004", 21216)],
)
def test_magic_to_numbers_fail_create(emu, receiver, to, code):
    with pytest.raises(TwilioRestException) as err:
        create(emu, receiver, to=to)
    assert (err.value.status, err.value.code) == (400, code)
    assert emu.client.calls.list() == []


def test_create_validation_errors(emu, receiver):
    cases = [
        ({"From": NUMBER, "Url": receiver.url}, 21201),
        ({"To": "+15555550111", "Url": receiver.url}, 21213),
        ({"To": "+15555550111", "From": NUMBER, "Url": "not a url"}, 21205),
        ({"To": "+15555550111", "From": NUMBER}, 21205),
        ({"To": "+15555550111", "From": NUMBER, "Twiml": "<Response>" + "<Pause/>" * 600 + "</Response>"}, 32018),
        ({"To": "+15555550111", "From": NUMBER, "Url": receiver.url, "Method": "PUT"}, 20001),
        ({"To": "+15555550111", "From": NUMBER, "Url": receiver.url, "StatusCallbackEvent": "bogus"}, 20001),
        ({"To": "12", "From": NUMBER, "Url": receiver.url}, 21211),
    ]
    for data, code in cases:
        resp = raw(emu, "POST", CALLS, data=data)
        assert resp.status_code == 400, data
        body = resp.json()
        assert body["code"] == code, data
        assert body["status"] == 400
        assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
        assert body["message"]
    resp = raw(emu, "POST", CALLS, data={"To": "+15555550111", "From": NUMBER, "Url": "ftp://x/y"})
    assert resp.json()["message"] == "Url is not a valid URL: ftp://x/y"


def test_from_must_be_an_owned_number_or_a_verified_caller_id(receiver):
    emu, handle = make_emulator(receiver, EMULATOR_NUMBERS="+15555550101, +15555550102")
    try:
        owned = [create(emu, receiver, from_=number) for number in (NUMBER, "+15555550101", "+15555550102")]
        assert all(call.phone_number_sid.startswith("PN") for call in owned)
        assert len({call.phone_number_sid for call in owned}) == 3
        assert create(emu, receiver, from_=VERIFIED).phone_number_sid.startswith("PN")
        assert create(emu, receiver, to="client:bob", from_="client:alice").status == "queued"
        assert create(emu, receiver, from_="+15005550006").status == "queued"  # Twilio's test From keeps its rule
        with pytest.raises(TwilioRestException) as err:
            create(emu, receiver, from_="+15555550177")
        assert (err.value.status, err.value.code) == (400, 21210)
        assert "The source phone number provided, +15555550177, is not yet verified for your account" in err.value.msg
        with pytest.raises(TwilioRestException) as err:
            create(emu, receiver, from_="+15005550001")
        assert err.value.code == 21212
        assert len(emu.client.calls.list()) == 6
    finally:
        handle.stop()
        emu.engine.stop()


def test_sdk_raises_rest_exception_with_code_and_status(emu, receiver):
    with pytest.raises(TwilioRestException) as err:
        create(emu, receiver, url="nope")
    assert (err.value.status, err.value.code) == (400, 21205)
    assert "Url is not a valid URL: nope" in err.value.msg
    with pytest.raises(TwilioRestException) as err:
        create(emu, receiver, url=None, twiml="<Response>" + "x" * 4001 + "</Response>")
    assert (err.value.status, err.value.code) == (400, 32018)


def test_wrong_credentials_get_20003(emu):
    bad = Client(ACCOUNT_SID, "wrong-token")
    bad.api.base_url = emu.url
    with pytest.raises(TwilioRestException) as err:
        bad.calls.create(to="+15555550111", from_=NUMBER, url="http://127.0.0.1/x")
    assert (err.value.status, err.value.code) == (401, 20003)
    resp = requests.get(emu.url + CALLS, timeout=5)
    assert resp.status_code == 401
    body = resp.json()
    assert body["code"] == 20003 and body["detail"] == "Your AccountSid or AuthToken was incorrect."
    assert resp.headers["WWW-Authenticate"].startswith("Basic")


def test_other_account_in_path_is_not_found(emu):
    other = "AC" + "ab" * 16
    resp = raw(emu, "GET", f"/2010-04-01/Accounts/{other}/Calls.json")
    assert resp.status_code == 404
    assert resp.json()["code"] == 20404
    assert resp.json()["message"] == f"The requested resource /2010-04-01/Accounts/{other}/Calls.json was not found"


def test_unknown_call_is_20404_with_twilio_message(emu):
    sid = "CA" + "0" * 32
    with pytest.raises(TwilioRestException) as err:
        emu.client.calls(sid).update(status="completed")
    assert (err.value.status, err.value.code) == (404, 20404)
    resp = raw(emu, "GET", f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{sid}.json")
    assert resp.json()["message"] == f"The requested resource /2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{sid}.json was not found"


def test_non_loopback_host_header_is_refused(emu):
    resp = requests.get(emu.url + CALLS, headers={"Host": "evil.example:8010"}, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5)
    assert resp.status_code == 403
    assert "loopback" in resp.text or "127.0.0.1" in resp.text
    for host in ("localhost:8010", "127.0.0.1", "[::1]:8010"):
        ok = requests.get(emu.url + CALLS, headers={"Host": host}, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5)
        assert ok.status_code == 200, host


def test_repeated_status_callback_event_keys_are_all_honoured(emu, receiver):
    resp = raw(
        emu,
        "POST",
        CALLS,
        data=[("To", "+15555550111"), ("From", NUMBER), ("Twiml", twiml("<Hangup/>")), ("StatusCallback", receiver.url + "/cb"),
              ("StatusCallbackEvent", "ringing"), ("StatusCallbackEvent", "answered")],
    )
    assert resp.status_code == 201
    emu.advance(2)
    assert receiver.statuses(resp.json()["sid"], "/cb") == [(0, "ringing"), (1, "in-progress"), (2, "completed")]


def test_price_duration_and_times_as_the_spec_describes_them(receiver):
    emu, handle = make_emulator(receiver, EMULATOR_PRICE_PER_MINUTE="0.0085")
    try:
        receiver.answer("/voice", twiml("<Pause length='61'/>"))
        answered = create(emu, receiver)
        busy = create(emu, receiver, to="+15555550186")
        unanswered = create(emu, receiver, to="+15555550187", timeout=10)
        queued = create(emu, receiver)
        emu.client.calls(queued.sid).update(status="canceled")
        emu.advance(2)
        live = emu.client.calls(answered.sid).fetch()
        assert (live.status, live.duration, live.end_time, live.price, live.price_unit) == ("in-progress", None, None, None, "USD")
        assert live.start_time is not None and live.queue_time == "0"
        emu.advance(61)
        done = emu.client.calls(answered.sid).fetch()
        assert (done.status, done.duration, done.price, done.price_unit) == ("completed", "61", "-0.01700", "USD")  # two started minutes
        assert (done.end_time - done.start_time).total_seconds() == 62  # rang 1 s, talked 61 s
        for sid, status in ((busy.sid, "busy"), (unanswered.sid, "no-answer"), (queued.sid, "canceled")):
            call = emu.client.calls(sid).fetch()
            assert (call.status, call.duration, call.end_time, call.price) == (status, None, None, None), status
        assert emu.client.calls(busy.sid).fetch().start_time is not None  # it was dialed
        assert emu.client.calls(queued.sid).fetch().start_time is None  # it never was
    finally:
        handle.stop()
        emu.engine.stop()


def test_date_filters_accept_the_formats_the_spec_documents(emu, receiver):
    receiver.answer("/voice", twiml("<Pause length='5'/>"))
    call = create(emu, receiver)
    emu.advance(10)  # dialed at 09:00:00 UTC, answered at 09:00:01, ended at 09:00:06

    def listed(**params):
        resp = raw(emu, "GET", CALLS, params=params)
        assert resp.status_code == 200, resp.text
        return [c["sid"] for c in resp.json()["calls"]]

    assert listed(**{"StartTime<": "01/05/2026 02:00:01 MST"}) == [call.sid]  # the spec's example format
    assert listed(**{"StartTime<": "01/05/2026 01:59:59 MST"}) == []
    assert listed(**{"StartTime>": "01/05/2026"}) == [call.sid]
    assert listed(**{"EndTime<": "2026-01-05 09:00:07.000"}) == [call.sid]  # the spec's other example format
    assert listed(**{"EndTime>": "2026-01-05 09:00:07.000"}) == []
    assert listed(StartTime="Mon, 05 Jan 2026 09:00:00 +0000") == [call.sid]  # RFC 2822, as Twilio writes dates
    assert listed(StartTime="2026-01-05T09:00:00Z") == [call.sid]
    assert listed(**{"StartTime>": "2026-01-05T10:00:00+01:00"}) == [call.sid]
    for bad in ("yesterday", "13/45/2026", "01/05/2026 10:00 XYZ", "2026-02-30"):
        resp = raw(emu, "GET", CALLS, params={"StartTime": bad})
        assert (resp.status_code, resp.json()["code"]) == (400, 20001), bad


def test_calls_paths_without_an_extension_answer_in_twilio_xml_form(emu, receiver):
    receiver.answer("/voice", twiml("<Pause length='30'/>"))
    base = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls"
    # The legacy reference's curl examples, unchanged but for the host.
    created = raw(emu, "POST", base, data={"Url": receiver.url + "/voice", "To": "+15555550111", "From": NUMBER})
    assert created.status_code == 201 and created.headers["Content-Type"].startswith("application/xml")
    assert created.text.startswith("<?xml version='1.0' encoding='UTF-8'?>")
    call = parse(created.text).find("Call")
    sid = call.findtext("Sid")
    assert (call.findtext("Status"), call.findtext("Direction"), call.findtext("From"), call.findtext("ToFormatted")) == (
        "queued", "outbound-api", NUMBER, "(555) 555-0111")
    assert call.findtext("Uri") == f"{base}/{sid}"
    assert "<StartTime/>" in created.text and call.findtext("StartTime") == ""  # empty, as Twilio writes it
    assert call.find("SubresourceUris").findtext("Recordings") == f"{base}/{sid}/Recordings"
    json_form = emu.client.calls(sid).fetch()
    assert json_form.to == "+15555550111"
    emu.advance(1)
    for path in (f"{base}/{sid}", f"{base}/{sid}.xml"):
        fetched = raw(emu, "GET", path)
        assert fetched.status_code == 200
        assert parse(fetched.text).find("Call").findtext("Status") == "in-progress"
    listed = raw(emu, "GET", base + ".xml", params={"PageSize": 1})
    calls = parse(listed.text).find("Calls")
    assert (calls.get("page"), calls.get("pagesize"), calls.get("previouspageuri")) == ("0", "1", "")
    assert calls.get("firstpageuri").startswith(base + "?") and calls.get("uri").startswith(base + "?")
    assert [c.findtext("Sid") for c in calls.findall("Call")] == [sid]
    ended = raw(emu, "POST", f"{base}/{sid}", data={"Status": "completed"})
    assert parse(ended.text).find("Call").findtext("Status") == "completed"
    assert raw(emu, "DELETE", f"{base}/{sid}").status_code == 204
    missing = raw(emu, "GET", f"{base}/{sid}")
    assert missing.status_code == 404
    error = parse(missing.text).find("RestException")
    assert [child.tag for child in error] == ["Code", "Message", "MoreInfo", "Status"]
    assert (error.findtext("Code"), error.findtext("Status")) == ("20404", "404")
    refused = raw(emu, "POST", base, data={"Url": receiver.url + "/voice", "From": NUMBER})
    assert (refused.status_code, parse(refused.text).find("RestException").findtext("Code")) == (400, "21201")
    unauthenticated = requests.get(emu.url + base, timeout=5)
    assert unauthenticated.status_code == 401
    assert parse(unauthenticated.text).find("RestException").findtext("Detail") == "Your AccountSid or AuthToken was incorrect."
    assert raw(emu, "GET", base + ".json").headers["Content-Type"].startswith("application/json")
