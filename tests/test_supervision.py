"""serve's supervisor for real: supervisord with small programs, our config and listener."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from char_pipeline import health, supervision
from tests.live_server import wait_until

# Non-ASCII output: supervisord counts event lengths in characters, not bytes.
STEADY = [
    sys.executable,
    "-c",
    "import time; print('steady up — café', flush=True); time.sleep(600)",
]
CRASHER = [
    sys.executable,
    "-c",
    "import sys; print('boom: CHAR_X is not set', flush=True); sys.exit(3)",
]


def start_supervisor(directory: Path, programs: list[supervision.Program]):
    env = {**os.environ, **supervision.credentials()}
    config = supervision.write_config(directory, programs, Path.cwd())
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("supervisord")), "-c", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(directory / "terminal.log").open("wb"),
    )
    return process, env


def state(directory: Path) -> dict:
    return supervision.read_state(supervision.state_path(directory))


def running(directory: Path, name: str) -> dict | None:
    process = state(directory).get("processes", {}).get(name, {})
    return process if process.get("state") == "RUNNING" else None


def stop(process: subprocess.Popen) -> int:
    if process.poll() is None:
        process.terminate()
    return process.wait(timeout=60)


def test_a_killed_process_is_restarted_and_the_gap_reported(tmp_path):
    directory = tmp_path / "serve"
    supervisord, _ = start_supervisor(
        directory, [supervision.Program("api", STEADY, start_seconds=2)]
    )
    try:
        first = wait_until(lambda: running(directory, "api"), 30, "the program to run", 0.2)
        os.kill(first["pid"], signal.SIGKILL)
        gap = wait_until(
            lambda: [c for c in health.processes(directory) if not c.ok], 10, "the gap", 0.1
        )
        assert gap[0].name == "process:api" and gap[0].required
        assert (
            gap[0].detail.startswith("api ") and "exited (terminated by SIGKILL)" in gap[0].detail
        )
        again = wait_until(lambda: running(directory, "api"), 30, "the restart", 0.2)
        assert again["pid"] != first["pid"] and again["restarts"] == 1
        assert again["last_exit"]["how"] == "terminated by SIGKILL"
        (check,) = health.processes(directory)
        assert check.ok and "restarted 1 times" in check.detail
    finally:
        assert stop(supervisord) == 0
    terminal = (directory / "terminal.log").read_text()
    assert "api | steady up — café" in terminal  # the program's output, echoed with its name
    assert "Traceback" not in terminal  # the listener kept its place in the event stream
    assert "api exited (terminated by SIGKILL); restarting it (restart 1)." in terminal


def test_repeated_fast_crashes_stop_everything_with_the_cause(tmp_path):
    directory = tmp_path / "serve"
    supervisord, _ = start_supervisor(
        directory,
        [
            supervision.Program("code-server", STEADY, start_seconds=1),
            supervision.Program("dagster-daemon", CRASHER, start_seconds=2),
        ],
    )
    try:
        code = supervisord.wait(timeout=60)  # by itself: 1 + 2 + 3 s of backoff, four tries
    finally:
        stop(supervisord)
    fatal = state(directory)["fatal"]
    assert code == 0 and fatal["process"] == "dagster-daemon", state(directory)
    assert fatal["message"] == (
        "dagster-daemon crashed 4 times in a row while starting (exit status 3); "
        "stopping the service."
    )
    assert "boom: CHAR_X is not set" in fatal["log_tail"]
    (check,) = health.processes(directory)
    assert not check.ok and check.detail == fatal["message"]
    # The steady program was stopped with it, not orphaned.
    steady = state(directory)["processes"]["code-server"]
    with pytest.raises(ProcessLookupError):
        os.kill(steady["pid"], 0)


def test_long_data_roots_get_a_short_socket(tmp_path):
    deep = tmp_path / ("d" * 120)
    assert len(str(supervision.socket_path(deep))) < 100
    assert supervision.socket_path(Path("/tmp/x")) == Path("/tmp/x/supervisor.sock")


def test_an_unreported_supervisor_is_a_gap(tmp_path):
    (check,) = health.processes(tmp_path)
    assert not check.ok and "has not reported" in check.detail
