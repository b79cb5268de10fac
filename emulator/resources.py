"""The shapes Twilio answers in: a Call and a Recording as the spec's JSON schemas give them.

Pure functions of engine snapshots; api.py sends them.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import urlencode

from .engine import API_VERSION, Call, notification_sid, rfc2822
from .inspector import Delivery
from .recordings import Recording, media_path

#: A Call's subresources: (JSON key, path segment), in the spec's order.
SUBRESOURCES = (
    ("notifications", "Notifications"),
    ("recordings", "Recordings"),
    ("payments", "Payments"),
    ("events", "Events"),
    ("siprec", "Siprec"),
    ("streams", "Streams"),
    ("transcriptions", "Transcriptions"),
    ("user_defined_message_subscriptions", "UserDefinedMessageSubscriptions"),
    ("user_defined_messages", "UserDefinedMessages"),
)


def format_number(number: str | None) -> str | None:
    """Display form of a number: `(555) 555-0100` for NANP numbers, otherwise unchanged."""
    if number is None:
        return None
    m = re.fullmatch(r"\+1(\d{3})(\d{3})(\d{4})", number)
    if m:
        return f"({m.group(1)}) {m.group(2)}-{m.group(3)}"
    return number


def call_path(call: Call) -> str:
    """`/2010-04-01/Accounts/AC…/Calls/CA…` (no extension)."""
    return f"/{API_VERSION}/Accounts/{call.account_sid}/Calls/{call.sid}"


def call_price(call: Call, price_per_minute: float) -> str:
    """What an answered call cost, per started minute (at least one), negative as Twilio shows it: "-0.02800"."""
    return f"{-max(1, math.ceil(call.duration() / 60)) * price_per_minute:.5f}"


def call_resource(call: Call, price_per_minute: float = 0.0) -> dict[str, Any]:
    """The call as Twilio's Call resource (every field of the spec's schema, plus stir_verstat).

    Per the spec, `duration` and `end_time` are empty until an answered call ends, and empty for
    busy, failed, unanswered or canceled calls; `price` is set once an answered call has ended.
    """
    base = call_path(call)
    completed = call.ended and call.answered
    return {
        "sid": call.sid,
        "date_created": rfc2822(call.created),
        "date_updated": rfc2822(call.updated or call.created),
        "parent_call_sid": call.parent_call_sid,
        "account_sid": call.account_sid,
        "to": call.to,
        "to_formatted": format_number(call.to),
        "from": call.from_,
        "from_formatted": format_number(call.from_),
        "phone_number_sid": call.phone_number_sid,
        "status": call.status,
        "start_time": rfc2822(call.start_time),
        "end_time": rfc2822(call.end_time) if completed else None,
        "duration": str(call.duration()) if completed else None,
        "price": call_price(call, price_per_minute) if completed else None,
        "price_unit": "USD",
        "direction": call.direction,
        "answered_by": call.answered_by,
        "api_version": API_VERSION,
        "forwarded_from": call.forwarded_from,
        "group_sid": None,
        "caller_name": call.caller_name,
        "queue_time": str(call.queue_time),
        "trunk_sid": None,
        "uri": base + ".json",
        "subresource_uris": {key: f"{base}/{name}.json" for key, name in SUBRESOURCES},
        "stir_verstat": call.stir_verstat,
    }


def recording_resource(rec: Recording, public_url: str, of_call: bool = False) -> dict[str, Any]:
    """A Recording as the spec's `api.v2010.account.recording` (or, `of_call`, its
    `api.v2010.account.call.call_recording`: the form listed under a call)."""
    body: dict[str, Any] = {
        "account_sid": rec.account_sid,
        "api_version": API_VERSION,
        "call_sid": rec.call_sid,
        "conference_sid": None,
        "date_created": rfc2822(rec.created),
        "date_updated": rfc2822(rec.updated or rec.created),
        "start_time": rfc2822(rec.start_time),
        "duration": None if rec.duration is None else str(rec.duration),
        "sid": rec.sid,
        "price": rec.price(),
        "price_unit": "USD",
        "status": rec.status,
        "channels": rec.channels,
        "source": rec.source,
        "error_code": None,
        "encryption_details": None,
    }
    if of_call:
        body["track"] = rec.track
        body["uri"] = f"/{API_VERSION}/Accounts/{rec.account_sid}/Calls/{rec.call_sid}/Recordings/{rec.sid}.json"
        return body
    path = media_path(rec.account_sid, rec.sid)
    body["uri"] = path + ".json"
    body["media_url"] = public_url.rstrip("/") + path
    body["subresource_uris"] = {
        "add_on_results": f"{path}/AddOnResults.json",
        "transcriptions": f"{path}/Transcriptions.json",
    }
    return body


def event_resource(d: Delivery) -> dict[str, Any]:
    """One request made for a call and the answer it got, as the spec's `call_event` (Call Events)."""
    parameters: dict[str, str] = {}
    for name, value in d.params:
        parameters[name] = f"{parameters[name]} {value}" if name in parameters else value
    return {
        "request": {"method": d.method, "url": d.url, "parameters": parameters},
        "response": {
            "response_code": d.status,
            "request_duration": d.elapsed_ms,
            "content_type": d.content_type or None,
            "response_body": d.body if d.status is not None else d.error,
            "date_created": rfc2822(d.at),
        },
    }


