"""Shared fixtures: an app on a real SQLite file, a test client, and Twilio-style signing."""
from __future__ import annotations

import secrets

import pytest
from twilio.request_validator import RequestValidator

from app import create_app

AUTH_TOKEN = "test-auth-token-0123456789abcdef"
ACCOUNT_SID = "AC" + "0" * 31 + "1"
ADMIN_PASSWORD = "correct horse battery staple"
OUR_NUMBER = "+15555550100"


def new_call_sid() -> str:
    """A fresh, valid CallSid."""
    return "CA" + secrets.token_hex(16)


@pytest.fixture
def app(tmp_path):
    """The app on its own SQLite file, with signatures checked as in production."""
    app = create_app({
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'switchboard.db'}",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_PHONE_NUMBER": OUR_NUMBER,
        "TWILIO_VALIDATE_SIGNATURES": True,
        "TWILIO_API_BASE_URL": "",
        "PUBLIC_URL": "",
        "ADMIN_USERNAME": "admin",
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
        "EMULATOR_URL": "",
    })
    yield app
    from models import db
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def client(app):
    """A test client for the app."""
    return app.test_client()


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
        from urllib.parse import urlencode
        target = f"{path}?{urlencode(params)}"
        signature = self.validator.compute_signature(self.base_url + target, {})
        return self.client.get(target, headers={"X-Twilio-Signature": signature})


@pytest.fixture
def twilio(client):
    """Sign and post webhooks like Twilio."""
    return Twilio(client)


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
