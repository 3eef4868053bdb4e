"""API jobs → Dagster runs, and failed runs → failed jobs."""

import time

import dagster as dg

from char_pipeline import jobstate
from char_pipeline.assets.batch import batch_render_job
from char_pipeline.assets.jobs import nerf_request_job, render_request_job
from char_pipeline.assets.partitions import reference_partitions
from char_pipeline.failures import innermost_error
from char_pipeline.launching import (
    JOB_ID_TAG,
    JOB_IDS_TAG,
    TICK_GROUP,
    TICK_GROUP_MAX,
    RunSpec,
    job_tag,
    run_spec_for,
    run_spec_for_jobs,
    tick_group,
)
from char_pipeline.resources.jobs import JobStoreResource
from char_pipeline.settings import get_settings

REQUEST_JOBS = [render_request_job, nerf_request_job, batch_render_job]


# References whose partition this process has seen recently. Listing every partition costs
# O(references) per tick (238 ms at 100k on PostgreSQL) and one lookup ~12 ms (dagster-postgres
# opens a connection per query; bench/scale.py), so a tick looks up only references it has not
# seen in the last few minutes. Partitions are deleted only by the prune sensor, for
# references nobody used for days, so a stale entry lives at most PARTITION_MEMORY_SECONDS.
PARTITION_MEMORY_SECONDS = 600.0
PARTITION_MEMORY_SIZE = 200_000
_partitions_seen: dict[tuple[str, str], float] = {}


def _has_partition(instance: dg.DagsterInstance, reference_id: str) -> bool:
    now = time.monotonic()
    memory_key = (str(instance.root_directory), reference_id)  # one entry per instance
    if _partitions_seen.get(memory_key, 0.0) > now:
        return True
    if not instance.has_dynamic_partition(reference_partitions.name, reference_id):
        return False  # added by this tick's SensorResult; looked up again next time
    if len(_partitions_seen) >= PARTITION_MEMORY_SIZE:
        _partitions_seen.clear()
    _partitions_seen[memory_key] = now + PARTITION_MEMORY_SECONDS
    return True


@dg.sensor(
    jobs=REQUEST_JOBS,
    minimum_interval_seconds=get_settings().sensor_interval_seconds,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Turns each new async API job into one run (run_key = job id).",
)
def job_submission_sensor(
    context: dg.SensorEvaluationContext, jobs: JobStoreResource
) -> dg.SensorResult:
    cursor = int(context.cursor or 0)
    new_jobs = jobs.store.jobs_after(cursor, limit=200)
    if not new_jobs:
        return dg.SensorResult(skip_reason="No new jobs.")
    run_requests, new_partitions = [], []
    checked: set[str] = set()
    groups: dict[str, list] = {}
    for job in new_jobs:
        if job.kind not in ("video", "nerf") or job.status != "pending":  # batches, cache answers
            continue
        if job.request.get("launch"):
            continue  # its run was launched by the API before the job existed
        reference_id = job.reference_image_id
        if reference_id not in checked:
            checked.add(reference_id)
            if not _has_partition(context.instance, reference_id):
                new_partitions.append(reference_id)
        # Batch tasks of one group (created in one transaction) share one run; so do the
        # video jobs this tick found that render alike (size, rate, format, compute type).
        groups.setdefault(job.request.get("group") or tick_group(job), []).append(job)
    for group, everyone in groups.items():
        ticked = group.startswith(TICK_GROUP)
        size = TICK_GROUP_MAX if ticked else len(everyone)
        for start in range(0, len(everyone), size):
            members = everyone[start : start + size]
            if len(members) == 1:
                run_requests.append(run_request_for_jobs(members, 1, run_key=members[0].id))
            elif ticked:
                # Many small jobs: one run launch for all of them instead of one each, each
                # still its own job, status, callback and failure (assets/batch.py).
                run_requests.append(
                    run_request_for_jobs(members, 1, run_key=f"{group}:{members[0].id}", batch=True)
                )
            else:
                run_requests.append(run_request_for_jobs(members, 1, run_key=group))
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[reference_partitions.build_add_request(new_partitions)]
        if new_partitions
        else [],
        cursor=str(new_jobs[-1].seq),
    )


def run_request_for_jobs(
    jobs: list, attempt: int, run_key: str, batch: bool = False
) -> dg.RunRequest:
    return _request(run_spec_for_jobs(jobs, attempt, run_key, batch))


def run_request_for(job, attempt: int) -> dg.RunRequest:
    """One job alone (first runs of single jobs, and every retry)."""
    return _request(run_spec_for(job, attempt))


def _request(spec: RunSpec) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=spec.run_key,
        job_name=spec.job_name,
        partition_key=spec.partition_key,
        run_config=spec.run_config,
        tags=spec.tags,
    )


def is_final(code: str) -> bool:
    """A typed engine error (its code on the dg.Failure) means the input or the request is
    the problem — bad pose, too large, model missing: running again cannot help. Only an
    unexpected error (InternalError) may be the infrastructure's, and is retried."""
    return code != "InternalError"


