"""Operators: personal accounts and the `operators` commands, server-side sessions, the
failed-login throttle, and the audit trail (panel, CSV and API)."""
from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from sqlalchemy import update

import audit
from models import LoginFailure, Operator, OperatorAction, db, utcnow
from support import ADMIN_PASSWORD, add_operator, basic_auth, inbound_params, log_in, new_call_sid

ALICE = ("alice", "alice-password-1")
BOB = ("bob", "bob-password-22")


def operators_cli(app, *args, input=None):
    """Run `flask operators …` against the app."""
    return app.test_cli_runner().invoke(args=["operators", *args], input=input)


# -------------------------------------------------------------- the command line

def test_add_list_and_duplicate_from_the_command_line(app):
    result = operators_cli(app, "add", "Alice", "--name", "Alice Liddell", "--password-stdin",
                           input="alice-password-1\n")
    assert result.exit_code == 0, result.output
    assert "Added operator alice (Alice Liddell)." in result.output
    result = operators_cli(app, "add", "bob", "--admin", input="bob-password-22\nbob-password-22\n")
    assert result.exit_code == 0, result.output  # prompted, twice
    duplicate = operators_cli(app, "add", "alice", "--password-stdin", input="another-one-1\n")
    assert duplicate.exit_code == 1
    assert "An operator named 'alice' already exists." in duplicate.output
    listing = operators_cli(app, "list")
    assert listing.exit_code == 0
    lines = [line.split("\t") for line in listing.output.splitlines()]
    assert [(u, role, state) for u, role, state, *_ in lines] == [
        ("admin", "admin", "active"), ("alice", "operator", "active"), ("bob", "admin", "active")]
    with app.app_context():
        entries = db.session.scalars(db.select(OperatorAction).where(
            OperatorAction.action == "operator-add", OperatorAction.via == "cli")).all()
    assert [e.parameters["username"] for e in entries] == ["alice", "bob"]


@pytest.mark.parametrize("args, stdin, message", [
    (["add", "no spaces", "--password-stdin"], "long-enough-1\n", "A username is 1 to 64"),
    (["add", "carol", "--password-stdin"], "short\n", "at least 8 characters"),
    (["set-password", "nobody", "--password-stdin"], "long-enough-1\n", "No operator named 'nobody'"),
    (["deactivate", "nobody"], None, "No operator named 'nobody'"),
])
def test_bad_commands_exit_non_zero_with_a_message(app, args, stdin, message):
    result = operators_cli(app, *args, input=stdin)
    assert result.exit_code == 1
    assert message in result.output


def test_set_password_deactivate_and_activate(app, client):
    add_operator(app, *ALICE)
    assert client.get("/api/calls", headers=basic_auth(*ALICE)).status_code == 200
    result = operators_cli(app, "set-password", "alice", "--password-stdin",
                           input="a-new-password-3\n")
    assert result.exit_code == 0, result.output
    assert client.get("/api/calls", headers=basic_auth(*ALICE)).status_code == 401
    assert client.get("/api/calls", headers=basic_auth("alice", "a-new-password-3")).status_code == 200
    assert operators_cli(app, "deactivate", "alice").exit_code == 0
    assert client.get("/api/calls", headers=basic_auth("alice", "a-new-password-3")).status_code == 401
    assert operators_cli(app, "activate", "alice").exit_code == 0
    assert client.get("/api/calls", headers=basic_auth("alice", "a-new-password-3")).status_code == 200


def test_admin_settings_keep_working_and_a_new_admin_password_is_applied(make_app, database_url):
    app = make_app(database_url, ADMIN_USERNAME="Chief", ADMIN_PASSWORD="first-password-1")
    client = app.test_client()
    log_in(client, "chief", "first-password-1")
    assert client.get("/admin").status_code == 200
    again = make_app(database_url, ADMIN_USERNAME="chief", ADMIN_PASSWORD="second-password-2")
    assert client.get("/admin").status_code == 302  # the old session ended with the password
    with again.app_context():
        chief = db.session.scalar(db.select(Operator).where(Operator.username == "chief"))
        assert chief.role == "admin" and chief.active
    log_in(again.test_client(), "chief", "second-password-2")


# -------------------------------------------------------------- sessions

