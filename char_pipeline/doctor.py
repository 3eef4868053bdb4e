"""`char-pipeline doctor`: one line per thing that must work, and why it does not.

Versions that matter (python, torch and its device, dagster, protobuf, mediapipe), the lock,
the models that ship in packages and the optional ones, the services the settings point at,
the stores, and whether the Dagster code location loads. Required failures make the exit
code non-zero; optional parts and unused services only inform.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable
from importlib import metadata
from urllib.parse import urlsplit

from char_pipeline import health, lockfile
from char_pipeline.health import Check
from char_pipeline.settings import Settings


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _guarded(name: str, probe: Callable[[], Check], required: bool = True) -> Check:
    try:
        return probe()
    except Exception as exc:
        return Check(name, False, health.exception_text(exc), required)


def python_check() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    return Check("python", sys.version_info[:2] == (3, 11), f"{version} ({sys.executable})")


def torch_check() -> Check:
    import torch

    if torch.cuda.is_available():
        device = f"cuda ×{torch.cuda.device_count()} ({torch.cuda.get_device_name(0)})"
    else:
        device = "cpu (no CUDA device)"
    build = "CUDA build" if torch.version.cuda else "CPU build"
    return Check("torch", True, f"{torch.__version__} {build}, device {device}")


def dagster_check() -> Check:
    import dagster

    return Check("dagster", True, dagster.__version__)


def protobuf_check() -> Check:
    from google.protobuf import __version__ as version

    major = int(version.split(".")[0])
    ok = 5 <= major < 7
    why = "" if ok else " (mediapipe's pose graph needs protobuf 5 or 6; run `make -B setup`)"
    return Check("protobuf", ok, f"{version}{why}")


def mediapipe_check() -> Check:
    import numpy as np

    from char_pipeline.engine import rig

    version = _version("mediapipe")
    if version is None:
        return Check("mediapipe", False, "not installed (the person rig needs it): make setup")
    model = rig._pose_model()
    if model is None:
        return Check("mediapipe", False, f"{version} installed, but its pose model does not load")
    # The graph runs end to end: protobuf 7 broke exactly here (FieldDescriptor.label).
    with rig._POSE_LOCK:
        model.process(np.zeros((64, 64, 3), np.uint8))
    return Check("mediapipe", True, f"{version}, pose model runs")


def lock_check() -> Check:
    torch_version = _version("torch") or ""
    variant = "cpu" if "+cpu" in torch_version else "cuda"
    found = lockfile.drift(lockfile.read_lock(*lockfile.lock_files(variant)))
    detail = f"requirements/{variant}.txt: {found.describe()}"
    return Check(
        "lock",
        found.clean,
        detail if found.clean else f"{detail}; `make -B setup` restores it",
        False,
    )


def model_checks() -> list[Check]:
    from char_pipeline.engine import identity, segmentation, text

    shipped = {
        "model u2netp": segmentation.u2netp_model_path,
        "model efficientnet-lite0": identity.efficientnet_lite0_weights_path,
        "model minilm": text.minilm_path,
    }
    checks = [
        _guarded(name, lambda name=name, find=find: Check(name, True, str(find())))
        for name, find in shipped.items()
    ]
    optional = {
        "model vit (optional)": (identity.vit_model_path, identity.VIT_MODEL_ENV),
        "model clip (optional)": (text.clip_model_path, text.CLIP_MODEL_ENV),
    }
    for name, (find, env) in optional.items():
        if not os.environ.get(env):
            try:  # the model store's entry, when installed
                checks.append(Check(name, True, f"{find()} (model store)", False))
            except Exception:
                checks.append(Check(name, True, f"not configured ({env} or models pull)", False))
            continue
        try:
            checks.append(Check(name, True, str(find()), False))
        except Exception as exc:  # set, but to a folder that is not a model
            checks.append(Check(name, False, f"{env}: {health.exception_text(exc)}", False))
    return checks


def safety_check() -> Check:
    """The predictions door's safety checker (NudeNet, the optional extra 'safety')."""
    version = _version("nudenet")
    if version is None:
        return Check(
            "model nudenet (optional)",
            False,
            "not installed: predictions need enable_safety_checker false (pip install "
            "'char-pipeline[safety]'; AGPL-3.0 licence files, docs/models.md)",
            False,
        )
    return Check("model nudenet (optional)", True, f"{version}, 320n.onnx in the wheel", False)


