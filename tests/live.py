"""A real `floorwalker serve` process for tests that need one (sync engines over HTTP, event
streams, restarts): on a free loopback port, stopped by PID, its log checked for tracebacks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen | None, *, kill: bool = False) -> None:
    """SIGTERM (graceful) or SIGKILL (a crash), then wait for the PID (killed after 20 s)."""
    if proc is None:
        return
    proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class LiveServer:
    def __init__(self, database_url: str, log_dir: Path, *, port: int | None = None, extra_env: dict | None = None):
        self.database_url = database_url
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"serve-{self.port}.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FLOORWALKER_")}
        # The rule sweep and notifications stay off unless a test asks for it: other tests rely on a fixed task list.
        self.env.update(
            {
                "FLOORWALKER_DATABASE_URL": database_url,
                "FLOORWALKER_MODE": "dev",
                "FLOORWALKER_RULES_SWEEP_SECONDS": "0",
                "FLOORWALKER_NOTIFY_SECONDS": "0",
                **(extra_env or {}),
            }
        )
        self.proc: subprocess.Popen | None = None
        self._log = None
        self.starts = 0

    def start(self, timeout: float = 30.0) -> LiveServer:
        assert self.proc is None, "already running"
        self._log = open(self.log_path, "a")  # a file, not a pipe: a full pipe would stall the server
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--port", str(self.port)],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited with {self.proc.returncode}: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    self.starts += 1
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"serve did not answer within {timeout} s")

    def stop(self, *, kill: bool = False) -> None:
        """SIGTERM (graceful) or SIGKILL (a crash), then wait for the PID."""
        _stop(self.proc, kill=kill)
        self.proc = None
        if self._log:
            self._log.close()
            self._log = None

    def restart(self, *, kill: bool = False) -> None:
        self.stop(kill=kill)
        self.start()

    def tracebacks(self) -> str:
        text = self.log_path.read_text() if self.log_path.exists() else ""
        return text[text.find("Traceback") :] if "Traceback" in text else ""


class LiveWorker:
    """A real `floorwalker worker` (the scheduler alone, as on PostgreSQL in production), with the
    environment of a LiveServer; stopped by PID."""

    def __init__(self, server: LiveServer, extra_env: dict | None = None) -> None:
        self.env = {**server.env, **(extra_env or {})}
        self.log_path = server.log_path.with_name(f"worker-{server.port}.log")
        self.proc: subprocess.Popen | None = None
        self._log = None

    def start(self, timeout: float = 30.0) -> LiveWorker:
        self._log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "worker"],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # running once it leads (or waits to)
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}: {self.log_path.read_text()[-3000:]}")
            if "scheduler: leader now" in self.log_path.read_text():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the worker did not lead within {timeout} s: {self.log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        _stop(self.proc)
        self.proc = None
        if self._log:
            self._log.close()
            self._log = None
