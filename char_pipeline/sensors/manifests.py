"""Manifest files in a watched folder or bucket → one run per good row, then a results table.

Each manifest version (its content hash) is handled once: the cursor remembers the version
seen per file, and run keys carry it, so an edited manifest is a new version and an
unchanged one is never rendered twice.
"""

import json

import dagster as dg

from char_pipeline import manifests
from char_pipeline.assets.jobs import VIDEO_ASSETS, render_job
from char_pipeline.assets.partitions import reference_partitions
from char_pipeline.failures import run_failure_cause
from char_pipeline.settings import get_settings
from char_pipeline.storage import ArtifactStore, open_root
from char_pipeline.webhooks import check_outbound_url, parse_allowlist

MANIFEST_TAG = "char/manifest"
VERSION_TAG = "char/manifest_version"
ROW_TAG = "char/manifest_row"


def state_key(version: str) -> str:
    return f"manifest_state/{version}.json"


def outcome_key(version: str, row: int) -> str:
    return f"manifest_state/{version}/rows/{row}.json"


@dg.sensor(
    job=render_job,
    minimum_interval_seconds=10,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Validates new or edited manifests (CSV/Parquet) and launches one run per good row.",
)
def manifest_sensor(
    context: dg.SensorEvaluationContext, store: dg.ResourceParam[ArtifactStore]
) -> dg.SensorResult:
    settings = get_settings()
    root = open_root(settings.manifest_root, settings.s3_endpoint_url)
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    allow = parse_allowlist(settings.outbound_allow)
    run_requests, new_references = [], set()
    for path in manifests.list_manifests(root):
        data = path.read_bytes()
        version = manifests.manifest_version(data)
        if seen.get(path.name) == version:
            continue
        check = manifests.check_manifest(
            path, data=data, check_url=lambda url: check_outbound_url(url, allow)
        )
        manifests.register_references(
            check, path, store, max_bytes=settings.max_image_bytes, allow=allow
        )
        report = manifests.write_report(path, check)
        context.log.info(
            f"{path.name} (version {version}): {check.total_rows} rows, {len(check.rows)} good, {len(check.bad_rows)} bad; report {report}"
        )
        for problem in check.problems:
            context.log.warning(f"{path.name} row {problem.row} {problem.column}: {problem.reason}")
        store.write_json(
            state_key(version),
            {
                "manifest": str(path),
                "total_rows": check.total_rows,
                "rows": check.rows,
                "problems": [p.to_json() for p in check.problems],
                "results": None,
            },
        )
        for row in check.rows:
            new_references.add(row["reference_image_id"])
            run_requests.append(
                dg.RunRequest(
                    run_key=f"manifest:{path.name}:{version}:{row['row']}",
                    partition_key=row["reference_image_id"],
                    run_config=manifests.row_run_config(row, row["reference_image_id"]),
                    asset_selection=VIDEO_ASSETS,
                    tags={MANIFEST_TAG: path.name, VERSION_TAG: version, ROW_TAG: str(row["row"])},
                )
            )
        seen[path.name] = version
    known = set(context.instance.get_dynamic_partitions(reference_partitions.name))
    added = sorted(new_references - known)
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[reference_partitions.build_add_request(added)]
        if added
        else [],
        cursor=json.dumps(seen, sort_keys=True),
    )


@dg.sensor(
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Writes <manifest>.results.parquet/.csv once every run of a manifest version has finished.",
)
def manifest_results_sensor(
    context: dg.SensorEvaluationContext, store: dg.ResourceParam[ArtifactStore]
) -> dg.SensorResult:
    written = []
    for version_file in store.list_files("manifest_state"):
        version = version_file.removesuffix(".json")
        state = store.read_json(state_key(version))
        if state["results"] is not None:
            continue
        runs = context.instance.get_runs(filters=dg.RunsFilter(tags={VERSION_TAG: version}))
        latest_by_row: dict[int, dg.DagsterRun] = {}
        for run in sorted(runs, key=lambda r: r.run_id):
            latest_by_row[int(run.tags[ROW_TAG])] = run
        if len(latest_by_row) < len(state["rows"]) or not all(
            run.is_finished for run in latest_by_row.values()
        ):
            continue
        outcomes = {
            p["row"]: {"status": "invalid", "error": f"{p['column']}: {p['reason']}"}
            for p in state["problems"]
            if p["row"]
        }
        for row in state["rows"]:
            run = latest_by_row[row["row"]]
            base = {"reference_image_id": row["reference_image_id"], "run_id": run.run_id}
            if run.is_success and store.exists(outcome_key(version, row["row"])):
                manifest_path = open_root(state["manifest"], get_settings().s3_endpoint_url)
                result = store.read_json(outcome_key(version, row["row"]))
                outcomes[row["row"]] = {
                    **base,
                    **manifests.copy_to_prefix(store, result, row, manifest_path),
                }
            else:
                outcomes[row["row"]] = {
                    **base,
                    "status": "failed",
                    "error": run_failure_cause(context.instance, run.run_id),
                }
        manifest = open_root(state["manifest"], get_settings().s3_endpoint_url)
        parquet, _ = manifests.write_results(manifest, state["total_rows"], outcomes)
        store.write_json(state_key(version), {**state, "results": str(parquet)})
        context.log.info(f"{manifest.name}: results written to {parquet}")
        written.append(manifest.name)
    return dg.SensorResult(
        skip_reason=f"Results written for {', '.join(written)}."
        if written
        else "No manifest finished."
    )
