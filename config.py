"""Configuration: every setting read from the environment (and `.env`), with safe defaults."""
from __future__ import annotations

import os

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}

# The largest request body we read. Twilio's webhooks are a few kilobytes, and the largest
# TwiML an operator may send is 4,000 characters (twiml.py): 64 KiB fits both with room.
MAX_CONTENT_LENGTH = 64 * 1024


class ConfigError(ValueError):
    """A setting has a value the app cannot use; the message names the setting."""


def env_flag(name: str, default: bool) -> bool:
    """Read a boolean setting: true/false, 1/0, yes/no, on/off in any case; else ConfigError."""
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={os.environ[name]!r} is not a boolean: use true/false, 1/0, "
                      "yes/no or on/off.")


def env_number(name: str, default: float, kind: type = int, minimum: float = 0):
    """Read a numeric setting of `kind` (int or float) at least `minimum`; else ConfigError."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = kind(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a{'n integer' if kind is int else ' number'}.") \
            from None
    if number < minimum:
        raise ConfigError(f"{name}={value!r} must be at least {minimum}.")
    return number


def database_url(url: str) -> str:
    """Normalise DATABASE_URL: `postgres://` and `postgresql://` (what hosting platforms hand
    out) mean PostgreSQL through psycopg 3, the driver in requirements.txt."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def load_config() -> dict:
    """Return the settings from the environment; create_app() overrides them with its argument."""
    return {
        "SECRET_KEY": os.environ.get("SECRET_KEY"),
        # create_app() normalises it with database_url(), overrides included.
        "SQLALCHEMY_DATABASE_URI": os.environ.get("DATABASE_URL", "sqlite:///switchboard.db"),
        # Apply pending schema migrations at start (off when the deploy step migrates).
        "AUTO_MIGRATE": env_flag("AUTO_MIGRATE", True),
        "MAX_CONTENT_LENGTH": MAX_CONTENT_LENGTH,
        # Database connections each process keeps open: one per request it serves at once
        # (gunicorn.conf.py sets it to its thread count), so that none is opened and closed
        # per request. Keep processes x this under PostgreSQL's max_connections.
        "DATABASE_POOL_SIZE": env_number("DATABASE_POOL_SIZE", 32, minimum=1),
        "TWILIO_ACCOUNT_SID": os.environ.get("TWILIO_ACCOUNT_SID", ""),
        "TWILIO_AUTH_TOKEN": os.environ.get("TWILIO_AUTH_TOKEN", ""),
        "TWILIO_API_BASE_URL": os.environ.get("TWILIO_API_BASE_URL", ""),
        "TWILIO_PHONE_NUMBER": os.environ.get("TWILIO_PHONE_NUMBER", ""),
        "TWILIO_VALIDATE_SIGNATURES": env_flag("TWILIO_VALIDATE_SIGNATURES", True),
        "PUBLIC_URL": os.environ.get("PUBLIC_URL", "").rstrip("/"),
        "PROXY_FIX_HOPS": env_number("PROXY_FIX_HOPS", 1),
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
        "STALE_AFTER_SECONDS": env_number("STALE_AFTER_SECONDS", 300, minimum=1),
        # How long the wire log (webhooks received, REST requests made) is kept.
        "REQUEST_LOG_DAYS": env_number("REQUEST_LOG_DAYS", 7, minimum=1),
        # How long one request to Twilio's REST API (or the emulator) may take.
        "TWILIO_TIMEOUT_SECONDS": env_number("TWILIO_TIMEOUT_SECONDS", 10.0, float, 0.1),
        # The operator panel's live list polls this often (milliseconds).
        "PANEL_POLL_MS": env_number("PANEL_POLL_MS", 1000, minimum=100),
        # New calls wait at most this long (milliseconds) while the pointer is over the live
        # list, so the row being clicked does not move; 0 shows them at once.
        "PANEL_HOLD_MS": env_number("PANEL_HOLD_MS", 3000, minimum=0),
        # The largest recording the panel plays (bytes): an hour of Twilio's WAV is ~58 MB.
        "RECORDING_MAX_BYTES": env_number("RECORDING_MAX_BYTES", 64 * 1024 * 1024, minimum=1),
    }
