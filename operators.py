"""Operator accounts: adding, resetting passwords, deactivating; from the command line
(`flask --app app operators …`) and from the panel's /admin/operators (admins only); and the
audit trail's pages, /admin/audit and its CSV export."""
from __future__ import annotations

import csv
import getpass
import io
import re
import sys

import click
from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

import audit
from audit import Actor
from auth import admin_required, end_sessions, find_operator, hash_password
from models import Call, Operator, db, utcnow
from panel import page_number

bp = Blueprint("operators", __name__, cli_group="operators")

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}\Z")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024


class AccountError(ValueError):
    """A change to an account that cannot be made; the message says why."""


def init_app(app: Flask) -> None:
    """Register the account pages, the audit pages and the `operators` commands."""
    app.register_blueprint(bp)


# -------------------------------------------------------------- what can be done to accounts

def add_operator(username: str, password: str, actor: Actor, name: str | None = None,
                 admin: bool = False) -> Operator:
    """Create an operator; AccountError for a bad or taken username or a weak password."""
    username = (username or "").strip().lower()
    if not USERNAME.match(username):
        raise AccountError("A username is 1 to 64 lower-case letters, digits, '.', '_' or '-', "
                           "starting with a letter or digit.")
    _check_password(password)
    display_name = (name or "").strip()[:255] or username
    operator = Operator(username=username, display_name=display_name,
                        password_hash=hash_password(password),
                        role="admin" if admin else "operator")
    db.session.add(operator)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise AccountError(f"An operator named {username!r} already exists.") from None
    audit.record(actor, "operator-add", {"username": username, "name": display_name,
                                         "role": operator.role})
    return operator


def set_password(username: str, password: str, actor: Actor) -> Operator:
    """Give the operator a new password; every session they have ends."""
    operator = _existing(username)
    _check_password(password)
    operator.password_hash = hash_password(password)
    end_sessions(operator)
    db.session.commit()
    audit.record(actor, "operator-password", {"username": operator.username})
    return operator


def set_active(username: str, active: bool, actor: Actor) -> Operator:
    """Deactivate (every session ends, their claims lapse) or reactivate an operator."""
    operator = _existing(username)
    if not active and actor.operator_id == operator.id:
        raise AccountError("You cannot deactivate yourself.")
    operator.active = active
    if not active:
        end_sessions(operator)
    # The calls they handle now show another handler (or nobody): a change for the live list.
    db.session.execute(update(Call).where(Call.handler_id == operator.id, Call.live())
                       .values(changed_at=utcnow()).execution_options(synchronize_session=False))
    db.session.commit()
    audit.record(actor, "operator-activate" if active else "operator-deactivate",
                 {"username": operator.username})
    return operator


def _existing(username: str) -> Operator:
    operator = find_operator(username)
    if operator is None:
        raise AccountError(f"No operator named {(username or '')[:64]!r}.")
    return operator


def _check_password(password: str | None) -> None:
    if not password or len(password) < MIN_PASSWORD:
        raise AccountError(f"A password needs at least {MIN_PASSWORD} characters.")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"A password has at most {MAX_PASSWORD} characters.")


# -------------------------------------------------------------- the command line

def _cli_actor() -> Actor:
    return Actor(getpass.getuser(), None, "cli")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


def _run(change):
    """Run an account change; an AccountError exits with status 1 and its message."""
    try:
        return change()
    except AccountError as error:
        raise click.ClickException(str(error)) from None


