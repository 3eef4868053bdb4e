"""`char-pipeline serve` on loopback for tests and benchmarks: start, key, wait, kill, stop."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check, timeout: float, what: str):
    """Poll ``check`` (HTTP errors count as 'not yet') until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


class LiveServer:
    """API + Dagster webserver + daemon in their own process group, under one data root."""

    def __init__(self, home: Path, **settings: str) -> None:
        self.env = {**os.environ, "CHAR_PIPELINE_HOME": str(home), **settings}
        self.env.pop("DAGSTER_HOME", None)
        self.api_port, self.dagster_port = free_port(), free_port()
        self.base_url = f"http://127.0.0.1:{self.api_port}"
        self.process: subprocess.Popen | None = None

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "char_pipeline.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )

    def create_key(self, name: str) -> dict:
        """A new API key record: api_key, webhook_secret, scopes …"""
        return json.loads(self.cli("keys", "create", "--name", name, "--json").stdout)

    def start(self, timeout: float = 90) -> LiveServer:
        command = [
            sys.executable,
            "-m",
            "char_pipeline.cli",
            "serve",
            "--api-port",
            str(self.api_port),
            "--dagster-port",
            str(self.dagster_port),
        ]
        # Its own process group, so kill() reaches every child, run workers included.
        self.process = subprocess.Popen(
            command,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_until(
            lambda: httpx.get(f"{self.base_url}/healthz", timeout=5).status_code == 200,
            timeout,
            "the API",
        )
        return self

    def kill(self) -> None:
        """SIGKILL everything at once, as a crash would."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> int:
        """Ctrl-C, as a user would; returns serve's exit code."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait(timeout=30)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
