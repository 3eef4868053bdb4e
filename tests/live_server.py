"""`char-pipeline serve` on loopback for tests and benchmarks: start, key, wait, kill, stop."""

from __future__ import annotations

import contextlib
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


class NotYet(Exception):
    """A poll answered 'not yet': a 429 (with its Retry-After) or a server still starting."""

    def __init__(self, retry_after: float = 0.0) -> None:
        super().__init__(f"retry after {retry_after:g} s")
        self.retry_after = retry_after


def json_of(response: httpx.Response) -> dict:
    """The body of a successful poll; 429 and 503 raise NotYet (Retry-After honoured)."""
    if response.status_code in (429, 503):
        raise NotYet(float(response.headers.get("retry-after", "1") or 1))
    assert response.status_code == 200, (response.status_code, response.text)
    return response.json()


def wait_until(check, timeout: float, what: str, interval: float = 1.0):
    """Poll ``check`` until it returns something truthy, like a polite client.

    Connection errors and NotYet count as 'not yet'; a 429 waits for its Retry-After. One poll
    a second stays well inside a key's 100 requests/minute.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pause = interval
        try:
            result = check()
            if result:
                return result
        except httpx.HTTPError:
            pass
        except NotYet as not_yet:
            pause = max(interval, not_yet.retry_after)
        time.sleep(max(0.0, min(pause, deadline - time.monotonic())))
    raise AssertionError(f"timed out waiting for {what}")


def upload_reference(client: httpx.Client, path: Path) -> str:
    with open(path, "rb") as handle:
        answer = client.post("/v1/reference-image", files={"image": (path.name, handle)})
    assert answer.status_code == 200, answer.text
    return answer.json()["reference_image_id"]


def submit_latent_video(
    client: httpx.Client,
    reference_id: str,
    *,
    frames: int,
    seed: int,
    resolution: str,
    callback_url: str | None = None,
    headers: dict[str, str] | None = None,
) -> str:
    """An async latent-control video job; its status URL."""
    z_sequence = client.post(f"/v1/control/latent?length={frames}&seed={seed}").json()["z_sequence"]
    accepted = client.post(
        "/v1/generate/video",
        headers=headers,
        json={
            "reference_image_id": reference_id,
            "control_type": "latent",
            "z_sequence": z_sequence,
            "resolution": resolution,
            "async": True,
            "callback_url": callback_url,
        },
    )
    assert accepted.status_code == 202, accepted.text
    return accepted.headers["Location"]


# How each of serve's processes shows in its command line.
SERVE_PROCESSES = {
    "api": "uvicorn",
    "code-server": "api grpc",
    "dagster-daemon": "dagster-daemon",
    "dagster-webserver": "dagster-webserver",
}


def session_members(session: int) -> dict[int, str]:
    """PID → command line of every other process in a session (Linux /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == session:
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[3]) == session:
            found[int(entry.name)] = cmdline
    return found


def serve_children(server: LiveServer, name: str) -> list[int]:
    """PIDs of serve's processes called ``name``."""
    marker = SERVE_PROCESSES[name]
    members = session_members(server.process.pid)
    return sorted(pid for pid, cmdline in members.items() if marker in cmdline)


