"""Schema fuzzing (schemathesis): requests generated from our OpenAPI document, valid and invalid,
against a real `floorwalker serve` over HTTP, as a logged-in rep. No request may answer 5xx."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import BACKEND, PG_ADMIN_URL, TMP, _pg

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    """A seeded database and `floorwalker serve` on it; stopped by PID afterwards."""
    if BACKEND == "postgres":
        name = f"floorwalker_fuzz_{os.getpid()}"
        _pg(f"DROP DATABASE IF EXISTS {name}")
        _pg(f"CREATE DATABASE {name}")
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    else:
        url = f"sqlite:///{TMP}/fuzz/floorwalker.sqlite3"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOORWALKER_")}
    env["FLOORWALKER_DATABASE_URL"] = url
    cli = [sys.executable, "-m", "server.cli"]
    subprocess.run([*cli, "seed", "--demo", "--customers", "120", "--no-progress"], env=env, check=True, timeout=300)
    port = _free_port()
    log_path = TMP / f"fuzz-serve-{port}.log"
    log = open(log_path, "w")  # a file, not a pipe: a full pipe would stall the server
    proc = subprocess.Popen([*cli, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        tokens = httpx.post(f"{base}/api/auth/login", json={"username": "rep.bjcy", "password": "floorwalker"})
        yield base, tokens.json()["access_token"]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        errors = log_path.read_text()
        if BACKEND == "postgres":
            _pg(f"DROP DATABASE IF EXISTS floorwalker_fuzz_{os.getpid()} WITH (FORCE)")
        assert "Traceback" not in errors, errors[-4000:]


def test_no_request_answers_5xx(server):
    base, token = server
    st = os.path.join(os.path.dirname(sys.executable), "st")
    result = subprocess.run(
        [
            st,
            "run",
            f"{base}/schema/openapi.json",
            "--checks",
            "not_a_server_error",
            "--header",
            f"Authorization: Bearer {token}",
            "--max-examples",
            "30",
            "--seed",
            os.environ.get("FLOORWALKER_FUZZ_SEED", "20261122"),
            "--exclude-path",
            "/api/auth/logout",  # would end the very session the fuzzer runs under
            "--exclude-path",
            "/api/auth/login",  # failed logins would lock the fuzzer's address out; tests/test_auth.py covers it
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=TMP,  # schemathesis and hypothesis keep their example databases in the working directory
    )
    print(result.stdout[-2000:])
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "passed" in result.stdout
