"""Fixtures: the emulator on loopback (manual clock) and a recording webhook receiver standing in for the app."""

from __future__ import annotations

import json
from typing import Any

import pytest
from twilio.request_validator import RequestValidator

import npm_reference
from emulator.server import serve_in_thread
from emulator_testkit import AUTH_TOKEN, Receiver, make_emulator, make_receiver_app


@pytest.fixture
def receiver():
    """The recording webhook receiver, on loopback."""
    rec = Receiver()
    handle = serve_in_thread(make_receiver_app(rec))
    rec.url = handle.url
    yield rec
    handle.stop()


@pytest.fixture
def emu(receiver):
    """The emulator on loopback with a manual clock, its number pointed at the receiver."""
    e, handle = make_emulator(receiver)
    yield e
    handle.stop()
    e.engine.stop()


@pytest.fixture
def validator() -> RequestValidator:
    return RequestValidator(AUTH_TOKEN)


@pytest.fixture(scope="session")
def spec() -> dict[str, Any]:
    """Twilio's OpenAPI spec, from the pinned npm package `make reference` installs (sha256 checked)."""
    try:
        path = npm_reference.spec_path()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)