@dg.run_failure_sensor(
    monitored_jobs=REQUEST_JOBS,
    request_jobs=REQUEST_JOBS,
    minimum_interval_seconds=get_settings().sensor_interval_seconds,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="A failed run of an API job: retried when the failure was the infrastructure's, else the job fails with the run's error.",
)
def job_failure_sensor(context: dg.RunFailureSensorContext, jobs: JobStoreResource):
    tags = context.dagster_run.tags
    job_ids = [j for j in tags.get(JOB_IDS_TAG, tags.get(JOB_ID_TAG, "")).split(",") if j]
    failures = context.get_step_failure_events()
    data = failures[0].step_failure_data if failures else None
    if data and data.error:
        metadata = data.user_failure_data.metadata if data.user_failure_data else {}
        code = str(metadata["error_code"].value) if "error_code" in metadata else "InternalError"
        # A typed engine error says it all; anything else is reported by its innermost cause.
        description = data.user_failure_data.description if data.user_failure_data else None
        message = (
            description.strip().splitlines()[0]
            if code != "InternalError" and description
            else innermost_error(data.error)
        )
    else:
        message, code = (context.failure_event.message or "The render run failed."), "InternalError"
    for job_id in job_ids:
        job = jobs.store.get_job(job_id)
        if job is None or not jobstate.is_open(job.status):
            continue
        if not is_final(code) and job.attempts < get_settings().job_max_attempts:
            attempt = job.attempts + 1
            jobs.store.retry_job(job_id, attempt)
            context.log.info(
                f"{job_id}: run {context.dagster_run.run_id} failed ({message}); retrying, attempt {attempt}"
            )
            yield run_request_for(job, attempt)
        else:
            jobs.store.fail_job(
                job_id,
                code,
                message,
                {"run_id": context.dagster_run.run_id, "attempts": job.attempts},
            )
            context.log.info(f"{job_id}: failed for good: {message}")


@dg.sensor(
    jobs=REQUEST_JOBS,
    minimum_interval_seconds=max(5, get_settings().job_stale_seconds // 4),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Finds API jobs whose run is missing or ended without finishing them; retries or fails them, so no job hangs.",
)
def job_reconciler_sensor(
    context: dg.SensorEvaluationContext, jobs: JobStoreResource
) -> dg.SensorResult:
    settings = get_settings()
    run_requests = []
    for job in jobs.store.open_jobs(older_than_seconds=settings.job_stale_seconds):
        records = context.instance.get_run_records(
            filters=dg.RunsFilter(tags={job_tag(job.id): "1"}), limit=1
        )
        latest = records[0].dagster_run if records else None
        if latest is None:
            reason = "no run was started for it"
        elif not latest.is_finished:
            if latest.status == dg.DagsterRunStatus.QUEUED or job.status == "pending":
                continue  # waiting for a slot: not stuck
            # Running runs report progress at least every few seconds; this one has been
            # silent for job_stale_seconds, so its worker is dead or hung.
            # Marking the run failed hands the job to job_failure_sensor (retry or fail).
            context.instance.report_run_failed(
                latest, f"No progress for {settings.job_stale_seconds} s: the run's worker is gone."
            )
            context.log.info(
                f"{job.id}: run {latest.run_id} stopped reporting progress; marked failed"
            )
            continue
        elif latest.status == dg.DagsterRunStatus.SUCCESS:
            reason = "its run finished without recording a result"
        else:
            reason = f"its run ended as {latest.status.value}"
        if job.attempts < settings.job_max_attempts:
            attempt = job.attempts + 1
            jobs.store.retry_job(job.id, attempt)
            context.log.info(f"{job.id}: {reason}; retrying, attempt {attempt}")
            run_requests.append(run_request_for(job, attempt))
        else:
            jobs.store.fail_job(
                job.id,
                "InternalError",
                f"The job could not be completed: {reason}.",
                {"attempts": job.attempts},
            )
            context.log.info(f"{job.id}: {reason}; failed after {job.attempts} attempts")
    if not run_requests:
        return dg.SensorResult(skip_reason="No stuck jobs.")
    return dg.SensorResult(run_requests=run_requests)


@dg.sensor(
    # Not every second: the job is cancelled the moment the API answers (a run that goes on
    # cannot complete it); this only gives the run's worker back, so a few seconds is fine.
    minimum_interval_seconds=max(5, get_settings().sensor_interval_seconds),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Stops the runs of cancelled API jobs (a run rendering several jobs stops once none of them is open).",
)
def job_cancel_sensor(
    context: dg.SensorEvaluationContext, jobs: JobStoreResource
) -> dg.SensorResult:
    stopped = []
    for job in jobs.store.recently_cancelled(within_seconds=3600):
        for record in context.instance.get_run_records(
            filters=dg.RunsFilter(tags={job_tag(job.id): "1"})
        ):
            run = record.dagster_run
            if run.is_finished or run.status == dg.DagsterRunStatus.CANCELING:
                continue
            members = [j for j in run.tags.get(JOB_IDS_TAG, "").split(",") if j]
            if any(
                (member := jobs.store.get_job(job_id)) is not None
                and jobstate.is_open(member.status)
                for job_id in members
            ):
                continue  # other jobs still want this run
            if run.status in (dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED):
                context.instance.report_run_canceled(run, message=f"{job.id} was cancelled.")
            else:
                context.instance.run_launcher.terminate(run.run_id)
            context.log.info(f"{job.id}: cancelled; stopped run {run.run_id}")
            stopped.append(run.run_id)
    if not stopped:
        return dg.SensorResult(skip_reason="No runs of cancelled jobs to stop.")
    return dg.SensorResult()
