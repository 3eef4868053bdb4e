"""Run the render job for reference partitions on the real Dagster instance, with progress.

Used by ``char-pipeline demo``: every run lands in the instance under DAGSTER_HOME, so it
shows up afterwards in ``dagster dev``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from char_pipeline.failures import run_failure_cause
from char_pipeline.settings import Settings

MARKER = "# Written by char-pipeline"
DAGSTER_YAML = """\
# Written by char-pipeline: the embedded default (SQLite storage under this folder).
telemetry:
  enabled: false
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
  config:
    max_concurrent_runs: 2
    dequeue_interval_seconds: 1
    # One concurrency limit per compute type (X-GPU-Type → run tag char/gpu_type): how many
    # runs may hold that GPU type at once. On this CPU-only default, every type is the CPU.
    tag_concurrency_limits:
      - key: char/gpu_type
        value: v100
        limit: 2
      - key: char/gpu_type
        value: t4
        limit: 2
      - key: char/gpu_type
        value: a100
        limit: 1
sensors:
  use_threads: true
  num_workers: 8
run_monitoring:
  # Runs whose worker process died (killed, machine restarted) are marked failed, so the
  # job failure sensor can retry them.
  enabled: true
  start_timeout_seconds: 120
  poll_interval_seconds: 10
"""


# The distributed profile: runs, event log and schedules in PostgreSQL (dagster-postgres), so
# several machines' daemons, webservers and run workers share one instance. The URL stays out
# of the file (it may hold a password): every process reads it from the environment.
POSTGRES_STORAGE = """\
storage:
  postgres:
    postgres_url:
      env: CHAR_DAGSTER_POSTGRES_URL
"""


def dagster_yaml(settings: Settings) -> str:
    """The instance configuration of the settings' profile."""
    if settings.profile == "distributed":
        body = DAGSTER_YAML.split("\n", 1)[1]
        return (
            f"{MARKER}: the distributed profile (Dagster storage in PostgreSQL).\n"
            + body
            + POSTGRES_STORAGE
        )
    return DAGSTER_YAML


def prepare_dagster_home(settings: Settings) -> Path:
    """Create DAGSTER_HOME under the data root (once) and point the environment at it."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    wanted = dagster_yaml(settings)
    # A dagster.yaml written by char-pipeline (any version, any profile) is kept up to date;
    # one edited by hand (no marker line) is left alone.
    if not config.exists() or (
        config.read_text().startswith(MARKER) and config.read_text() != wanted
    ):
        partial = config.with_suffix(".yaml.tmp")
        partial.write_text(wanted)
        partial.replace(config)  # readers never see half a file
    os.environ["DAGSTER_HOME"] = str(home)
    if settings.dagster_postgres_url:
        os.environ["CHAR_DAGSTER_POSTGRES_URL"] = dagster_postgres_url(
            settings.dagster_postgres_url
        )
    return home


def dagster_postgres_url(url: str) -> str:
    """The URL with psycopg2 named: dagster-postgres needs it (its NOTIFY binds a parameter,
    which psycopg 3, SQLAlchemy's default for a bare postgresql:// since 2.1, refuses)."""
    scheme, _, rest = url.partition("://")
    return f"postgresql+psycopg2://{rest}" if scheme in ("postgresql", "postgres") else url


def prepare_instance(settings: Settings) -> Path:
    """Create and migrate the Dagster storage and the job store once, before anything opens them.

    Started together on a fresh data root, the webserver, the daemon and a code server each
    created the SQLite schemas at once: two alembic heads in the schedule storage (the code
    location never loaded again) or "table jobs already exists". So every entry point (serve,
    dev, demo, render, the tests) calls this first; a file lock makes concurrent callers wait
    for the first one instead of racing it.
    """
    import fcntl

    import dagster as dg

    from char_pipeline.jobstore import open_job_store

    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".prepare.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        prepare_dagster_home(settings)
        instance = dg.DagsterInstance.from_config(str(home))
        try:
            # One read per storage: runs (and daemon heartbeats), event log index, schedules.
            instance.get_runs(limit=1)
            instance.get_daemon_heartbeats()
            instance.get_dynamic_partitions("reference_image_id")
            instance.all_instigator_state()
        finally:
            instance.dispose()
        open_job_store(settings.resolved_job_store_url).engine.dispose()
    return home


@dataclass
class PartitionOutcome:
    reference_id: str
    run_id: str
    success: bool
    seconds: float
    error: str | None = None
    videos: list[dict] = field(default_factory=list)
    outputs: dict = field(default_factory=dict)


def run_partitions(
    reference_ids: list[str],
    run_config: dict,
    *,
    on_step: Callable[[str, str, str], None] | None = None,
    tags: dict[str, str] | None = None,
    outputs: tuple[str, ...] = ("video",),
    asset_selection: list | None = None,
) -> list[PartitionOutcome]:
    """Execute render_job once per partition in this process; ``on_step(ref, step, status)``."""
    import dagster as dg
    from dagster._core.utils import make_new_run_id

    from char_pipeline.definitions import defs

    instance = dg.DagsterInstance.get()
    job = defs.resolve_job_def("render_job")
    step_events = {
        dg.DagsterEventType.STEP_START,
        dg.DagsterEventType.STEP_SUCCESS,
        dg.DagsterEventType.STEP_FAILURE,
    }
    outcomes = []
    for reference_id in reference_ids:
        run_id = make_new_run_id()
        stop = threading.Event()

        def watch(run_id=run_id, reference_id=reference_id, stop=stop) -> None:
            cursor = None
            while not stop.is_set():
                connection = instance.get_records_for_run(run_id, cursor=cursor)
                cursor = connection.cursor
                for record in connection.records:
                    event = record.event_log_entry.dagster_event
                    if event is None or event.event_type not in step_events:
                        continue
                    if on_step:
                        on_step(reference_id, event.step_key or "", event.event_type_value)
                stop.wait(0.3)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        started = time.perf_counter()
        result = job.execute_in_process(
            run_config=run_config,
            instance=instance,
            partition_key=reference_id,
            run_id=run_id,
            raise_on_error=False,
            tags=tags or {},
            asset_selection=asset_selection,
        )
        stop.set()
        watcher.join()
        seconds = time.perf_counter() - started
        if result.success:
            values = {name: result.output_for_node(name) for name in outputs}
            videos = result.output_for_node("video")["videos"]
            outcomes.append(
                PartitionOutcome(reference_id, run_id, True, seconds, videos=videos, outputs=values)
            )
        else:
            outcomes.append(
                PartitionOutcome(
                    reference_id,
                    run_id,
                    False,
                    seconds,
                    error=run_failure_cause(instance, run_id),
                )
            )
    return outcomes
