import numpy as np

from tests.api.conftest import assert_envelope


def _tasks(api, auth, present_id):
    z_sequence = api.post("/v1/control/latent?length=4&seed=21", headers=auth).json()["z_sequence"]
    return [
        {
            "reference_image_id": present_id,
            "control_type": "latent",
            "z_sequence": z_sequence,
            "resolution": "64x64",
            "fps": 8,
        },
        {
            "reference_image_id": present_id,
            "control_type": "latent",
            "z_sequence": [[0.1, 0.2]],
            "resolution": "64x64",
        },
        {
            "reference_image_id": "ref_0000000000000000",
            "control_type": "latent",
            "z_sequence": z_sequence,
            "resolution": "64x64",
        },
        {
            "reference_image_id": present_id,
            "control_type": "latent",
            "z_sequence": z_sequence,
            "resolution": "96x64",
            "format": "gif",
        },
    ]


def test_sync_batch_reports_errors_per_task(api, auth, present_id):
    response = api.post(
        "/v1/batch/video", headers=auth, json={"tasks": _tasks(api, auth, present_id)}
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["task_index"] for r in results] == [0, 1, 2, 3]
    assert results[0]["frames"] == 4 and results[0]["video_url"]
    assert (
        results[1]["error"]["code"] == "UnprocessableEntity"
        and "length 2" in results[1]["error"]["message"]
    )
    assert results[2]["error"]["code"] == "NotFound"
    assert results[3]["format"] == "gif" and results[3]["resolution"] == "96x64"
    etag = response.headers["ETag"]
    again = api.post(
        "/v1/batch/video",
        headers={**auth, "If-None-Match": etag},
        json={"tasks": _tasks(api, auth, present_id)},
    )
    assert again.status_code == 304


def test_async_batch_makes_one_job_per_good_task(api, auth, present_id):
    body = {"tasks": _tasks(api, auth, present_id), "async": True}
    response = api.post(
        "/v1/batch/video", headers={**auth, "X-GPU-Type": "t4", "X-Instance-Count": "2"}, json=body
    )
    assert response.status_code == 202, response.text
    answer = response.json()
    assert response.headers["Location"] == f"/v1/jobs/{answer['batch_id']}"
    tasks = answer["tasks"]
    assert [("job_id" in t) for t in tasks] == [True, False, False, True]
    job = api.state.jobs.get_job(tasks[0]["job_id"])
    assert (job.gpu_type, job.instance_count) == ("t4", 2)
    batch = api.get(answer["status_url"].replace("http://127.0.0.1:8000", ""), headers=auth).json()
    assert batch["kind"] == "batch" and batch["status"] in ("pending", "processing", "completed")
    assert [t["status"] for t in batch["tasks"]][1:3] == ["failed", "failed"]
    assert "2 failed" in batch["message"]


def test_batch_validation(api, auth, present_id):
    assert_envelope(
        api.post("/v1/batch/video", headers=auth, json={"tasks": []}), 422, "UnprocessableEntity"
    )
    bad_header = api.post(
        "/v1/batch/video",
        headers={**auth, "X-GPU-Type": "k80"},
        json={"tasks": _tasks(api, auth, present_id)[:1]},
    )
    assert_envelope(bad_header, 422, "UnprocessableEntity")


def test_async_batch_tasks_of_one_reference_share_a_run(api, auth, present_id, tmp_path):
    import dagster as dg

    from char_pipeline.definitions import build_definitions
    from char_pipeline.sensors.jobs import job_submission_sensor

    def task(seed, resolution="64x64"):
        z = api.post(f"/v1/control/latent?length=3&seed={seed}", headers=auth).json()["z_sequence"]
        return {
            "reference_image_id": present_id,
            "control_type": "latent",
            "z_sequence": z,
            "resolution": resolution,
            "fps": 8,
        }

    body = {"tasks": [task(501), task(502), task(503, "96x64")], "async": True}
    answer = api.post(
        "/v1/batch/video", headers={**auth, "X-Instance-Count": "2"}, json=body
    ).json()
    job_ids = [t["job_id"] for t in answer["tasks"]]
    defs = build_definitions(api.state.settings)
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        resources = {"jobs": defs.resources["jobs"]}
        result = job_submission_sensor(
            dg.build_sensor_context(instance=instance, resources=resources)
        )
        mine = [
            r for r in result.run_requests if set(r.tags["char/job_ids"].split(",")) & set(job_ids)
        ]
        assert sorted(len(r.tags["char/job_ids"].split(",")) for r in mine) == [1, 2]
        grouped = next(r for r in mine if "," in r.tags["char/job_ids"])
        assert grouped.tags["char/instance_count"] == "2" and "char/job_id" not in grouped.tags
        instance.add_dynamic_partitions("reference_image_id", [present_id])
        run = defs.resolve_job_def("render_request_job").execute_in_process(
            run_config=grouped.run_config,
            instance=instance,
            partition_key=present_id,
            tags=grouped.tags,
        )
        assert run.success
        assert run.asset_materializations_for_node("frames")[0].metadata["workers"].value == 2
    for job_id in job_ids[:2]:
        job = api.get(f"/v1/jobs/{job_id}", headers=auth).json()
        assert job["status"] == "completed" and job["result"]["frames"] == 3
    assert api.get(f"/v1/jobs/{job_ids[2]}", headers=auth).json()["status"] == "pending"


