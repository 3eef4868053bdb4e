"""Cold import of the code location Dagster loads for every run (target ≤ 2.5 s).

Run: .venv/bin/python bench/import_time.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    times = []
    for _ in range(args.runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import char_pipeline.definitions"], check=True)
        times.append(time.perf_counter() - started)
    print(
        f"python -c 'import char_pipeline.definitions': runs {[round(t, 2) for t in times]}  median {statistics.median(times):.2f} s"
    )


if __name__ == "__main__":
    main()
