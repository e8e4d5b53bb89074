"""The command line as a new user meets it: `floorwalker run` on an empty database ends with the API
answering a demo login and the customer list; seed refuses a full database; bad flags are named."""

from __future__ import annotations

import json
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


@pytest.fixture
def fresh_database_url():
    if BACKEND == "postgres":
        name = f"floorwalker_cli_{os.getpid()}"
        _pg(f"DROP DATABASE IF EXISTS {name}")
        _pg(f"CREATE DATABASE {name}")
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
        _pg(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    else:
        path = TMP / f"cli-{time.monotonic_ns()}" / "floorwalker.sqlite3"
        yield f"sqlite:///{path}"


def _cli(*args, env, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args], env=env, capture_output=True, text=True, **kwargs
    )


def _env(database_url: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOORWALKER_")}
    env["FLOORWALKER_DATABASE_URL"] = database_url
    return env


def test_run_on_an_empty_database_serves_the_demo(fresh_database_url):
    port, web_port = _free_port(), _free_port()
    env = {**_env(fresh_database_url), "FLOORWALKER_WEB_PORT": str(web_port)}
    env["FLOORWALKER_APP_DATA"] = str(TMP / f"run-app-{web_port}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "run", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = []
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
            output.append(line)
            if "Stop with Ctrl+C" in line:
                break
        text = "".join(output)
        assert "Floorwalker is running." in text, text
        assert f"http://127.0.0.1:{port}" in text
        for login in ("admin", "region.north", "manager.bjcy", "rep.bjcy", "rep2.bjcy", "rep.shpd"):
            assert login in text
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/health").json()["status"] == "ok"
        tokens = httpx.post(f"{base}/api/auth/login", json={"username": "rep.bjcy", "password": "floorwalker"})
        assert tokens.status_code == 200, tokens.text
        headers = {"Authorization": f"Bearer {tokens.json()['access_token']}"}
        page = httpx.get(f"{base}/api/customers", headers=headers).json()
        assert len(page["items"]) == 50 and page["next_cursor"]
        assert len({c["store_id"] for c in page["items"]}) == 1
        # the scheduler scores the new database's customers at once (not at the next 03:00)
        admin = httpx.post(f"{base}/api/auth/login", json={"username": "admin", "password": "floorwalker"}).json()
        deadline = time.monotonic() + 120
        while True:
            table = httpx.get(
                f"{base}/api/reports/segments", headers={"Authorization": f"Bearer {admin['access_token']}"}, timeout=30
            ).json()
            if table["rows"][-1][3] > 0:
                break
            assert time.monotonic() < deadline, f"no customer scored: {table['notes_zh']}"
            time.sleep(1)
        assert "评分时间" in table["notes_zh"]
        # the web client (the phone app in a browser) is served too, offline-capable (no CDN)
        assert f"web client http://127.0.0.1:{web_port}" in text, text
        deadline = time.monotonic() + 60
        while True:
            try:
                index = httpx.get(f"http://127.0.0.1:{web_port}/", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the web client did not answer"
                time.sleep(0.3)
        assert index.status_code == 200 and "<html" in index.text.lower()
        assert "gstatic.com" not in index.text and "googleapis" not in index.text
        font = httpx.get(f"http://127.0.0.1:{web_port}/fonts/NotoSansSC-Floorwalker.otf", timeout=5)
        assert font.status_code == 200 and len(font.content) > 1_000_000
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    assert proc.returncode is not None
    # stopping `run` stops the web client it started
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{web_port}/", timeout=1)
        except httpx.TransportError:
            break
        assert time.monotonic() < deadline, "the web client outlived `run`"
        time.sleep(0.3)

    # Second start on the same database: no second seed, and seed refuses a full database.
    refused = _cli("seed", "--demo", env=env, timeout=120)
    assert refused.returncode == 1
    assert "already holds data" in refused.stderr
    # scoring on demand: a store by its code, an unknown one named
    scored = _cli("score", "--store", "BJ-CY", env=env, timeout=120)
    assert scored.returncode == 0, scored.stderr
    assert json.loads(scored.stdout.strip().splitlines()[-1])["scored"] > 0
    unknown = _cli("score", "--store", "XX-NOPE", env=env, timeout=60)
    assert unknown.returncode == 2 and "unknown store XX-NOPE" in unknown.stderr


def test_migrate_is_idempotent_and_bad_flags_are_named(fresh_database_url):
    env = _env(fresh_database_url)
    for _ in range(2):
        result = _cli("migrate", env=env, timeout=120)
        assert result.returncode == 0, result.stderr
    bad = _cli("seed", "--demo", "--customers", "lots", env=env, timeout=60)
    assert bad.returncode == 2 and "--customers" in bad.stderr
    unsafe = _cli("migrate", env={**env, "FLOORWALKER_MODE": "production"}, timeout=60)
    assert unsafe.returncode == 2 and "FLOORWALKER_SECRET_KEY" in unsafe.stderr
    app = _cli("app", "--web", "--port", "0x", env=env, timeout=60)
    assert app.returncode == 2 and "--port" in app.stderr


def _wait_for_text(path, text, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if text in path.read_text():
            return True
        time.sleep(0.1)
    return False


def test_two_workers_one_leader_and_takeover_after_kill(fresh_database_url):
    """Two `floorwalker worker` processes: one leads; SIGKILL it and the other leads within seconds."""
    env = _env(fresh_database_url)
    assert _cli("migrate", env=env, timeout=120).returncode == 0
    logs = [TMP / f"worker-{time.monotonic_ns()}-{i}.log" for i in range(2)]
    procs = []
    try:
        for log in logs:
            with open(log, "w") as out:
                procs.append(
                    subprocess.Popen([sys.executable, "-m", "server.cli", "worker"], env=env, stdout=out, stderr=out)
                )
            time.sleep(0.5)
        assert _wait_for_text(logs[0], "leader now", 20), logs[0].read_text()
        time.sleep(3)  # several polls: the second must stay a follower
        assert "leader now" not in logs[1].read_text()
        procs[0].kill()  # SIGKILL: no clean release; the lock goes with the process / its connection
        procs[0].wait()
        assert _wait_for_text(logs[1], "leader now", 15), logs[1].read_text()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    assert procs[1].returncode == 0, logs[1].read_text()
