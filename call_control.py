"""The one module that talks to Twilio's REST API (through the official SDK) and to the emulator.

The client is built per app on first use, never at import time, and honours
TWILIO_API_BASE_URL (the local emulator) with `client.api.base_url` (reference §10).
Every failure leaves here as a ControlError carrying Twilio's code and message, so callers
handle one exception type: refusals, timeouts and connection errors alike.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from urllib.parse import urlencode

import requests
from flask import current_app
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

import wire_log

_EXTENSION_KEY = "switchboard.twilio_client"
_UNLOGGED_KEY = "switchboard.twilio_client.unlogged"
STATUS_CALLBACK_EVENTS = ["initiated", "ringing", "answered", "completed"]


class RecordingHttpClient(TwilioHttpClient):
    """The SDK's own HTTP client, noting every request it makes in the wire log: method, URL,
    form parameters, Twilio's status and answer, time taken. Never the credentials."""

    def request(self, method, url, params=None, data=None, headers=None, auth=None,
                timeout=None, allow_redirects=False):
        """Make the request as TwilioHttpClient does, and note the exchange."""
        began = time.perf_counter()
        status = body = code = None
        try:
            response = super().request(method, url, params=params, data=data, headers=headers,
                                       auth=auth, timeout=timeout,
                                       allow_redirects=allow_redirects)
            status, body = response.status_code, response.text
            if status >= 400:
                code = _error_code(body)
            return response
        except Exception as error:
            body = f"No answer: {type(error).__name__}: {error}"
            raise
        finally:
            full_url = url + ("?" + urlencode(params, doseq=True) if params else "")
            wire_log.record_exchange(method, full_url, data, status, body,
                                     (time.perf_counter() - began) * 1000, code)


def _error_code(body: str | None) -> int | None:
    """Twilio's error code in a REST error answer (JSON `code`), if any."""
    try:
        code = json.loads(body or "").get("code")
    except (ValueError, AttributeError):
        return None
    return code if isinstance(code, int) else None


@dataclass
class ControlError(Exception):
    """Twilio refused, or could not be reached. `code` is Twilio's error code when there is one."""

    message: str
    code: int | None = None
    http_status: int | None = None
    timed_out: bool = False

    def __str__(self) -> str:
        return f"Twilio error {self.code}: {self.message}" if self.code else self.message


def client() -> Client:
    """This app's Twilio client (built once per app, on first use): every request it makes is
    noted in the wire log."""
    return _client(_EXTENSION_KEY, RecordingHttpClient)


def _unlogged_client() -> Client:
    """A client whose requests are not noted in the wire log: for reads the Journey makes on
    every poll, which would otherwise fill the journey they are read for."""
    return _client(_UNLOGGED_KEY, TwilioHttpClient)


def _client(key: str, http_client_class) -> Client:
    existing = current_app.extensions.get(key)
    if existing is not None:
        return existing
    config = current_app.config
    if not config["TWILIO_ACCOUNT_SID"] or not config["TWILIO_AUTH_TOKEN"]:
        raise ControlError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must be set to control calls.")
    built = Client(
        config["TWILIO_ACCOUNT_SID"],
        config["TWILIO_AUTH_TOKEN"],
        http_client=http_client_class(timeout=config["TWILIO_TIMEOUT_SECONDS"]),
    )
    if config["TWILIO_API_BASE_URL"]:
        built.api.base_url = config["TWILIO_API_BASE_URL"].rstrip("/")
    current_app.extensions[key] = built
    return built


def _calling(operation):
    """Run one SDK call, turning every way it can fail into a ControlError."""
    try:
        return operation()
    except ControlError:
        raise
    except TwilioRestException as error:
        message = error.msg
        for prefix in ("Unable to update record: ", "Unable to create record: ",
                       "Unable to fetch record: "):
            message = message.removeprefix(prefix)
        raise ControlError(message or f"HTTP {error.status}", error.code, error.status) from None
    except requests.Timeout:
        raise ControlError(
            f"Twilio did not answer within {current_app.config['TWILIO_TIMEOUT_SECONDS']} seconds.",
            timed_out=True,
        ) from None
    except requests.ConnectionError:
        raise ControlError("Could not connect to Twilio's API; nothing was changed.") from None
    except (TwilioException, requests.RequestException) as error:
        raise ControlError(f"Twilio request failed: {error}") from None


def hang_up(sid: str):
    """End the call, even if it is in progress."""
    return _calling(lambda: client().calls(sid).update(status="completed"))


def cancel(sid: str):
    """End a queued or ringing call (Twilio ignores this for an answered call)."""
    return _calling(lambda: client().calls(sid).update(status="canceled"))


def redirect(sid: str, url: str, method: str):
    """Make Twilio fetch new TwiML for the call from `url`."""
    return _calling(lambda: client().calls(sid).update(url=url, method=method))


def send_twiml(sid: str, document: str):
    """Replace the call's running TwiML with `document`."""
    return _calling(lambda: client().calls(sid).update(twiml=document))


