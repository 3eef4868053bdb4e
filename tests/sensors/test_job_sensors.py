"""Run requests for API jobs: each kind goes to its own job, retries included."""

from char_pipeline import catalog
from char_pipeline.jobstore import JobStore
from char_pipeline.sensors.jobs import run_request_for


def test_nerf_jobs_run_the_nerf_job_on_first_try_and_retry(tmp_path):
    store = JobStore(f"sqlite:///{tmp_path / 'jobs.db'}")
    (job,) = store.create_jobs(
        [
            {
                "kind": "nerf",
                "reference_image_id": "ref_0123456789abcdef",
                "request": {
                    "resolution": "320x240",
                    "fps": 24,
                    "format": "mp4",
                    "frames": 3,
                    "cache_ttl": 60,
                    "result_fields": {"etag": "gabc"},
                    "etag": "gabc",
                },
                "gpu_type": "t4",
            }
        ]
    )
    first, retry = run_request_for(job, 1), run_request_for(job, 2)
    assert first.job_name == retry.job_name == "nerf_request_job"
    assert (first.run_key, retry.run_key) == (job.id, f"{job.id}.attempt2")
    config = first.run_config["ops"]["nerf_video"]["config"]
    assert config["trajectory_key"] == catalog.job_trajectory_key(job.id)
    assert config["name"] == job.id and config["job_result"]["cache_ttl"] == 60
    assert first.tags["char/gpu_type"] == "t4" and first.tags["char/job_id"] == job.id


def test_small_jobs_found_in_one_tick_share_runs(tmp_path):
    """40 queued videos that render alike → 2 batch runs (32 + 8) instead of 40 launches; a
    nerf job and a video of another size keep their own runs; every job is tagged."""
    import dagster as dg

    from char_pipeline.resources.jobs import JobStoreResource
    from char_pipeline.sensors.jobs import job_submission_sensor, job_tag

    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    store = JobStore(url)

    def video(reference: str, resolution: str = "256x256") -> dict:
        return {
            "kind": "video",
            "reference_image_id": reference,
            "request": {
                "resolution": resolution,
                "fps": 24,
                "format": "mp4",
                "cache_ttl": 60,
                "result_fields": {},
            },
        }

    alike = store.create_jobs(
        [video(f"ref_{index % 3:016d}") for index in range(40)]  # three references
    )
    (other_size,) = store.create_jobs([video("ref_0000000000000001", "512x512")])
    (nerf,) = store.create_jobs(
        [
            {
                **video("ref_0000000000000001"),
                "kind": "nerf",
                "request": {**video("x")["request"], "frames": 3, "etag": "g"},
            }
        ]
    )
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        result = job_submission_sensor(
            dg.build_sensor_context(
                instance=instance, resources={"jobs": JobStoreResource(url=url)}
            )
        )
    requests = result.run_requests
    batches = [r for r in requests if r.job_name == "batch_render_job"]
    assert sorted(len(r.tags["char/job_ids"].split(",")) for r in batches) == [8, 32]
    grouped = {job_id for r in batches for job_id in r.tags["char/job_ids"].split(",")}
    assert grouped == {job.id for job in alike}
    for r in batches:
        assert all(job_tag(job_id) in r.tags for job_id in r.tags["char/job_ids"].split(","))
        assert len(r.run_config["ops"]["plan_batch"]["config"]["tasks"]) == len(
            r.tags["char/job_ids"].split(",")
        )
    singles = {r.run_key: r.job_name for r in requests if r not in batches}
    assert singles == {other_size.id: "render_request_job", nerf.id: "nerf_request_job"}
