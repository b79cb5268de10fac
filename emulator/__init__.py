"""Switchboard's local Twilio emulator: the Calls REST API, voice webhooks and status callbacks.

Start it with `flask --app emulator run --port 8010`; see emulator/README.md.
Nothing happens at import time: `create_app()` reads the config and builds the engine.
"""

from __future__ import annotations

import logging
import os
import secrets
from typing import Any

from flask import Flask, Response, request

from . import chaos
from .engine import Engine, ManualClock, RealClock, Settings

DEMO_ACCOUNT_SID = "AC0123456789abcdef0123456789abcdef"
DEFAULT_PHONE_NUMBER = "+15555550100"
DEFAULT_URL = "http://127.0.0.1:8010"

#: Config keys with their defaults (strings as in the environment). Documented in README.md.
DEFAULTS: dict[str, str] = {
    "TWILIO_ACCOUNT_SID": DEMO_ACCOUNT_SID,
    # No token is kept in the repo: without one, each start makes a random one (and logs it).
    "TWILIO_AUTH_TOKEN": "",
    "TWILIO_PHONE_NUMBER": DEFAULT_PHONE_NUMBER,
    "EMULATOR_NUMBERS": "",
    "EMULATOR_VERIFIED_CALLER_IDS": "",
    "EMULATOR_VOICE_URL": "http://127.0.0.1:5000/voice",
    "EMULATOR_VOICE_METHOD": "POST",
    "EMULATOR_VOICE_FALLBACK_URL": "",
    "EMULATOR_STATUS_CALLBACK": "http://127.0.0.1:5000/status",
    "EMULATOR_STATUS_CALLBACK_METHOD": "POST",
    "EMULATOR_URL": DEFAULT_URL,
    "EMULATOR_PANEL_URL": "",
    "EMULATOR_DEBUGGER_URL": "",
    "EMULATOR_RING_SECONDS": "1",
    "EMULATOR_SAY_SECONDS": "1",
    "EMULATOR_PLAY_SECONDS": "2",
    "EMULATOR_INBOUND_HANGUP_AFTER": "60",
    "EMULATOR_DIAL_TALK_SECONDS": "5",
    "EMULATOR_RECORD_SECONDS": "3",
    "EMULATOR_TIME_SCALE": "1",
    "EMULATOR_WEBHOOK_TIMEOUT": "15",
    "EMULATOR_PRICE_PER_MINUTE": "0.014",
    "EMULATOR_INSPECTOR_SIZE": "5000",
    "EMULATOR_CHAOS": "",
    "EMULATOR_CALL_WORKERS": "64",
    "EMULATOR_CALLBACK_WORKERS": "64",
}

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def _setting(config: dict[str, Any], key: str) -> Any:
    if key in config:
        return config[key]
    return os.environ.get(key, DEFAULTS[key])


def load_settings(config: dict[str, Any] | None = None) -> Settings:
    """Settings from `config`, else the environment, else the defaults."""
    config = config or {}
    get = lambda key: _setting(config, key)  # noqa: E731
    return Settings(
        account_sid=str(get("TWILIO_ACCOUNT_SID")),
        auth_token=str(get("TWILIO_AUTH_TOKEN")) or _random_token(),
        phone_number=str(get("TWILIO_PHONE_NUMBER")),
        numbers=_number_list(get("EMULATOR_NUMBERS")),
        verified_caller_ids=_number_list(get("EMULATOR_VERIFIED_CALLER_IDS")),
        voice_url=str(get("EMULATOR_VOICE_URL")),
        voice_method=str(get("EMULATOR_VOICE_METHOD")).upper(),
        voice_fallback_url=str(get("EMULATOR_VOICE_FALLBACK_URL") or ""),
        status_callback=str(get("EMULATOR_STATUS_CALLBACK") or ""),
        status_callback_method=str(get("EMULATOR_STATUS_CALLBACK_METHOD")).upper(),
        public_url=str(get("EMULATOR_URL")),
        panel_url=str(get("EMULATOR_PANEL_URL") or ""),
        debugger_url=str(get("EMULATOR_DEBUGGER_URL") or ""),
        ring_seconds=float(get("EMULATOR_RING_SECONDS")),
        say_seconds=float(get("EMULATOR_SAY_SECONDS")),
        play_seconds=float(get("EMULATOR_PLAY_SECONDS")),
        inbound_hangup_after=float(get("EMULATOR_INBOUND_HANGUP_AFTER") or 0),
        dial_talk_seconds=float(get("EMULATOR_DIAL_TALK_SECONDS")),
        record_seconds=float(get("EMULATOR_RECORD_SECONDS")),
        time_scale=float(get("EMULATOR_TIME_SCALE")),
        webhook_timeout=float(get("EMULATOR_WEBHOOK_TIMEOUT")),
        price_per_minute=float(get("EMULATOR_PRICE_PER_MINUTE")),
        inspector_size=int(get("EMULATOR_INSPECTOR_SIZE")),
        chaos=chaos.parse(get("EMULATOR_CHAOS") or ""),
        call_workers=int(get("EMULATOR_CALL_WORKERS")),
        callback_workers=int(get("EMULATOR_CALLBACK_WORKERS")),
    )


