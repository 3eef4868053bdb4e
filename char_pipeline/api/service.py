"""What the routes do, outside the route functions: references, renders, jobs, caching."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from char_pipeline import catalog, processing
from char_pipeline.api.deps import AppState
from char_pipeline.api.errors import ApiError
from char_pipeline.engine.controls import smooth_sequence, validate_z, validate_z_sequence
from char_pipeline.engine.errors import CharPipelineError, ResourceExhaustedError
from char_pipeline.engine.images import encode_png, load_reference_image
from char_pipeline.engine.render import get_renderer, parse_resolution
from char_pipeline.jobstore import Job
from char_pipeline.links import completion_payload, present_result
from char_pipeline.webhooks import OutboundUrlError, check_outbound_url, parse_allowlist

# Largest frame per compute type (the seed's FAQ Q6): 1080p on shared GPUs, 4K on a100.
GPU_MAX_PIXELS = {"v100": 1920 * 1080, "t4": 1920 * 1080, "a100": 3840 * 2160}
GPU_MAX_SIDE = {"v100": 1920, "t4": 1920, "a100": 3840}
# Frames × pixels a single job may render (the seed's FAQ Q7: too many high-res frames).
GPU_PIXEL_BUDGET = {"v100": 3000 * 1280 * 720, "t4": 3000 * 1280 * 720, "a100": 3000 * 1920 * 1080}
DEFAULT_CACHE_TTL = 24 * 3600
PROCESSING_WAIT_SECONDS = 60.0

NOT_APPLICABLE = {
    "identity_strength": "not applicable to the 'mesh' and 'warp' renderers: they move the reference's own pixels, so identity is preserved by construction",
    "perceptual_weight": "not applicable to the 'mesh' and 'warp' renderers: no generative loss is optimised",
    "adv_weight": "not applicable to the 'mesh' and 'warp' renderers: no adversarial loss is optimised",
}
APPLIED = {
    "temporal_strength": "applied: Gaussian smoothing of the whole z sequence over time (sigma = 1.5 × value frames)",
    "pose_smoothness": "applied: extra temporal smoothing of the joint offsets (sigma = 1.5 × value frames)",
}


def gpu_settings(gpu_type: str | None, instance_count: str | None) -> tuple[str, int]:
    gpu = (gpu_type or "v100").strip().lower()
    if gpu not in GPU_MAX_PIXELS:
        raise ApiError(
            422,
            f"X-GPU-Type must be one of v100, a100, t4; got {gpu_type!r}.",
            details={"header": "X-GPU-Type"},
        )
    try:
        count = int(instance_count) if instance_count is not None else 1
    except ValueError:
        count = 0
    if not 1 <= count <= 4:
        raise ApiError(
            422,
            f"X-Instance-Count must be an integer from 1 to 4; got {instance_count!r}.",
            details={"header": "X-Instance-Count"},
        )
    return gpu, count


def check_resolution(resolution: str, gpu: str) -> tuple[int, int]:
    width, height = parse_resolution(resolution, max_pixels=GPU_MAX_PIXELS["a100"])
    if width * height > GPU_MAX_PIXELS[gpu] or max(width, height) > GPU_MAX_SIDE[gpu]:
        raise ResourceExhaustedError(
            f"{resolution} does not fit on {gpu}: shared types go up to 1920x1080; request X-GPU-Type: a100 for up to 3840x2160.",
            resolution=resolution,
            gpu_type=gpu,
        )
    return width, height


def check_budget(frames: int, width: int, height: int, gpu: str) -> None:
    """Frames × pixels one job may render on a compute type (the seed's FAQ Q7)."""
    if frames * width * height > GPU_PIXEL_BUDGET[gpu]:
        raise ResourceExhaustedError(
            f"{frames} frames at {width}x{height} exceed the {gpu} budget; reduce the resolution or the frames, split the video, or use X-GPU-Type: a100.",
            frames=frames,
            resolution=f"{width}x{height}",
            gpu_type=gpu,
        )


def check_even_size(width: int, height: int) -> None:
    """MP4 here is H.264 yuv420p, whose chroma planes need an even width and height."""
    if width % 2 or height % 2:
        raise ApiError(
            422,
            f"MP4 (H.264, yuv420p) needs an even width and height; got {width}x{height}.",
            details={"field": "resolution"},
        )


def backend_report(renderer: str, model: str, weights: dict[str, Any]) -> dict[str, Any]:
    """How the request's generator mode and weights map onto this backend — never silently ignored."""
    parameters = {}
    for name, value in weights.items():
        if value is None:
            continue
        parameters[name] = {
            "value": value,
            "effect": APPLIED.get(name) or NOT_APPLICABLE.get(name, "unknown"),
        }
    return {
        "renderer": renderer,
        "device": "cpu",
        "model_requested": model,
        "model_note": f"'{model}' requests are served by the CPU '{renderer}' renderer on this installation",
        "parameters": parameters,
    }


def etag_matches(if_none_match: str | None, quoted_etag: str) -> bool:
    """True when an If-None-Match header names this (quoted) ETag: answer 304."""
    return bool(if_none_match) and quoted_etag in [tag.strip() for tag in if_none_match.split(",")]


def etag_for(kind: str, reference_sha: str, fields: dict[str, Any]) -> str:
    canonical = json.dumps(
        {"kind": kind, "reference": reference_sha, **fields}, sort_keys=True, separators=(",", ":")
    )
    return "g" + hashlib.sha256(canonical.encode()).hexdigest()[:40]


class SceneCache:
    """Prepared scenes per (reference, size, renderer), kept in memory for warm requests.

    Preparing a scene (cut-out placed in the frame, background plate) costs more than
    rendering a frame from it; scenes are read-only afterwards, so threads share them.
    """

    def __init__(self, capacity: int = 16) -> None:
        self.capacity = capacity
        self._scenes: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, state: AppState, reference_id: str, mask_record: dict, width: int, height: int):
        # The record changes when the reference is re-rigged (e.g. new client keypoints).
        record = json.dumps(mask_record, sort_keys=True)
        key = (reference_id, record, width, height, state.settings.renderer)
        with self._lock:
            if key in self._scenes:
                self._scenes.move_to_end(key)
                return self._scenes[key]
        renderer = get_renderer(state.settings.renderer)
        character = processing.load_character(state.store, reference_id, mask_record)
        scene = (renderer, processing.prepare_scene(renderer, character, width, height))
        with self._lock:
            self._scenes[key] = scene
            while len(self._scenes) > self.capacity:
                self._scenes.popitem(last=False)
        return scene


