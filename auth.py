"""Operators' logins: password hashes, server-side sessions, the failed-login throttle, HTTP
Basic for the API, and the login and logout pages.

A session cookie carries a random token whose hash is a row of `operator_sessions`: logging
out deletes the row, and deactivating an operator or changing their password deletes all of
theirs, so a copy of an old cookie opens nothing. Failed logins are rows of `login_failures`,
which every worker and instance shares through the database. (Flask-Limiter would need Redis
or memcached to share its counts, and it counts requests, not failed passwords.)
"""
from __future__ import annotations

import hashlib
import math
import secrets
from datetime import timedelta
from functools import wraps
from urllib.parse import urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import LoginManager, current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from wtforms import PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired

from audit import Actor, client_address
from audit import record as audit
from database import SCHEMA_CURRENT
from models import LoginFailure, Operator, OperatorSession, db, utcnow

bp = Blueprint("auth", __name__)
login_manager = LoginManager()

CLOSED_MESSAGE = ("No operator account exists yet, so nobody can log in. Set ADMIN_PASSWORD in "
                  "the environment or .env, or run: flask --app app operators add NAME --admin")
# After this many failed logins for one username, or from one address, within the window,
# further attempts get 429 until the oldest of them leaves the window.
THROTTLE_FAILURES = 10
THROTTLE_WINDOW = timedelta(minutes=5)
# argon2id with OWASP's minimum (19 MiB, 2 passes): about 20 ms a check on this hardware.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_UNKNOWN_USER_HASH = _hasher.hash(secrets.token_hex(16))  # unknown users cost a check too


def init_app(app: Flask) -> None:
    """Register Flask-Login, the login pages, and the ADMIN_USERNAME/ADMIN_PASSWORD account."""
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to use the operator panel."
    # Behind https (ngrok, a proxy), the session cookie is never sent over plain http.
    app.config["SESSION_COOKIE_SECURE"] = app.config["PUBLIC_URL"].startswith("https://")
    app.register_blueprint(bp)
    if app.extensions[SCHEMA_CURRENT]:  # else the next start, after `flask db upgrade`
        with app.app_context():
            ensure_admin_account()


# -------------------------------------------------------------- passwords and accounts

def hash_password(password: str) -> str:
    """An argon2id hash of `password`."""
    return _hasher.hash(password)


def password_matches(operator: Operator | None, password: str) -> bool:
    """True if `password` is the operator's (an unknown operator takes as long to refuse)."""
    try:
        return _hasher.verify(operator.password_hash if operator else _UNKNOWN_USER_HASH, password)
    except (VerificationError, InvalidHashError):
        return False


def find_operator(username: str | None) -> Operator | None:
    """The operator with this username (usernames are lower case), or None."""
    if not username:
        return None
    return db.session.scalar(select(Operator).where(Operator.username == username.strip().lower()))


def end_sessions(operator: Operator) -> None:
    """Log the operator out everywhere (in the current transaction)."""
    db.session.execute(delete(OperatorSession).where(OperatorSession.operator_id == operator.id))


def ensure_admin_account() -> None:
    """With ADMIN_PASSWORD set, the ADMIN_USERNAME account exists, is an active admin and has
    that password (created or updated at start), so existing setups work unchanged."""
    password = current_app.config["ADMIN_PASSWORD"]
    username = (current_app.config["ADMIN_USERNAME"] or "admin").strip().lower()
    if not password:
        return
    operator = find_operator(username)
    if operator is None:
        db.session.add(Operator(username=username, display_name=username,
                                password_hash=hash_password(password), role="admin"))
        try:
            db.session.commit()
        except IntegrityError:  # another worker created it a moment ago
            db.session.rollback()
        else:
            audit(Actor(username, None, "config"), "operator-add", {"username": username,
                                                                    "role": "admin"})
        return
    changed = []
    if not password_matches(operator, password):
        operator.password_hash = hash_password(password)
        end_sessions(operator)
        changed.append("password")
    if operator.role != "admin" or not operator.active:
        operator.role, operator.active = "admin", True
        changed.append("role")
    db.session.commit()
    if changed:
        audit(Actor(username, operator.id, "config"), "operator-update",
              {"username": username, "changed": changed})


def login_is_possible() -> bool:
    """False while no active operator exists: then nobody gets in (never open by default)."""
    return db.session.scalar(select(func.count()).select_from(Operator)
                             .where(Operator.active.is_(True))) > 0


# -------------------------------------------------------------- sessions

@login_manager.user_loader
def load_session(token: str) -> Operator | None:
    """The operator of a session token, if the session still exists and they are active."""
    row = db.session.get(OperatorSession, _token_hash(token))
    if row is None or not row.operator.active:
        return None
    row.operator.session_token = token
    return row.operator


def start_session(operator: Operator) -> None:
    """Log the operator in: a fresh session cookie and a server-side row for it."""
    token = secrets.token_urlsafe(32)
    db.session.add(OperatorSession(token_hash=_token_hash(token), operator_id=operator.id))
    operator.last_login_at = utcnow()
    db.session.commit()
    operator.session_token = token
    session.clear()
    login_user(operator)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def admin_required(view):
    """Decorate a panel view: only admins (others get a 403)."""

    @wraps(view)
    @login_required
    def checked(*args, **kwargs):
        if not current_user.is_admin:
            abort(403, description="Only admins can open this page.")
        return view(*args, **kwargs)

    return checked


