"""Helpers shared by tests: Twilio-style signing, inbound webhook parameters, fresh SIDs."""
from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlencode

from flask import Flask
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from emulator import create_app as create_emulator
from emulator.server import serve_in_thread

AUTH_TOKEN = "test-auth-token-0123456789abcdef"
ACCOUNT_SID = "AC" + "0" * 31 + "1"
ADMIN_PASSWORD = "correct horse battery staple"
OUR_NUMBER = "+15555550100"


def dispose(app: Flask) -> None:
    """Done with a test's app: its wire log written and stopped, then its database pool
    closed (nothing may open a connection after that)."""
    import wire_log
    from models import db
    with app.app_context():
        try:
            wire_log.log().close()
        finally:
            db.engine.dispose()


def new_call_sid() -> str:
    """A fresh, valid CallSid."""
    return "CA" + secrets.token_hex(16)


class Twilio:
    """Posts webhooks to the app signed exactly as Twilio signs them (reference §9)."""

    def __init__(self, client, token: str = AUTH_TOKEN, base_url: str = "http://localhost"):
        self.client = client
        self.validator = RequestValidator(token)
        self.base_url = base_url

    def post(self, path: str, params: dict, headers: dict | None = None, signed_url: str | None = None):
        """POST form params to `path`, signed over `signed_url` (default: base_url + path)."""
        url = signed_url or self.base_url + path
        signature = self.validator.compute_signature(url, params)
        return self.client.post(
            path, data=params, headers={"X-Twilio-Signature": signature, **(headers or {})}
        )

    def get(self, path: str, params: dict):
        """GET with params in the query string, signed over the full URL."""
        target = f"{path}?{urlencode(params)}"
        signature = self.validator.compute_signature(self.base_url + target, {})
        return self.client.get(target, headers={"X-Twilio-Signature": signature})


def basic_auth(username: str, password: str) -> dict:
    """The Authorization header of HTTP Basic."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def add_operator(app: Flask, username: str, password: str, admin: bool = False,
                 name: str | None = None):
    """Create an operator account as the command line would."""
    from audit import Actor
    from operators import add_operator as add
    with app.app_context():
        return add(username, password, Actor("test", None, "cli"), name, admin).id


def log_in(client, username: str = "admin", password: str = ADMIN_PASSWORD):
    """Log a Flask test client in through the login form, with the form's CSRF token."""
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    response = client.post("/login", data={"username": username, "password": password,
                                           "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


def inbound_params(sid: str, status: str = "ringing", **extra) -> dict:
    """The parameters Twilio sends for an inbound call to our number (reference §5)."""
    params = {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "CallSid": sid,
        "CallStatus": status,
        "Called": OUR_NUMBER,
        "Caller": "+15555550123",
        "Direction": "inbound",
        "From": "+15555550123",
        "To": OUR_NUMBER,
    }
    params.update(extra)
    return params


@dataclass
class Wired:
    """The app and the local Twilio emulator, each served on loopback, wired to each other."""

    app: Flask
    app_url: str
    emulator_app: Flask
    emulator_url: str
    _servers: tuple = ()

    @property
    def engine(self):
        """The emulator's engine (with a ManualClock, `.advance(seconds)` steps time)."""
        return self.emulator_app.extensions["emulator"]

    def sdk(self) -> Client:
        """The official SDK, pointed at the emulator as the app's own client is."""
        client = Client(self.app.config["TWILIO_ACCOUNT_SID"], self.app.config["TWILIO_AUTH_TOKEN"])
        client.api.base_url = self.emulator_url
        return client

    def stop(self) -> None:
        """Stop the emulator's engine and both servers."""
        self.engine.stop()
        for server in self._servers:
            server.stop()


def serve_app(app: Flask):
    """Serve the app on loopback in a thread (werkzeug's server), each response body read
    into memory first: when a browser drops a connection mid-response (it navigated away while
    a script loaded), werkzeug's server skips the body's close(), leaving a static file open."""
    inner = app.wsgi_app

    def read_first(environ, start_response):
        body = inner(environ, start_response)
        try:
            return [b"".join(body)]
        finally:
            if hasattr(body, "close"):
                body.close()

    app.wsgi_app = read_first
    return serve_in_thread(app)


def wire(app: Flask, **emulator_config) -> Wired:
    """Serve `app` and a new emulator on loopback: the app's SDK and demo-mode calls go to the
    emulator; the emulator's number sends its webhooks to the app, signed with the app's token.
    Callers stay on the line unless a test says otherwise."""
    app_server = serve_app(app)
    emulator_app = create_emulator({
        "TWILIO_ACCOUNT_SID": app.config["TWILIO_ACCOUNT_SID"],
        "TWILIO_AUTH_TOKEN": app.config["TWILIO_AUTH_TOKEN"],
        "TWILIO_PHONE_NUMBER": app.config["TWILIO_PHONE_NUMBER"],
        "EMULATOR_VOICE_URL": f"{app_server.url}/voice",
        "EMULATOR_STATUS_CALLBACK": f"{app_server.url}/status",
        "EMULATOR_DEBUGGER_URL": f"{app_server.url}/debugger",
        "EMULATOR_INBOUND_HANGUP_AFTER": "0",
        **emulator_config,
    })
    emulator_server = serve_in_thread(emulator_app)
    emulator_app.extensions["emulator"].settings.public_url = emulator_server.url
    app.config.update(TWILIO_API_BASE_URL=emulator_server.url, EMULATOR_URL=emulator_server.url,
                      PUBLIC_URL=app_server.url)
    return Wired(app, app_server.url, emulator_app, emulator_server.url,
                 (emulator_server, app_server))
