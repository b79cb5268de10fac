"""Helpers shared by tests: Twilio-style signing, inbound webhook parameters, fresh SIDs."""
from __future__ import annotations

import secrets
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

AUTH_TOKEN = "test-auth-token-0123456789abcdef"
ACCOUNT_SID = "AC" + "0" * 31 + "1"
ADMIN_PASSWORD = "correct horse battery staple"
OUR_NUMBER = "+15555550100"


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