@pytest.mark.parametrize("ending", ["logout", "deactivate", "set-password"])
def test_a_copied_session_cookie_stops_working(app, ending):
    add_operator(app, *ALICE)
    client, thief = app.test_client(), app.test_client()
    log_in(client, *ALICE)
    thief.set_cookie("session", client.get_cookie("session").value)
    assert thief.get("/admin").status_code == 200
    if ending == "logout":
        page = client.get("/admin").get_data(as_text=True)
        token = page.split('name="csrf_token" value="')[1].split('"')[0]
        assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    elif ending == "deactivate":
        assert operators_cli(app, "deactivate", "alice").exit_code == 0
    else:
        assert operators_cli(app, "set-password", "alice", "--password-stdin",
                             input="changed-password-9\n").exit_code == 0
    response = thief.get("/admin")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.mark.parametrize("public_url, secure", [("https://sb.example.com", True),
                                                ("http://127.0.0.1:5000", False)])
def test_the_session_cookie_is_secure_behind_https(make_app, database_url, public_url, secure):
    app = make_app(database_url, PUBLIC_URL=public_url)
    response = log_in(app.test_client())
    cookie = [h for h in response.headers.getlist("Set-Cookie") if h.startswith("session=")][0]
    assert ("; Secure" in cookie) is secure
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


# -------------------------------------------------------------- the throttle

def _fail_logins(app, client, username: str, count: int, address: str = "127.0.0.1") -> None:
    """`count` wrong passwords through the login form."""
    for _ in range(count):
        page = client.get("/login").get_data(as_text=True)
        token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
        response = client.post("/login", data={"username": username, "password": "wrong-guess",
                                               "csrf_token": token},
                               environ_base={"REMOTE_ADDR": address})
        assert response.status_code == 401


