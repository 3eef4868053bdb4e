"""Bodies over a route's limit are answered 413 before they are read whole; the limits are in
the OpenAPI document; the largest legal body still fits; parsing off the loop keeps errors."""

from __future__ import annotations

import json
import random

import pytest

from char_pipeline.api.body_limits import DEFAULT_LIMIT, route_limits
from char_pipeline.settings import Settings
from tests.api.conftest import assert_envelope

VIDEO_LIMIT = route_limits(Settings())[("POST", "/v1/generate/video")]


def test_a_declared_oversized_body_is_refused_before_it_is_read(api, auth):
    sent = []

    def body():
        for _ in range(200):  # 200 MiB if anyone read it all
            sent.append(1)
            yield b" " * (1024 * 1024)

    size = 200 * 1024 * 1024
    response = api.post(
        "/v1/generate/video",
        headers={**auth, "Content-Type": "application/json", "Content-Length": str(size)},
        content=body(),
    )
    error = assert_envelope(response, 413, "PayloadTooLarge")
    assert error["details"] == {"max_bytes": VIDEO_LIMIT, "content_length": size}
    assert f"limit of {VIDEO_LIMIT:,} bytes" in error["message"]
    assert len(sent) <= 2, len(sent)  # the app never read the body


def test_a_streamed_body_is_cut_off_at_the_limit(api, auth):
    sent = []

    def body():  # chunked: no Content-Length to go by
        for _ in range(200):
            sent.append(1)
            yield b"[" + b"0.5," * 262_000

    response = api.post(
        "/v1/generate/video",
        headers={**auth, "Content-Type": "application/json"},
        content=body(),
    )
    error = assert_envelope(response, 413, "PayloadTooLarge")
    assert error["details"]["max_bytes"] == VIDEO_LIMIT
    # (The test client buffers the request; tests/test_crash_recovery.py sends over a socket.)


@pytest.mark.parametrize(
    ("path", "limit"),
    [("/v1/control/text", 1024 * 1024), ("/v1/control/latent", DEFAULT_LIMIT), ("/nope", None)],
)
def test_every_route_has_a_limit(api, auth, path, limit):
    limit = limit or DEFAULT_LIMIT
    response = api.post(
        path, headers={**auth, "Content-Type": "application/json"}, content=b" " * (limit + 1)
    )
    assert assert_envelope(response, 413, "PayloadTooLarge")["details"]["max_bytes"] == limit


def test_an_upload_over_the_image_limit_is_413(api, auth):
    limit = api.state.settings.max_image_bytes + 1024 * 1024
    response = api.post(
        "/v1/reference-image",
        headers=auth,
        files={"image": ("big.png", b"\x89PNG" + b"\0" * (limit + 10))},
    )
    assert assert_envelope(response, 413, "PayloadTooLarge")["details"]["max_bytes"] == limit


def test_the_longest_video_at_full_precision_fits(api, auth):
    frames = api.state.settings.max_video_frames
    rng = random.Random(0)
    # Full-precision floats; layout v1 keeps entries 56..63 zero.
    z_sequence = [[rng.uniform(-1, 1) / 3 for _ in range(56)] + [0.0] * 8 for _ in range(frames)]
    body = json.dumps(
        {
            "reference_image_id": "ref_0000000000000000",
            "control_type": "latent",
            "z_sequence": z_sequence,
        }
    ).encode()
    assert len(body) < VIDEO_LIMIT
    response = api.post(
        "/v1/generate/video", headers={**auth, "Content-Type": "application/json"}, content=body
    )
    assert_envelope(response, 404, "NotFound")  # parsed and validated; the reference is unknown


@pytest.mark.parametrize("path", ["/v1/generate/video", "/v1/batch/video"])
def test_bodies_parsed_off_the_loop_keep_their_error_detail(api, auth, path):
    headers = {**auth, "Content-Type": "application/json"}
    error = assert_envelope(
        api.post(path, headers=headers, content='{\n "reference_image_id": }'), 400, "BadRequest"
    )
    assert error["details"] == {"line": 2, "column": 24, "reason": "Expecting value"}
    error = assert_envelope(
        api.post(path, headers=headers, content=b'{"reference_image_id": "\xff"}'),
        400,
        "BadRequest",
    )
    assert error["details"]["byte_offset"] == 24
    error = assert_envelope(api.post(path, headers=headers, content="[" * 5000), 400, "BadRequest")
    assert error["message"] == "Request body could not be parsed as JSON."
    error = assert_envelope(
        api.post(path, headers=headers, json={"async": "x"}), 422, "UnprocessableEntity"
    )
    fields = {problem["field"] for problem in error["details"]["errors"]}
    assert "async" in fields or "tasks" in fields, error


def test_openapi_names_each_limit_and_its_413(api):
    schema = api.get("/openapi.json").json()
    limits = route_limits(api.state.settings)
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if method == "post":
                assert operation["x-max-body-bytes"] == limits.get(("POST", path), DEFAULT_LIMIT)
                assert "413" in operation["responses"], (path, method)
    video = schema["paths"]["/v1/generate/video"]["post"]
    reference = video["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert reference == "#/components/schemas/VideoIn"
    assert "z_sequence" in schema["components"]["schemas"]["VideoIn"]["properties"]
    assert "BatchTask" in schema["components"]["schemas"]
