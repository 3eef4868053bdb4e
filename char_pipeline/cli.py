"""char-pipeline: demo, dev (Dagster UI) and render commands."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from char_pipeline import health
from char_pipeline.settings import get_settings

STEPS = [
    "reference_image",
    "subject_mask",
    "identity_features",
    "control_sequences",
    "frames",
    "video",
    "nerf_model",
    "nerf_video",
]


def demo_run_config(
    resolution: str, steps: int, fps: int, formats: list[str], turntable_frames: int = 48
) -> dict:
    return {
        # Progress is shown by the demo itself; Dagster's own console log stays quiet.
        "loggers": {"console": {"config": {"log_level": "WARNING"}}},
        "ops": {
            "control_sequences": {"config": {"steps": steps}},
            "frames": {"config": {"resolution": resolution}},
            "video": {"config": {"fps": fps, "formats": formats}},
            "nerf_video": {"config": {"frames": turntable_frames, "fps": fps}},
        },
    }


def _human_bytes(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"


def cmd_demo(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from char_pipeline import catalog
    from char_pipeline.demo import demo_references
    from char_pipeline.runner import prepare_instance, run_partitions

    console = Console()
    settings = get_settings()
    dagster_home = prepare_instance(settings)

    import dagster as dg

    from char_pipeline.assets.partitions import reference_partitions
    from char_pipeline.definitions import build_resources

    store = build_resources(settings)["store"]
    references = demo_references()
    if args.references:
        wanted = set(args.references.split(","))
        references = {
            k: v
            for k, v in references.items()
            if k in wanted or k.removeprefix("ref_demo_") in wanted
        }
    for reference_id, path in references.items():
        catalog.save_upload(store, path.read_bytes(), name=path.name, reference_id=reference_id)
    instance = dg.DagsterInstance.get()
    instance.add_dynamic_partitions(reference_partitions.name, list(references))
    console.print(
        f"[bold]char_pipeline demo[/]: {len(references)} references × pose/text/latent → MP4 + GIF at {args.resolution}, {args.steps} frames, {args.fps} fps, and a 3D turntable MP4 each"
    )
    console.print(f"Dagster instance: {dagster_home}   artifacts: {settings.artifacts_root}")

    started = time.perf_counter()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[step]}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        tasks = {ref: progress.add_task(ref, total=len(STEPS), step="queued") for ref in references}

        def on_step(reference_id: str, step: str, status: str) -> None:
            if status == "STEP_START":
                progress.update(tasks[reference_id], step=step)
            elif status == "STEP_SUCCESS":
                progress.advance(tasks[reference_id])
            elif status == "STEP_FAILURE":
                progress.update(tasks[reference_id], step=f"[red]{step} failed")

        outcomes = run_partitions(
            list(references),
            demo_run_config(
                args.resolution,
                args.steps,
                args.fps,
                args.formats.split(","),
                args.turntable_frames,
            ),
            on_step=on_step,
            tags={"char/source": "demo"},
            outputs=("video", "nerf_video", "control_sequences"),
        )
        for outcome in outcomes:
            progress.update(
                tasks[outcome.reference_id],
                step="done" if outcome.success else "[red]failed",
                completed=len(STEPS) if outcome.success else None,
            )

    failures = 0
    for outcome in outcomes:
        status = "[green]ok[/]" if outcome.success else "[red]FAILED[/]"
        console.print(
            f"\n{status} {outcome.reference_id}  run {outcome.run_id[:8]}  {outcome.seconds:.1f}s"
        )
        if not outcome.success:
            failures += 1
            console.print(f"   {outcome.error}")
        controls = ((outcome.outputs or {}).get("control_sequences") or {}).get("controls", {})
        for name, control in controls.items():
            for said in (control.get("notice"), control.get("motion_reason")):
                if said:  # the motion played is not (clearly) the one asked for
                    console.print(f"   [yellow]{name}[/]: {said}", soft_wrap=True)
        for video in outcome.videos:
            console.print(
                f"   {video['control']:<7} {video['format']:<4} {video['frames']} frames  {video['fps']:g} fps  "
                f"{video['width']}x{video['height']}  {video['duration_s']:.2f}s  {_human_bytes(video['size_bytes'])}  {video['uri']}",
                soft_wrap=True,
            )
            if video.get("sheet_uri") and video["format"] == outcome.videos[0]["format"]:
                console.print(f"           contact sheet  {video['sheet_uri']}", soft_wrap=True)
        turntable = (outcome.outputs or {}).get("nerf_video")
        if turntable:
            quality = turntable["quality"]
            console.print(
                f"   3D      mp4  {turntable['frames']} frames  turntable {turntable['width']}x{turntable['height']}  "
                f"{quality['frames_per_second']} frames/s  {_human_bytes(turntable['size_bytes'])}  {turntable['uri']}",
                soft_wrap=True,
            )
    total = sum(len(o.videos) + bool((o.outputs or {}).get("nerf_video")) for o in outcomes)
    console.print(
        f"\n{total} videos from {len(outcomes) - failures}/{len(outcomes)} references in {time.perf_counter() - started:.1f}s. See them in the UI: make dev"
    )
    return 1 if failures else 0


def cmd_render(args: argparse.Namespace) -> int:
    """Run a manifest through render_job in this process, with a progress bar."""
    import dagster as dg
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from upath import UPath

    from char_pipeline import manifests
    from char_pipeline.assets.jobs import VIDEO_ASSETS
    from char_pipeline.assets.partitions import reference_partitions
    from char_pipeline.definitions import build_resources
    from char_pipeline.runner import prepare_instance, run_partitions
    from char_pipeline.webhooks import check_outbound_url, parse_allowlist

    console = Console()
    settings = get_settings()
    prepare_instance(settings)
    store = build_resources(settings)["store"]
    manifest = UPath(args.manifest)
    if not manifest.exists():
        console.print(f"[red]error[/]: {args.manifest} does not exist")
        return 2
    allow = parse_allowlist(settings.outbound_allow)
    check = manifests.check_manifest(manifest, check_url=lambda url: check_outbound_url(url, allow))
    manifests.register_references(
        check, manifest, store, max_bytes=settings.max_image_bytes, allow=allow
    )
    report = manifests.write_report(manifest, check)
    console.print(
        f"{manifest.name}: {check.total_rows} rows, {len(check.rows)} good, {len(check.bad_rows)} bad → report {report}"
    )
    for problem in check.problems:
        console.print(
            f"   row {problem.row} [bold]{problem.column or '-'}[/]: {problem.reason}",
            soft_wrap=True,
        )
    instance = dg.DagsterInstance.get()
    instance.add_dynamic_partitions(
        reference_partitions.name, sorted({r["reference_image_id"] for r in check.rows})
    )
    outcomes = {
        p.row: {"status": "invalid", "error": f"{p.column}: {p.reason}"}
        for p in check.problems
        if p.row
    }
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("rendering", total=len(check.rows))
        for row in check.rows:
            (outcome,) = run_partitions(
                [row["reference_image_id"]],
                manifests.row_run_config(row, row["reference_image_id"]),
                tags={
                    "char/manifest": manifest.name,
                    "char/manifest_version": check.version,
                    "char/manifest_row": str(row["row"]),
                },
                outputs=("video", "frames"),
                asset_selection=VIDEO_ASSETS,
            )
            base = {
                "reference_image_id": row["reference_image_id"],
                "run_id": outcome.run_id,
                "seconds": round(outcome.seconds, 2),
            }
            if outcome.success:
                result = manifests.row_outcome(
                    outcome.outputs["video"], outcome.outputs["frames"], row
                )
                outcomes[row["row"]] = {
                    **base,
                    **manifests.copy_to_prefix(store, result, row, manifest),
                }
            else:
                outcomes[row["row"]] = {**base, "status": "failed", "error": outcome.error}
            progress.advance(task)
    parquet, csv = manifests.write_results(manifest, check.total_rows, outcomes)
    done = sum(o["status"] == "completed" for o in outcomes.values())
    console.print(
        f"{done}/{check.total_rows} rows rendered. Results: {parquet} and {csv}", soft_wrap=True
    )
    return 0 if done == check.total_rows else 1


def cmd_dev(args: argparse.Namespace) -> int:
    """`dagster dev` (code reloads from the UI) under the same supervisor as serve."""
    from char_pipeline import supervision
    from char_pipeline.runner import prepare_instance
    from char_pipeline.settings import CHECKOUT_ROOT

    settings = get_settings()
    dagster_home = prepare_instance(settings)
    # The dagster script installed beside this interpreter: the venv need not be on PATH.
    dagster = Path(sys.executable).with_name("dagster")
    command = [str(dagster), "dev", "-w", str(CHECKOUT_ROOT / "workspace.yaml")]
    command += ["-h", args.host, "-p", str(args.port)]
    directory = dagster_home / "dev"
    state_file = supervision.state_path(directory)
    state_file.unlink(missing_ok=True)
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), **supervision.credentials()}
    # dagster dev exits when its webserver or daemon dies; supervisord then starts it again.
    config = supervision.write_config(
        directory, [supervision.Program("dagster-dev", command, start_seconds=10)], CHECKOUT_ROOT
    )
    with _supervised(config, env) as (supervisord, stopping):
        print(
            f"Dagster UI http://{args.host}:{args.port}   — restarted if it dies; Ctrl-C stops it."
        )
        return _watch(supervisord, state_file, stopping)
    return 1


def cmd_keys(args: argparse.Namespace) -> int:
    import json

    from char_pipeline.jobstore import SCOPES, open_job_store

    store = open_job_store(get_settings().resolved_job_store_url)
    if args.keys_command == "create":
        scopes = (
            [s.strip() for s in args.scopes.split(",") if s.strip()]
            if args.scopes
            else list(SCOPES)
        )
        try:
            key, plaintext = store.create_key(args.name, scopes, account=args.account)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if args.json:
            print(
                json.dumps(
                    {**key.to_json(), "api_key": plaintext, "webhook_secret": key.webhook_secret}
                )
            )
        else:
            print(
                f"Created {key.id} ({key.name}) in account {key.account_id} with scopes {', '.join(key.scopes)}."
            )
            print(f"API key (shown once, store it now): {plaintext}")
            print(f"Webhook signing secret (Standard Webhooks): {key.webhook_secret}")
        return 0
    if args.keys_command == "rotate-webhook-secret":
        secret = store.rotate_webhook_secret(args.key_id)
        if secret is None:
            print(f"error: no key {args.key_id}", file=sys.stderr)
            return 1
        if args.json:
            print(json.dumps({"id": args.key_id, "webhook_secret": secret}))
        else:
            print(f"New webhook signing secret for {args.key_id}: {secret}")
            print(
                "Callbacks are signed with both the new and the previous secret until the next rotation."
            )
        return 0
    if args.keys_command == "list":
        keys = store.list_keys()
        if args.json:
            print(json.dumps([k.to_json() for k in keys]))
        for key in [] if args.json else keys:
            state = f"revoked {key.revoked_at}" if key.revoked_at else "active"
            print(
                f"{key.id}  {key.prefix}…  {key.name:<20} {key.account_id:<20} {','.join(key.scopes):<45} {key.created_at}  {state}"
            )
        return 0
    if store.revoke_key(args.key_id):
        print(f"Revoked {args.key_id}.")
        return 0
    print(f"error: no active key {args.key_id}", file=sys.stderr)
    return 1


def _free_port(host: str) -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


SERVE_WORKSPACE = """\
# Written by char-pipeline serve: the webserver and the daemon share one code server.
load_from:
  - grpc_server:
      host: {host}
      port: {port}
      location_name: char_pipeline
