"""Manifest files (CSV or Parquet): validation, one render request per good row, results.

Columns are documented in docs/manifests.md. Only ``reference_image`` and
``control_type`` are required; the rest default as the API does.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from upath import UPath

from char_pipeline.engine.errors import CharPipelineError
from char_pipeline.engine.render import parse_resolution

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = (
    "reference_image",
    "control_type",
    "prompt",
    "keypoints_file",
    "motion_clip",
    "seed",
    "steps",
    "fps",
    "resolution",
    "format",
    "model",
    "callback_url",
    "output_prefix",
)
REQUIRED = ("reference_image", "control_type")
DEFAULTS: dict[str, Any] = {
    "prompt": "wave hello",
    "seed": 0,
    "steps": 48,
    "fps": 30,
    "resolution": "720x720",
    "format": "mp4",
    "model": "gan",
}
MANIFEST_SUFFIXES = (".csv", ".parquet")
MAX_STEPS = 3000
_RESOLUTION = re.compile(r"^\d+x\d+$")


@dataclass
class RowProblem:
    row: int  # 1-based data row number, as a spreadsheet user counts
    column: str
    reason: str

    def to_json(self) -> dict:
        return {"row": self.row, "column": self.column, "reason": self.reason}


@dataclass
class ManifestCheck:
    name: str
    version: str
    rows: list[dict] = field(default_factory=list)  # normalised good rows, with "row"
    problems: list[RowProblem] = field(default_factory=list)
    total_rows: int = 0

    @property
    def bad_rows(self) -> list[int]:
        return sorted({p.row for p in self.problems})

    def report(self) -> dict:
        return {
            "manifest": self.name,
            "version": self.version,
            "rows": self.total_rows,
            "good_rows": [r["row"] for r in self.rows],
            "bad_rows": self.bad_rows,
            "problems": [p.to_json() for p in self.problems],
        }


def manifest_version(data: bytes) -> str:
    """Changes whenever the file's bytes change: an edited manifest is a new version."""
    return hashlib.sha256(data).hexdigest()[:16]


def list_manifests(root: UPath) -> list[UPath]:
    if not root.exists():
        return []
    return sorted(
        (
            p
            for p in root.iterdir()
            if p.is_file() and p.suffix.lower() in MANIFEST_SUFFIXES and ".results." not in p.name
        ),
        key=lambda p: p.name,
    )


def read_manifest(data: bytes, suffix: str) -> pd.DataFrame:
    import pandas as pd  # here, not at import: every run process loads this module

    if suffix.lower() == ".parquet":
        frame = pd.read_parquet(io.BytesIO(data))
    else:
        frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    return frame


def _blank(value: Any) -> bool:
    return (
        value is None
        or (isinstance(value, float) and math.isnan(value))
        or (isinstance(value, str) and not value.strip())
    )


def _integer(
    value: Any, column: str, row: int, problems: list[RowProblem], low: int, high: int
) -> int | None:
    try:
        number = float(value)
        if not number.is_integer():
            raise ValueError
        number = int(number)
    except (TypeError, ValueError):
        problems.append(RowProblem(row, column, f"{value!r} is not a whole number"))
        return None
    if not low <= number <= high:
        problems.append(RowProblem(row, column, f"{number} is outside {low}..{high}"))
        return None
    return number


