"""3D: the reference's radiance field, or a video along a camera trajectory."""

from __future__ import annotations

import secrets
import tempfile
from pathlib import Path

from char_pipeline import catalog
from char_pipeline.engine.images import encode_png
from char_pipeline.jobstore import Job
from char_pipeline.services import processing
from char_pipeline.services.compute import check_budget, check_even_size, check_resolution, etag_for
from char_pipeline.services.context import ServiceContext
from char_pipeline.services.references import References
from char_pipeline.services.renders import DEFAULT_CACHE_TTL, Renders
from char_pipeline.services.requests import NerfIn

NERF_RENDERER = "voxel-radiance-field"
# Frames × pixels a NeRF video may render inside the request (≈ 48 frames at 320x240,
# about 6 s on 2 cores); larger ones become jobs.
NERF_SYNC_PIXELS = 48 * 320 * 240


class Nerfs:
    """POST /v1/generate/nerf: the reference's radiance field, or a video along a trajectory."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.references = References(ctx)
        self.renders = Renders(ctx)

    def plan(self, request: NerfIn, gpu: str) -> tuple[list, tuple[int, int], dict, str]:
        from char_pipeline.engine.nerf import parse_trajectory

        cameras = parse_trajectory(
            [pose.model_dump() for pose in request.camera_trajectory],
            max_cameras=self.ctx.settings.max_video_frames,
        )
        width, height = check_resolution(request.resolution, gpu)
        if request.output_format == "video":
            check_budget(len(cameras), width, height, gpu)
            check_even_size(width, height)
        mask_record = self.references.require_processed(request.reference_image_id)
        etag = etag_for(
            "nerf",
            self.references.version(request.reference_image_id, mask_record),
            {
                "cameras": [camera.to_json() for camera in cameras],
                "resolution": f"{width}x{height}",
                "output_format": request.output_format,
                "fps": request.fps,
                "renderer": NERF_RENDERER,
            },
        )
        return cameras, (width, height), mask_record, etag

    def should_queue(self, request: NerfIn, cameras: list, size: tuple[int, int]) -> bool:
        return request.output_format == "video" and (
            request.async_ or len(cameras) * size[0] * size[1] > NERF_SYNC_PIXELS
        )

    def model_record(self, reference_id: str, mask_record: dict) -> dict:
        """The stored model of a reference, built now if it has none yet."""
        key = catalog.reference_key(reference_id, "nerf_model.npz")
        header_key = catalog.reference_key(reference_id, "nerf_model.json")
        if self.store.exists(key) and self.store.exists(header_key):
            header = self.store.read_json(header_key)
            return {"model_key": key, "header_key": header_key, "header": header}
        record = processing.build_nerf(self.store, reference_id, mask_record)
        return {**record, "header": self.store.read_json(header_key)}

    def result_fields(self, request: NerfIn, etag: str, model: dict) -> dict:
        return {
            "reference_image_id": request.reference_image_id,
            "output_format": request.output_format,
            "etag": etag,
            "model_key": model["model_key"],
            "model_format": "npz",
            "backend": {
                "renderer": NERF_RENDERER,
                "device": "cpu",
                "note": "geometry is a silhouette-inflation shape prior from the one reference; the unseen back carries the front's colours softened (docs/nerf.md)",
            },
        }

    def render(
        self,
        request: NerfIn,
        cameras: list,
        size: tuple[int, int],
        mask_record: dict,
        etag: str,
        cache_ttl: int | None,
    ) -> dict:
        cached = self.ctx.jobs.cache_get(etag)
        if cached is None:
            model_record = self.model_record(request.reference_image_id, mask_record)
            model = processing.NERF_MODELS.load(self.store, model_record["model_key"])
            width, height = size
            cached = self.result_fields(request, etag, model_record)
            if request.output_format == "nerf_model":
                frame, _ = model.render(cameras[0], width, height)
                cached["image_key"] = catalog.generated_key(etag, "preview.png")
                self.store.write_bytes(cached["image_key"], encode_png(frame))
                cached.update(
                    header=model_record["header"],
                    size_bytes=len(self.store.read_bytes(model_record["model_key"])),
                    preview_camera=cameras[0].to_json(),
                )
            else:
                with tempfile.TemporaryDirectory() as folder:
                    local = Path(folder) / "nerf.mp4"
                    info, stats = processing.render_nerf_video(
                        model,
                        cameras,
                        local,
                        width=width,
                        height=height,
                        fps=request.fps or 24,
                        video_format="mp4",
                    )
                    key = catalog.generated_key(etag, "nerf.mp4")
                    self.store.put_file(local, key)
                cached = processing.video_result(
                    cached,
                    key,
                    info,
                    video_format="mp4",
                    fps=request.fps or 24,
                    quality=stats.to_json(),
                )
            self.ctx.jobs.cache_put(etag, cached, cache_ttl or DEFAULT_CACHE_TTL)
        return self.renders.present(cached, request.url_ttl)

    def submit(
        self,
        request: NerfIn,
        cameras: list,
        mask_record: dict,
        etag: str,
        gpu: str,
        count: int,
        key_id: str,
        cache_ttl: int | None,
    ) -> Job:
        """A job whose trajectory is stored first; the job sensor turns it into a nerf run."""
        job_id = "job_" + secrets.token_hex(8)
        model_record = self.model_record(request.reference_image_id, mask_record)
        if self.ctx.jobs.cache_get(etag) is None:
            self.store.write_json(
                catalog.job_trajectory_key(job_id), [camera.to_json() for camera in cameras]
            )
        spec = {
            "kind": "nerf",
            "reference_image_id": request.reference_image_id,
            "request": {
                "resolution": request.resolution,
                "fps": request.fps or 24,
                "frames": len(cameras),
                "format": "mp4",
                "url_ttl": request.url_ttl,
                "cache_ttl": cache_ttl or DEFAULT_CACHE_TTL,
                "result_fields": self.result_fields(request, etag, model_record),
                "etag": etag,
            },
            "api_key_id": key_id,
            "account_id": self.ctx.account,
            "callback_url": request.callback_url,
            "gpu_type": gpu,
            "instance_count": count,
            "job_id": job_id,
        }
        (job,) = self.renders.create_jobs([spec], [request.url_ttl])
        return job