@login_manager.unauthorized_handler
def unauthorized():
    """No session: pages go to the login page; htmx pollers are told to go there too."""
    login_url = url_for("auth.login", next=_safe_next(request.full_path))
    if request.headers.get("HX-Request"):
        return Response(status=401, headers={"HX-Redirect": login_url})
    flash(login_manager.login_message, "info")
    return redirect(login_url)


def _safe_next(target: str | None) -> str | None:
    """Only same-site paths are followed after login (no open redirect)."""
    if not target:
        return None
    target = target.rstrip("?")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") \
            or "\\" in target:
        return None
    return target


# -------------------------------------------------------------- the throttle

def retry_after(username: str | None) -> int | None:
    """Seconds until another attempt for this username or from this address is allowed, or
    None if it is allowed now."""
    since = utcnow() - THROTTLE_WINDOW
    waits = []
    for column, value in ((LoginFailure.username, _username_key(username)),
                          (LoginFailure.address, client_address())):
        recent = db.session.scalars(
            select(LoginFailure.at).where(column == value, LoginFailure.at > since)
            .order_by(LoginFailure.at.desc()).limit(THROTTLE_FAILURES)
        ).all()
        if len(recent) >= THROTTLE_FAILURES:
            waits.append((recent[-1] + THROTTLE_WINDOW - utcnow()).total_seconds())
    return max(1, math.ceil(max(waits))) if waits else None


def record_failure(username: str | None, via: str) -> None:
    """Count a failed login against the username and the address, and log it (never the
    password). Failures older than the window are dropped on the way."""
    address = client_address()
    current_app.logger.warning("Failed %s login for username %r from %s", via,
                               (username or "")[:64], address)
    db.session.execute(delete(LoginFailure).where(LoginFailure.at < utcnow() - THROTTLE_WINDOW))
    db.session.add(LoginFailure(username=_username_key(username), address=address))
    db.session.commit()


def _username_key(username: str | None) -> str:
    return (username or "").strip().lower()[:64]


def _too_many_attempts(wait: int, as_json: bool) -> Response:
    message = (f"Too many failed logins for this username or from this address. "
               f"Try again in {wait} s.")
    if as_json:
        response = jsonify(error="too_many_requests", message=message)
    else:
        response = Response(render_template("login.html", form=LoginForm(), open_for_login=True,
                                             throttled=message, closed_message=CLOSED_MESSAGE))
    response.status_code = 429
    response.headers["Retry-After"] = str(wait)
    return response


# -------------------------------------------------------------- the API: HTTP Basic

def basic_auth_required(view):
    """Decorate a JSON view: HTTP Basic with an operator's own credentials, else a 401 (or a
    429 while throttled). The view finds the operator as `g.actor`."""

    @wraps(view)
    def checked(*args, **kwargs):
        credentials = request.authorization
        if credentials is None or credentials.type != "basic":
            return _unauthorized_json()
        wait = retry_after(credentials.username)
        if wait:
            return _too_many_attempts(wait, as_json=True)
        operator = find_operator(credentials.username)
        if not password_matches(operator, credentials.password or "") or not operator.active:
            record_failure(credentials.username, "api")
            return _unauthorized_json()
        g.actor = Actor.of(operator, "api")
        g.operator = operator
        return view(*args, **kwargs)

    return checked


def _unauthorized_json() -> Response:
    message = CLOSED_MESSAGE if not login_is_possible() else (
        "Authentication required: HTTP Basic with your operator username and password.")
    response = jsonify(error="unauthorized", message=message)
    response.status_code = 401
    response.headers["WWW-Authenticate"] = 'Basic realm="Switchboard", charset="UTF-8"'
    return response


# -------------------------------------------------------------- login and logout pages

class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])
    submit = SubmitField("Log in")


@bp.route("/login", methods=["GET", "POST"])
def login():
    """The login page; with no operator account it says why nobody can log in."""
    if current_user.is_authenticated:
        return redirect(url_for("panel.live"))
    form = LoginForm()
    open_for_login = login_is_possible()
    status = 200
    if request.method == "POST":
        if not open_for_login:
            status = 403
        elif not form.validate_on_submit():
            status = 400 if form.errors.get("csrf_token") else 401
            flash("The form expired. Please try again." if status == 400
                  else "Enter your username and password.", "error")
        elif wait := retry_after(form.username.data):
            return _too_many_attempts(wait, as_json=False)
        else:
            operator = find_operator(form.username.data)
            if password_matches(operator, form.password.data) and operator.active:
                target = _safe_next(request.args.get("next")) or url_for("panel.live")
                start_session(operator)
                audit(Actor.of(operator, "panel"), "login", {})
                return redirect(target)
            record_failure(form.username.data, "panel")
            status = 401
            flash("Wrong username or password.", "error")
    return render_template("login.html", form=form, open_for_login=open_for_login,
                           closed_message=CLOSED_MESSAGE), status


@bp.post("/logout")
def logout():
    """Log out: the session ends on the server too (a POST with the CSRF token, so no other
    site can log the operator out)."""
    if current_user.is_authenticated:
        token = getattr(current_user, "session_token", None)
        if token:
            db.session.execute(delete(OperatorSession)
                               .where(OperatorSession.token_hash == _token_hash(token)))
            db.session.commit()
        audit(Actor.of(current_user, "panel"), "logout", {})
    logout_user()
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))
