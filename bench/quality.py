"""Print the quality figures of the demo batch (run `make demo` first).

Run: .venv/bin/python bench/quality.py
Reads the asset-check evaluations that the demo's runs recorded in the project-local Dagster
instance: identity cosine, colour distance, temporal warping error and joint jitter per video,
and the picture figures (torn share, smallest coverage per video; silhouette IoU, near-black
excess and mirror mismatch per reference).
"""

from __future__ import annotations

import os

import dagster as dg

from char_pipeline.settings import get_settings


def main() -> None:
    os.environ["DAGSTER_HOME"] = str(get_settings().dagster_home)
    rows: dict[tuple[str, str], dict] = {}
    scenes: dict[str, dict] = {}
    with dg.DagsterInstance.get() as instance:
        for run in instance.get_runs(filters=dg.RunsFilter(tags={"char/source": "demo"}), limit=50):
            partition = run.tags.get("dagster/partition", "?")
            for record in instance.all_logs(
                run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
            ):
                evaluation = record.dagster_event.event_specific_data
                for field, key in (
                    ("min_cosine", "identity"),
                    ("max_distance", "colour"),
                    ("mean_warp_error", "warp"),
                    ("jitter", "jitter"),
                    ("max_torn_share", "torn"),
                    ("min_coverage_share", "cover"),
                    ("pop_ratio", "pops"),
                ):
                    if field in evaluation.metadata:
                        for control, value in evaluation.metadata[field].value.items():
                            # Runs come newest first: keep the newest figure.
                            rows.setdefault((partition, control), {}).setdefault(key, value)
                for field in ("silhouette_iou", "dark_fill_share", "mirror_mismatch"):
                    if field in evaluation.metadata:
                        scenes.setdefault(partition, {}).setdefault(
                            field, evaluation.metadata[field].value
                        )
    if not rows:
        raise SystemExit("No demo runs found: run `make demo` first.")
    print(
        f"{'reference':<24}{'control':<8}{'identity':>9}{'colour':>8}{'warp':>7}{'jitter':>9}"
        f"{'torn':>8}{'cover':>7}{'pops':>6}"
    )
    for (partition, control), figures in sorted(rows.items()):
        print(
            f"{partition:<24}{control:<8}{figures.get('identity') or 0:>9.3f}"
            f"{figures.get('colour', 0):>8.3f}{figures.get('warp', 0):>7.2f}"
            f"{figures.get('jitter', 0):>9.4f}{figures.get('torn') or 0:>8.4f}"
            f"{figures.get('cover') or 0:>7.2f}{figures.get('pops') or 0:>6.2f}"
        )
    print(f"\n{'reference':<24}{'silhouette IoU':>15}{'near-black excess':>19}{'mirror':>8}")
    for partition, figures in sorted(scenes.items()):
        print(
            f"{partition:<24}{figures.get('silhouette_iou') or 0:>15.3f}"
            f"{figures.get('dark_fill_share') or 0:>19.4f}{figures.get('mirror_mismatch') or 0:>8.3f}"
        )


if __name__ == "__main__":
    main()
