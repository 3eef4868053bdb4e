"""nerf_model → nerf_video: a subject-specific radiance field per reference, and videos
along camera trajectories (a turntable by default; an API request's trajectory by config).
"""

import tempfile
import time
from pathlib import Path
from typing import Literal

import dagster as dg
from pydantic import Field

from char_pipeline import catalog
from char_pipeline.assets.partitions import reference_partitions
from char_pipeline.assets.previews import markdown_images
from char_pipeline.assets.references import engine_failure
from char_pipeline.engine import nerf
from char_pipeline.engine.errors import CharPipelineError
from char_pipeline.engine.render import parse_resolution
from char_pipeline.resources.compute import ComputeFleet
from char_pipeline.resources.jobs import JobStoreResource, job_ids_of
from char_pipeline.services import processing
from char_pipeline.storage import ArtifactStore

MIN_REFERENCE_PSNR = 25.0  # dB, inside the mask, from the reference camera
MAX_HOLE_FRACTION = 0.005  # see-through share of a turntable frame's silhouette
CHECK_VIEWS = 12


@dg.asset(
    partitions_def=reference_partitions,
    group_name="nerf",
    kinds={"numpy", "3d"},
    deps=["reference_image"],
    description="Voxel radiance field of the subject from its one reference (silhouette inflation shape prior; docs/nerf.md).",
    check_specs=[
        dg.AssetCheckSpec(
            "reference_view_psnr",
            asset="nerf_model",
            description=f"Rendered from the reference camera, the model reproduces the reference inside the mask: PSNR ≥ {MIN_REFERENCE_PSNR} dB.",
        ),
        dg.AssetCheckSpec(
            "turntable_silhouette_complete",
            asset="nerf_model",
            description=f"A {CHECK_VIEWS}-view 360° turntable shows a solid silhouette: see-through holes ≤ {MAX_HOLE_FRACTION:.1%} of it in every view.",
        ),
    ],
)
def nerf_model(
    context: dg.AssetExecutionContext, store: dg.ResourceParam[ArtifactStore], subject_mask: dict
):
    reference_id = context.partition_key
    try:
        record = processing.build_nerf(store, reference_id, subject_mask)
    except CharPipelineError as exc:
        raise engine_failure(exc, f"The 3D model of {reference_id} could not be built") from exc
    model = processing.NERF_MODELS.load(store, record["model_key"])
    rows, cols = model.reference_mask.shape
    rendered, _ = model.render(nerf.REFERENCE_CAMERA, cols, rows, background=None)
    record["reference_psnr_db"] = round(nerf.reference_psnr(model, rendered), 2)
    stats = nerf.TrajectoryStats()
    views = list(nerf.render_trajectory(model, nerf.orbit(CHECK_VIEWS), 160, 120, stats))
    turntable = stats.to_json()
    yield dg.Output(
        {**record, "turntable_check": turntable},
        metadata={
            "build_seconds": record["build_seconds"],
            "grid": dg.MetadataValue.json(record["resolution"]),
            "size_bytes": record["size_bytes"],
            "reference_psnr_db": record["reference_psnr_db"],
            "header": dg.MetadataValue.json(store.read_json(record["header_key"])),
            "path": dg.MetadataValue.path(store.uri(record["model_key"])),
            "preview": markdown_images(
                {
                    "reference view": model.reference_rgb,
                    "rendered from the reference camera (over black)": rendered,
                    **{
                        f"azimuth {i * 360 // CHECK_VIEWS}°": views[i]
                        for i in range(0, CHECK_VIEWS, 3)
                    },
                }
            ),
        },
    )
    yield dg.AssetCheckResult(
        check_name="reference_view_psnr",
        passed=record["reference_psnr_db"] >= MIN_REFERENCE_PSNR,
        metadata={"psnr_db": record["reference_psnr_db"], "threshold_db": MIN_REFERENCE_PSNR},
    )
    yield dg.AssetCheckResult(
        check_name="turntable_silhouette_complete",
        passed=turntable["hole_fraction_max"] <= MAX_HOLE_FRACTION
        and turntable["alpha_coverage_min"] > 0,
        metadata={
            "hole_fraction_max": turntable["hole_fraction_max"],
            "alpha_coverage_min": turntable["alpha_coverage_min"],
            "alpha_coverage_mean": turntable["alpha_coverage_mean"],
            "threshold": MAX_HOLE_FRACTION,
        },
    )


