"""Switchboard: answers Twilio voice calls and gives operators a live control panel.

`create_app()` builds the app; nothing happens at import time. Serve it with
`gunicorn 'app:create_app()'` or, in development, `flask --app app run`.
"""
from __future__ import annotations

import os
import secrets
import time

from dotenv import load_dotenv
from flask import Flask, Response, abort, request
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

import api
import auth
import operators
import panel
import voice
import wire_log
from config import database_url, load_config
from database import SCHEMA_CURRENT, init_db
from models import db

csrf = CSRFProtect()


def create_app(config: dict | None = None) -> Flask:
    """Build the app: settings from the environment (and .env), overridden by `config`."""
    load_dotenv()
    app = Flask(__name__, instance_relative_config=True)
    app.config.update(load_config())
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
    )
    if config:
        app.config.update(config)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url(app.config["SQLALCHEMY_DATABASE_URI"])
    os.makedirs(app.instance_path, exist_ok=True)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret_key(app)

    if app.config["PROXY_FIX_HOPS"] > 0:
        hops = app.config["PROXY_FIX_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    app.session_interface = _SessionInterface()
    init_db(app)
    wire_log.init_app(app)
    csrf.init_app(app)
    # Twilio signs its requests and scripts use HTTP Basic: neither carries a session cookie.
    csrf.exempt(voice.bp)
    csrf.exempt(api.bp)
    app.register_blueprint(voice.bp)
    app.register_blueprint(api.bp)
    auth.init_app(app)  # logins, sessions, the throttle; the ADMIN_USERNAME account
    panel.init_app(app)  # /admin pages and actions; its forms keep CSRF checks
    operators.init_app(app)  # accounts: /admin/operators, /admin/audit, `flask operators …`

    app.add_url_rule("/healthz", "healthz", lambda: Response("ok\n", mimetype="text/plain"))
    app.before_request(_refuse_nul_characters)
    app.after_request(_security_headers)
    app.teardown_request(_rollback_on_error)
    _warn_about_settings(app)
    return app


class _SessionInterface(SecureCookieSessionInterface):
    """Cookie sessions for the panel; none for Twilio's webhooks, which never carry our cookie
    (opening and saving one cost more than a webhook's database writes)."""

    def open_session(self, app: Flask, request):
        if request.path.startswith(voice.WEBHOOK_PATH_PREFIXES):
            return self.null_session_class()
        return super().open_session(app, request)


def _instance_secret_key(app: Flask) -> str:
    """Without SECRET_KEY, make one once and keep it in instance/ (shared by every worker)."""
    path = os.path.join(app.instance_path, "secret_key")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    for _ in range(50):  # another worker may be between creating the file and writing it
        with open(path) as handle:
            key = handle.read().strip()
        if key:
            return key
        time.sleep(0.01)
    raise RuntimeError(f"{path} is empty: delete it or set SECRET_KEY")


def _refuse_nul_characters() -> None:
    """A 400 for NUL characters anywhere in the query, form or JSON body: no database column
    can hold them (PostgreSQL refuses them outright), and no honest client sends them."""
    # In a query string or a form a NUL can only arrive as %00 (a literal % is %25) or as a raw
    # byte: a scan of the bytes, before anything is parsed. JSON is parsed and walked.
    body = request.get_data(cache=True)
    if request.is_json:
        found = b"\x00" in body or _has_nul(request.get_json(silent=True))
    else:
        found = b"%00" in body or b"\x00" in body
    if found or b"%00" in request.query_string:
        abort(400, description="The request contains a NUL character.")


def _has_nul(value) -> bool:
    """True if a string, or any key or string inside a JSON document, has a NUL."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


_SECURITY_HEADERS = (
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("Content-Security-Policy",
     "default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self'; "
     "script-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"),
)


def _security_headers(response: Response) -> Response:
    """No framing, no sniffing, and a content security policy our own pages satisfy (each
    unless the view set its own)."""
    headers = response.headers
    # Not `name in headers`: that raises and catches an exception per missing header, a
    # fifth of what the app spent per webhook beyond the bare endpoint (callgrind, one thread).
    present = {name.lower() for name in headers.keys()}
    headers.extend([(name, value) for name, value in _SECURITY_HEADERS
                    if name.lower() not in present])
    return response


def _rollback_on_error(error: BaseException | None) -> None:
    """A request that failed leaves nothing half-written in the session."""
    if error is not None:
        db.session.rollback()


def _warn_about_settings(app: Flask) -> None:
    """Say at start what is switched off or missing, so nobody is surprised later."""
    if not app.config["TWILIO_VALIDATE_SIGNATURES"]:
        app.logger.warning(
            "TWILIO_VALIDATE_SIGNATURES is off: anyone can post fake webhooks. "
            "Use this only for local experiments."
        )
    elif not app.config["TWILIO_AUTH_TOKEN"]:
        app.logger.warning("TWILIO_AUTH_TOKEN is not set: every webhook will be refused (403).")
    if app.extensions[SCHEMA_CURRENT]:
        with app.app_context():
            if not auth.login_is_possible():
                app.logger.warning(auth.CLOSED_MESSAGE)
