"""An in-process API on a throwaway data root, with keys and processed references."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from char_pipeline.api.app import create_app
from char_pipeline.settings import Settings

ACCOUNT = "tests"  # the account of each module's key


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    home = tmp_path_factory.mktemp("api_home")
    settings = Settings(
        pipeline_home=home,
        sync_max_frames=12,
        url_signing_key="test-signing-key",
        # A deployment that answers 'transformer' with the mesh renderer, and has no weights
        # for 'diffusion' (tests/api/test_generators.py serves both for real).
        generator_aliases="transformer=gan",
    )
    app = create_app(settings)
    with TestClient(app) as client:
        client.state = app.state.char
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
