"""Configuration: every setting read from the environment (and `.env`), with safe defaults."""
from __future__ import annotations

import os


def env_flag(name: str, default: bool) -> bool:
    """Read a boolean environment variable ("1/true/yes/on" or "0/false/no/off")."""
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def load_config() -> dict:
    """Return the settings from the environment; create_app() overrides them with its argument."""
    return {
        "SECRET_KEY": os.environ.get("SECRET_KEY"),
        "SQLALCHEMY_DATABASE_URI": os.environ.get("DATABASE_URL", "sqlite:///switchboard.db"),
        "TWILIO_ACCOUNT_SID": os.environ.get("TWILIO_ACCOUNT_SID", ""),
        "TWILIO_AUTH_TOKEN": os.environ.get("TWILIO_AUTH_TOKEN", ""),
        "TWILIO_API_BASE_URL": os.environ.get("TWILIO_API_BASE_URL", ""),
        "TWILIO_PHONE_NUMBER": os.environ.get("TWILIO_PHONE_NUMBER", ""),
        "TWILIO_VALIDATE_SIGNATURES": env_flag("TWILIO_VALIDATE_SIGNATURES", True),
        "PUBLIC_URL": os.environ.get("PUBLIC_URL", "").rstrip("/"),
        "PROXY_FIX_HOPS": int(os.environ.get("PROXY_FIX_HOPS", "1")),
        "ADMIN_USERNAME": os.environ.get("ADMIN_USERNAME", "admin"),
        "ADMIN_PASSWORD": os.environ.get("ADMIN_PASSWORD", ""),
        "GREETING": os.environ.get(
            "GREETING",
            "Thanks for calling Switchboard. Please hold while we connect you to an operator.",
        ),
        "HOLD_MUSIC_URL": os.environ.get(
            "HOLD_MUSIC_URL",
            "http://com.twilio.sounds.music.s3.amazonaws.com/MARKOVICHAMP-Borghestral.mp3",
        ),
        # The emulator's own pages and control endpoints (demo mode); empty with real Twilio.
        "EMULATOR_URL": os.environ.get("EMULATOR_URL", ""),
        # A live call that has heard nothing for this long is marked "possibly stale".
        "STALE_AFTER_SECONDS": int(os.environ.get("STALE_AFTER_SECONDS", "300")),
        # How long one request to Twilio's REST API (or the emulator) may take.
        "TWILIO_TIMEOUT_SECONDS": float(os.environ.get("TWILIO_TIMEOUT_SECONDS", "10")),
        # The operator panel's live list polls this often (milliseconds).
        "PANEL_POLL_MS": int(os.environ.get("PANEL_POLL_MS", "1000")),
    }