@bp.cli.command("add")
@click.argument("username")
@click.option("--admin", is_flag=True, help="Also manage operators and read the audit trail.")
@click.option("--name", default=None, help="The name other operators see.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def add_command(username, admin, name, password_stdin):
    """Add an operator (prompts for the password unless --password-stdin)."""
    password = _read_password(password_stdin)
    operator = _run(lambda: add_operator(username, password, _cli_actor(), name, admin))
    click.echo(f"Added {operator.role} {operator.username} ({operator.display_name}).")


@bp.cli.command("list")
def list_command():
    """List operators: username, role, active, last login, name."""
    operators = db.session.scalars(select(Operator).order_by(Operator.username)).all()
    for operator in operators:
        last = operator.last_login_at.isoformat(timespec="seconds") + "Z" \
            if operator.last_login_at else "never"
        click.echo(f"{operator.username}\t{operator.role}\t"
                   f"{'active' if operator.active else 'inactive'}\t{last}\t{operator.display_name}")


@bp.cli.command("set-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def set_password_command(username, password_stdin):
    """Set an operator's password; their sessions end."""
    _run(lambda: _existing(username))
    password = _read_password(password_stdin)
    operator = _run(lambda: set_password(username, password, _cli_actor()))
    click.echo(f"New password set for {operator.username}; their sessions have ended.")


@bp.cli.command("deactivate")
@click.argument("username")
def deactivate_command(username):
    """Deactivate an operator: they can no longer log in, and their sessions end."""
    operator = _run(lambda: set_active(username, False, _cli_actor()))
    click.echo(f"Deactivated {operator.username}.")


@bp.cli.command("activate")
@click.argument("username")
def activate_command(username):
    """Reactivate an operator."""
    operator = _run(lambda: set_active(username, True, _cli_actor()))
    click.echo(f"Activated {operator.username}.")


# -------------------------------------------------------------- the panel: accounts

@bp.get("/admin/operators")
@admin_required
def list_operators():
    """Every operator, with forms to add one, reset a password, deactivate or reactivate."""
    return _operators_page()


def _operators_page(values: dict | None = None) -> str:
    operators = db.session.scalars(select(Operator).order_by(Operator.username)).all()
    return render_template("operators.html", operators=operators, min_password=MIN_PASSWORD,
                           values=values or {})


@bp.post("/admin/operators")
@admin_required
def add():
    """Add an operator from the panel."""
    form = request.form
    return _after(lambda: add_operator(form.get("username", ""), form.get("password", ""),
                                       Actor.of(current_user, "panel"), form.get("name"),
                                       form.get("role") == "admin"),
                  "Added {}.")


@bp.post("/admin/operators/<username>/password")
@admin_required
def reset_password(username: str):
    """Reset an operator's password; their sessions end."""
    return _after(lambda: set_password(username, request.form.get("password", ""),
                                       Actor.of(current_user, "panel")),
                  "New password set for {}; their sessions have ended.")


@bp.post("/admin/operators/<username>/active")
@admin_required
def change_active(username: str):
    """Deactivate or reactivate an operator."""
    active = request.form.get("active") == "1"
    return _after(lambda: set_active(username, active, Actor.of(current_user, "panel")),
                  "Activated {}." if active else "Deactivated {}.")


def _after(change, success: str):
    """Run an account change: back to the list, or the page again with the reason (400)."""
    try:
        operator = change()
    except AccountError as error:
        flash(str(error), "error")
        values = {k: v for k, v in request.form.items() if k in ("username", "name", "role")}
        return _operators_page(values), 400
    flash(success.format(operator.username), "ok")
    return redirect(url_for("operators.list_operators"))


# -------------------------------------------------------------- the panel: audit trail

@bp.get("/admin/audit")
@admin_required
def audit_page():
    """The audit trail, newest first: filters by operator, call and dates; pages; CSV."""
    try:
        filters = audit.Filters.from_args(request.args)
    except audit.BadFilter as error:
        flash(str(error), "error")
        filters = audit.Filters()
    page = page_number(request.args.get("page"))
    entries, total = audit.search(filters, page)
    pages = max(1, -(-total // audit.PER_PAGE))
    usernames = db.session.scalars(select(Operator.username).order_by(Operator.username)).all()
    return render_template("audit.html", entries=entries, total=total, page=page, pages=pages,
                           filters=filters, usernames=usernames)


@bp.get("/admin/audit.csv")
@admin_required
def audit_csv():
    """The filtered audit trail as CSV (every matching entry)."""
    try:
        filters = audit.Filters.from_args(request.args)
    except audit.BadFilter as error:
        abort(400, description=str(error))
    entries, _ = audit.search(filters, page=None)
    output = io.StringIO()
    writer = csv.writer(output)
    writer.writerow(audit.CSV_COLUMNS)
    writer.writerows(audit.csv_row(entry) for entry in entries)
    return Response(output.getvalue(), mimetype="text/csv", headers={
        "Content-Disposition": 'attachment; filename="switchboard-audit.csv"'})