def test_async_batch_across_references_is_one_run(api, auth, present_id, image_paths, tmp_path):
    """Tasks for different references → one batch_render_job run; a task with a bad
    sequence fails alone; each rendered reference gets a video materialization."""
    import dagster as dg

    from char_pipeline import catalog
    from char_pipeline.definitions import build_definitions
    from char_pipeline.sensors.jobs import job_submission_sensor
    from char_pipeline.services import processing
    from tests.api.conftest import teammate, upload, wait_processed

    # Another key of the account: this module's shared key is near its burst limit by now.
    auth = teammate(api, "across")
    cat_id = upload(api, auth, image_paths["chelsea"])
    assert wait_processed(api, auth, cat_id)["status"] == "processed"

    def task(reference_id, seed):
        z = api.post(f"/v1/control/latent?length=4&seed={seed}", headers=auth).json()["z_sequence"]
        return {
            "reference_image_id": reference_id,
            "control_type": "latent",
            "z_sequence": z,
            "resolution": "64x48",
            "fps": 8,
        }

    body = {"tasks": [task(present_id, 601), task(cat_id, 602), task(cat_id, 603)], "async": True}
    answer = api.post("/v1/batch/video", headers={**auth, "X-Instance-Count": "2"}, json=body)
    assert answer.status_code == 202, answer.text
    job_ids = [t["job_id"] for t in answer.json()["tasks"]]
    # The third task's stored sequence is broken after the fact: it must fail alone.
    api.state.store.write_bytes(
        catalog.job_sequence_key(job_ids[2]), processing.npy_bytes(np.zeros((4, 10), np.float32))
    )
    defs = build_definitions(api.state.settings)
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        resources = {"jobs": defs.resources["jobs"]}
        result = job_submission_sensor(
            dg.build_sensor_context(instance=instance, resources=resources)
        )
        (request,) = [
            r for r in result.run_requests if set(r.tags["char/job_ids"].split(",")) & set(job_ids)
        ]
        assert request.job_name == "batch_render_job"
        assert sorted(request.tags["char/job_ids"].split(",")) == sorted(job_ids)
        run = defs.resolve_job_def("batch_render_job").execute_in_process(
            run_config=request.run_config, instance=instance, tags=request.tags
        )
        assert run.success
        events = run.get_asset_materialization_events()
        partitions = {e.materialization.partition for e in events}
        # One step in process, on the op (the Celery queue) of the run's compute type.
        compute_type = request.tags["char/gpu_type"]
        assert {e.step_key for e in events} == {f"render_chunk_{compute_type}[chunk_0]"}
        assert partitions == {present_id, cat_id}
    views = [api.get(f"/v1/jobs/{job_id}", headers=auth).json() for job_id in job_ids]
    assert [v["status"] for v in views] == ["completed", "completed", "failed"]
    assert views[0]["result"]["frames"] == 4 and views[1]["result"]["resolution"] == "64x48"
    assert views[2]["error"]["code"] == "UnprocessableEntity"
    batch = api.get(answer.headers["Location"], headers=auth).json()
    assert batch["status"] == "completed" and "2 of 3 tasks completed, 1 failed" in batch["message"]


def test_batch_run_infrastructure_errors_leave_the_job_for_a_retry(
    api, auth, present_id, image_paths, tmp_path
):
    import dagster as dg

    from char_pipeline import catalog
    from char_pipeline.definitions import build_definitions
    from char_pipeline.engine.controls import latent_sequence
    from char_pipeline.sensors.jobs import job_submission_sensor, run_request_for
    from tests.api.conftest import teammate, upload, wait_processed

    # Another key of the account: this module's shared key is near its burst limit by now.
    auth = teammate(api, "retry", ["reference:read", "generate:write"])
    cat_id = upload(api, auth, image_paths["chelsea"])
    wait_processed(api, auth, cat_id)
    tasks = [
        {
            "reference_image_id": reference_id,
            "control_type": "latent",
            "z_sequence": latent_sequence(3, seed).tolist(),
            "resolution": "64x48",
            "fps": 6,
        }
        for reference_id, seed in ((present_id, 701), (cat_id, 702))
    ]
    answer = api.post("/v1/batch/video", headers=auth, json={"tasks": tasks, "async": True})
    assert answer.status_code == 202, answer.text
    job_ids = [t["job_id"] for t in answer.json()["tasks"]]
    lost = catalog.job_sequence_key(job_ids[1])
    saved = api.state.store.read_bytes(lost)
    api.state.store.delete(lost)  # as if storage lost it for a while
    defs = build_definitions(api.state.settings)
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        resources = {"jobs": defs.resources["jobs"]}
        result = job_submission_sensor(
            dg.build_sensor_context(instance=instance, resources=resources)
        )
        (request,) = [r for r in result.run_requests if job_ids[0] in r.tags["char/job_ids"]]
        run = defs.resolve_job_def("batch_render_job").execute_in_process(
            run_config=request.run_config,
            instance=instance,
            tags=request.tags,
            raise_on_error=False,
        )
        assert not run.success
    first, second = (api.state.jobs.get_job(job_id) for job_id in job_ids)
    assert first.status == "completed" and second.status == "processing"
    # The retry renders the job alone on the ordinary partitioned path.
    api.state.store.write_bytes(lost, saved)
    retry = run_request_for(second, 2)
    assert retry.job_name == "render_request_job" and retry.partition_key == cat_id
