"""Shared fixtures: an app on a real SQLite file, a test client, and Twilio-style signing."""
from __future__ import annotations

import pytest

from app import create_app
from support import ACCOUNT_SID, ADMIN_PASSWORD, AUTH_TOKEN, OUR_NUMBER, Twilio


@pytest.fixture
def app(tmp_path):
    """The app on its own SQLite file, with signatures checked as in production."""
    app = create_app({
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'switchboard.db'}",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_PHONE_NUMBER": OUR_NUMBER,
        "TWILIO_VALIDATE_SIGNATURES": True,
        "TWILIO_API_BASE_URL": "",
        "PUBLIC_URL": "",
        "ADMIN_USERNAME": "admin",
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
        "EMULATOR_URL": "",
    })
    yield app
    from models import db
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def client(app):
    """A test client for the app."""
    return app.test_client()


@pytest.fixture
def twilio(client):
    """Sign and post webhooks like Twilio."""
    return Twilio(client)
