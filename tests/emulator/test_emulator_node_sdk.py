"""A second official SDK: twilio-node (pinned in tests/emulator/node/) drives the emulator.

The Node script asks this test to step the emulator's manual clock and to hand over the webhooks
the app received, which it checks with `twilio.validateRequest`. `make reference` installs Node
and the package; without it this test fails and names that target (it never skips).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading

import pytest

import npm_reference
from emulator_testkit import ACCOUNT_SID, AUTH_TOKEN, NUMBER, twiml

DEADLINE_SECONDS = 90


def _hits(receiver) -> list[dict]:
    out = []
    for hit in receiver.hits:
        params = {k: v[0] for k, v in hit.form.items()} if hit.method == "POST" else {}
        out.append({"method": hit.method, "url": hit.url, "params": params, "signature": hit.headers.get("X-Twilio-Signature", "")})
    return out


def test_node_sdk_create_fetch_list_update_errors_and_signatures(emu, receiver):
    try:
        node = npm_reference.node()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    receiver.answer("/voice", twiml("<Pause length='60'/>"))
    receiver.answer("/node-redirect", twiml("<Say>Redirected by Node</Say><Pause length='60'/>"))
    env = {k: v for k, v in os.environ.items() if k not in ("TWILIO_EDGE", "TWILIO_REGION")}
    env.update(NODE_PATH=str(npm_reference.NODE_MODULES), EMULATOR_URL=emu.url, ACCOUNT_SID=ACCOUNT_SID,
               AUTH_TOKEN=AUTH_TOKEN, RECEIVER_URL=receiver.url, NUMBER=NUMBER)
    proc = subprocess.Popen([node, str(npm_reference.CONFORMANCE_SCRIPT)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=npm_reference.NODE_DIR)
    watchdog = threading.Timer(DEADLINE_SECONDS, proc.kill)
    watchdog.start()
    summary = None
    try:
        for line in proc.stdout:
            message = json.loads(line)
            if "advance" in message:
                emu.advance(message["advance"])
                reply = {}
            elif "hits" in message:
                with receiver.lock:
                    reply = _hits(receiver)
            elif "done" in message:
                summary = message["done"]
                reply = {}
            else:
                pytest.fail(f"the Node SDK script failed:\n{message.get('error', message)}", pytrace=False)
            proc.stdin.write(json.dumps(reply) + "\n")
            proc.stdin.flush()
            if summary is not None:
                break
        proc.stdin.close()
        assert proc.wait(timeout=DEADLINE_SECONDS) == 0, proc.stderr.read()
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if not pipe.closed:
                pipe.close()
    assert summary is not None, "the Node script ended without its summary"
    assert summary["not_in_progress"] == "Call is not in-progress. Cannot redirect."
    assert summary["pages"] == [2, 2]
    assert summary["validated"] == len(receiver.hits)
    # What the Node SDK asked for happened, as the app and the caller saw it.
    (redirect,) = receiver.on("/node-redirect")
    assert redirect.method == "GET" and redirect.param("step") == "2" and redirect.param("CallSid") == summary["sid"]
    assert emu.said(summary["sid"]) == ["Hello from Node", "Redirected by Node"]
    assert receiver.statuses(summary["sid"]) == [(0, "initiated"), (1, "ringing"), (2, "in-progress"), (3, "completed")]
