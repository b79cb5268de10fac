"""Operator credentials: one operator account from ADMIN_USERNAME / ADMIN_PASSWORD."""
from __future__ import annotations

import hmac
from functools import wraps

from flask import current_app, jsonify, request

CLOSED_MESSAGE = "ADMIN_PASSWORD is not set, so nobody can log in. Set it in the environment or .env."


def login_is_possible() -> bool:
    """False while ADMIN_PASSWORD is unset: then nobody gets in (never open by default)."""
    return bool(current_app.config["ADMIN_PASSWORD"])


def credentials_valid(username: str | None, password: str | None) -> bool:
    """Compare the given credentials with the operator's, in constant time."""
    expected_password = current_app.config["ADMIN_PASSWORD"]
    if not expected_password or username is None or password is None:
        return False
    expected_username = current_app.config["ADMIN_USERNAME"]
    username_ok = hmac.compare_digest(username.encode(), expected_username.encode())
    password_ok = hmac.compare_digest(password.encode(), expected_password.encode())
    return username_ok and password_ok


def basic_auth_required(view):
    """Decorate a JSON view: HTTP Basic with the operator's credentials, else a 401."""

    @wraps(view)
    def checked(*args, **kwargs):
        auth = request.authorization
        if auth is None or auth.type != "basic" or not credentials_valid(
            auth.username, auth.password
        ):
            message = CLOSED_MESSAGE if not login_is_possible() else (
                "Authentication required: HTTP Basic with the operator's username and password."
            )
            response = jsonify(error="unauthorized", message=message)
            response.status_code = 401
            response.headers["WWW-Authenticate"] = 'Basic realm="Switchboard", charset="UTF-8"'
            return response
        return view(*args, **kwargs)

    return checked