SCENES = SceneCache()


class References:
    def __init__(self, state: AppState) -> None:
        self.state = state
        self.store = state.store

    def upload(self, data: bytes, name: str, keypoints: list[dict] | None = None) -> dict:
        settings = self.state.settings
        try:
            reference = load_reference_image(
                data, max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels
            )
        except CharPipelineError as exc:
            raise ApiError(
                400,
                exc.message,
                code="BadRequest",
                details={"reason": type(exc).__name__, **exc.details},
            ) from exc
        reference_id = catalog.reference_id_for(data)
        if self.store.exists(catalog.upload_meta_key(reference_id)):
            meta = self.store.read_json(catalog.upload_meta_key(reference_id))
        else:
            upload = catalog.save_upload(self.store, data, name=name, reference_id=reference_id)
            meta = upload.__dict__
            meta.update(width=reference.width, height=reference.height)
            self.store.write_json(catalog.upload_meta_key(reference_id), meta)
        reprocess = False
        if keypoints is not None:
            from char_pipeline.engine.rig import client_rest_pose

            # Checked against the image now, so bad keypoints are a 422 at upload.
            client_rest_pose(
                keypoints,
                (0, 0, reference.width, reference.height),
                (reference.width, reference.height),
            )
            key = catalog.reference_key(reference_id, "keypoints.json")
            old = self.store.read_json(key) if self.store.exists(key) else None
            if old != keypoints:
                self.store.write_json(key, keypoints)
                reprocess = True
        if reprocess or not self._processed(reference_id):
            if reprocess:
                self.store.delete(catalog.record_key("identity_features", reference_id))
            self.state.processor.submit(self.process, reference_id)
        return {k: meta[k] for k in ("reference_image_id", "width", "height", "uploaded_at")}

    def process(self, reference_id: str) -> None:
        """Ingest, segment and embed; writes the records the Dagster assets would write."""
        settings = self.state.settings
        try:
            ingested = processing.ingest_reference(
                self.store,
                reference_id,
                max_bytes=settings.max_image_bytes,
                max_pixels=settings.max_image_pixels,
            )
            self.store.write_json(
                catalog.record_key("reference_image", reference_id), ingested.record
            )
            segmented = processing.segment_reference(self.store, reference_id)
            self.store.write_json(
                catalog.record_key("subject_mask", reference_id), segmented.record
            )
            features = processing.embed_reference(self.store, reference_id, segmented.record)
            self.store.write_json(catalog.record_key("identity_features", reference_id), features)
        except CharPipelineError as exc:
            self.store.write_json(
                catalog.reference_key(reference_id, "error.json"),
                {
                    "code": exc.code,
                    "message": exc.message,
                    "details": {k: str(v) for k, v in exc.details.items()},
                },
            )

    def _processed(self, reference_id: str) -> bool:
        return self.store.exists(catalog.record_key("identity_features", reference_id))

    def metadata(self, reference_id: str) -> dict:
        if not catalog.REFERENCE_ID.match(reference_id) or not self.store.exists(
            catalog.upload_meta_key(reference_id)
        ):
            raise ApiError(
                404,
                f"Reference image {reference_id!r} not found.",
                details={"reference_image_id": reference_id},
            )
        meta = self.store.read_json(catalog.upload_meta_key(reference_id))
        error_key = catalog.reference_key(reference_id, "error.json")
        if self._processed(reference_id):
            status, error = "processed", None
        elif self.store.exists(error_key):
            status, error = "failed", self.store.read_json(error_key)
        else:
            status, error = "pending", None
        return {
            **{
                k: meta.get(k)
                for k in ("reference_image_id", "width", "height", "uploaded_at", "name")
            },
            "status": status,
            "error": error,
        }

    def require_processed(self, reference_id: str, *, wait: bool = True) -> dict:
        """The subject_mask record of a processed reference; waits briefly while pending."""
        deadline = time.monotonic() + (PROCESSING_WAIT_SECONDS if wait else 0)
        while True:
            meta = self.metadata(reference_id)
            if meta["status"] == "processed":
                return self.store.read_json(catalog.record_key("subject_mask", reference_id))
            if meta["status"] == "failed":
                raise ApiError(
                    422,
                    f"Reference image {reference_id} could not be processed: {meta['error']['message']}",
                    details={"reference_image_id": reference_id},
                )
            if time.monotonic() >= deadline:
                raise ApiError(
                    404,
                    f"Reference image {reference_id} is still being processed; retry in a few seconds.",
                    details={"reference_image_id": reference_id, "status": "pending"},
                )
            time.sleep(0.05)

    def sha(self, reference_id: str) -> str:
        return reference_id.removeprefix("ref_")


