"""Run the app under gunicorn on loopback for tests and benchmarks."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, timeout: float = 30.0) -> None:
    """Poll `url` until it answers 200; fail early if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before it answered")
        try:
            if requests.get(url, timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@contextmanager
def gunicorn(env: dict, workers: int = 2, log_path: Path | None = None, extra_args=(),
             app_target: str = "app:create_app()", wrapper=(), wait: bool = True):
    """Start `gunicorn <app_target>` with `env` and gunicorn.conf.py; yield (base_url, process)
    once it answers (at once with wait=False); stop it."""
    port = free_port()
    log = open(log_path, "w") if log_path else subprocess.DEVNULL
    process = subprocess.Popen(
        [*wrapper, sys.executable, "-m", "gunicorn", app_target, "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--no-control-socket", *extra_args],
        cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        base_url = f"http://127.0.0.1:{port}"
        if wait:
            wait_until_up(base_url + "/healthz", process)
        yield base_url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if log_path:
            log.close()
