"""TwiML for live calls: the operator's presets, validation, and absolute URLs (no Flask here).

Inline TwiML sent with `calls(sid).update(twiml=…)` has no base URL, so a relative `action`
or `<Redirect>` in it fails on Twilio's side (reference §13, error 15004): `prepare()` makes
every URL absolute against our public base URL before the size check, because the absolute
document is what Twilio receives.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit
from xml.etree import ElementTree
from xml.sax.saxutils import escape, quoteattr

# Twilio refuses a `Twiml` parameter longer than this (reference §3.1, error 32018).
MAX_TWIML_CHARS = 4000
# The longest message read to the person a placed call reaches (say_then_hang_up): about a
# minute of speech, and room to spare under MAX_TWIML_CHARS unless it is mostly & and <.
MAX_MESSAGE_CHARS = 1000
# Characters XML 1.0 cannot carry at all (control characters, lone surrogates, U+FFFE/F).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'

# SSML elements allowed inside <Say> (Twilio's Polly/Google voices).
_SSML = frozenset({
    "break", "emphasis", "lang", "p", "phoneme", "prosody", "s", "say-as", "sub", "w",
    "amazon:domain", "amazon:effect",
})

# Verbs allowed directly under <Response>, and the children each one may have.
# A child listed here with its own entry is checked recursively.
ALLOWED_CHILDREN: dict[str, frozenset[str]] = {
    "Response": frozenset({
        "Say", "Play", "Pause", "Gather", "Record", "Dial", "Redirect", "Hangup", "Reject",
        "Enqueue", "Leave", "Connect", "Refer", "Pay", "Start", "Stop", "Echo", "Sms",
    }),
    "Say": _SSML,
    "Play": frozenset(),
    "Pause": frozenset(),
    "Gather": frozenset({"Say", "Play", "Pause"}),
    "Record": frozenset(),
    "Dial": frozenset({"Number", "Client", "Conference", "Queue", "Sip", "Application"}),
    "Number": frozenset(),
    "Client": frozenset({"Identity", "Parameter"}),
    "Identity": frozenset(),
    "Parameter": frozenset(),
    "Conference": frozenset(),
    "Queue": frozenset(),
    "Sip": frozenset(),
    "Application": frozenset({"ApplicationSid", "Parameter"}),
    "ApplicationSid": frozenset(),
    "Redirect": frozenset(),
    "Hangup": frozenset(),
    "Reject": frozenset(),
    "Enqueue": frozenset({"Task"}),
    "Task": frozenset(),
    "Leave": frozenset(),
    "Connect": frozenset({"Stream", "Room", "Conversation", "VirtualAgent", "Autopilot",
                          "ConversationRelay"}),
    "Stream": frozenset({"Parameter"}),
    "Room": frozenset(),
    "Conversation": frozenset(),
    "VirtualAgent": frozenset({"Config", "Parameter"}),
    "Config": frozenset(),
    "Autopilot": frozenset(),
    "ConversationRelay": frozenset({"Language", "Parameter"}),
    "Language": frozenset(),
    "Refer": frozenset({"Sip"}),
    "Pay": frozenset({"Prompt", "Parameter"}),
    "Prompt": frozenset({"Say", "Play", "Pause"}),
    "Start": frozenset({"Stream", "Siprec", "Transcription", "Recording"}),
    "Stop": frozenset({"Stream", "Siprec", "Transcription", "Recording"}),
    "Siprec": frozenset({"Parameter"}),
    "Transcription": frozenset({"Parameter"}),
    "Recording": frozenset(),
    "Echo": frozenset(),
    "Sms": frozenset(),
}

# Attributes that hold a URL Twilio will request, on any element.
URL_ATTRIBUTES = frozenset({
    "action", "url", "statusCallback", "recordingStatusCallback", "waitUrl",
    "transcribeCallback", "partialResultCallback", "eventCallbackUrl",
})
# Elements whose text is a URL.
URL_TEXT_ELEMENTS = frozenset({"Redirect", "Play"})


class TwimlError(ValueError):
    """TwiML we refuse to send; the message tells the operator why."""


@dataclass(frozen=True)
class Preset:
    """A named TwiML document the operator can start from."""

    key: str
    label: str
    twiml: str


def presets(hold_music_url: str, hold_path: str = "/voice/hold",
            gathered_path: str = "/voice/gathered", recorded_path: str = "/voice/recorded",
            status_path: str = "/status", transfer_to: str = "+15555550142",
            recording_status_path: str = "/voice/recording-status") -> list[Preset]:
    """The operator's presets; relative URLs in them are made absolute when sent.

    The transfer's <Number> reports its leg's progress to our status callback, so the
    child leg shows under its parent in the live list (reference §4.1). The voicemail's
    <Record> asks for the recording status callback too: Twilio's word that the file is
    ready to play (its action may come before the file is), or that there is none.
    """
    def doc(*verbs: str) -> str:
        return f"{XML_DECLARATION}\n<Response>\n" + "".join(f"  {v}\n" for v in verbs) + "</Response>"

    return [
        Preset("hold", "Hold music", doc(
            f"<Play>{escape(hold_music_url)}</Play>",
            f'<Redirect method="POST">{escape(hold_path)}</Redirect>',
        )),
        Preset("say", "Say a message", doc(
            "<Say>An operator will be with you shortly. Thank you for waiting.</Say>",
            f'<Redirect method="POST">{escape(hold_path)}</Redirect>',
        )),
        Preset("transfer", "Transfer to a number", doc(
            "<Say>Transferring your call now.</Say>",
            f"<Dial><Number statusCallback={quoteattr(status_path)} statusCallbackMethod=\"POST\" "
            f"statusCallbackEvent=\"initiated ringing answered completed\">{escape(transfer_to)}</Number></Dial>",
        )),
        Preset("voicemail", "Voicemail", doc(
            "<Say>Please leave a message after the tone. Press the pound key when you are done.</Say>",
            f"<Record action={quoteattr(recorded_path)} method=\"POST\" maxLength=\"120\" "
            "finishOnKey=\"#\" playBeep=\"true\" "
            f"recordingStatusCallback={quoteattr(recording_status_path)} "
            "recordingStatusCallbackMethod=\"POST\" "
            "recordingStatusCallbackEvent=\"completed absent\"/>",
        )),
        Preset("survey", "Feedback survey", doc(
            f"<Gather action={quoteattr(gathered_path)} method=\"POST\" numDigits=\"1\" timeout=\"10\">"
            "<Say>How did we do today? Press 1 to 5, where 5 is excellent.</Say></Gather>",
            "<Say>We did not get your answer. Goodbye.</Say>",
        )),
        Preset("conference", "Join a conference", doc(
            "<Say>Connecting you to the conference.</Say>",
            "<Dial><Conference>switchboard-room</Conference></Dial>",
        )),
    ]


def say_then_hang_up(message: str) -> str:
    """TwiML that reads `message` out, then hangs up (a placed call's "say a message"); raise
    TwimlError if the message is empty, too long, or has characters XML cannot carry."""
    text = (message or "").strip()
    if not text:
        raise TwimlError("A message to say is required.")
    if len(text) > MAX_MESSAGE_CHARS:
        raise TwimlError(f"The message is {len(text)} characters; at most {MAX_MESSAGE_CHARS}.")
    if _NOT_XML.search(text):
        raise TwimlError("The message must not contain control characters.")
    root = ElementTree.Element("Response")
    ElementTree.SubElement(root, "Say").text = text
    ElementTree.SubElement(root, "Hangup")
    document = serialize(root)
    if len(document) > MAX_TWIML_CHARS:
        raise TwimlError(f"The message makes {len(document)} characters of TwiML; Twilio "
                         f"accepts at most {MAX_TWIML_CHARS}.")
    return document


def parse(text: str) -> ElementTree.Element:
    """Parse TwiML and check its shape; raise TwimlError saying what is wrong."""
    if not text or not text.strip():
        raise TwimlError("TwiML is empty.")
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise TwimlError("TwiML must not contain a DOCTYPE or entity declarations.")
    try:
        root = ElementTree.fromstring(text.strip())
    except ElementTree.ParseError as error:
        raise TwimlError(f"TwiML is not well-formed XML: {error}.") from None
    if root.tag != "Response":
        raise TwimlError(f"The root element must be <Response>, not <{_tag_name(root.tag)}>.")
    _check_children(root)
    return root


def _check_children(element: ElementTree.Element) -> None:
    """Refuse elements Twilio does not know where they appear (verbs are case-sensitive)."""
    allowed = ALLOWED_CHILDREN.get(element.tag, frozenset())
    for child in element:
        if child.tag not in allowed:
            where = "directly in <Response>" if element.tag == "Response" else f"inside <{element.tag}>"
            hint = " (verbs are case-sensitive)" if _case_insensitive_match(child.tag, allowed) else ""
            raise TwimlError(f"<{_tag_name(child.tag)}> is not a TwiML verb allowed {where}{hint}.")
        if child.tag in ALLOWED_CHILDREN and child.tag not in _SSML:
            _check_children(child)


def _case_insensitive_match(tag: str, allowed: frozenset[str]) -> bool:
    return isinstance(tag, str) and tag.lower() in {a.lower() for a in allowed}


def _tag_name(tag) -> str:
    """A tag for a message (ElementTree spells namespaced tags as {uri}name)."""
    return str(tag).split("}")[-1][:40]


def is_http_url(url: str) -> bool:
    """True for an absolute http(s) URL with a host."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def absolute_url(url: str, base_url: str, rooted: bool = False) -> str:
    """Resolve a relative URL against our base (with `rooted`, only a path starting with /,
    as in "/voice/hold"); refuse spaces, and anything that is not http(s) after that."""
    url = url.strip()
    if not url or any(c.isspace() or ord(c) < 32 for c in url):
        raise TwimlError(f"{url[:100]!r} is not a URL: it must not contain spaces.")
    if urlsplit(url).scheme:
        resolved = url
    elif url.startswith("//") or (rooted and not url.startswith("/")):
        raise TwimlError(f"{url[:100]!r} is neither an http(s) URL nor a path of ours "
                         "starting with /.")
    else:
        resolved = urljoin(base_url.rstrip("/") + "/", url)
    if not is_http_url(resolved):
        raise TwimlError(f"{url[:100]!r} is not an http(s) URL.")
    return resolved


def absolutize(root: ElementTree.Element, base_url: str) -> None:
    """Make every URL Twilio would request from this document absolute, in place."""
    for element in root.iter():
        for name, value in list(element.attrib.items()):
            if name in URL_ATTRIBUTES and value.strip():
                element.set(name, absolute_url(value, base_url))
        if element.tag in URL_TEXT_ELEMENTS and element.text and element.text.strip():
            element.text = absolute_url(element.text, base_url)


def serialize(root: ElementTree.Element) -> str:
    """The document as Twilio will receive it."""
    return XML_DECLARATION + ElementTree.tostring(root, encoding="unicode")


def prepare(text: str, base_url: str) -> str:
    """Validate operator TwiML and return it with absolute URLs, ready for `update(twiml=…)`.

    Raises TwimlError if it is malformed, has an unknown verb, or is too long to send.
    """
    if len(text) > MAX_TWIML_CHARS * 4:  # don't even parse something absurdly large
        raise TwimlError(f"TwiML is {len(text)} characters; Twilio accepts at most {MAX_TWIML_CHARS}.")
    root = parse(text)
    absolutize(root, base_url)
    document = serialize(root)
    if len(document) > MAX_TWIML_CHARS:
        raise TwimlError(
            f"TwiML is {len(document)} characters once its URLs are made absolute; "
            f"Twilio accepts at most {MAX_TWIML_CHARS}."
        )
    return document


def pretty(text: str) -> str:
    """TwiML indented for reading (as it was, if it does not parse or declares entities: a
    refused document is shown, never expanded)."""
    if "<!" in text:
        return text
    try:
        root = ElementTree.fromstring(text.encode())
    except ElementTree.ParseError:
        return text
    ElementTree.indent(root, space="  ")
    return ElementTree.tostring(root, encoding="unicode")