def test_ten_failures_for_a_username_lock_it_for_five_minutes(app, client, caplog):
    add_operator(app, *ALICE)
    _fail_logins(app, client, "alice", 10)
    assert "Failed panel login for username 'alice' from 127.0.0.1" in caplog.text
    assert "wrong-guess" not in caplog.text
    # Even the right password waits, on the panel and on the API alike.
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    response = client.post("/login", data={"username": "alice", "password": ALICE[1],
                                           "csrf_token": token})
    assert response.status_code == 429
    assert 250 <= int(response.headers["Retry-After"]) <= 300
    assert "Too many failed logins" in response.get_data(as_text=True)
    response = client.get("/api/calls", headers=basic_auth(*ALICE),
                          environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert response.status_code == 429 and response.headers["Retry-After"]
    # Another operator, from another address, is not held up.
    assert client.get("/api/calls", headers=basic_auth("admin", ADMIN_PASSWORD),
                      environ_base={"REMOTE_ADDR": "10.0.0.9"}).status_code == 200
    # Once the window has passed, the right password works again.
    with app.app_context():
        db.session.execute(update(LoginFailure).values(at=utcnow() - timedelta(minutes=5, seconds=1)))
        db.session.commit()
    assert client.get("/api/calls", headers=basic_auth(*ALICE)).status_code == 200


def test_ten_failures_from_one_address_lock_every_username_there(app, client):
    for number in range(10):
        response = client.get("/api/calls", headers=basic_auth(f"user{number}", "wrong-guess"),
                              environ_base={"REMOTE_ADDR": "192.0.2.7"})
        assert response.status_code == 401
    response = client.get("/api/calls", headers=basic_auth("admin", ADMIN_PASSWORD),
                          environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert response.status_code == 429
    assert client.get("/api/calls", headers=basic_auth("admin", ADMIN_PASSWORD),
                      environ_base={"REMOTE_ADDR": "192.0.2.8"}).status_code == 200


# -------------------------------------------------------------- the audit trail

def test_the_audit_api_is_for_admins_and_filters(app, client, twilio):
    add_operator(app, *ALICE)
    sid = new_call_sid()
    twilio.post("/voice", inbound_params(sid))
    assert client.post(f"/api/calls/{sid}/claim", json={}, headers=basic_auth(*ALICE)).status_code == 200
    response = client.get("/api/audit", headers=basic_auth(*ALICE))
    assert response.status_code == 403
    admin = basic_auth("admin", ADMIN_PASSWORD)
    entries = client.get("/api/audit", headers=admin).get_json()["entries"]
    assert [(e["action"], e["operator"], e["via"]) for e in entries[:2]] == [
        ("claim", "alice", "api"), ("operator-add", "test", "cli")]
    only_alice = client.get("/api/audit?operator=alice", headers=admin).get_json()
    assert [e["action"] for e in only_alice["entries"]] == ["claim"]
    assert only_alice["entries"][0]["call_sid"] == sid
    by_call = client.get(f"/api/audit?call={sid}", headers=admin).get_json()
    assert by_call["total"] == 1
    today = utcnow().date()
    assert client.get(f"/api/audit?from={today}&to={today}", headers=admin).get_json()["total"] >= 3
    tomorrow = today + timedelta(days=1)
    assert client.get(f"/api/audit?from={tomorrow}", headers=admin).get_json()["total"] == 0
    bad = client.get("/api/audit?from=yesterday", headers=admin)
    assert bad.status_code == 400 and "from must be a date" in bad.get_json()["message"]


def test_logins_logouts_and_the_csv_export(app, client):
    add_operator(app, "mallory", "mallory-password")
    log_in(client, "mallory", "mallory-password")
    page = client.get("/admin").get_data(as_text=True)
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    client.post("/logout", data={"csrf_token": token})
    assert client.get("/admin/audit").status_code == 302  # logged out
    log_in(client)
    assert client.get("/admin/audit").status_code == 200
    response = client.get("/admin/audit.csv?operator=mallory")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0][:6] == ["id", "created_at", "operator", "via", "address", "action"]
    assert [row[5] for row in rows[1:]] == ["logout", "login"]


def test_csv_cells_never_start_a_formula():
    entry = OperatorAction(id=1, created_at=utcnow(), operator="alice", via="api", address=None,
                           action="twiml", call_sid=None, ok=False, error_code=None,
                           result="=HYPERLINK(\"http://x\")", params="{}")
    row = audit.csv_row(entry)
    assert row[9] == "'=HYPERLINK(\"http://x\")"


def test_operators_cannot_open_admin_pages(app, client):
    add_operator(app, *ALICE)
    log_in(client, *ALICE)
    assert client.get("/admin/operators").status_code == 403
    assert client.get("/admin/audit").status_code == 403
    assert client.get("/admin/audit.csv").status_code == 403


def _csrf(client, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    return page.split('name="csrf_token" value="')[1].split('"')[0]


def test_admins_manage_operators_in_the_panel(app, client):
    log_in(client)
    token = _csrf(client, "/admin/operators")
    response = client.post("/admin/operators", data={
        "csrf_token": token, "username": "Carol", "name": "Carol <b>Danvers</b>",
        "password": "carol-password-1", "role": "operator"})
    assert response.status_code == 302
    page = client.get("/admin/operators").get_data(as_text=True)
    assert "Carol &lt;b&gt;Danvers&lt;/b&gt;" in page and "<b>Danvers" not in page
    taken = client.post("/admin/operators", data={
        "csrf_token": token, "username": "carol", "password": "another-password"})
    assert taken.status_code == 400 and "already exists" in taken.get_data(as_text=True)
    weak = client.post("/admin/operators/carol/password", data={"csrf_token": token,
                                                                 "password": "short"})
    assert weak.status_code == 400 and "at least 8 characters" in weak.get_data(as_text=True)

    carol = app.test_client()
    log_in(carol, "carol", "carol-password-1")
    assert client.post("/admin/operators/carol/password", data={
        "csrf_token": token, "password": "carol-password-2"}).status_code == 302
    assert carol.get("/admin").status_code == 302  # her session ended
    log_in(carol, "carol", "carol-password-2")
    assert client.post("/admin/operators/carol/active", data={
        "csrf_token": token, "active": "0"}).status_code == 302
    assert carol.get("/admin").status_code == 302
    assert carol.get("/api/calls", headers=basic_auth("carol", "carol-password-2")).status_code == 401
    own = client.post("/admin/operators/admin/active", data={"csrf_token": token, "active": "0"})
    assert own.status_code == 400 and "cannot deactivate yourself" in own.get_data(as_text=True)
    without_token = client.post("/admin/operators/carol/active", data={"active": "1"})
    assert without_token.status_code == 400  # CSRF
    entries = client.get("/api/audit?operator=admin", headers=basic_auth("admin", ADMIN_PASSWORD))
    actions = [e["action"] for e in entries.get_json()["entries"]]
    assert {"operator-add", "operator-password", "operator-deactivate"} <= set(actions)


def test_my_calls_shows_only_the_calls_i_handle(app, client, twilio):
    add_operator(app, *ALICE)
    mine, other = new_call_sid(), new_call_sid()
    for sid in (mine, other):
        twilio.post("/voice", inbound_params(sid))
    client.post(f"/api/calls/{mine}/claim", json={}, headers=basic_auth(*ALICE))
    log_in(client, *ALICE)
    everything = client.get("/admin").get_data(as_text=True)
    assert mine in everything and other in everything
    only_mine = client.get("/admin?mine=1").get_data(as_text=True)
    assert mine in only_mine and other not in only_mine
    polled = client.get("/admin/live?mine=1", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert mine in polled and other not in polled