def notifications(call: Call) -> list[Notification]:
    """A call's Notifications: each error or warning with a code in its transcript, newest first."""
    out = [Notification(notification_sid(call.sid, i), call, line) for i, line in enumerate(call.transcript)
           if line["kind"] in ("error", "warning") and line.get("code")]
    return out[::-1]


class Notification:
    """One error or warning of a call, as the Notifications subresource shows it."""

    def __init__(self, sid: str, call: Call, line: dict[str, Any]):
        self.sid, self.call, self.line = sid, call, line

    @property
    def log(self) -> str:
        """`0` for an error, `1` for a warning."""
        return "0" if self.line["kind"] == "error" else "1"

    def resource(self, instance: bool = False) -> dict[str, Any]:
        """The spec's `call_notification` (or, `instance`, its `-instance` form)."""
        code = str(self.line["code"])
        text = urlencode({"ErrorCode": code, "LogLevel": "ERROR" if self.log == "0" else "WARN", "Msg": self.line["text"]})
        body = {
            "account_sid": self.call.account_sid,
            "api_version": API_VERSION,
            "call_sid": self.call.sid,
            "date_created": self.line["at"],
            "date_updated": self.line["at"],
            "error_code": code,
            "log": self.log,
            "message_date": self.line["at"],
            "message_text": text,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "request_method": None,
            "request_url": self.line.get("url", ""),
            "sid": self.sid,
            "uri": f"{call_path(self.call)}/Notifications/{self.sid}.json",
        }
        if instance:
            body.update(request_variables="", response_body="", response_headers="")
        return body


# --------------------------------------------------------------------------- the XML form

XML_DECLARATION = "<?xml version='1.0' encoding='UTF-8'?>\n"


def _pascal(key: str) -> str:
    """`date_created` → `DateCreated`, the XML form's element names."""
    return "".join(part[:1].upper() + part[1:] for part in key.split("_"))


def _path(value: str) -> str:
    """A URI as the XML form gives it: without `.json`."""
    return value[: -len(".json")] if value.endswith(".json") else value


def _element(parent: ET.Element, key: str, value: Any) -> None:
    child = ET.SubElement(parent, _pascal(key))
    if isinstance(value, dict):
        for sub_key, sub_value in value.items():
            _element(child, sub_key, _path(sub_value) if key.endswith("uris") else sub_value)
    elif value is not None:
        child.text = _path(value) if key == "uri" else str(value).lower() if isinstance(value, bool) else str(value)


def xml_document(root: ET.Element) -> bytes:
    """`<TwilioResponse>…</TwilioResponse>` with Twilio's XML declaration."""
    response = ET.Element("TwilioResponse")
    response.append(root)
    body = ET.tostring(response, encoding="unicode", short_empty_elements=True)
    # `<StartTime/>` as Twilio writes it (a literal " />" can only be a tag: text escapes "<").
    return (XML_DECLARATION + body.replace(" />", "/>")).encode("utf-8")


def resource_xml(name: str, resource: dict[str, Any]) -> ET.Element:
    """A resource's JSON form as the XML form's element (`<Call><Sid>…</Sid>…</Call>`)."""
    element = ET.Element(name)
    for key, value in resource.items():
        _element(element, key, value)
    return element


def page_xml(page: dict[str, Any], key: str, name: str) -> ET.Element:
    """A JSON list page as the XML form's list: `<Calls page=… pagesize=… uri=… firstpageuri=…>` and
    one element per item (`<Call>`)."""
    attrs = {k.replace("_", ""): "" if v is None else str(v) for k, v in page.items() if k != key}
    element = ET.Element(name, attrs)
    for item in page[key]:
        element.append(resource_xml(name[:-1], item))
    return element


def error_xml(body: dict[str, Any]) -> ET.Element:
    """An error in the XML form: `<RestException><Code>…</Code><Message>…</Message>…`."""
    return resource_xml("RestException", dict(sorted(body.items())))
