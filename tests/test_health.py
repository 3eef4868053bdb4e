"""Readiness checks, the launch watchdog and failure causes, without starting servers."""

from __future__ import annotations

import time

import dagster as dg
from fastapi.testclient import TestClient

from char_pipeline import health
from char_pipeline.api.app import create_app
from char_pipeline.jobstore import JobStore
from char_pipeline.launch_watchdog import LaunchWatchdog
from char_pipeline.runner import prepare_instance, run_failure_cause
from char_pipeline.settings import Settings
from tests.receiver import Receiver

BROKEN = health.Check("code_location", False, "the Dagster code location failed to load: X: y")
FINE = health.Check("code_location", True, "loaded")


def _watchdog(tmp_path, checks, timeout=1):
    settings = Settings(
        pipeline_home=tmp_path,
        launch_timeout_seconds=timeout,
        outbound_allow="127.0.0.1",
        webhook_retry_schedule="1",
    )
    jobs = JobStore(settings.resolved_job_store_url)
    return LaunchWatchdog(settings, jobs, lambda: checks), jobs


def test_waiting_jobs_fail_once_the_blocker_outlasts_the_timeout(tmp_path):
    checks = [health.Check("job_store", True, "ok"), BROKEN]
    watchdog, jobs = _watchdog(tmp_path, checks)
    key, _ = jobs.create_key("k", ["generate:write"])
    with Receiver([key.webhook_secret]) as receiver:
        waiting = jobs.create_job(
            kind="video",
            reference_image_id="ref_a",
            request={},
            callback_url=receiver.url,
            api_key_id=key.id,
        )
        nerf = jobs.create_job(kind="nerf", reference_image_id="ref_a", request={})
        running = jobs.create_job(kind="video", reference_image_id="ref_a", request={})
        jobs.start_job(running.id, "run-1")
        assert watchdog.tick(now=100.0) == []  # blocked from now on, not for long enough
        time.sleep(1.2)
        assert watchdog.tick(now=100.5) == []
        assert watchdog.tick(now=101.5) == [waiting.id, nerf.id]
        deadline = time.monotonic() + 10
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.1)
    failed = jobs.get_job(waiting.id)
    assert failed.status == "failed"
    assert "could not be launched within 1 s" in failed.error["message"]
    assert "X: y" in failed.error["message"] and failed.error["code"] == "InternalError"
    assert jobs.get_job(running.id).status == "processing"
    assert jobs.get_job(nerf.id).status == "failed"
    (callback,) = receiver.requests
    assert callback["verified"] and callback["body"]["status"] == "failed"


def test_a_healthy_look_resets_the_clock(tmp_path):
    checks = [BROKEN]
    watchdog, jobs = _watchdog(tmp_path, checks, timeout=1)
    job = jobs.create_job(kind="video", reference_image_id="ref_a", request={})
    watchdog.tick(now=10.0)
    checks[0] = FINE
    assert watchdog.tick(now=20.0) == [] and watchdog.blocked_since is None
    checks[0] = BROKEN
    time.sleep(1.2)
    assert watchdog.tick(now=21.0) == []  # blocked again only since 21
    assert jobs.get_job(job.id).status == "pending"


def test_readyz_without_a_code_server_checks_the_job_store(tmp_path):
    app = create_app(Settings(pipeline_home=tmp_path, url_signing_key="k"))
    with TestClient(app) as client:
        answer = client.get("/readyz")
        assert answer.status_code == 200, answer.text
        assert [c["name"] for c in answer.json()["checks"]] == ["job_store"]
        assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_reports_an_unreachable_code_server(tmp_path):
    from tests.live_server import free_port

    settings = Settings(
        pipeline_home=tmp_path, url_signing_key="k", code_server=f"127.0.0.1:{free_port()}"
    )
    prepare_instance(settings)  # a real, fresh instance: no daemon has ever beaten on it
    app = create_app(settings)
    with TestClient(app) as client:
        answer = client.get("/readyz")
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "unready" and "unreachable" in body["error"], body
    # Nothing has ever sent a heartbeat on this (fresh) instance.
    assert "daemon: no daemon heartbeat on this instance" in body["error"], body


def test_run_failure_cause_is_the_innermost_exception():
    @dg.op
    def parse_descriptor():
        try:
            raise AttributeError("'FieldDescriptor' object has no attribute 'label'")
        except AttributeError as exc:
            raise RuntimeError("mediapipe graph failed") from exc

    @dg.job
    def broken():
        parse_descriptor()

    instance = dg.DagsterInstance.ephemeral()
    result = broken.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    assert run_failure_cause(instance, result.run_id) == (
        "parse_descriptor: AttributeError: 'FieldDescriptor' object has no attribute 'label'"
    )


def test_failure_cause_stops_at_the_ops_own_failure_and_ignores_handled_exceptions():
    @dg.op
    def typed():
        try:
            raise KeyError("resolution")
        except KeyError:
            pass
        try:
            raise ValueError("width 7 is odd")
        except ValueError as exc:
            raise dg.Failure(description="Bad render settings: width must be even") from exc

    @dg.op
    def handled():
        try:
            {}["key"]
        except KeyError:
            raise ValueError("bad config") from None

    @dg.job
    def both():
        typed()
        handled()

    instance = dg.DagsterInstance.ephemeral()
    result = both.execute_in_process(instance=instance, raise_on_error=False)
    causes = sorted(run_failure_cause(instance, result.run_id).split("; "))
    assert causes == [
        "handled: ValueError: bad config",
        "typed: Failure: Bad render settings: width must be even",
    ]