def send_oversized(
    url: str, headers: dict[str, str], size: int | None, seconds: float = 5
) -> tuple[int | None, int]:
    """POST ``size`` bytes of JSON-ish filler over a raw socket (``None``: chunked, unbounded)
    until the server answers or ``seconds`` pass; (status, bytes sent). httpx would insist on
    writing the whole body before it reads an early answer; a raw socket sees the 413 as soon
    as it is sent. Sends never block (a server that stopped reading fills the buffers), and
    the answer is read even after the server closed the connection on us."""
    import select
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    head = [f"POST {parts.path} HTTP/1.1", f"Host: {parts.netloc}"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    head += ["Content-Type: application/json"]
    head += [f"Content-Length: {size}"] if size is not None else ["Transfer-Encoding: chunked"]
    chunk = b"[" + b"0.123456," * 7000
    sent = 0
    pending = b""
    answer = b""
    deadline = time.monotonic() + seconds
    with socket.create_connection((parts.hostname, parts.port), timeout=seconds) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        sock.setblocking(False)
        while time.monotonic() < deadline and not answer:
            readable, writable, _ = select.select([sock], [sock], [], 0.2)
            if readable:
                break
            if not writable or (size is not None and sent >= size and not pending):
                continue
            if not pending:
                piece = chunk if size is None else chunk[: size - sent]
                pending = (
                    f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if size is None else piece
                )
                sent += len(piece)
            try:
                pending = pending[sock.send(pending) :]
            except BlockingIOError:
                continue
            except OSError:
                break  # closed on us: its answer may still be waiting to be read
        sock.settimeout(2)
        try:
            answer = sock.recv(65536)
        except OSError:
            answer = b""
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None
    return status, sent


class LiveServer:
    """API + Dagster webserver + daemon in their own process group, under one data root."""

    def __init__(self, home: Path, **settings: str) -> None:
        self.home = home
        self.env = {**os.environ, "CHAR_PIPELINE_HOME": str(home), **settings}
        self.env.pop("DAGSTER_HOME", None)
        self.api_port, self.dagster_port, self.code_port = free_port(), free_port(), free_port()
        self.base_url = f"http://127.0.0.1:{self.api_port}"
        self.process: subprocess.Popen | None = None
        self.log = home / "serve.log"

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

    def readiness(self) -> httpx.Response:
        return httpx.get(f"{self.base_url}/readyz", timeout=30)

    def start(self, timeout: float = 120, ready: bool = True, api_workers: int = 1) -> LiveServer:
        """Start serve; wait until /readyz says ready (or, ``ready=False``, until it answers)."""
        command = [
            sys.executable,
            "-m",
            "char_pipeline.cli",
            "serve",
            "--api-port",
            str(self.api_port),
            "--dagster-port",
            str(self.dagster_port),
            "--code-server-port",
            str(self.code_port),
            "--workers",
            str(api_workers),
        ]
        # Its own process group, so kill() reaches every child, run workers included.
        self.log.parent.mkdir(parents=True, exist_ok=True)
        log = self.log.open("ab")
        self.process = subprocess.Popen(
            command,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()  # serve holds its own copy
        try:
            if ready:
                wait_until(lambda: json_of(self.readiness()), timeout, "the service to be ready")
            else:
                wait_until(lambda: self.readiness().status_code in (200, 503), timeout, "the API")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; serve's log ends:\n{self.log_tail()}") from None
        return self

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL everything at once, as a crash of the machine would: serve, its supervisor
        and every process they started (each in its own process group, all in serve's session)."""
        for pid in [self.process.pid, *session_members(self.process.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
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


class LiveWorker:
    """`char-pipeline worker --queue …` in its own process group and data root (the
    distributed profile's settings come in ``env``)."""

    def __init__(self, name: str, home: Path, env: dict[str, str], queue: str = "cpu") -> None:
        self.name = f"{name}@test"
        self.log = home / "worker.log"
        home.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "char_pipeline.cli", "worker", "--queue", queue]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [*command, "--name", self.name],
                env={**env, "CHAR_PIPELINE_HOME": str(home)},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def ready(self) -> bool:
        assert self.process.poll() is None, self.log_tail()
        return "ready." in self.log.read_text(errors="replace")

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace").splitlines()
        return f"{self.name}:\n" + "\n".join(text[-lines:])


def purge_queues(broker_url: str, queues: list[str]) -> None:
    """Drop messages a killed earlier test left in these queues (the broker is shared)."""
    from kombu import Connection

    with Connection(broker_url.replace("pyamqp://", "amqp://")) as connection:
        channel = connection.channel()
        for queue in queues:
            with contextlib.suppress(Exception):
                channel.queue_purge(queue)
