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