def generator_checks(settings: Settings) -> list[Check]:
    """Whether the generative modes can run here: their store entries and a GPU (or CPU
    generation allowed). Optional: the embedded default needs neither."""
    from char_pipeline.engine.generators.policy import cuda_available
    from char_pipeline.engine.generators.store import MODE_ENTRIES, ModelStore

    store = ModelStore(settings.models_root)
    aliases = settings.generator_aliases
    if cuda_available():
        device = "CUDA present"
    elif settings.allow_cpu_generation:
        device = "no GPU; CPU generation allowed (CHAR_ALLOW_CPU_GENERATION)"
    else:
        device = "no GPU: requests answer 503 ResourceUnavailable"
    checks = []
    for mode, entries in MODE_ENTRIES.items():
        missing = [name for name in entries if not store.installed(name)]
        if missing:
            detail = f"missing {', '.join(missing)}: char-pipeline models pull {missing[0]} …"
        else:
            detail = f"weights installed in {store.root}"
        if aliases:
            detail += f"; aliases: {aliases}"
        checks.append(
            Check(f"generator {mode} (optional)", not missing, f"{detail}; {device}", False)
        )
    return checks


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def service_checks(settings: Settings) -> list[Check]:
    checks = []
    job_store_url = settings.resolved_job_store_url
    if job_store_url.startswith("postgresql"):
        checks.append(Check("postgresql", True, "used by the job store (see job_store)"))
    else:
        seen = "reachable" if _reachable("127.0.0.1", 5432) else "not reachable"
        checks.append(
            Check(
                "postgresql", True, f"not used (job store on SQLite); 127.0.0.1:5432 {seen}", False
            )
        )
    if settings.rate_limit_storage.startswith(("redis", "rediss")):

        def ping() -> Check:
            import redis

            redis.Redis.from_url(settings.rate_limit_storage, socket_timeout=3).ping()
            return Check("redis", True, f"{_without_password(settings.rate_limit_storage)} answers")

        checks.append(_guarded("redis", ping))
    else:
        seen = "reachable" if _reachable("127.0.0.1", 6379) else "not reachable"
        checks.append(
            Check("redis", True, f"not used (rate limits in memory); 127.0.0.1:6379 {seen}", False)
        )
    if settings.artifacts_root.startswith("s3://"):

        def bucket() -> Check:
            from char_pipeline.storage import open_root

            root = open_root(settings.artifacts_root, settings.s3_endpoint_url)
            bucket_name = urlsplit(settings.artifacts_root).netloc
            root.fs.ls(bucket_name)
            return Check("s3", True, f"{settings.artifacts_root} reachable")

        checks.append(_guarded("s3", bucket))
    else:
        checks.append(Check("s3", True, "not used (artifacts in a local folder)", False))
    return checks


def profile_check(settings: Settings) -> Check:
    """The distributed profile runs processes on several machines: what they share must not be
    per process (rate limits in memory) or per machine (artifacts in a local folder)."""
    if settings.profile != "distributed":
        return Check("profile", True, "embedded (one machine: SQLite, local artifacts)", False)
    problems = []
    if not settings.rate_limit_storage.startswith(("redis", "rediss")):
        problems.append(
            f"rate limits are counted per process ({settings.rate_limit_storage}): "
            "set CHAR_RATE_LIMIT_STORAGE=redis://host:6379/0"
        )
    if "://" not in settings.artifacts_root or settings.artifacts_root.startswith("file://"):
        problems.append(
            f"artifacts are in a folder of one machine ({settings.artifacts_root}): "
            "set CHAR_ARTIFACTS_URL=s3://bucket/prefix (or another shared fsspec URL)"
        )
    if problems:
        return Check("profile", False, "distributed, but " + "; ".join(problems))
    return Check(
        "profile",
        True,
        "distributed (Dagster and jobs on PostgreSQL, limits in Redis, shared artifacts)",
    )


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


def dagster_checks(settings: Settings) -> list[Check]:
    def instance() -> Check:
        from char_pipeline.runner import prepare_instance

        home = prepare_instance(settings)
        where = (
            f"PostgreSQL {_without_password(settings.dagster_postgres_url)} (distributed profile)"
            if settings.profile == "distributed"
            else "SQLite (embedded default)"
        )
        return Check("dagster instance", True, f"{home}, storage in {where}")

    checks = [_guarded("dagster instance", instance)]
    if settings.code_server:
        checks.append(health.code_location(settings.code_server))
        checks.append(health.daemon(settings))
    else:
        checks.append(health.load_code_location_here())
        daemon = health.daemon(settings)
        # Only `serve` and `dev` run a daemon: its absence here is information, not a fault.
        checks.append(Check("daemon", daemon.ok, daemon.detail, False))
    return checks


def run_checks(settings: Settings) -> list[Check]:
    checks = [
        python_check(),
        _guarded("torch", torch_check),
        _guarded("dagster", dagster_check),
        _guarded("protobuf", protobuf_check),
        _guarded("mediapipe", mediapipe_check),
        _guarded("lock", lock_check, required=False),
        *model_checks(),
        *generator_checks(settings),
        safety_check(),
        health.job_store(settings),
        profile_check(settings),
        *service_checks(settings),
        *dagster_checks(settings),
    ]
    return checks


def format_line(check: Check) -> str:
    mark = "ok  " if check.ok else ("FAIL" if check.required else "warn")
    return f"{mark}  {check.name:<26} {check.detail}"
