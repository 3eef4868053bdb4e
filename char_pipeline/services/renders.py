"""Frames and videos: plan (validate, ETag), render now, or submit as jobs; job views."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from char_pipeline import catalog
from char_pipeline.engine.controls import smooth_sequence, validate_z, validate_z_sequence
from char_pipeline.engine.errors import InvalidInputError
from char_pipeline.engine.images import encode_png
from char_pipeline.engine.render import parse_resolution
from char_pipeline.engine.renderers import get_renderer
from char_pipeline.jobstore import Job
from char_pipeline.links import completion_payload, present_result
from char_pipeline.services import generation, processing
from char_pipeline.services.compute import (
    check_budget,
    check_even_size,
    check_resolution,
    etag_for,
)
from char_pipeline.services.context import ServiceContext
from char_pipeline.services.references import References
from char_pipeline.services.requests import FrameIn, VideoTask
from char_pipeline.webhooks import OutboundUrlError, check_outbound_url, parse_allowlist

DEFAULT_CACHE_TTL = 24 * 3600

_log = logging.getLogger(__name__)


class SceneCache:
    """Prepared scenes per (reference, size, renderer), kept in memory for warm requests.

    Preparing a scene (cut-out placed in the frame, background plate) costs more than
    rendering a frame from it; scenes are read-only afterwards, so threads share them.
    """

    def __init__(self, capacity: int = 16) -> None:
        self.capacity = capacity
        self._scenes: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(
        self, ctx: ServiceContext, reference_id: str, mask_record: dict, width: int, height: int
    ):
        # The record changes when the reference is re-rigged (e.g. new client keypoints).
        record = json.dumps(mask_record, sort_keys=True)
        key = (reference_id, record, width, height, ctx.settings.renderer)
        with self._lock:
            if key in self._scenes:
                self._scenes.move_to_end(key)
                return self._scenes[key]
        renderer = get_renderer(ctx.settings.renderer)
        character = processing.load_character(ctx.store, reference_id, mask_record)
        scene = (renderer, processing.prepare_scene(renderer, character, width, height))
        with self._lock:
            self._scenes[key] = scene
            while len(self._scenes) > self.capacity:
                self._scenes.popitem(last=False)
        return scene


SCENES = SceneCache()


class Renders:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.references = References(ctx)

    def present(self, result: dict, url_ttl: int | None) -> dict:
        """Turn a stored result (artifact keys) into a response (fresh signed URLs)."""
        return present_result(
            result,
            store=self.store,
            secret=self.ctx.signing_key,
            base_url=self.ctx.settings.base_url,
            url_ttl=url_ttl,
        )

    def frame(self, request: FrameIn, gpu: str) -> tuple[dict, str]:
        z_t = validate_z(request.z_t)
        width, height = check_resolution(request.resolution, gpu)
        served = self.check_generator(request.model, gpu, width, height, 1)
        mask_record = self.references.require_processed(request.reference_image_id)
        etag = etag_for(
            "frame",
            self.references.version(request.reference_image_id, mask_record),
            {
                "z_t": z_t.tolist(),
                "resolution": f"{width}x{height}",
                "model": request.model,
                "output_format": request.output_format,
                "include_mask": request.include_mask,
                "renderer": self.ctx.settings.renderer,
                "frame_index": request.frame_index,
                **_generation_fields(request, served),
            },
        )
        return mask_record, etag

    def generator(self, requested: str, gpu: str):
        """The served mode and its generator (ModelNotInstalled / ResourceUnavailable here)."""
        served = generation.served_mode(self.ctx.settings, requested)
        renderer = get_renderer(self.ctx.settings.renderer)
        return served, generation.generator_for(self.ctx.settings, served, renderer, gpu)

    def check_generator(
        self, requested: str, gpu: str, width: int, height: int, frames: int
    ) -> str:
        """Fail before any work is queued when the mode cannot serve this request here."""
        served, generator = self.generator(requested, gpu)
        check = getattr(generator, "check", None)
        if check is not None:
            check(width, height, frames)
        return served

    def backend(self, request: FrameIn | VideoTask, gpu: str) -> dict:
        served, generator = self.generator(request.model, gpu)
        return generation.backend_report(
            generator,
            request.model,
            served,
            generation.weights_of(request),
            self.ctx.settings.renderer,
        )

    def render_frame(
        self,
        request: FrameIn,
        mask_record: dict,
        etag: str,
        cache_ttl: int | None,
        gpu: str = "v100",
    ) -> dict:
        cached = self.ctx.jobs.cache_get(etag)
        if cached is None:
            width, height = parse_resolution(request.resolution)
            _, scene = SCENES.get(self.ctx, request.reference_image_id, mask_record, width, height)
            _, generator = self.generator(request.model, gpu)
            z = validate_z(request.z_t)[None]
            options = generation.options_for(request, etag)
            frame, alpha, _ = next(iter(generator.generate(scene, z, options)))
            cached = {
                "reference_image_id": request.reference_image_id,
                "frame_index": request.frame_index,
                "control_type": request.control_type,
                "resolution": f"{width}x{height}",
                "etag": etag,
                "backend": self.backend(request, gpu),
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
            self.ctx.jobs.cache_put(etag, cached, cache_ttl or DEFAULT_CACHE_TTL)
        return self.present(cached, request.url_ttl)

    def video_plan(
        self,
        request: VideoTask,
        gpu: str,
        *,
        background_key: str | None = None,
        cast: list[str] | None = None,
    ) -> tuple[np.ndarray, dict, str]:
        """Validate and key a video. ``background_key``: an artifact key of a background
        photograph (the Sora-style door's scene words); ``cast``: the references of every
        character in the frame, the request's first; both part of the ETag."""
        settings = self.ctx.settings
        if request.include_mask:
            raise InvalidInputError(
                "include_mask is supported on /v1/generate/frame; videos carry no mask track.",
                field="include_mask",
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
        served = self.check_generator(request.model, gpu, width, height, len(z_sequence))
        mask_record = self.references.require_processed(request.reference_image_id)
        etag = etag_for(
            "video",
            self.references.version(request.reference_image_id, mask_record),
            {
                "z": hashlib.sha256(z_sequence.tobytes()).hexdigest(),
                "resolution": f"{width}x{height}",
                "format": request.format,
                "fps": request.fps,
                "model": request.model,
                "renderer": settings.renderer,
                **_generation_fields(request, served),
                **({"background": background_key} if background_key else {}),
                **(
                    {
                        "cast": [
                            [
                                ref,
                                self.references.version(
                                    ref, self.references.require_processed(ref)
                                ),
                            ]
                            for ref in cast
                        ]
                    }
                    if cast
                    else {}
                ),
            },
        )
        return z_sequence, mask_record, etag

    def result_fields(self, request: VideoTask, etag: str, gpu: str = "v100") -> dict:
        return {
            "reference_image_id": request.reference_image_id,
            "control_type": request.control_type,
            "etag": etag,
            "backend": self.backend(request, gpu),
        }

    def render_video(
        self,
        request: VideoTask,
        z_sequence: np.ndarray,
        mask_record: dict,
        etag: str,
        cache_ttl: int | None,
        gpu: str = "v100",
    ) -> dict:
        cached = self.ctx.jobs.cache_get(etag)
        if cached is None:
            width, height = parse_resolution(request.resolution)
            renderer, scene = SCENES.get(
                self.ctx, request.reference_image_id, mask_record, width, height
            )
            _, generator = self.generator(request.model, gpu)
            layers = generator.generate(scene, z_sequence, generation.options_for(request, etag))
            with tempfile.TemporaryDirectory() as folder:
                local = Path(folder) / f"video.{request.format}"
                info = processing.render_video_file(
                    scene, layers, local, video_format=request.format, fps=request.fps
                )
                key = catalog.generated_key(etag, f"video.{request.format}")
                self.store.put_file(local, key)
            cached = processing.video_result(
                self.result_fields(request, etag, gpu),
                key,
                info,
                video_format=request.format,
                fps=request.fps,
                renderer=renderer.name,
            )
            self.ctx.jobs.cache_put(etag, cached, cache_ttl or DEFAULT_CACHE_TTL)
        return self.present(cached, request.url_ttl)

    def job_spec(
        self,
        request: VideoTask,
        z_sequence: np.ndarray,
        etag: str,
        gpu: str,
        count: int,
        key_id: str,
        cache_ttl: int | None,
        group: str | None = None,
        background_key: str | None = None,
        cast: list[str] | None = None,
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
            "result_fields": self.result_fields(request, etag, gpu),
            "etag": etag,
            "generation": generation.spec(
                generation.served_mode(self.ctx.settings, request.model),
                generation.options_for(request, etag),
            ),
        }
        if group:
            job_request["group"] = group
        if background_key:  # its run places the character over this photograph
            job_request["background_key"] = background_key
        if cast:  # several characters in the frame: a batch run renders it (assets/batch.py)
            job_request["cast"] = cast
        if self.ctx.jobs.cache_get(etag) is None:
            self.store.write_bytes(
                catalog.job_sequence_key(job_id), processing.npy_bytes(z_sequence)
            )
        return {
            "kind": "video",
            "reference_image_id": request.reference_image_id,
            "request": job_request,
            "api_key_id": key_id,
            "account_id": self.ctx.account,
            "callback_url": request.callback_url,
            "gpu_type": gpu,
            "instance_count": count,
            "job_id": job_id,
        }

    def create_jobs(self, specs: list[dict], url_ttls: list[int | None]) -> list[Job]:
        """Create the jobs in one transaction; those whose render is cached complete at once.

        A lone job (no batch group), when no other job waits, has its run launched before
        its row exists (``_launch_first``); in a burst, the sensor's next tick groups the
        waiting jobs into runs."""
        if len(specs) == 1 and not specs[0]["request"].get("group"):
            self._launch_first(specs[0])
        jobs = self.ctx.jobs.create_jobs(specs)
        for job, url_ttl in zip(jobs, url_ttls, strict=True):
            cached = self.ctx.jobs.cache_get(job.request["etag"])
            if cached is not None:
                payload = completion_payload(
                    job.id,
                    cached,
                    store=self.store,
                    secret=self.ctx.signing_key,
                    base_url=self.ctx.settings.base_url,
                    url_ttl=url_ttl,
                )
                self.ctx.jobs.complete_job(job.id, cached, payload)
        return [self.ctx.jobs.get_job(job.id) for job in jobs]

    def _launch_first(self, spec: dict) -> None:
        """Launch the job's run now through the instance's run coordinator (the webserver's
        GraphQL API) instead of on the sensor's next tick (up to 5 s later), then mark the
        job so the sensor leaves it alone. The run is launched *before* the job row exists,
        so the sensor can never request a second one; if the launch fails the job is created
        unmarked and the sensor requests its run as for any job. (The run reaches the job
        row a few seconds later, after its queue and process start.)"""
        request = spec["request"]
        if (
            self.ctx.launcher is None
            or self.ctx.jobs.cache_get(request["etag"]) is not None  # answered from the cache
            or self.ctx.jobs.has_pending()  # a burst: grouped runs serve it better
        ):
            return
        job = Job.from_spec(spec)
        try:
            run_id = self.ctx.launcher.launch(job)
        except Exception as exc:
            _log.warning("%s: launching its run at once failed (%s); the sensor will", job.id, exc)
            return
        request["launch"] = {"by": "api", "run_id": run_id}

    def submit_video(
        self,
        request: VideoTask,
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

    def check_callback(self, callback_url: str | None) -> None:
        if callback_url is None:
            return
        try:
            check_outbound_url(callback_url, parse_allowlist(self.ctx.settings.outbound_allow))
        except OutboundUrlError as exc:
            raise InvalidInputError(exc.message, field="callback_url", **exc.details) from exc


def _generation_fields(request: FrameIn | VideoTask, served: str) -> dict:
    """What changes a generative mode's output beyond the z values (part of the ETag)."""
    if served == "gan":
        return {}
    return {
        "served": served,
        "prompt": request.prompt,
        "seed": request.seed,
        "identity_strength": request.identity_strength,
        "temporal_strength": request.temporal_strength,
    }
