"""Helpers for the emulator tests: a recording webhook receiver standing in for the app, and the emulator on loopback."""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, request
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from emulator import ManualClock, create_app
from emulator.server import serve_in_thread

ACCOUNT_SID = "AC" + "5e" * 16
AUTH_TOKEN = "0123456789abcdef0123456789abcdef"
NUMBER = "+15555550100"
CALLER = "+15555550123"
#: The test account's verified caller ID (a `From` CreateCall accepts besides NUMBER).
VERIFIED = "+15555550199"


@dataclass
class Hit:
    """One request the receiver got, as the app would see it."""

    method: str
    path: str
    url: str
    form: dict[str, list[str]]
    args: dict[str, list[str]]
    headers: dict[str, str]

    def param(self, name: str) -> str | None:
        """A webhook parameter, from the body (POST) or the query (GET)."""
        values = self.form.get(name) or self.args.get(name)
        return values[0] if values else None

    @property
    def params(self) -> dict[str, str]:
        """All parameters, single-valued."""
        source = self.form if self.method == "POST" else self.args
        return {k: v[0] for k, v in source.items()}


@dataclass
class Receiver:
    """A stand-in for the Switchboard app: records requests, answers scripted TwiML."""

    url: str = ""
    hits: list[Hit] = field(default_factory=list)
    script: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str, body: Any, status: int = 200, content_type: str = "text/xml") -> None:
        """Answer requests to `path` with this body (TwiML string, or a callable taking the Hit)."""
        self.script[path] = (body, status, content_type)

    def on(self, path: str) -> list[Hit]:
        """Requests to `path`, in arrival order."""
        with self.lock:
            return [h for h in self.hits if h.path == path]

    def paths(self) -> list[str]:
        """Paths requested, in order."""
        with self.lock:
            return [h.path for h in self.hits]

    def statuses(self, call_sid: str, path: str = "/status") -> list[tuple[int, str]]:
        """(SequenceNumber, CallStatus) of the status callbacks for a call, in arrival order."""
        return [(int(h.param("SequenceNumber")), h.param("CallStatus")) for h in self.on(path) if h.param("CallSid") == call_sid]


def make_receiver_app(rec: Receiver) -> Flask:
    app = Flask("receiver")

    @app.route("/<path:path>", methods=["GET", "POST"])
    def catch(path: str) -> Response:
        raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.full_path
        hit = Hit(
            method=request.method,
            path="/" + path,
            url=request.host_url.rstrip("/") + raw,
            form={k: request.form.getlist(k) for k in request.form},
            args={k: request.args.getlist(k) for k in request.args},
            headers=dict(request.headers),
        )
        with rec.lock:
            rec.hits.append(hit)
        body, status, ctype = rec.script.get(hit.path, ("<Response/>", 200, "text/xml"))
        if callable(body):
            body = body(hit)
        return Response(body, status=status, content_type=ctype)

    return app


@dataclass
class Emu:
    """The emulator under test."""

    url: str
    app: Flask
    clock: ManualClock
    client: Client

    @property
    def engine(self):
        return self.app.extensions["emulator"]

    def advance(self, seconds: float = 0.0, stalled: Sequence[str] = (), stalled_callbacks: Sequence[str] = ()) -> None:
        """Step emulated time and wait for everything due to happen (but in the stalled lanes)."""
        self.engine.advance(seconds, stalled=stalled, stalled_callbacks=stalled_callbacks)

    def transcript(self, sid: str) -> list[dict[str, Any]]:
        return list(self.engine.get(sid).transcript)

    def said(self, sid: str) -> list[str]:
        return [line["text"] for line in self.transcript(sid) if line["kind"] == "say"]


def make_emulator(receiver: Receiver, **overrides: Any):
    clock = ManualClock()
    config = {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_PHONE_NUMBER": NUMBER,
        "EMULATOR_VERIFIED_CALLER_IDS": VERIFIED,
        "EMULATOR_VOICE_URL": receiver.url + "/voice",
        "EMULATOR_STATUS_CALLBACK": receiver.url + "/status",
        "EMULATOR_INBOUND_HANGUP_AFTER": "0",
        "EMULATOR_CLOCK": clock,
        "EMULATOR_WEBHOOK_TIMEOUT": "5",
    }
    config.update(overrides)
    app = create_app(config)
    handle = serve_in_thread(app)
    app.extensions["emulator"].settings.public_url = handle.url  # RecordingUrls point here
    client = Client(ACCOUNT_SID, AUTH_TOKEN)
    client.api.base_url = handle.url
    return Emu(handle.url, app, clock, client), handle


def openapi_to_jsonschema(node, components):
    """OpenAPI 3.0 → JSON Schema: `nullable` becomes a null type, `$ref`s are inlined."""
    if isinstance(node, list):
        return [openapi_to_jsonschema(n, components) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[1]
        return openapi_to_jsonschema(components[name], components)
    out = {k: openapi_to_jsonschema(v, components) for k, v in node.items() if k not in ("nullable", "x-twilio", "example", "examples")}
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = list(out["enum"]) + [None]
    if "format" in out:
        out.pop("format")
    return out


def spec_schema(spec: dict[str, Any], name: str) -> dict[str, Any]:
    """The spec's component schema `name` as a JSON Schema."""
    import copy

    components = spec["components"]["schemas"]
    return openapi_to_jsonschema(copy.deepcopy(components[name]), components)


def twiml(*verbs: str) -> str:
    """A TwiML document from verb snippets."""
    return "<?xml version='1.0' encoding='UTF-8'?><Response>" + "".join(verbs) + "</Response>"


def parse(xml: str) -> ET.Element:
    return ET.fromstring(xml)


def assert_signed(hit: Hit, validator: RequestValidator) -> None:
    """The request carries a valid X-Twilio-Signature and an idempotency token."""
    sig = hit.headers.get("X-Twilio-Signature")
    assert sig, f"unsigned request to {hit.path}"
    params = hit.form if hit.method == "POST" else {}
    from werkzeug.datastructures import MultiDict

    md = MultiDict([(k, v) for k, vs in params.items() for v in vs])
    assert validator.validate(hit.url, md, sig), f"bad signature on {hit.method} {hit.url}"
    assert hit.headers.get("I-Twilio-Idempotency-Token")


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    """For the rare real-time wait (threads), never a fixed sleep."""
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)
