"""The locked environment: what requirements/*.txt pin, and how the installed one differs.

Standard library only: ``make setup`` runs it by path before char_pipeline is installed, to
uninstall what the lock does not hold (pip installs with --no-deps, so it never removes
anything by itself). ``char-pipeline doctor`` and tests/test_lock.py use the same reading.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

REQUIREMENTS = Path(__file__).resolve().parents[1] / "requirements"
PROJECT = "char-pipeline"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)")


def canonical(name: str) -> str:
    """PEP 503 normalised name: 'Foo_Bar.baz' → 'foo-bar-baz'."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(*paths: Path) -> dict[str, str]:
    """Pinned versions by canonical name from hashed requirement files."""
    pins: dict[str, str] = {}
    for path in paths:
        for line in path.read_text().splitlines():
            match = _PIN.match(line)
            if match:
                pins[canonical(match.group(1))] = match.group(3)
    return pins


def lock_files(torch: str = "cpu") -> list[Path]:
    """The files ``make setup TORCH=…`` installs: the main lock and MediaPipe's."""
    return [REQUIREMENTS / f"{torch}.txt", REQUIREMENTS / "mediapipe.txt"]


def installed() -> dict[str, str]:
    return {
        canonical(dist.metadata["Name"]): dist.version
        for dist in metadata.distributions()
        if dist.metadata["Name"]
    }


@dataclass
class Drift:
    """How the installed environment differs from the lock (exact version strings)."""

    missing: dict[str, str]
    different: dict[str, tuple[str, str]]  # name → (installed, locked)
    extra: dict[str, str]

    @property
    def clean(self) -> bool:
        return not (self.missing or self.different or self.extra)

    def describe(self) -> str:
        parts = [f"{n} missing (lock {v})" for n, v in sorted(self.missing.items())]
        parts += [f"{n} {a} (lock {b})" for n, (a, b) in sorted(self.different.items())]
        parts += [f"{n} {v} not in the lock" for n, v in sorted(self.extra.items())]
        return "; ".join(parts) or "matches the lock"


def drift(pins: dict[str, str], present: dict[str, str] | None = None) -> Drift:
    present = installed() if present is None else present
    # The local version matters: torch 2.13.0+cpu and 2.13.0 (CUDA) are different builds.
    return Drift(
        missing={n: v for n, v in pins.items() if n not in present},
        different={n: (present[n], v) for n, v in pins.items() if n in present and present[n] != v},
        extra={n: v for n, v in present.items() if n not in pins and n != PROJECT},
    )


def entry(path: Path, name: str) -> str:
    """One package's whole entry (pin and hashes) from a hashed requirements file."""
    lines, keep = [], False
    for line in path.read_text().splitlines():
        match = _PIN.match(line)
        if match:
            keep = canonical(match.group(1)) == canonical(name)
        elif line and not line.startswith(" "):
            keep = False
        if keep and not line.lstrip().startswith("#"):
            lines.append(line)
    if not lines:
        raise SystemExit(f"{name} is not pinned in {path}")
    return "\n".join(lines).rstrip(" \\") + "\n"


def main(argv: list[str]) -> int:
    """``lockfile.py LOCK…``: what to uninstall before installing the lock;
    ``lockfile.py --entry NAME LOCK``: that package's entry, for installing it alone."""
    if argv[:1] == ["--entry"]:
        print(entry(Path(argv[2]), argv[1]), end="")
        return 0
    found = drift(read_lock(*map(Path, argv)))
    # pip replaces itself while installing the lock; it cannot uninstall itself first.
    print(" ".join(sorted({*found.different, *found.extra} - {"pip"})))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
