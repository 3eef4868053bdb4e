"""Accounts: every endpoint answers 404 for another account's references and jobs; keys of
one account share them; ids are random; old content-addressed references stay their owner's."""

from char_pipeline import catalog
from tests.api.conftest import assert_envelope, upload, wait_processed


def _bearer(plaintext: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {plaintext}"}


def _key(api, name: str, account: str | None = None) -> dict[str, str]:
    _, plaintext = api.state.jobs.create_key(
        name, ["reference:read", "control:write", "generate:write"], account=account
    )
    return _bearer(plaintext)


def _requests_on(reference_id: str, z_sequence: list, job_id: str) -> list[tuple[str, str, dict]]:
    """Every route that names a reference or a job, with a body that is valid for its owner."""
    video = {
        "reference_image_id": reference_id,
        "control_type": "latent",
        "z_sequence": z_sequence,
        "resolution": "64x64",
    }
    return [
        ("GET", f"/v1/reference-image/{reference_id}", {}),
        ("GET", f"/v1/reference-image/{reference_id}/mask", {}),
        ("GET", f"/v1/reference-image/{reference_id}/features", {}),
        (
            "POST",
            "/v1/control/pose",
            {
                "json": {
                    "reference_image_id": reference_id,
                    "keypoints": [
                        {"name": "nose", "x": 0.5, "y": 0.3},
                        {"name": "left_wrist", "x": 0.7, "y": 0.5},
                    ],
                }
            },
        ),
        (
            "POST",
            "/v1/control/text",
            {
                "json": {
                    "reference_image_id": reference_id,
                    "prompt": "waves",
                    "steps": 4,
                    "model": "custom-nlp",
                }
            },
        ),
        (
            "POST",
            "/v1/generate/frame",
            {
                "json": {
                    "reference_image_id": reference_id,
                    "z_t": z_sequence[0],
                    "control_type": "latent",
                    "resolution": "64x64",
                }
            },
        ),
        ("POST", "/v1/generate/video", {"json": video}),
        (
            "POST",
            "/v1/generate/nerf",
            {
                "json": {
                    "reference_image_id": reference_id,
                    "camera_trajectory": [{"position": [0.0, 0.0, 2.5]}],
                    "output_format": "nerf_model",
                }
            },
        ),
        ("GET", f"/v1/jobs/{job_id}", {}),
        ("GET", f"/v1/jobs/{job_id}?wait=1", {}),
        ("POST", f"/v1/jobs/{job_id}/cancel", {}),
    ]


def test_every_route_hides_other_accounts(api, auth, present_id):
    z_sequence = api.post("/v1/control/latent?length=4&seed=3", headers=auth).json()["z_sequence"]
    submitted = api.post(
        "/v1/generate/video",
        headers=auth,
        json={
            "reference_image_id": present_id,
            "control_type": "latent",
            "z_sequence": z_sequence,
            "resolution": "64x64",
            "async": True,
        },
    )
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["job_id"]
    for method, path, kwargs in _requests_on(present_id, z_sequence, job_id):
        if path.endswith("/cancel"):
            continue  # the owner's cancel would end the job the others probe
        response = api.request(method, path, headers=auth, **kwargs)
        assert response.status_code in (200, 202), (path, response.text)

    stranger = _key(api, "stranger")
    for method, path, kwargs in _requests_on(present_id, z_sequence, job_id):
        response = api.request(method, path, headers=stranger, **kwargs)
        error = assert_envelope(response, 404, "NotFound")
        assert present_id in error["message"] or job_id in error["message"], path
    # A batch task on another account's reference fails alone, as a missing reference.
    batch = api.post(
        "/v1/batch/video",
        headers=stranger,
        json={
            "tasks": [
                {
                    "reference_image_id": present_id,
                    "control_type": "latent",
                    "z_sequence": z_sequence,
                    "resolution": "64x64",
                }
            ]
        },
    )
    assert batch.status_code == 200, batch.text
    assert batch.json()["results"][0]["error"]["code"] == "NotFound"
    listed = api.get("/v1/jobs", headers=stranger).json()
    assert listed["data"] == [] and listed["has_more"] is False


def test_keys_of_one_account_share_references_and_jobs(api, image_paths):
    alice = _key(api, "alice", account="studio")
    bob = _key(api, "bob", account="studio")
    mallory = _key(api, "mallory", account="other-studio")
    reference_id = upload(api, alice, image_paths["present"])
    assert wait_processed(api, bob, reference_id)["status"] == "processed"
    # Random ids: not the content hash, and another account gets another id for the bytes.
    assert reference_id != catalog.reference_id_for(image_paths["present"].read_bytes())
    assert upload(api, bob, image_paths["present"]) == reference_id  # same account: deduped
    theirs = upload(api, mallory, image_paths["present"])
    assert theirs != reference_id
    assert_envelope(
        api.get(f"/v1/reference-image/{reference_id}", headers=mallory), 404, "NotFound"
    )
    z_t = [0.0] * 64
    frame = api.post(
        "/v1/generate/frame",
        headers=bob,
        json={
            "reference_image_id": reference_id,
            "z_t": z_t,
            "control_type": "latent",
            "resolution": "64x64",
        },
    )
    assert frame.status_code == 200, frame.text
    job = api.post(
        "/v1/generate/video",
        headers=alice,
        json={
            "reference_image_id": reference_id,
            "control_type": "latent",
            "z_sequence": [z_t] * 2,
            "resolution": "64x64",
            "async": True,
        },
    ).json()["job_id"]
    assert [j["job_id"] for j in api.get("/v1/jobs", headers=bob).json()["data"]] == [job]
    assert api.get(f"/v1/jobs/{job}", headers=bob).json()["status"] == "pending"
    assert api.get("/v1/jobs", headers=mallory).json()["data"] == []


def test_old_content_addressed_references_stay_with_their_first_owner(api, image_paths):
    """Data from before accounts: a reference stored under its content id, used by one key's
    job. That key's account adopts it on first use; another account never sees it and gets
    a fresh id when it uploads the same bytes."""
    data = image_paths["chelsea"].read_bytes()
    legacy_id = catalog.reference_id_for(data)
    store = api.state.store
    catalog.save_upload(store, data, name="cat.png", reference_id=legacy_id)
    meta = store.read_json(catalog.upload_meta_key(legacy_id))
    del meta["account_id"]  # as the API wrote it before accounts existed
    meta.update(width=451, height=300)
    store.write_json(catalog.upload_meta_key(legacy_id), meta)
    first_owner = _key(api, "first-owner")
    account = api.state.jobs.verify_key(first_owner["Authorization"].split()[1]).account_id
    api.state.jobs.create_job(
        kind="video", reference_image_id=legacy_id, request={}, account_id=account
    )
    latecomer = _key(api, "latecomer")
    assert_envelope(api.get(f"/v1/reference-image/{legacy_id}", headers=latecomer), 404, "NotFound")
    assert api.get(f"/v1/reference-image/{legacy_id}", headers=first_owner).status_code == 200
    assert api.state.jobs.reference_account(legacy_id) == account
    assert upload(api, latecomer, image_paths["chelsea"]) != legacy_id
    assert upload(api, first_owner, image_paths["chelsea"]) == legacy_id
    assert (
        api.get(f"/v1/reference-image/{legacy_id}", headers=first_owner).json()["name"] == "cat.png"
    )
