"""Can the service do its work? The checks behind /readyz, `serve`'s start-up and `doctor`.

A process that answers HTTP is not a working service: jobs need the Dagster code location
loaded (else no sensor turns them into runs) and a daemon that ticks. Each check returns a
``Check`` with the error text a user needs, never only "unhealthy".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from char_pipeline.failures import innermost_error
from char_pipeline.settings import Settings


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True

    def to_json(self) -> dict:
        return asdict(self)


def exception_text(exc: BaseException) -> str:
    """``Type: message`` of an exception's innermost cause."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".strip()


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host or "127.0.0.1", int(port)


def code_location(address: str, timeout: float = 10) -> Check:
    """Ask the code server whether the Definitions loaded; the load error if they did not.

    ``dagster api grpc --lazy-load-user-code`` keeps serving after a failed import and
    answers ListRepositories with the error. dagster._grpc is internal API (the version is
    locked); its ``_query`` is the one call that takes a timeout (the public methods wait
    Dagster's 60 s default, too long for a readiness probe).
    """
    from dagster._grpc.__generated__ import dagster_api_pb2
    from dagster._grpc.client import DagsterGrpcClient
    from dagster._serdes import deserialize_value
    from dagster._utils.error import SerializableErrorInfo

    try:
        host, port = split_address(address)
        client = DagsterGrpcClient(port=port, host=host)
        reply = client._query(
            "ListRepositories", dagster_api_pb2.ListRepositoriesRequest, timeout=timeout
        )
        answer = deserialize_value(reply.serialized_list_repositories_response_or_error)
    except Exception as exc:
        # The outer error says it best here ("Could not reach user code server. gRPC Error
        # code: UNAVAILABLE"); its cause is gRPC's multi-line dump.
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return Check("code_location", False, f"code server {address} unreachable: {first}")
    if isinstance(answer, SerializableErrorInfo):
        return Check(
            "code_location",
            False,
            f"the Dagster code location failed to load: {innermost_error(answer)}",
        )
    return Check("code_location", True, f"loaded by the code server at {address}")


def load_code_location_here(timeout: float = 180) -> Check:
    """Import the Definitions in a fresh interpreter, as a code server would (for `doctor`)."""
    import subprocess
    import sys

    script = (
        "import char_pipeline.definitions as d; "
        "print(len(list(d.defs.resolve_asset_graph().get_all_asset_keys())))"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return Check("code_location", False, f"importing the definitions took over {timeout} s")
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        return Check(
            "code_location",
            False,
            f"the Dagster code location failed to load: {lines[-1] if lines else done.returncode}",
        )
    return Check("code_location", True, f"loads ({done.stdout.strip()} assets)")


def daemon(settings: Settings, open_instance: Callable | None = None) -> Check:
    """Every daemon the instance needs has sent a heartbeat recently.

    ``open_instance`` returns a long-lived instance (the API keeps one); without it one is
    opened for this look and closed again.
    """
    import dagster as dg

    instance = None
    try:
        if open_instance is not None:
            instance = open_instance()
        else:
            instance = dg.DagsterInstance.from_config(str(settings.dagster_home))
        heartbeats = instance.get_daemon_heartbeats()
        required = sorted(instance.get_required_daemon_types())
    except Exception as exc:
        return Check("daemon", False, f"the Dagster instance cannot be read: {exception_text(exc)}")
    finally:
        if open_instance is None and instance is not None:
            instance.dispose()
    limit = settings.daemon_max_silence_seconds
    now = time.time()
    missing = [name for name in required if name not in heartbeats]
    if len(missing) == len(required):
        return Check("daemon", False, "no daemon heartbeat on this instance: is one running?")
    if missing:
        return Check("daemon", False, f"no heartbeat from {', '.join(missing)}: is it running?")
    ages = {name: now - heartbeats[name].timestamp for name in required}
    stale = {name: age for name, age in ages.items() if age > limit}
    if stale:
        listed = ", ".join(f"{n} {a:.0f} s ago" for n, a in sorted(stale.items()))
        return Check("daemon", False, f"last heartbeat over {limit} s ago: {listed}")
    return Check("daemon", True, f"heartbeat {max(ages.values()):.0f} s ago")


def job_store(settings: Settings) -> Check:
    import sqlalchemy as sa

    from char_pipeline.jobstore import open_job_store

    url = settings.resolved_job_store_url
    shown = sa.engine.make_url(url).render_as_string(hide_password=True)
    try:
        with open_job_store(url).engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except Exception as exc:
        return Check("job_store", False, f"{shown}: {exception_text(exc)}")
    return Check("job_store", True, shown)


def processes(supervision_dir: Path) -> list[Check]:
    """serve's processes as its supervisor last saw them: one that is restarting is a gap."""
    from char_pipeline import supervision

    state = supervision.read_state(supervision.state_path(supervision_dir))
    if not state:
        return [Check("processes", False, "serve's supervisor has not reported yet")]
    if state.get("fatal"):
        return [Check("processes", False, state["fatal"]["message"])]
    checks = []
    for name, process in sorted(state.get("processes", {}).items()):
        required = name in supervision.REQUIRED
        if process.get("state") == "RUNNING":
            restarts = process.get("restarts", 0)
            detail = f"running (pid {process.get('pid')}" + (
                f", restarted {restarts} times)" if restarts else ")"
            )
            checks.append(Check(f"process:{name}", True, detail, required))
        else:
            checks.append(
                Check(f"process:{name}", False, supervision.describe(name, process), required)
            )
    return checks


def readiness(settings: Settings, open_instance: Callable | None = None) -> list[Check]:
    """What the API answers on /readyz: the job store always; the code location and the daemon
    when this API belongs to a Dagster deployment (CHAR_CODE_SERVER set, as serve does); each
    process of serve while a supervisor runs them (CHAR_SUPERVISION_DIR)."""
    checks = [job_store(settings)]
    if settings.supervision_dir:
        checks += processes(settings.supervision_dir)
    if settings.code_server:
        checks.append(code_location(settings.code_server))
        checks.append(daemon(settings, open_instance))
    return checks


def launch_blockers(checks: list[Check]) -> list[Check]:
    """The failing checks that keep new runs from being launched at all."""
    return [c for c in checks if not c.ok and c.name in ("code_location", "daemon")]
