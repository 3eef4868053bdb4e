"""An in-process API on a throwaway data root, with keys and processed references."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from char_pipeline.api.app import create_app
from char_pipeline.settings import Settings

ACCOUNT = "tests"  # the account of each module's key


@contextlib.contextmanager
def api_client(home, **settings) -> Iterator[TestClient]:
    """The API in process on the data root ``home`` (a module's own deployment: ``settings``
    override the defaults); ``client.state`` is its ServiceContext."""
    app = create_app(Settings(pipeline_home=home, url_signing_key="test-signing-key", **settings))
    with TestClient(app) as client:
        client.state = app.state.char
        yield client


@contextlib.contextmanager
def served(app_settings: Settings) -> Iterator[str]:
    """The API served by uvicorn on a loopback port, in a thread (for clients that open real
    connections: the seeds' samples); yields its base URL."""
    import threading

    import uvicorn

    from tests.live_server import free_port

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(app_settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextlib.contextmanager
def static_files(folder) -> Iterator[str]:
    """A plain HTTP server on loopback serving ``folder`` (media a door fetches by URL; the
    deployment allows 127.0.0.1 in CHAR_OUTBOUND_ALLOW); yields its base URL."""
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    # A deployment that answers 'transformer' with the mesh renderer, and has no weights for
    # 'diffusion' (tests/api/test_generators.py serves both for real).
    with api_client(
        tmp_path_factory.mktemp("api_home"), sync_max_frames=12, generator_aliases="transformer=gan"
    ) as client:
        yield client


@pytest.fixture(scope="module")
def key(api) -> str:
    _, plaintext = api.state.jobs.create_key(
        "tests", ["reference:read", "control:write", "generate:write"], account=ACCOUNT
    )
    return plaintext


def teammate(api, name: str, scopes: list[str] | None = None) -> dict[str, str]:
    """Headers of another key in the module key's account: it sees the same references and
    jobs with a rate-limit budget of its own."""
    _, plaintext = api.state.jobs.create_key(
        name, scopes or ["reference:read", "control:write", "generate:write"], account=ACCOUNT
    )
    return {"Authorization": f"Bearer {plaintext}"}


@pytest.fixture(scope="module")
def auth(key) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def upload(api, auth, path) -> str:
    with open(path, "rb") as handle:
        response = api.post(
            "/v1/reference-image", headers=auth, files={"image": (path.name, handle)}
        )
    assert response.status_code == 200, response.text
    return response.json()["reference_image_id"]


def wait_processed(api, auth, reference_id: str, timeout: float = 60) -> dict:
    """Poll like a polite client: twice a second (the key's burst limit is 50 per 10 s), and a
    429 waits for its Retry-After; the module's other tests share the key's budget."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = api.get(f"/v1/reference-image/{reference_id}", headers=auth)
        if response.status_code == 429:
            time.sleep(float(response.headers.get("retry-after", "1")))
            continue
        assert response.status_code == 200, response.text
        if response.json()["status"] != "pending":
            return response.json()
        time.sleep(0.5)
    raise AssertionError("reference never processed")


@pytest.fixture(scope="module")
def present_id(api, auth, image_paths) -> str:
    reference_id = upload(api, auth, image_paths["present"])
    assert wait_processed(api, auth, reference_id)["status"] == "processed"
    return reference_id


def assert_envelope(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert "Traceback" not in response.text
    return body["error"]


def run_jobs(api, tmp_path, job_ids: list[str]) -> list:
    """The job sensor's run requests that render any of ``job_ids``, executed as Dagster runs
    in process (each must succeed); returns those requests."""
    import dagster as dg

    from char_pipeline.definitions import build_definitions
    from char_pipeline.sensors.jobs import job_submission_sensor

    defs = build_definitions(api.state.settings)
    executed = []
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        result = job_submission_sensor(
            dg.build_sensor_context(instance=instance, resources={"jobs": defs.resources["jobs"]})
        )
        for request in result.run_requests:
            if not set(request.tags["char/job_ids"].split(",")) & set(job_ids):
                continue
            if request.partition_key:  # batch runs are not partitioned
                instance.add_dynamic_partitions("reference_image_id", [request.partition_key])
            run = defs.resolve_job_def(request.job_name).execute_in_process(
                run_config=request.run_config,
                instance=instance,
                partition_key=request.partition_key,
                tags=request.tags,
            )
            assert run.success
            executed.append(request)
    return executed
