"""The distributed profile, for real on the machine's PostgreSQL: one setting puts the Dagster
instance (runs, event log, schedules, dynamic partitions) and the job store there, so a second
machine's processes see the same runs and references."""

from __future__ import annotations

import dagster as dg
import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from char_pipeline.jobstore import open_job_store
from char_pipeline.runner import prepare_instance
from char_pipeline.settings import Settings
from tests.services import postgres_database


@dg.op
def hello() -> str:
    return "rendered"


@dg.job
def hello_job():
    hello()


@pytest.fixture()
def database():
    with postgres_database("char_profile") as url:
        yield url


def test_distributed_profile_keeps_dagster_and_jobs_in_postgres(tmp_path, database, monkeypatch):
    monkeypatch.delenv("CHAR_DAGSTER_POSTGRES_URL", raising=False)  # restored after the test
    first = Settings(
        pipeline_home=tmp_path / "machine-a", profile="distributed", dagster_postgres_url=database
    )
    second = Settings(
        pipeline_home=tmp_path / "machine-b", profile="distributed", dagster_postgres_url=database
    )
    home = prepare_instance(first)
    config = (home / "dagster.yaml").read_text()
    assert "postgres_url:\n      env: CHAR_DAGSTER_POSTGRES_URL" in config
    assert database not in config  # the URL (and any password) stays out of the file
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        run = hello_job.execute_in_process(instance=instance)
        assert run.success
        instance.add_dynamic_partitions("reference_image_id", ["ref_0123456789abcdef"])

    # Another machine: its own data root, the same storage.
    other_home = prepare_instance(second)
    with dg.DagsterInstance.from_config(str(other_home)) as instance:
        (record,) = instance.get_run_records()
        assert record.dagster_run.run_id == run.run_id and record.dagster_run.is_success
        assert instance.get_dynamic_partitions("reference_image_id") == ["ref_0123456789abcdef"]

    # The job store defaults to the same database.
    assert second.resolved_job_store_url.startswith("postgresql+psycopg://")
    job = open_job_store(second.resolved_job_store_url).create_job(
        kind="video", reference_image_id="ref_0123456789abcdef", request={}
    )
    engine = sa.create_engine(database.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM runs")).scalar() == 1
        kind = sa.text("SELECT kind FROM char_pipeline.jobs WHERE id = :id")
        assert connection.execute(kind, {"id": job.id}).scalar() == "video"
        # Dagster's own table named jobs (its instigators) is left as Dagster made it.
        columns = sa.text(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = 'public' AND table_name = 'jobs'"
        )
        assert "account_id" not in connection.execute(columns).scalars().all()
    engine.dispose()
    open_job_store(second.resolved_job_store_url).engine.dispose()


def test_the_distributed_profile_names_what_it_needs(monkeypatch):
    monkeypatch.delenv("CHAR_DAGSTER_POSTGRES_URL", raising=False)
    with pytest.raises(ValidationError, match="CHAR_DAGSTER_POSTGRES_URL"):
        Settings(profile="distributed")


def test_doctor_names_what_the_distributed_profile_still_lacks(tmp_path, monkeypatch):
    from char_pipeline.doctor import profile_check

    monkeypatch.delenv("CHAR_DAGSTER_POSTGRES_URL", raising=False)
    embedded = profile_check(Settings(pipeline_home=tmp_path))
    assert embedded.ok and not embedded.required
    url = "postgresql://postgres@127.0.0.1:5432/test"
    half = profile_check(
        Settings(pipeline_home=tmp_path, profile="distributed", dagster_postgres_url=url)
    )
    assert not half.ok and half.required
    assert "CHAR_RATE_LIMIT_STORAGE=redis://" in half.detail and "CHAR_ARTIFACTS_URL" in half.detail
    whole = profile_check(
        Settings(
            pipeline_home=tmp_path,
            profile="distributed",
            dagster_postgres_url=url,
            rate_limit_storage="redis://127.0.0.1:6379/0",
            artifacts_url="s3://char/prod",
        )
    )
    assert whole.ok, whole.detail