class Renders:
    def __init__(self, state: AppState) -> None:
        self.state = state
        self.store = state.store
        self.references = References(state)

    def present(self, result: dict, url_ttl: int | None) -> dict:
        """Turn a stored result (artifact keys) into a response (fresh signed URLs)."""
        return present_result(
            result,
            store=self.store,
            secret=self.state.signing_key,
            base_url=self.state.settings.base_url,
            url_ttl=url_ttl,
        )

    def frame(self, request, gpu: str) -> tuple[dict, str]:
        z_t = validate_z(request.z_t)
        width, height = check_resolution(request.resolution, gpu)
        mask_record = self.references.require_processed(request.reference_image_id)
        etag = etag_for(
            "frame",
            self.references.sha(request.reference_image_id),
            {
                "z_t": z_t.tolist(),
                "resolution": f"{width}x{height}",
                "model": request.model,
                "output_format": request.output_format,
                "include_mask": request.include_mask,
                "renderer": self.state.settings.renderer,
                "frame_index": request.frame_index,
            },
        )
        return mask_record, etag

    def render_frame(self, request, mask_record: dict, etag: str, cache_ttl: int | None) -> dict:
        cached = self.state.jobs.cache_get(etag)
        if cached is None:
            width, height = parse_resolution(request.resolution)
            renderer, scene = SCENES.get(
                self.state, request.reference_image_id, mask_record, width, height
            )
            frame, alpha = renderer.render_layers(scene, validate_z(request.z_t))
            cached = {
                "reference_image_id": request.reference_image_id,
                "frame_index": request.frame_index,
                "control_type": request.control_type,
                "resolution": f"{width}x{height}",
                "etag": etag,
                "backend": backend_report(renderer.name, request.model, _weights(request)),
            }
            png = encode_png(frame)
            if request.output_format == "base64":
                cached["image_base64"] = base64.b64encode(png).decode()
            else:
                cached["image_key"] = catalog.generated_key(etag, "frame.png")
                self.store.write_bytes(cached["image_key"], png)
            if request.include_mask:
                cached["mask_key"] = catalog.generated_key(etag, "mask.png")
                self.store.write_bytes(cached["mask_key"], encode_png(alpha))
            self.state.jobs.cache_put(etag, cached, cache_ttl or DEFAULT_CACHE_TTL)
        return self.present(cached, request.url_ttl)

    def video_plan(self, request, gpu: str) -> tuple[np.ndarray, dict, str]:
        settings = self.state.settings
        if request.include_mask:
            raise ApiError(
                422,
                "include_mask is supported on /v1/generate/frame; videos carry no mask track.",
                details={"field": "include_mask"},
            )
        z_sequence = validate_z_sequence(request.z_sequence, max_frames=settings.max_video_frames)
        z_sequence = smooth_sequence(
            z_sequence,
            temporal_strength=request.temporal_strength,
            pose_smoothness=request.pose_smoothness,
        )
        width, height = check_resolution(request.resolution, gpu)
        check_budget(len(z_sequence), width, height, gpu)
        if request.format == "mp4":
            check_even_size(width, height)
        mask_record = self.references.require_processed(request.reference_image_id)
        etag = etag_for(
            "video",
            self.references.sha(request.reference_image_id),
            {
                "z": hashlib.sha256(z_sequence.tobytes()).hexdigest(),
                "resolution": f"{width}x{height}",
                "format": request.format,
                "fps": request.fps,
                "model": request.model,
                "renderer": settings.renderer,
            },
        )
        return z_sequence, mask_record, etag

    def result_fields(self, request, etag: str) -> dict:
        return {
            "reference_image_id": request.reference_image_id,
            "control_type": request.control_type,
            "etag": etag,
            "backend": backend_report(
                self.state.settings.renderer, request.model, _weights(request)
            ),
        }

    def render_video(
        self, request, z_sequence: np.ndarray, mask_record: dict, etag: str, cache_ttl: int | None
    ) -> dict:
        cached = self.state.jobs.cache_get(etag)
        if cached is None:
            width, height = parse_resolution(request.resolution)
            renderer, scene = SCENES.get(
                self.state, request.reference_image_id, mask_record, width, height
            )
            with tempfile.TemporaryDirectory() as folder:
                local = Path(folder) / f"video.{request.format}"
                info = processing.render_video_file(
                    renderer, scene, z_sequence, local, video_format=request.format, fps=request.fps
                )
                key = catalog.generated_key(etag, f"video.{request.format}")
                self.store.put_file(local, key)
            cached = processing.video_result(
                self.result_fields(request, etag),
                key,
                info,
                video_format=request.format,
                fps=request.fps,
                renderer=renderer.name,
            )
            self.state.jobs.cache_put(etag, cached, cache_ttl or DEFAULT_CACHE_TTL)
        return self.present(cached, request.url_ttl)

    def job_spec(
        self,
        request,
        z_sequence: np.ndarray,
        etag: str,
        gpu: str,
        count: int,
        key_id: str,
        cache_ttl: int | None,
        group: str | None = None,
    ) -> dict:
        """A job row for an async video. Its z sequence is stored first, so a sensor never
        sees a job whose input is missing (none is needed when the render is cached)."""
        job_id = "job_" + secrets.token_hex(8)
        job_request = {
            "resolution": request.resolution,
            "format": request.format,
            "fps": request.fps,
            "model": request.model,
            "control_type": request.control_type,
            "frames": len(z_sequence),
            "url_ttl": request.url_ttl,
            "cache_ttl": cache_ttl or DEFAULT_CACHE_TTL,
            "result_fields": self.result_fields(request, etag),
            "etag": etag,
        }
        if group:
            job_request["group"] = group
        if self.state.jobs.cache_get(etag) is None:
            self.store.write_bytes(
                catalog.job_sequence_key(job_id), processing.npy_bytes(z_sequence)
            )
        return {
            "kind": "video",
            "reference_image_id": request.reference_image_id,
            "request": job_request,
            "api_key_id": key_id,
            "callback_url": request.callback_url,
            "gpu_type": gpu,
            "instance_count": count,
            "job_id": job_id,
        }

    def create_jobs(self, specs: list[dict], url_ttls: list[int | None]) -> list[Job]:
        """Create the jobs in one transaction; those whose render is cached complete at once."""
        jobs = self.state.jobs.create_jobs(specs)
        for job, url_ttl in zip(jobs, url_ttls, strict=True):
            cached = self.state.jobs.cache_get(job.request["etag"])
            if cached is not None:
                payload = completion_payload(
                    job.id,
                    cached,
                    store=self.store,
                    secret=self.state.signing_key,
                    base_url=self.state.settings.base_url,
                    url_ttl=url_ttl,
                )
                self.state.jobs.complete_job(job.id, cached, payload)
        return [self.state.jobs.get_job(job.id) for job in jobs]

    def submit_video(
        self,
        request,
        z_sequence: np.ndarray,
        etag: str,
        gpu: str,
        count: int,
        key_id: str,
        cache_ttl: int | None,
    ) -> Job:
        spec = self.job_spec(request, z_sequence, etag, gpu, count, key_id, cache_ttl)
        (job,) = self.create_jobs([spec], [request.url_ttl])
        return job

    def batch_view(self, batch: Job) -> dict:
        """A batch's status, aggregated from its tasks' jobs."""
        tasks, statuses, progress = [], [], []
        for task in batch.request["tasks"]:
            if "job_id" not in task:
                tasks.append(task)
                statuses.append("failed")
                progress.append(100.0)
                continue
            job = self.state.jobs.get_job(task["job_id"])
            view = self.job_view(job)
            tasks.append({"task_index": task["task_index"], **view})
            statuses.append(job.status)
            progress.append(job.progress if job.status in ("pending", "processing") else 100.0)
        if all(s == "failed" for s in statuses):
            status = "failed"
        elif all(s in ("completed", "failed") for s in statuses):
            status = "completed"
        elif any(s == "processing" for s in statuses) or any(
            s in ("completed", "failed") for s in statuses
        ):
            status = "processing"
        else:
            status = "pending"
        return {
            "job_id": batch.id,
            "kind": "batch",
            "status": status,
            "progress": round(sum(progress) / len(progress), 1),
            "message": f"{statuses.count('completed')} of {len(statuses)} tasks completed, {statuses.count('failed')} failed",
            "created_at": batch.created_at,
            "updated_at": batch.updated_at,
            "tasks": tasks,
        }

    def job_view(self, job: Job) -> dict:
        view = {
            "job_id": job.id,
            "status": job.status,
            "progress": job.progress,
            "message": job.message,
            "created_at": job.created_at,
            "updated_at": job.updated_at,
        }
        if job.status == "completed" and job.result:
            view["result"] = self.present(job.result, job.request.get("url_ttl"))
        if job.status == "failed":
            view["error"] = job.error
        if job.callback_url:
            view["callback_url"] = job.callback_url
            view["deliveries"] = self.state.jobs.deliveries_for_job(job.id)
        if job.attempts > 1:
            view["attempts"] = job.attempts
        return view

    def check_callback(self, callback_url: str | None) -> None:
        if callback_url is None:
            return
        try:
            check_outbound_url(callback_url, parse_allowlist(self.state.settings.outbound_allow))
        except OutboundUrlError as exc:
            raise ApiError(
                422, exc.message, details={"field": "callback_url", **exc.details}
            ) from exc


