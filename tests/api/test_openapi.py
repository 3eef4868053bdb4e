"""The served OpenAPI document against the answers: schemathesis generates requests for every
operation (valid and invalid) in process, and each answer must be documented — its status,
content type, headers and body schema — and never a server error."""

from __future__ import annotations

import tempfile

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from char_pipeline.api.app import create_app
from char_pipeline.settings import Settings

APP = create_app(
    Settings(
        pipeline_home=tempfile.mkdtemp(prefix="char_openapi_"),
        url_signing_key="openapi-tests",
        # The generated requests come fast: raised limits so that 429 does not hide the rest.
        rate_limit="100000/minute",
        rate_limit_burst="100000/second",
        rate_limit_job_reads="100000/minute",
    )
)
_, KEY = APP.state.char.jobs.create_key(
    "schemathesis", ["reference:read", "control:write", "generate:write"]
)
SCHEMA = schemathesis.openapi.from_asgi("/openapi.json", APP)
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


@SCHEMA.parametrize()
@settings(
    max_examples=10,
    deadline=None,
    derandomize=True,  # the same requests every run: a failure reproduces
    suppress_health_check=list(HealthCheck),
)
def test_answers_match_the_document(case):
    case.call_and_validate(headers={"Authorization": f"Bearer {KEY}"}, checks=CHECKS)


def test_every_operation_documents_its_errors():
    document = APP.openapi()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            for status in ("422", "500"):
                assert status in responses, (method, path, status)
            if operation.get("security"):
                for status in ("401", "403", "429"):
                    assert status in responses, (method, path, status)
                assert "Retry-After" in responses["429"]["headers"]
                assert "X-RateLimit-Remaining" in responses["200"]["headers"]
            for status, response in responses.items():
                if int(status) >= 400:
                    schema = response["content"]["application/json"]["schema"]
                    envelope = {"$ref": "#/components/schemas/ErrorEnvelope"}
                    if path.startswith("/api/v3/"):  # WaveSpeed's door answers its own errors
                        wavespeed = {"$ref": "#/components/schemas/WaveSpeedError"}
                        assert schema == {"oneOf": [envelope, wavespeed]}, (path, status)
                    else:
                        assert schema == envelope, (path, status)
    assert "HTTPValidationError" not in document["components"]["schemas"]


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_out_of_range_latent_seed_is_a_422(seed):
    """schemathesis once found a negative seed answered 500 (numpy refuses it)."""
    from fastapi.testclient import TestClient

    with TestClient(APP) as client:
        response = client.post(
            f"/v1/control/latent?length=2&seed={seed}",
            headers={"Authorization": f"Bearer {KEY}"},
        )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "UnprocessableEntity"