def check_manifest(path: UPath, *, data: bytes | None = None, check_url=None) -> ManifestCheck:
    """Validate every row; good rows come back normalised with defaults filled in.

    ``data`` is the file's bytes when the caller has read them already.
    """
    data = path.read_bytes() if data is None else data
    check = ManifestCheck(name=path.name, version=manifest_version(data))
    try:
        frame = read_manifest(data, path.suffix)
    except Exception as exc:  # pandas raises many kinds for unreadable files
        check.problems.append(
            RowProblem(0, "", f"the file could not be read as {path.suffix[1:].upper()}: {exc}")
        )
        return check
    check.total_rows = len(frame)
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        for column in missing:
            check.problems.append(RowProblem(0, column, "required column is missing"))
        return check
    unknown = [c for c in frame.columns if c not in COLUMNS]
    for column in unknown:
        check.problems.append(RowProblem(0, column, "unknown column (ignored)"))
    for index, raw in enumerate(frame.to_dict(orient="records"), start=1):
        problems: list[RowProblem] = []
        values = {c: (None if _blank(raw.get(c)) else raw.get(c)) for c in COLUMNS}
        row = {"row": index}
        reference = values["reference_image"]
        if reference is None:
            problems.append(RowProblem(index, "reference_image", "required"))
        else:
            row["reference_image"] = str(reference).strip()
        control = str(values["control_type"] or "").strip().lower()
        if control not in ("pose", "text", "latent"):
            problems.append(
                RowProblem(
                    index, "control_type", f"{values['control_type']!r} is not pose, text or latent"
                )
            )
        row["control_type"] = control
        row["prompt"] = str(values["prompt"] or DEFAULTS["prompt"])
        row["keypoints_file"] = (
            None if values["keypoints_file"] is None else str(values["keypoints_file"]).strip()
        )
        row["motion_clip"] = _motion_clip(values["motion_clip"], control, path, index, problems)
        row["seed"] = (
            DEFAULTS["seed"]
            if values["seed"] is None
            else _integer(values["seed"], "seed", index, problems, 0, 2**63 - 1)
        )
        row["steps"] = (
            DEFAULTS["steps"]
            if values["steps"] is None
            else _integer(values["steps"], "steps", index, problems, 1, MAX_STEPS)
        )
        row["fps"] = (
            DEFAULTS["fps"]
            if values["fps"] is None
            else _integer(values["fps"], "fps", index, problems, 1, 120)
        )
        resolution = str(values["resolution"] or DEFAULTS["resolution"]).strip()
        try:
            if not _RESOLUTION.match(resolution):
                raise ValueError
            width, height = parse_resolution(resolution, max_pixels=1920 * 1080)
            row["resolution"] = f"{width}x{height}"
        except (ValueError, CharPipelineError):
            problems.append(
                RowProblem(
                    index, "resolution", f"{resolution!r} is not WIDTHxHEIGHT within 1920x1080"
                )
            )
        video_format = str(values["format"] or DEFAULTS["format"]).strip().lower()
        if video_format not in ("mp4", "gif"):
            problems.append(RowProblem(index, "format", f"{video_format!r} is not mp4 or gif"))
        row["format"] = video_format
        model = str(values["model"] or DEFAULTS["model"]).strip().lower()
        if model not in ("gan", "diffusion", "transformer"):
            problems.append(
                RowProblem(index, "model", f"{model!r} is not gan, diffusion or transformer")
            )
        row["model"] = model
        row["callback_url"] = (
            None if values["callback_url"] is None else str(values["callback_url"]).strip()
        )
        if row["callback_url"] and check_url is not None:
            try:
                check_url(row["callback_url"])
            except CharPipelineError as exc:
                problems.append(RowProblem(index, "callback_url", exc.message))
        row["output_prefix"] = (
            None if values["output_prefix"] is None else str(values["output_prefix"]).strip()
        )
        if problems:
            check.problems.extend(problems)
        else:
            check.rows.append(row)
    return check


def _motion_clip(
    value: Any, control: str, manifest: UPath, index: int, problems: list[RowProblem]
) -> str | None:
    """A row's BVH clip: a library name, or a .bvh file (a path relative to the manifest's
    folder, or absolute) that must exist on this machine; only for control_type pose."""
    from char_pipeline.engine.bvh import list_clips

    if value is None:
        return None
    text = str(value).strip()
    if control != "pose":
        problems.append(RowProblem(index, "motion_clip", "applies to control_type pose only"))
        return None
    if not text.lower().endswith(".bvh"):
        if text not in list_clips():
            problems.append(
                RowProblem(
                    index,
                    "motion_clip",
                    f"{text!r} is not a library clip ({', '.join(list_clips())}) or a .bvh file",
                )
            )
            return None
        return text
    clip = UPath(text) if text.startswith("/") else manifest.parent / text
    if clip.protocol not in ("", "file", "local") or not clip.exists():
        problems.append(
            RowProblem(index, "motion_clip", f"{text} is not a BVH file on this machine")
        )
        return None
    return str(clip.path if hasattr(clip, "path") else clip)


def row_run_config(row: dict, reference_id: str) -> dict:
    """The render_job run config of one manifest row."""
    controls = {
        "control_types": [row["control_type"]],
        "steps": row["steps"],
        "text_prompt": row["prompt"],
        "latent_seed": row["seed"],
    }
    if row["keypoints_file"]:
        controls["pose_keypoints_file"] = row["keypoints_file"]
    if row.get("motion_clip"):  # a BVH clip drives 'pose', at the row's fps
        controls["motion_clip"] = row["motion_clip"]
        controls["clip_fps"] = row["fps"]
    return {
        "loggers": {"console": {"config": {"log_level": "WARNING"}}},
        "ops": {
            "control_sequences": {"config": controls},
            "frames": {
                "config": {
                    "resolution": row["resolution"],
                    "model": row["model"],
                    # The text control's prompt also describes the look to generative modes.
                    "prompt": row["prompt"] if row["model"] != "gan" else None,
                }
            },
            "video": {"config": {"fps": row["fps"], "formats": [row["format"]]}},
        },
    }


def results_paths(manifest: UPath) -> tuple[UPath, UPath]:
    stem = manifest.name[: -len(manifest.suffix)]
    return manifest.with_name(f"{stem}.results.parquet"), manifest.with_name(f"{stem}.results.csv")