class NerfVideoConfig(dg.Config):
    """What to film: the default is a turntable; an API job names its stored trajectory."""

    frames: int = Field(default=48, ge=1, le=3000, description="Turntable frames (one loop).")
    elevation: float = Field(default=10.0, description="Turntable camera elevation, degrees.")
    turntable: Literal["arc", "orbit"] = Field(
        default="arc",
        description="arc: swing ±arc_degrees about the reference view and back (what one photo "
        "can show); orbit: a full 360° turn, its back half a guess.",
    )
    arc_degrees: float = Field(default=30.0, gt=0.0, le=180.0)
    trajectory_key: str | None = Field(
        default=None, description="Artifact key of a JSON camera trajectory (API jobs)."
    )
    name: str = Field(default="turntable", description="Video name (an API job's id).")
    resolution: str = "320x240"
    fps: int = Field(default=24, ge=1, le=120)
    format: str = "mp4"
    background_color: list[int] = Field(
        default=[236, 236, 232],
        min_length=3,
        max_length=3,
        description="RGB the subject is composited over.",
    )
    job_result: dict = Field(
        default={}, description="Fields an API job's result carries over (set by the sensor)."
    )


@dg.asset(
    partitions_def=reference_partitions,
    group_name="nerf",
    kinds={"video", "3d"},
    description="A video of the radiance field along a camera trajectory (default: a ±30° turntable arc).",
)
def nerf_video(
    context: dg.AssetExecutionContext,
    config: NerfVideoConfig,
    store: dg.ResourceParam[ArtifactStore],
    compute: ComputeFleet,
    jobs: JobStoreResource,
    nerf_model: dict,
) -> dict:
    reference_id = context.partition_key
    job_ids = job_ids_of(context)
    job_id = job_ids[0] if job_ids else None
    if job_id:
        jobs.store.start_job(job_id, context.run.run_id)
    compute_type = compute.for_run(context)
    try:
        width, height = parse_resolution(
            config.resolution, max_pixels=compute_type.max_render_pixels
        )
        if config.trajectory_key:
            cameras = nerf.parse_trajectory(store.read_json(config.trajectory_key))
        else:
            cameras = (
                nerf.swing(config.frames, amplitude=config.arc_degrees, elevation=config.elevation)
                if config.turntable == "arc"
                else nerf.orbit(config.frames, elevation=config.elevation)
            )
    except CharPipelineError as exc:
        raise engine_failure(exc, "Bad NeRF video settings") from exc
    model = processing.NERF_MODELS.load(store, nerf_model["model_key"])
    previews = {}
    last_report = [0.0]

    def on_frame(index: int, frame) -> None:
        if index in (0, len(cameras) // 4, len(cameras) // 2):
            previews[f"frame {index}"] = frame
        if job_id and (time.monotonic() - last_report[0] > 0.5 or index + 1 == len(cameras)):
            last_report[0] = time.monotonic()
            jobs.store.update_progress(
                job_id,
                95.0 * (index + 1) / len(cameras),
                f"Rendered {index + 1}/{len(cameras)} frames",
            )

    with tempfile.TemporaryDirectory() as folder:
        local = Path(folder) / f"{config.name}.{config.format}"
        try:
            info, stats = processing.render_nerf_video(
                model,
                cameras,
                local,
                width=width,
                height=height,
                fps=config.fps,
                video_format=config.format,
                on_frame=on_frame,
                background=tuple(config.background_color),
            )
        except CharPipelineError as exc:
            raise engine_failure(exc, "Encoding the NeRF video failed") from exc
        key = catalog.video_key(reference_id, f"nerf_{config.name}", config.format)
        uri = store.put_file(local, key)
    quality = stats.to_json()
    video_record = {"key": key, "uri": uri, **info.to_json(), "quality": quality}
    if job_id:
        result = processing.video_result(
            config.job_result,
            key,
            info,
            video_format=config.format,
            fps=config.fps,
            quality=quality,
        )
        jobs.complete(job_id, result, store, config.job_result.get("url_ttl"))
        if "etag" in result:
            jobs.store.cache_put(
                result["etag"], result, int(config.job_result.get("cache_ttl", 86400))
            )
    context.add_output_metadata(
        {
            "frames": info.frames,
            "resolution": f"{width}x{height}",
            "frames_per_second": quality["frames_per_second"],
            "alpha_coverage_min": quality["alpha_coverage_min"],
            "hole_fraction_max": quality["hole_fraction_max"],
            **compute_type.run_metadata(),
            "path": dg.MetadataValue.path(uri),
            "preview": markdown_images(previews),
        }
    )
    return video_record