def _number_list(value: Any) -> tuple[str, ...]:
    """`+15555550100,+15555550101` (or a list) as a tuple of numbers."""
    items = value if isinstance(value, list | tuple) else str(value or "").replace(";", ",").split(",")
    return tuple(n.strip() for n in items if str(n).strip())


def _random_token() -> str:
    """A throwaway auth token for a run started without TWILIO_AUTH_TOKEN; logged so it can be used."""
    token = secrets.token_hex(16)
    logging.getLogger("emulator").warning(
        "TWILIO_AUTH_TOKEN is not set: this run's auth token is %s (set it in .env for the app too).",
        token,
    )
    return token


def is_loopback_host(host_header: str) -> bool:
    """True for `127.0.0.1`, `localhost` or `[::1]`, with or without a port."""
    host = host_header.strip().lower()
    if host.startswith("["):
        name = host[1 : host.find("]")] if "]" in host else host
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name.rstrip(".") in LOOPBACK_HOSTS


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """The emulator as a Flask app. `config` overrides the environment (and `.env`).

    `config["EMULATOR_CLOCK"]` may be a `ManualClock` (tests); the default is the real clock.
    """
    from dotenv import load_dotenv

    from . import api, console

    if config is None:
        load_dotenv()
    config = dict(config or {})
    app = Flask(__name__, static_url_path="/emulator/static")
    app.config.update({k: v for k, v in config.items() if isinstance(k, str) and k.isupper()})
    settings = load_settings(config)
    clock = config.get("EMULATOR_CLOCK") or RealClock()
    app.extensions["emulator"] = Engine(settings, clock=clock)
    app.config["EMULATOR_URL"] = settings.public_url

    @app.before_request
    def loopback_only() -> Response | None:
        """DNS-rebinding defence, as Twilio's Dev Phone: only loopback Host headers are served."""
        if not is_loopback_host(request.host):
            return Response(
                "Forbidden: the Twilio emulator only answers requests addressed to 127.0.0.1, localhost or [::1].\n",
                status=403,
                content_type="text/plain; charset=utf-8",
            )
        return None

    @app.errorhandler(404)
    def not_found(exc: Exception) -> Any:
        """Unknown REST paths answer in Twilio's JSON shape; others as plain 404s."""
        if request.path.startswith("/2010-04-01/"):
            return api.error_response(20404, f"The requested resource {request.path} was not found", 404)
        return Response("Not found\n", status=404, content_type="text/plain; charset=utf-8")

    @app.errorhandler(405)
    def not_allowed(exc: Exception) -> Any:
        """Wrong HTTP method on a REST path."""
        if request.path.startswith("/2010-04-01/"):
            return api.error_response(20004, "Method not allowed", 405)
        return Response("Method not allowed\n", status=405, content_type="text/plain; charset=utf-8")

    app.url_map.converters["sid"] = api.SidConverter
    app.register_blueprint(api.bp)
    app.register_blueprint(console.bp)
    console.init_app(app)
    return app


__all__ = ["create_app", "load_settings", "Engine", "ManualClock", "RealClock", "Settings", "DEFAULTS"]
