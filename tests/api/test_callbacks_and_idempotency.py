import threading

from tests.api.conftest import assert_envelope


def _body(api, auth, present_id, seed, **extra):
    z_sequence = api.post(f"/v1/control/latent?length=3&seed={seed}", headers=auth).json()[
        "z_sequence"
    ]
    return {
        "reference_image_id": present_id,
        "control_type": "latent",
        "z_sequence": z_sequence,
        "resolution": "64x64",
        "async": True,
        **extra,
    }


def test_private_callback_is_refused_at_submission(api, auth, present_id):
    response = api.post(
        "/v1/generate/video",
        headers=auth,
        json=_body(api, auth, present_id, 1, callback_url="http://127.0.0.1:9999/hook"),
    )
    error = assert_envelope(response, 422, "UnprocessableEntity")
    assert error["details"]["field"] == "callback_url" and "https" in error["message"]
    response = api.post(
        "/v1/generate/video",
        headers=auth,
        json=_body(api, auth, present_id, 1, callback_url="https://192.168.1.20/hook"),
    )
    error = assert_envelope(response, 422, "UnprocessableEntity")
    assert "private" in error["message"] and "CHAR_OUTBOUND_ALLOW" in error["message"]


def test_idempotency_key_replays_and_rejects_changes(api, auth, present_id):
    body = _body(api, auth, present_id, 2)
    headers = {**auth, "Idempotency-Key": "order-2"}
    first = api.post("/v1/generate/video", headers=headers, json=body)
    again = api.post("/v1/generate/video", headers=headers, json=body)
    assert first.status_code == again.status_code == 202
    assert first.json()["job_id"] == again.json()["job_id"]
    assert (
        again.headers["Idempotent-Replayed"] == "true"
        and again.headers["Location"] == first.headers["Location"]
    )
    changed = api.post("/v1/generate/video", headers=headers, json={**body, "fps": 12})
    assert_envelope(changed, 422, "UnprocessableEntity")


def test_concurrent_duplicates_create_one_job(api, auth, present_id):
    body = _body(api, auth, present_id, 3)
    headers = {**auth, "Idempotency-Key": "burst-3"}
    before = len(api.state.jobs.jobs_after(0, limit=10_000))
    results = []

    def submit():
        response = api.post("/v1/generate/video", headers=headers, json=body)
        results.append((response.status_code, response.json()))

    threads = [threading.Thread(target=submit) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(api.state.jobs.jobs_after(0, limit=10_000)) == before + 1
    job_ids = {body["job_id"] for status, body in results if status == 202}
    assert len(job_ids) == 1
    assert all(status in (202, 409) for status, _ in results)
    for status, answer in results:
        if status == 409:
            assert answer["error"]["code"] == "Conflict"


def test_failed_requests_do_not_burn_the_key(api, auth, present_id):
    body = _body(api, auth, present_id, 4)
    headers = {**auth, "Idempotency-Key": "retry-4"}
    bad = api.post(
        "/v1/generate/video",
        headers=headers,
        json={**body, "reference_image_id": "ref_0000000000000000"},
    )
    assert bad.status_code == 404
    good = api.post(
        "/v1/generate/video",
        headers=headers,
        json={**body, "reference_image_id": "ref_0000000000000000"},
    )
    assert good.status_code == 404  # the same request runs again rather than replaying a claim