def _weights(request) -> dict[str, Any]:
    return {
        name: getattr(request, name)
        for name in (
            "identity_strength",
            "temporal_strength",
            "perceptual_weight",
            "adv_weight",
            "pose_smoothness",
        )
    }


NERF_RENDERER = "voxel-radiance-field"
# Frames × pixels a NeRF video may render inside the request (≈ 48 frames at 320x240,
# about 6 s on 2 cores); larger ones become jobs.
NERF_SYNC_PIXELS = 48 * 320 * 240


class Nerfs:
    """POST /v1/generate/nerf: the reference's radiance field, or a video along a trajectory."""

    def __init__(self, state: AppState) -> None:
        self.state = state
        self.store = state.store
        self.references = References(state)
        self.renders = Renders(state)

    def plan(self, request, gpu: str) -> tuple[list, tuple[int, int], dict, str]:
        from char_pipeline.engine.nerf import parse_trajectory

        cameras = parse_trajectory(
            [pose.model_dump() for pose in request.camera_trajectory],
            max_cameras=self.state.settings.max_video_frames,
        )
        width, height = check_resolution(request.resolution, gpu)
        if request.output_format == "video":
            check_budget(len(cameras), width, height, gpu)
            check_even_size(width, height)
        mask_record = self.references.require_processed(request.reference_image_id)
        etag = etag_for(
            "nerf",
            self.references.sha(request.reference_image_id),
            {
                "cameras": [camera.to_json() for camera in cameras],
                "resolution": f"{width}x{height}",
                "output_format": request.output_format,
                "fps": request.fps,
                "renderer": NERF_RENDERER,
            },
        )
        return cameras, (width, height), mask_record, etag

    def should_queue(self, request, cameras: list, size: tuple[int, int]) -> bool:
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

    def result_fields(self, request, etag: str, model: dict) -> dict:
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
        request,
        cameras: list,
        size: tuple[int, int],
        mask_record: dict,
        etag: str,
        cache_ttl: int | None,
    ) -> dict:
        cached = self.state.jobs.cache_get(etag)
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
            self.state.jobs.cache_put(etag, cached, cache_ttl or DEFAULT_CACHE_TTL)
        return self.renders.present(cached, request.url_ttl)

    def submit(
        self,
        request,
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
        if self.state.jobs.cache_get(etag) is None:
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
            "callback_url": request.callback_url,
            "gpu_type": gpu,
            "instance_count": count,
            "job_id": job_id,
        }
        (job,) = self.renders.create_jobs([spec], [request.url_ttl])
        return job
