"""The lock is the install: pyproject.toml and requirements/*.txt agree, and .venv is the lock.

Offline on purpose (CI must not depend on what the index serves today): each pyproject or
lock.in requirement must be met by its pin, the lock must hold nothing that no requirement
reaches, and the two torch variants must differ only in torch's own build.
"""

from __future__ import annotations

import tomllib
from importlib import metadata

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.version import Version

from char_pipeline import lockfile

ROOT = lockfile.REQUIREMENTS.parent
# Linux x86_64, Python 3.11 (uv reads --python-version 3.11 as 3.11.0): what the lock targets.
ENVIRONMENT = {
    **default_environment(),
    "sys_platform": "linux",
    "platform_system": "Linux",
    "python_version": "3.11",
    "python_full_version": "3.11.0",
}
# What only torch's CUDA build brings.
CUDA_ONLY_PREFIXES = ("nvidia-", "cuda-", "triton")


LOCKED_EXTRAS = ("dev", "safety")  # the extras `make lock` compiles in (Makefile)


def _declared(extras: tuple[str, ...] = LOCKED_EXTRAS) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in extras:
        lines += project["optional-dependencies"][extra]
    for name in ("lock.in",):
        for line in (lockfile.REQUIREMENTS / name).read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                lines.append(line)
    return [Requirement(line) for line in lines]


def _applies(requirement: Requirement, extra: str = "") -> bool:
    return requirement.marker is None or requirement.marker.evaluate(
        {**ENVIRONMENT, "extra": extra}
    )


@pytest.mark.parametrize("variant", ["cpu", "cuda"])
def test_every_declared_requirement_is_met_by_its_pin(variant):
    pins = lockfile.read_lock(lockfile.REQUIREMENTS / f"{variant}.txt")
    unmet = [
        f"{req} (lock: {pins.get(lockfile.canonical(req.name), 'absent')})"
        for req in _declared()
        if _applies(req)
        and not req.specifier.contains(
            Version(pins.get(lockfile.canonical(req.name), "0")), prereleases=True
        )
    ]
    assert not unmet, f"pyproject.toml changed since the lock; run `make lock`: {unmet}"


def test_variants_differ_only_in_torch():
    cpu = lockfile.read_lock(lockfile.REQUIREMENTS / "cpu.txt")
    cuda = lockfile.read_lock(lockfile.REQUIREMENTS / "cuda.txt")
    assert cpu["torch"] == "2.13.0+cpu" and cuda["torch"] == "2.13.0"
    cuda_only = {n for n in cuda if n.startswith(CUDA_ONLY_PREFIXES)}
    assert {n for n in cuda if n not in cpu} == cuda_only and cuda_only
    assert not {n for n in cpu if n not in cuda}
    assert {n: v for n, v in cpu.items() if cuda[n] != v} == {"torch": "2.13.0+cpu"}


def test_lock_holds_exactly_what_the_requirements_reach():
    """Walk the installed metadata from the declared roots: nothing missing, nothing stale."""
    pins = lockfile.read_lock(lockfile.REQUIREMENTS / "cpu.txt")
    reached: set[str] = set()
    pending = [(req, "") for req in _declared() if _applies(req)]
    while pending:
        requirement, _ = pending.pop()
        name = lockfile.canonical(requirement.name)
        wanted = set(requirement.extras)
        key = (name, frozenset(wanted))
        if key in reached:
            continue
        reached.add(key)
        for line in metadata.requires(name) or []:
            child = Requirement(line)
            # A dependency applies without an extra, or under one of the extras asked for.
            if any(_applies(child, e) for e in ("", *wanted)):
                pending.append((child, ""))
    names = {name for name, _ in reached}
    assert sorted(names - set(pins)) == [], "requirements not in the lock: run `make lock`"
    stale = set(pins) - names
    assert sorted(stale) == [], "pinned but required by nothing: run `make lock`"


def test_mediapipe_is_locked_alone_beside_what_its_pose_graph_imports():
    pins = lockfile.read_lock(lockfile.REQUIREMENTS / "cpu.txt")
    (entry,) = lockfile.read_lock(lockfile.REQUIREMENTS / "mediapipe.txt").items()
    assert entry == ("mediapipe", "0.10.21")
    assert "--no-deps" in (lockfile.REQUIREMENTS / "mediapipe.txt").read_text()
    for name in ("absl-py", "attrs", "flatbuffers", "matplotlib", "numpy", "protobuf"):
        assert name in pins, name
    # Its solution_base reads FieldDescriptor.label: gone in protobuf 7.
    assert Version(pins["protobuf"]) < Version("7")


def test_installed_environment_is_the_lock():
    variant = "cpu" if "+cpu" in metadata.version("torch") else "cuda"
    found = lockfile.drift(lockfile.read_lock(*lockfile.lock_files(variant)))
    assert found.clean, (
        f".venv differs from the lock ({found.describe()}); `make -B setup` restores it"
    )


def test_drift_sees_local_versions_and_strays():
    found = lockfile.drift(
        {"torch": "2.13.0+cpu", "numpy": "2.4.6"},
        {"torch": "2.13.0", "numpy": "2.4.6", "stray": "1.0", "char-pipeline": "0.1.0"},
    )
    assert found.different == {"torch": ("2.13.0", "2.13.0+cpu")}
    assert found.extra == {"stray": "1.0"} and not found.missing and not found.clean


def test_entry_is_the_whole_hashed_pin(tmp_path):
    entry = lockfile.entry(lockfile.REQUIREMENTS / "cpu.txt", "torch")
    assert entry.startswith("torch==2.13.0+cpu \\\n    --hash=sha256:")
    assert entry.count("--hash=") >= 1 and "#" not in entry and not entry.rstrip().endswith("\\")