def write_results(
    manifest: UPath, total_rows: int, outcomes: dict[int, dict]
) -> tuple[UPath, UPath]:
    """One row per input row, in order: status, error, video URL, metrics, timings."""
    records = []
    for index in range(1, total_rows + 1):
        outcome = outcomes.get(index, {"status": "skipped", "error": "not run"})
        records.append(
            {
                "row": index,
                "status": outcome.get("status"),
                "error": outcome.get("error"),
                "reference_image_id": outcome.get("reference_image_id"),
                "video_url": outcome.get("video_url"),
                "output_uri": outcome.get("output_uri"),
                "frames": outcome.get("frames"),
                "duration_s": outcome.get("duration_s"),
                "size_bytes": outcome.get("size_bytes"),
                "identity_cosine": outcome.get("identity_cosine"),
                "seconds": outcome.get("seconds"),
                "run_id": outcome.get("run_id"),
            }
        )
    import pandas as pd

    frame = pd.DataFrame.from_records(records)
    parquet, csv = results_paths(manifest)
    with parquet.open("wb") as handle:
        frame.to_parquet(handle, index=False)
    with csv.open("w") as handle:
        frame.to_csv(handle, index=False)
    return parquet, csv


def report_path(manifest: UPath) -> UPath:
    stem = manifest.name[: -len(manifest.suffix)]
    return manifest.with_name(f"{stem}.report.json")


def write_report(manifest: UPath, check: ManifestCheck) -> UPath:
    path = report_path(manifest)
    path.write_text(json.dumps(check.report(), indent=2))
    return path


FETCH_TIMEOUT_SECONDS = 30.0


def fetch_reference(value: str, manifest: UPath, *, max_bytes: int, allow: list[str]) -> bytes:
    """The bytes of a row's reference image: an https URL (checked, size- and time-bounded),
    an fsspec URL, an absolute path, or a path relative to the manifest's folder."""
    from char_pipeline.webhooks import check_outbound_url

    if value.startswith(("http://", "https://")):
        import httpx

        check_outbound_url(value, allow)
        chunks, size = [], 0
        with httpx.stream(
            "GET", value, timeout=FETCH_TIMEOUT_SECONDS, follow_redirects=False
        ) as response:
            if response.status_code != 200:
                raise ValueError(f"GET {value} answered {response.status_code}")
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise ValueError(f"{value} is larger than {max_bytes:,} bytes")
                chunks.append(chunk)
        return b"".join(chunks)
    path = UPath(value) if ("://" in value or value.startswith("/")) else manifest.parent / value
    if not path.exists():
        raise ValueError(f"{value} does not exist")
    with path.open("rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ValueError(f"{value} is larger than {max_bytes:,} bytes")
    return data


def register_references(
    check: ManifestCheck, manifest: UPath, store, *, max_bytes: int, allow: list[str]
) -> None:
    """Upload each good row's reference (content-addressed); rows whose image cannot be
    fetched move to the problems."""
    from char_pipeline import catalog

    kept = []
    for row in check.rows:
        try:
            data = fetch_reference(
                row["reference_image"], manifest, max_bytes=max_bytes, allow=allow
            )
        except (ValueError, OSError, CharPipelineError) as exc:
            reason = exc.message if isinstance(exc, CharPipelineError) else str(exc)
            check.problems.append(RowProblem(row["row"], "reference_image", reason))
            continue
        reference_id = catalog.reference_id_for(data)
        if not store.exists(catalog.upload_meta_key(reference_id)):
            catalog.save_upload(
                store, data, name=UPath(row["reference_image"]).name, reference_id=reference_id
            )
        row["reference_image_id"] = reference_id
        kept.append(row)
    check.rows = kept
    check.problems.sort(key=lambda p: (p.row, p.column))


def row_outcome(run_result_output: dict, frames_output: dict, row: dict) -> dict:
    """Results-table fields of a successful row from the run's video and frames records."""
    (video,) = [v for v in run_result_output["videos"] if v["format"] == row["format"]][:1]
    cosine = frames_output["controls"].get(row["control_type"], {}).get("identity_cosine") or []
    return {
        "status": "completed",
        "video_key": video["key"],
        "video_url": video["uri"],
        "frames": video["frames"],
        "duration_s": video["duration_s"],
        "size_bytes": video["size_bytes"],
        "identity_cosine": round(sum(cosine) / len(cosine), 4) if cosine else None,
    }


def copy_to_prefix(store, outcome: dict, row: dict, manifest: UPath) -> dict:
    """Copy a row's video under its ``output_prefix`` (any fsspec URL); adds ``output_uri``."""
    prefix, key = row.get("output_prefix"), outcome.get("video_key")
    if not prefix or not key:
        return outcome
    stem = manifest.name[: -len(manifest.suffix)]
    target = UPath(prefix) / f"{stem}_row{row['row']:04d}.{row['format']}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(store.read_bytes(key))
    except OSError as exc:
        return {**outcome, "error": f"output_prefix: could not write {target}: {exc}"}
    return {**outcome, "output_uri": str(target)}
