"""`serve` on fresh data roots, healthy and broken: one process creates the instance, /readyz
tells the truth, and a job that cannot be launched fails in bounded time with the cause."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from char_pipeline import health
from tests.live_server import (
    LiveServer,
    json_of,
    submit_latent_video,
    upload_reference,
    wait_until,
)
from tests.receiver import Receiver

WORKSPACE_QUERY = """{ workspaceOrError { ... on Workspace { locationEntries {
  name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
BROKEN_CRON = "not a cron"


def _webserver_locations(port: int) -> list[dict]:
    answer = httpx.post(
        f"http://127.0.0.1:{port}/graphql", json={"query": WORKSPACE_QUERY}, timeout=30
    )
    return answer.json()["data"]["workspaceOrError"]["locationEntries"]


def _first_start(home) -> str:
    """Start serve on a fresh data root, check it end to end, stop it; its log."""
    server = LiveServer(home)
    try:
        server.start(timeout=240)  # two stacks share 2 cores
        body = server.readiness().json()
        checks = {check["name"]: check for check in body["checks"]}
        assert body["status"] == "ready", body
        assert checks["code_location"]["ok"] and checks["daemon"]["ok"], body
        # The UI is not part of readiness (jobs run without it); it comes up on its own.
        (location,) = wait_until(
            lambda: _webserver_locations(server.dagster_port), 120, "the Dagster webserver"
        )
        assert location["locationOrLoadError"]["__typename"] == "RepositoryLocation", location
    finally:
        code = server.stop()
    assert code == 0, server.log_tail()
    return server.log.read_text(errors="replace")


@pytest.mark.slow
def test_fresh_data_roots_start_ready_every_time(tmp_path):
    """First starts, two at a time (the race left two alembic heads in one of five starts).

    Four starts (about 90 s on 2 cores) keep the suite near its 10 minutes; ten (the old
    count, ~220 s) is `CHAR_FRESH_STARTS=10`."""
    starts = int(os.environ.get("CHAR_FRESH_STARTS", "4"))
    with ThreadPoolExecutor(max_workers=2) as pool:
        logs = list(pool.map(_first_start, [tmp_path / f"root{i}" for i in range(starts)]))
    for log in logs:
        assert "more than one head" not in log and "already exists" not in log, log[-3000:]


def _doctor(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "char_pipeline.cli", "doctor", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_broken_code_location_is_unready_and_fails_waiting_jobs(tmp_path, image_paths):
    launch_timeout = 8
    server = LiveServer(
        tmp_path,
        CHAR_BACKFILL_CRON=BROKEN_CRON,  # definitions.py cannot import; the API still can
        CHAR_LAUNCH_TIMEOUT_SECONDS=str(launch_timeout),
        CHAR_OUTBOUND_ALLOW="127.0.0.1",
    )
    key = server.create_key("broken")
    headers = {"Authorization": f"Bearer {key['api_key']}"}
    with (
        Receiver([key["webhook_secret"]]) as receiver,
        httpx.Client(base_url=server.base_url, timeout=60, headers=headers) as client,
    ):
        try:
            server.start(ready=False)
            readiness = server.readiness()
            assert readiness.status_code == 503, readiness.text
            body = readiness.json()
            assert body["status"] == "unready" and "invalid cron schedule" in body["error"], body
            direct = health.code_location(f"127.0.0.1:{server.code_port}")
            assert not direct.ok and "DagsterInvalidDefinitionError" in direct.detail

            reference_id = upload_reference(client, image_paths["present"])
            wait_until(
                lambda: (
                    json_of(client.get(f"/v1/reference-image/{reference_id}"))["status"]
                    == "processed"
                ),
                120,
                "the reference to be processed",
            )
            submitted = time.monotonic()
            job_url = submit_latent_video(
                client,
                reference_id,
                frames=60,
                seed=3,
                resolution="256x256",
                callback_url=receiver.url,
            )
            # Documented bound: the launch timeout, plus one watchdog interval (5 s).
            job = wait_until(
                lambda: (j := json_of(client.get(job_url)))["status"] == "failed" and j,
                launch_timeout + 40,
                "the job to fail",
            )
            waited = time.monotonic() - submitted
            wait_until(lambda: receiver.requests, 30, "the failure callback")
        finally:
            server.stop()

    assert launch_timeout <= waited <= launch_timeout + 20, waited
    assert job["error"]["code"] == "InternalError"
    assert "could not be launched" in job["error"]["message"]
    assert "invalid cron schedule" in job["error"]["message"], job
    (callback,) = receiver.requests
    assert callback["verified"] and callback["body"]["status"] == "failed"
    assert "invalid cron schedule" in callback["body"]["error"]["message"]

    doctor = _doctor(server.env)
    assert doctor.returncode == 1, doctor.stdout + doctor.stderr
    checks = {check["name"]: check for check in json.loads(doctor.stdout)}
    assert not checks["code_location"]["ok"]
    assert "invalid cron schedule" in checks["code_location"]["detail"]
    assert checks["torch"]["ok"] and checks["mediapipe"]["ok"] and checks["job_store"]["ok"]
