import pytest

from tests.api.conftest import assert_envelope


def test_missing_and_invalid_keys_are_401(api):
    assert_envelope(api.get("/v1/reference-image/ref_abcdef123456"), 401, "Unauthorized")
    response = api.get(
        "/v1/reference-image/ref_abcdef123456", headers={"Authorization": "Bearer sk_live_nope"}
    )
    assert_envelope(response, 401, "Unauthorized")
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_missing_scope_is_403(api):
    _, read_only = api.state.jobs.create_key("read-only", ["reference:read"])
    response = api.post(
        "/v1/control/latent?length=2", headers={"Authorization": f"Bearer {read_only}"}
    )
    error = assert_envelope(response, 403, "Forbidden")
    assert error["details"]["required_scope"] == "control:write"


def test_revoked_key_stops_working(api):
    record, plaintext = api.state.jobs.create_key("temp", ["control:write"])
    headers = {"Authorization": f"Bearer {plaintext}"}
    assert api.post("/v1/control/latent?length=1", headers=headers).status_code == 200
    assert api.state.jobs.revoke_key(record.id)
    assert_envelope(api.post("/v1/control/latent?length=1", headers=headers), 401, "Unauthorized")


def test_keys_are_stored_hashed(api, key):
    import sqlalchemy as sa

    from char_pipeline.jobstore import api_keys

    with api.state.jobs.engine.connect() as connection:
        stored = connection.execute(sa.select(api_keys.c.key_hash, api_keys.c.prefix)).all()
    assert all(key not in row.key_hash for row in stored)
    assert any(key.startswith(row.prefix) for row in stored)


def test_invalid_json_is_400_with_position(api, auth):
    body = '{\n  "reference_image_id": "ref_x",\n  "keypoints": [\n    {"x": 0.5, "y": }\n  ]\n}'
    response = api.post(
        "/v1/control/pose", headers={**auth, "Content-Type": "application/json"}, content=body
    )
    error = assert_envelope(response, 400, "BadRequest")
    assert error["message"] == "Request body could not be parsed as JSON."
    assert error["details"] == {"line": 4, "column": 21, "reason": "Expecting value"}


def test_undecodable_bodies_say_where_and_why(api, auth):
    headers = {**auth, "Content-Type": "application/json"}
    invalid_utf8 = b'{"reference_image_id": "ref_\xff\xfe"}'
    error = assert_envelope(
        api.post("/v1/control/pose", headers=headers, content=invalid_utf8), 400, "BadRequest"
    )
    assert error["details"]["byte_offset"] == 28
    assert error["details"]["reason"].startswith("invalid UTF-8")
    deep = "[" * 100_000 + "]" * 100_000
    error = assert_envelope(
        api.post("/v1/control/pose", headers=headers, content="\n" + deep), 400, "BadRequest"
    )
    assert error["message"] == "Request body could not be parsed as JSON."
    assert error["details"]["line"] == 2 and error["details"]["column"] == 100_000
    assert error["details"]["reason"].startswith("nested 100000 levels deep")


def test_schema_violations_are_422_and_unknown_routes_404(api, auth):
    error = assert_envelope(
        api.post(
            "/v1/control/text",
            headers=auth,
            json={"reference_image_id": "ref_x", "prompt": "hi", "steps": 0},
        ),
        422,
        "UnprocessableEntity",
    )
    assert error["details"]["errors"][0]["field"] == "steps"
    assert_envelope(
        api.post("/v1/control/latent?length=3&distribution=cauchy", headers=auth),
        422,
        "UnprocessableEntity",
    )
    assert_envelope(api.get("/v1/nothing-here", headers=auth), 404, "NotFound")
    assert_envelope(api.delete("/v1/jobs/job_x", headers=auth), 405, "MethodNotAllowed")


def test_rate_limit_burst_gives_429_with_headers(api):
    _, plaintext = api.state.jobs.create_key("burst", ["control:write"])
    headers = {"Authorization": f"Bearer {plaintext}"}
    statuses = []
    for _ in range(51):
        response = api.post("/v1/control/latent?length=1", headers=headers)
        statuses.append(response.status_code)
    assert statuses[:50] == [200] * 50
    error = assert_envelope(response, 429, "RateLimitExceeded")
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["X-RateLimit-Limit"] == "100"
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert int(response.headers["X-RateLimit-Reset"]) > 0
    assert error["details"]["retry_after"] >= 1


def test_successful_answers_carry_rate_limit_headers(api, auth):
    response = api.post("/v1/control/latent?length=1", headers=auth)
    assert response.status_code == 200
    assert response.headers["X-RateLimit-Limit"] == "100"
    assert 0 <= int(response.headers["X-RateLimit-Remaining"]) < 100


@pytest.mark.parametrize("path", ["/openapi.json", "/docs"])
def test_openapi_and_docs(api, path):
    response = api.get(path)
    assert response.status_code == 200
    if path == "/openapi.json":
        paths = response.json()["paths"]
        for expected in (
            "/v1/reference-image",
            "/v1/reference-image/{reference_image_id}/mask",
            "/v1/control/pose",
            "/v1/control/text",
            "/v1/control/latent",
            "/v1/generate/frame",
            "/v1/generate/video",
            "/v1/jobs/{job_id}",
        ):
            assert expected in paths
