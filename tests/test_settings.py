"""Settings from the environment: booleans and numbers read strictly, database URLs as hosting
platforms hand them out."""
from __future__ import annotations

import pytest

from app import create_app
from config import ConfigError, database_url, load_config

BOOLEANS = ["TWILIO_VALIDATE_SIGNATURES", "AUTO_MIGRATE"]


@pytest.mark.parametrize("name", BOOLEANS)
@pytest.mark.parametrize("raw, value", [
    ("true", True), ("TRUE", True), ("1", True), ("yes", True), ("On", True), (" true ", True),
    ("false", False), ("False", False), ("0", False), ("NO", False), ("off", False)])
def test_boolean_settings_accept_every_usual_spelling(monkeypatch, name, raw, value):
    monkeypatch.setenv(name, raw)
    assert load_config()[name] is value


@pytest.mark.parametrize("name", BOOLEANS)
@pytest.mark.parametrize("raw", ["enabled", "disabled", "ture", "2", "y"])
def test_any_other_boolean_stops_the_app_naming_the_setting(monkeypatch, name, raw):
    """`TWILIO_VALIDATE_SIGNATURES=enabled` once turned signature checks off without a word."""
    monkeypatch.setenv(name, raw)
    with pytest.raises(ConfigError, match=f"^{name}='{raw}' is not a boolean"):
        create_app({"SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://"})


@pytest.mark.parametrize("name, raw", [
    ("PROXY_FIX_HOPS", "one"), ("PROXY_FIX_HOPS", "-1"), ("STALE_AFTER_SECONDS", "5m"),
    ("TWILIO_TIMEOUT_SECONDS", "soon"), ("PANEL_POLL_MS", "0")])
def test_bad_numbers_stop_the_app_naming_the_setting(monkeypatch, name, raw):
    monkeypatch.setenv(name, raw)
    with pytest.raises(ConfigError, match=f"^{name}="):
        load_config()


def test_unset_and_empty_settings_take_their_defaults(monkeypatch):
    for name in BOOLEANS:
        monkeypatch.setenv(name, "")
    monkeypatch.delenv("PROXY_FIX_HOPS", raising=False)
    config = load_config()
    assert config["TWILIO_VALIDATE_SIGNATURES"] is True and config["AUTO_MIGRATE"] is True
    assert config["PROXY_FIX_HOPS"] == 1


@pytest.mark.parametrize("given", [
    "postgres://u:p@db.example.com:5432/calls", "postgresql://u:p@db.example.com:5432/calls",
    "postgresql+psycopg://u:p@db.example.com:5432/calls"])
def test_postgres_urls_all_mean_psycopg(given):
    assert database_url(given) == "postgresql+psycopg://u:p@db.example.com:5432/calls"


def test_other_database_urls_are_kept():
    assert database_url("sqlite:///instance/switchboard.db") == "sqlite:///instance/switchboard.db"


@pytest.mark.postgresql
@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_a_platform_style_url_reaches_the_real_server(postgres_server, scheme, monkeypatch):
    url = postgres_server.new_database().replace("postgresql+psycopg", scheme, 1)
    monkeypatch.setenv("DATABASE_URL", url)
    app = create_app({"SECRET_KEY": "x"})
    from models import db
    with app.app_context():
        assert db.engine.dialect.driver == "psycopg"
        db.engine.dispose()
