"""The app under gunicorn with its own gunicorn.conf.py, as in production: slow clients, huge
bodies and bad settings."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from twilio.request_validator import RequestValidator

from servers import ROOT, free_port, gunicorn
from support import AUTH_TOKEN, inbound_params, new_call_sid
from test_concurrency import app_env

SLOW_CLIENTS = 20


def open_slow_client(url: str, kind: str) -> socket.socket:
    """A connection that sends part of a request and then nothing: its headers, or its body,
    never finish (a slow phone network, or slowloris on purpose)."""
    host, port = url.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)), timeout=5)
    if kind == "headers":
        connection.sendall(b"POST /voice HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    else:
        connection.sendall(b"POST /voice HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4000\r\n"
                           b"Content-Type: application/x-www-form-urlencoded\r\n\r\nCallSid=CA")
    return connection


def worker_pids(master: subprocess.Popen) -> list[int]:
    """The gunicorn master's worker processes."""
    children = Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text().split()
    return [int(pid) for pid in children]


def resident_kib(pid: int) -> int:
    """A process's resident memory, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def test_slow_clients_do_not_hold_up_webhooks(database_url, tmp_path):
    """20 connections that never finish their request, on 2 workers: signed webhooks are still
    answered at once. (Sync workers made them wait for the 30 s worker timeout.)"""
    validator = RequestValidator(AUTH_TOKEN)
    with gunicorn(app_env(database_url), workers=2, log_path=tmp_path / "slow.log") as (url, _):
        slow = [open_slow_client(url, "headers" if n % 2 else "body") for n in range(SLOW_CLIENTS)]
        try:
            # The slow requests are in the workers' hands before the webhooks arrive.
            assert requests.get(url + "/healthz", timeout=5).status_code == 200
            for _ in range(10):
                params = inbound_params(new_call_sid())
                signature = validator.compute_signature(url + "/voice", params)
                started = time.monotonic()
                response = requests.post(url + "/voice", data=params, timeout=2,
                                         headers={"X-Twilio-Signature": signature})
                assert response.status_code == 200, response.text
                assert time.monotonic() - started < 2
        finally:
            for connection in slow:
                connection.close()


def test_a_huge_body_is_refused_without_being_read(database_url, tmp_path):
    """A 200 MB POST once grew a worker to 886 MB: now it is a 413 and the worker stays small."""
    with gunicorn(app_env(database_url), workers=1, log_path=tmp_path / "big.log") as (url, master):
        (worker,) = worker_pids(master)
        before = resident_kib(worker)
        for path in ("/login", "/voice", "/api/calls"):
            body = b"x=" + b"y" * (200 * 1024 * 1024)
            try:
                response = requests.post(url + path, data=body, timeout=30, headers={
                    "Content-Type": "application/x-www-form-urlencoded"})
            except requests.ConnectionError:
                continue  # the server answered 413 and closed while we were still sending
            assert response.status_code == 413, (path, response.status_code)
        assert resident_kib(worker) - before < 20 * 1024
        assert requests.get(url + "/healthz", timeout=5).status_code == 200


def test_a_bad_setting_stops_gunicorn_at_start_with_its_name(database_url, tmp_path):
    log = tmp_path / "bad.log"
    env = {**app_env(database_url), "TWILIO_VALIDATE_SIGNATURES": "enabled"}
    with open(log, "w") as output:
        process = subprocess.run(
            [sys.executable, "-m", "gunicorn", "app:create_app()", "--bind",
             f"127.0.0.1:{free_port()}", "--workers", "1", "--no-control-socket"],
            cwd=ROOT, env={**__import__("os").environ, **env}, stdout=output,
            stderr=subprocess.STDOUT, timeout=60)
    assert process.returncode != 0
    assert "TWILIO_VALIDATE_SIGNATURES='enabled' is not a boolean" in log.read_text()