"""


def _wait_for_code_server(
    address: str, alive: Callable[[], bool], timeout: float, stopping: threading.Event
) -> health.Check:
    """Until the code server answers (its import finished, loaded or failed), or serve stops."""
    deadline = time.monotonic() + timeout
    check = health.code_location(address)
    while (
        not check.ok
        and "unreachable" in check.detail
        and time.monotonic() < deadline
        and not stopping.is_set()
    ):
        if not alive():
            return health.Check("code_location", False, "the supervisor stopped at start-up")
        time.sleep(0.5)
        check = health.code_location(address)
    return check


@dataclass
class _ServePlan:
    """What serve starts, in order, and where: one code server first, then the rest."""

    host: str
    api_port: int
    dagster_port: int
    code_port: int
    workers: int
    workspace: Path

    @property
    def code_server(self) -> str:
        return f"{self.host}:{self.code_port}"

    def commands(self) -> dict[str, list[str]]:
        bin_dir = Path(sys.executable).parent
        return {
            # One code server loads the definitions once; the webserver and the daemon both
            # ask it, and so do /readyz and `doctor`. --lazy-load-user-code: a load error is
            # served, not fatal. (`dagster api grpc`, not `code-server start`: one process
            # instead of a proxy and a child, ~3 s less per start; a code change needs a
            # restart of serve — `make dev` reloads.)
            "code-server": [
                str(bin_dir / "dagster"),
                "api",
                "grpc",
                "-m",
                "char_pipeline.definitions",
                "-h",
                self.host,
                "-p",
                str(self.code_port),
                "--location-name",
                "char_pipeline",
                "--lazy-load-user-code",
            ],
            "api": [
                sys.executable,
                "-m",
                "uvicorn",
                "char_pipeline.api.main:app",
                "--host",
                self.host,
                "--port",
                str(self.api_port),
                "--workers",
                str(self.workers),
                "--log-level",
                "warning",
            ],
            "dagster-webserver": [
                str(bin_dir / "dagster-webserver"),
                "-w",
                str(self.workspace),
                "-h",
                self.host,
                "-p",
                str(self.dagster_port),
            ],
            "dagster-daemon": [str(bin_dir / "dagster-daemon"), "run", "-w", str(self.workspace)],
        }


def cmd_serve(args: argparse.Namespace) -> int:
    """API, Dagster webserver, daemon and one code server on loopback, under supervisord;
    a process that dies is restarted, Ctrl-C stops all."""

    from char_pipeline import supervision
    from char_pipeline.runner import prepare_instance
    from char_pipeline.settings import CHECKOUT_ROOT

    settings = get_settings()
    # Storage first, by this process alone: the others only open it.
    dagster_home = prepare_instance(settings)
    plan = _ServePlan(
        host=args.host,
        api_port=args.api_port or settings.api_port,
        dagster_port=args.dagster_port,
        code_port=args.code_server_port or _free_port(args.host),
        workers=args.workers,
        workspace=dagster_home / "serve.workspace.yaml",
    )
    plan.workspace.write_text(SERVE_WORKSPACE.format(host=plan.host, port=plan.code_port))
    supervision_dir = dagster_home / "serve"
    state_file = supervision.state_path(supervision_dir)
    state_file.unlink(missing_ok=True)  # the last serve's processes are not these
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "CHAR_API_PORT": str(plan.api_port),
        "CHAR_CODE_SERVER": plan.code_server,
        "CHAR_DAGSTER_URL": f"http://{plan.host}:{plan.dagster_port}",
        "CHAR_SUPERVISION_DIR": str(supervision_dir),
        **supervision.credentials(),
        # Run-status sensors handle 5 runs per tick by default; a burst of finishing jobs
        # needs more (issue 5: 200 jobs in a minute, all called back within two).
        "DAGSTER_RUN_STATUS_SENSOR_PROCESS_LIMIT": os.environ.get(
            "DAGSTER_RUN_STATUS_SENSOR_PROCESS_LIMIT", "200"
        ),
        "DAGSTER_RUN_STATUS_SENSOR_FETCH_LIMIT": os.environ.get(
            "DAGSTER_RUN_STATUS_SENSOR_FETCH_LIMIT", "400"
        ),
    }
    commands = plan.commands()
    socket = supervision.socket_path(supervision_dir)
    config = supervision.write_config(
        supervision_dir,
        [
            # The code server first; the API needs neither it nor Dagster and starts at once;
            # the webserver and the daemon are started below, once the code server answers.
            # start_seconds: how long each takes to start here, so an import crash is "quick".
            supervision.Program(
                "code-server", commands["code-server"], priority=10, start_seconds=6
            ),
            supervision.Program("api", commands["api"], priority=20, start_seconds=4),
            *(
                supervision.Program(
                    name, commands[name], priority=30, autostart=False, start_seconds=seconds
                )
                for name, seconds in (("dagster-webserver", 6), ("dagster-daemon", 10))
            ),
        ],
        CHECKOUT_ROOT,
        socket,
    )

    with _supervised(config, env) as (supervisord, stopping):
        loaded = _wait_for_code_server(
            plan.code_server, lambda: supervisord.poll() is None, 180, stopping
        )
        if not loaded.ok and not stopping.is_set():
            print(f"NOT READY: {loaded.detail}", file=sys.stderr, flush=True)
        if supervisord.poll() is None and not stopping.is_set():
            control = supervision.rpc(socket, env).supervisor
            for name in ("dagster-webserver", "dagster-daemon"):
                control.startProcess(name, False)
        print(
            f"API        http://{plan.host}:{plan.api_port}  (docs at /docs, readiness at /readyz)"
        )
        print(f"Dagster UI http://{plan.host}:{plan.dagster_port}")
        print(
            f"Data root  {settings.home}   — a process that dies is restarted; Ctrl-C stops "
            f"everything. Logs: {supervision_dir / 'logs'}",
            flush=True,
        )
        return _watch(
            supervisord, state_file, stopping, f"http://{plan.host}:{plan.api_port}/readyz"
        )
    return 1


@contextlib.contextmanager
def _supervised(config: Path, env: dict[str, str]):
    """supervisord in the foreground with ``config``; stopped (TERM, then its programs) on exit.

    Yields the supervisord process and an Event set by Ctrl-C / SIGTERM; the handlers are in
    place before it starts, so Ctrl-C during start-up still stops what was started.
    """
    import signal
    import subprocess

    from char_pipeline.settings import CHECKOUT_ROOT

    stopping = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    supervisord = subprocess.Popen(
        [str(Path(sys.executable).with_name("supervisord")), "-c", str(config)],
        cwd=CHECKOUT_ROOT,
        env=env,
    )
    try:
        yield supervisord, stopping
    except Exception as exc:
        print(f"serve: {health.exception_text(exc)}", file=sys.stderr)
    finally:
        if supervisord.poll() is None:
            supervisord.terminate()  # supervisord stops its programs, TERM then KILL
        try:
            supervisord.wait(timeout=60)
        except subprocess.TimeoutExpired:
            supervisord.kill()


def _watch(
    supervisord, state_file: Path, stopping: threading.Event, readyz: str | None = None
) -> int:
    """Report readiness once (the same checks as /readyz), then wait until stopped; exit 1
    with the cause when the supervisor gave up on a process (repeated fast crashes)."""
    import httpx

    from char_pipeline import supervision

    reported = readyz is None
    report_deadline = time.monotonic() + 120
    while not stopping.is_set():
        if supervisord.poll() is not None:
            fatal = supervision.read_state(state_file).get("fatal")
            cause = fatal["message"] if fatal else f"supervisord exited ({supervisord.returncode})"
            print(f"serve stopped: {cause}", file=sys.stderr, flush=True)
            return 1
        if not reported:
            try:
                answer = httpx.get(readyz, timeout=15)
                body = answer.json()
            except (httpx.HTTPError, ValueError):
                answer, body = None, {}
            if answer is not None and answer.status_code == 200:
                print("Ready: the code location is loaded and the daemon is running.", flush=True)
                reported = True
            elif time.monotonic() > report_deadline:
                print(f"NOT READY: {body.get('error', 'the API does not answer')}", flush=True)
                reported = True
        stopping.wait(0.5)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """A Celery worker of the distributed profile: renders the batch steps of its queues."""
    import socket

    from char_pipeline.resources.compute import COMPUTE_TYPES

    queues = [queue.strip() for queue in args.queue.split(",") if queue.strip()]
    unknown = sorted(set(queues) - set(COMPUTE_TYPES))
    if not queues or unknown:
        print(
            f"--queue takes compute types ({', '.join(COMPUTE_TYPES)}), not {', '.join(unknown) or 'nothing'}",
            file=sys.stderr,
        )
        return 2
    from char_pipeline.workers import DEFAULT_QUEUE
    from char_pipeline.workers.app import app

    name = args.name or f"{'-'.join(queues)}-{os.getpid()}@{socket.gethostname()}"
    # solo pool: one step at a time in this process (a render uses the cores itself), and a
    # kill -9 takes the step with it, so the broker hands it to another worker.
    argv = ["worker", "--pool", "solo", "--queues", ",".join([*queues, DEFAULT_QUEUE])]
    argv += [
        "--hostname",
        name,
        "--loglevel",
        args.loglevel,
        "--without-gossip",
        "--without-mingle",
    ]
    app.worker_main(argv)
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """One line per check; exit 1 when something required is broken."""
    import json

    from char_pipeline import doctor

    checks = doctor.run_checks(get_settings())
    if args.json:
        print(json.dumps([check.to_json() for check in checks], indent=2))
    else:
        for check in checks:
            print(doctor.format_line(check), flush=True)
    broken = [check.name for check in checks if check.required and not check.ok]
    if broken and not args.json:
        print(f"\nBroken: {', '.join(broken)}.", file=sys.stderr)
    return 1 if broken else 0


def cmd_models(args: argparse.Namespace) -> int:
    """The model store (docs/models.md): list, pull, verify, remove."""
    import json

    from char_pipeline.engine.errors import ModelNotInstalledError
    from char_pipeline.engine.generators.store import ModelStore

    store = ModelStore(get_settings().models_root)
    try:
        if args.models_command == "list":
            rows = store.listing()
            if args.json:
                print(json.dumps(rows, indent=2))
                return 0
            print(f"model store: {store.root}")
            for row in rows:
                state = "installed" if row["installed"] else "not installed"
                size = (
                    f"{row['size_bytes'] / 1e6:.1f} MB"
                    if row["installed"]
                    else f"~{row['approx_size_gb']} GB"
                )
                print(
                    f"  {row['name']:<28} {row['used_by']:<12} {state:<14} {size:<10} "
                    f"{row['licence']:<22} {row['path']}"
                )
            return 0
        if args.models_command == "pull":
            folder = store.pull(args.name, revision=args.revision)
            print(f"{args.name}: pulled into {folder}")
            return 0
        if args.models_command == "verify":
            if args.record:
                manifest = store.record(args.name)
                print(f"{args.name}: recorded {len(manifest['files'])} files")
                return 0
            report = store.verify(args.name)
            print(json.dumps(report, indent=2))
            return 0 if report["ok"] else 1
        if args.models_command == "remove":
            removed = store.remove(args.name)
            print(f"{args.name}: {'removed' if removed else 'was not installed'}")
            return 0
    except ModelNotInstalledError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="char-pipeline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="Render the bundled demo batch through Dagster.")
    demo.add_argument("--resolution", default="512x512")
    demo.add_argument("--steps", type=int, default=48, help="frames per video")
    demo.add_argument("--fps", type=int, default=24)
    demo.add_argument("--formats", default="mp4,gif")
    demo.add_argument(
        "--turntable-frames", type=int, default=48, help="frames of each 3D turntable (320x240)"
    )
    demo.add_argument(
        "--references", default="", help="comma-separated subset, e.g. astronaut,chelsea"
    )
    demo.set_defaults(handler=cmd_demo)
    dev = commands.add_parser("dev", help="Start the Dagster UI (dagster dev) on loopback.")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=int(os.environ.get("DAGSTER_PORT", "3000")))
    dev.set_defaults(handler=cmd_dev)
    render = commands.add_parser(
        "render", help="Render a CSV/Parquet manifest through Dagster (docs/manifests.md)."
    )
    render.add_argument("manifest", help="path or fsspec URL of the manifest")
    render.set_defaults(handler=cmd_render)
    serve = commands.add_parser(
        "serve", help="Start the API, the Dagster webserver and the daemon on loopback."
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--api-port", type=int, default=None, help="default: CHAR_API_PORT or 8000")
    serve.add_argument(
        "--dagster-port", type=int, default=int(os.environ.get("DAGSTER_PORT", "3000"))
    )
    serve.add_argument("--workers", type=int, default=1, help="API worker processes")
    serve.add_argument(
        "--code-server-port", type=int, default=0, help="default: a free port on --host"
    )
    serve.set_defaults(handler=cmd_serve)
    worker = commands.add_parser(
        "worker",
        help="Run a Celery worker for batch steps (distributed profile, docs/scaling.md).",
    )
    worker.add_argument(
        "--queue", default="cpu", help="compute types to take work for, e.g. t4 or cpu,t4"
    )
    worker.add_argument("--name", default=None, help="worker name (default: queues-pid@host)")
    worker.add_argument("--loglevel", default="INFO")
    worker.set_defaults(handler=cmd_worker)
    doctor = commands.add_parser(
        "doctor", help="Check versions, models, services and the code location; exit 1 if broken."
    )
    doctor.add_argument("--json", action="store_true")
    doctor.set_defaults(handler=cmd_doctor)
    keys = commands.add_parser("keys", help="Create, list and revoke API keys.")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser("create")
    create.add_argument("--name", required=True)
    create.add_argument(
        "--scopes",
        default="",
        help="comma-separated; default: all of reference:read,control:write,generate:write",
    )
    create.add_argument(
        "--account",
        help="Group the key in this account: its keys share references and jobs (default: an account of its own).",
    )
    create.add_argument("--json", action="store_true")
    listing = key_commands.add_parser("list")
    listing.add_argument("--json", action="store_true")
    revoke = key_commands.add_parser("revoke")
    revoke.add_argument("key_id")
    rotate = key_commands.add_parser(
        "rotate-webhook-secret",
        help="new signing secret; the old one stays valid until the next rotation",
    )
    rotate.add_argument("key_id")
    rotate.add_argument("--json", action="store_true")
    keys.set_defaults(handler=cmd_keys)
    models = commands.add_parser(
        "models", help="The model store of the generative modes: list, pull, verify, remove."
    )
    model_commands = models.add_subparsers(dest="models_command", required=True)
    model_list = model_commands.add_parser("list", help="Every registry entry, installed or not.")
    model_list.add_argument("--json", action="store_true")
    pull = model_commands.add_parser("pull", help="Download an entry from the Hugging Face Hub.")
    pull.add_argument("name")
    pull.add_argument("--revision", help="A commit or tag to pin (default: the registry's).")
    verify = model_commands.add_parser("verify", help="Check an entry's files and hashes.")
    verify.add_argument("name")
    verify.add_argument(
        "--record", action="store_true", help="Write the manifest of a folder copied in by hand."
    )
    remove = model_commands.add_parser("remove", help="Delete an entry's folder.")
    remove.add_argument("name")
    models.set_defaults(handler=cmd_models)
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