def fetch(sid: str):
    """The call as Twilio sees it now."""
    return _calling(lambda: client().calls(sid).fetch())


def call_events(sid: str) -> list[dict]:
    """Twilio's Call Events for the call, oldest first: each request Twilio made for it (and
    each create or update of it), with the answer Twilio got: `{"request": …, "response": …}`.
    Read without noting it in the wire log."""
    events = _calling(lambda: _unlogged_client().calls(sid).events.list())
    return [{"request": event.request or {}, "response": event.response or {}}
            for event in events]


def place_call(to: str, from_: str, status_callback: str, url: str | None = None,
               method: str | None = None, twiml: str | None = None):
    """Start an outbound call that runs `twiml`, or fetches its TwiML from `url`, and whose
    status callbacks come back to us."""
    return _calling(lambda: client().calls.create(
        to=to,
        from_=from_,
        url=url,
        method=method,
        twiml=twiml,
        status_callback=status_callback,
        status_callback_method="POST",
        status_callback_event=STATUS_CALLBACK_EVENTS,
    ))


# Recording media: the SDK has no method for the audio itself, so it is requested on the SDK
# client's own HTTP session (its connection pool, its credentials), streamed: the SDK's
# client.request() would read the whole file into memory and decode it as text.
RECORDING_FORMATS = {"mp3": "audio/mpeg", "wav": "audio/x-wav"}


def recording_media(recording_sid: str, fmt: str, byte_range: str | None = None):
    """Open a recording's audio (`fmt`: mp3 or wav) at Twilio, streamed: a requests.Response
    the caller must close. Its URL is built from our API base, account and the RecordingSid,
    never taken from a webhook. ControlError if Twilio refuses or cannot be reached."""
    sdk = client()
    config = current_app.config
    base = (config["TWILIO_API_BASE_URL"] or "https://api.twilio.com").rstrip("/")
    url = f"{base}/2010-04-01/Accounts/{sdk.account_sid}/Recordings/{recording_sid}.{fmt}"
    session = getattr(sdk.http_client, "session", None) or requests.Session()
    headers = {"Accept": RECORDING_FORMATS[fmt]}
    if byte_range:
        headers["Range"] = byte_range
    # Media may be served from another host after a redirect; requests drops our credentials
    # when the host changes.
    response = _calling(lambda: session.get(url, auth=sdk.auth, headers=headers, stream=True,
                                            timeout=config["TWILIO_TIMEOUT_SECONDS"]))
    if response.status_code >= 400:
        response.close()
        found = "no such recording" if response.status_code == 404 \
            else f"HTTP {response.status_code}"
        raise ControlError(f"Twilio could not give the recording's audio ({found}).",
                           http_status=response.status_code)
    return response


# The emulator's own control endpoints (demo mode only: EMULATOR_URL is set).

def _emulator(method: str, path: str, **kwargs):
    config = current_app.config
    url = config["EMULATOR_URL"].rstrip("/") + path
    try:
        response = requests.request(
            method, url, auth=(config["TWILIO_ACCOUNT_SID"], config["TWILIO_AUTH_TOKEN"]),
            timeout=config["TWILIO_TIMEOUT_SECONDS"], **kwargs,
        )
    except requests.RequestException:
        raise ControlError(f"Could not reach the emulator at {config['EMULATOR_URL']}.") from None
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code >= 400:
        message = (body.get("message") or body.get("error")) if isinstance(body, dict) else None
        raise ControlError(message or f"The emulator answered HTTP {response.status_code}.",
                           body.get("code") if isinstance(body, dict) else None,
                           response.status_code)
    return body


def simulate_incoming(from_: str, caller_name: str | None, to: str | None = None,
                      hangup_after: float | None = None, digits: str = "") -> dict:
    """Ask the emulator to ring our Voice URL like an inbound caller; returns its call
    (`call_sid`, `status`, …)."""
    payload = {"from": from_}
    if caller_name:
        payload["caller_name"] = caller_name
    if to:
        payload["to"] = to
    if hangup_after:
        payload["hangup_after"] = hangup_after
    if digits:
        payload["digits"] = digits
    return _emulator("POST", "/emulator/incoming", json=payload)


def transcript(sid: str) -> dict:
    """The caller's-eye transcript of a call, from the emulator."""
    return _emulator("GET", f"/emulator/calls/{sid}/transcript")


def caller_presses(sid: str, digits: str) -> dict:
    """Demo mode: the simulated caller presses `digits` now."""
    return _emulator("POST", f"/emulator/calls/{sid}/digits", json={"digits": digits})


def caller_stays(sid: str) -> dict:
    """Demo mode: the simulated caller stays on the line (no planned hang-up)."""
    return _emulator("POST", f"/emulator/calls/{sid}/stay")


def caller_hangs_up(sid: str) -> dict:
    """Demo mode: the simulated caller puts the phone down."""
    return _emulator("POST", f"/emulator/calls/{sid}/hangup")
