"""The API process at start: import time and resident memory of `char_pipeline.api.app`, and
which of the Dagster graph's modules it carries (issue 14: it should carry none).

Run: .venv/bin/python bench/api_startup.py [--runs 5]
(BENCH_SOURCE=/path/to/other/checkout measures that code with this venv.)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

PROBE = """
import json, os, resource, sys, time
if os.environ.get("BENCH_SOURCE"):  # another checkout (e.g. a worktree of an older commit)
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__]
    sys.path.insert(0, os.environ["BENCH_SOURCE"])
started = time.perf_counter()
from char_pipeline.api.app import create_app
app = create_app()
elapsed = time.perf_counter() - started
graph = sorted(m for m in sys.modules if m.split(".")[:2] in (
    ["char_pipeline", "assets"], ["char_pipeline", "sensors"], ["char_pipeline", "schedules"],
    ["char_pipeline", "definitions"]))
print(json.dumps({"seconds": elapsed, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "modules": len(sys.modules), "graph_modules": graph}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    runs = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", PROBE], check=True, capture_output=True, text=True
            ).stdout
        )
        for _ in range(args.runs)
    ]
    print(
        f"import + create_app: median {statistics.median(r['seconds'] for r in runs):.2f} s, "
        f"max RSS median {statistics.median(r['rss_mb'] for r in runs):.0f} MB, "
        f"{runs[0]['modules']} modules, Dagster graph modules loaded: {len(runs[0]['graph_modules'])} "
        f"{runs[0]['graph_modules'][:6]}"
    )


if __name__ == "__main__":
    main()
