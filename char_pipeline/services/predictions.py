"""InstantCharacter-style predictions (seeds 003/004): a character image from a reference and
a prompt, in WaveSpeed's envelope.

The embedded default (no FLUX-class weights are installed anywhere this project is tested):
the reference is uploaded and processed like any other (mask, identity, rig), the prompt's
action poses it through the text control (the library motion its words name), the prompt's
scene words choose a background photograph (engine/backgrounds.py), and ``num_images``
variations are different moments of that motion, chosen by the seed. ``data.model`` says
so. Every output goes through the safety checker unless ``enable_safety_checker`` is false.
Predictions run in the API process (``ServiceContext.processor``), like reference
processing: an image takes about a second, not a Dagster run.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import tempfile
import time
from pathlib import Path

import numpy as np

from char_pipeline.engine import safety
from char_pipeline.engine.backgrounds import scene_for, scene_image
from char_pipeline.engine.errors import (
    CharPipelineError,
    InvalidInputError,
    NotFoundError,
    ResourceUnavailableError,
)
from char_pipeline.engine.generators.instant_character import ENTRIES as INSTANT_ENTRIES
from char_pipeline.engine.generators.instant_character import InstantCharacterGenerator
from char_pipeline.engine.generators.policy import plan_generation
from char_pipeline.engine.generators.store import ModelStore
from char_pipeline.engine.images import encode_png, load_reference_image
from char_pipeline.engine.renderers import get_renderer, playable_sequence
from char_pipeline.jobstore import Prediction
from char_pipeline.links import DEFAULT_URL_TTL, signed_url
from char_pipeline.services import processing
from char_pipeline.services.characters import fetch_outbound
from char_pipeline.services.context import ServiceContext
from char_pipeline.services.controls import text_control
from char_pipeline.services.references import References
from char_pipeline.services.requests import TextControlIn
from char_pipeline.webhooks import OutboundUrlError, check_outbound_url, parse_allowlist

MODEL_ID = "wavespeed-ai/instant-character"
SERVED_BY = f"{MODEL_ID} (embedded default: the mesh renderer posed by the prompt; no FLUX weights)"
FLUX_MODEL = f"{MODEL_ID} (FLUX.1-dev + subject adapter, engine/generators/instant_character.py)"
_SIZE = re.compile(r"^(\d+)\*(\d+)$")
_DATA_URI = re.compile(r"^data:image/[a-z0-9.+-]+;base64,(.*)$", re.I | re.S)
FIELDS = {
    "prompt",
    "image",
    "size",
    "seed",
    "negative_prompt",
    "guidance_scale",
    "num_inference_steps",
    "num_images",
    "enable_safety_checker",
    "enable_sync_mode",
    "enable_base64_output",
}
MOTION_STEPS = 48
# A prediction renders in seconds; one still open after this long lost its process.
STALE_SECONDS = 600


def validate(body: object) -> dict:
    """The request's fields with the seed's defaults and ranges; a 400 naming the field."""
    if not isinstance(body, dict):
        raise InvalidInputError("The body must be a JSON object.")
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise InvalidInputError(f"Unknown field {unknown[0]!r}.", field=unknown[0])

    def text(name: str, *, required: bool = False, default: str = "") -> str:
        value = body.get(name, None)
        if value is None or value == "":
            if required:
                raise InvalidInputError(f"{name} is required.", field=name)
            return default
        if not isinstance(value, str):
            raise InvalidInputError(f"{name} must be a string.", field=name)
        return value

    def number(name: str, default, low, high, kind):
        value = body.get(name, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidInputError(f"{name} must be a number.", field=name)
        if kind is int and value != int(value):
            raise InvalidInputError(f"{name} must be an integer.", field=name)
        if not low <= value <= high:
            raise InvalidInputError(
                f"{name} must be from {low} to {high}; got {value}.", field=name
            )
        return kind(value)

    def flag(name: str, default: bool) -> bool:
        value = body.get(name, default)
        if not isinstance(value, bool):
            raise InvalidInputError(f"{name} must be true or false.", field=name)
        return value

    prompt = text("prompt", required=True)
    if len(prompt) > 2000:
        raise InvalidInputError("prompt is at most 2000 characters.", field="prompt")
    size = text("size", default="1024*1024")
    match = _SIZE.match(size)
    if not match:
        raise InvalidInputError(
            f"size must be 'WIDTH*HEIGHT', e.g. '1024*1024'; got {size!r}.", field="size"
        )
    width, height = int(match.group(1)), int(match.group(2))
    if not (256 <= width <= 1536 and 256 <= height <= 1536):
        raise InvalidInputError(
            f"size: each dimension must be from 256 to 1536; got {size!r}.", field="size"
        )
    seed = number("seed", -1, -1, 2_147_483_647, int)
    return {
        "prompt": prompt,
        "image": text("image", required=True),
        "size": size,
        "width": width,
        "height": height,
        "seed": seed,
        "negative_prompt": text("negative_prompt"),
        "guidance_scale": number("guidance_scale", 3.5, 0, 20, float),
        "num_inference_steps": number("num_inference_steps", 28, 1, 50, int),
        "num_images": number("num_images", 1, 1, 4, int),
        "enable_safety_checker": flag("enable_safety_checker", True),
        "enable_sync_mode": flag("enable_sync_mode", False),
        "enable_base64_output": flag("enable_base64_output", False),
    }


class Predictions:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.store = ctx.store

    def submit(self, body: object, *, api_key_id: str | None, webhook: str | None) -> dict:
        request = validate(body)
        if request["seed"] == -1:
            request["seed"] = secrets.randbelow(2_147_483_647)  # the one used is returned
        if webhook:
            try:
                check_outbound_url(webhook, parse_allowlist(self.ctx.settings.outbound_allow))
            except OutboundUrlError as exc:
                raise InvalidInputError(f"webhook: {exc.message}", field="webhook") from exc
        image = self._image_bytes(request["image"])  # a bad image is this request's 400
        try:
            load_reference_image(
                image,
                max_bytes=self.ctx.settings.max_image_bytes,
                max_pixels=self.ctx.settings.max_image_pixels,
            )
        except CharPipelineError as exc:
            raise InvalidInputError(f"image: {exc.message}", field="image") from exc
        # Uploaded now, so its processing (mask, identity, rig) is queued before the render
        # that waits for it, on the same worker pool.
        request["reference_image_id"] = References(self.ctx).upload(
            image, "instant-character-input"
        )["reference_image_id"]
        generator, why = self._generator()
        if generator is None:
            request["served_note"] = why
        prediction = self.ctx.jobs.create_prediction(
            self.ctx.account, api_key_id, FLUX_MODEL if generator else SERVED_BY, request, webhook
        )
        if request["enable_sync_mode"]:
            self.run(prediction.id)
        else:
            self.ctx.processor.submit(self.run, prediction.id)
        return self.envelope(self.get(prediction.id))

    def _generator(self):
        """The FLUX + subject adapter generator when its weights and a GPU (or allowed CPU
        generation) are here, else (None, why): the embedded default serves, and says so."""
        store = ModelStore(self.ctx.settings.models_root)
        missing = [name for name in INSTANT_ENTRIES if not store.installed(name)]
        if missing:
            return None, f"not installed: {', '.join(missing)}"
        try:
            plan = plan_generation("a100", allow_cpu=self.ctx.settings.allow_cpu_generation)
        except ResourceUnavailableError as exc:
            return None, exc.message
        return InstantCharacterGenerator(store, plan), None

    def _image_bytes(self, value: str) -> bytes:
        limit = self.ctx.settings.max_image_bytes
        data_uri = _DATA_URI.match(value)
        if data_uri:
            try:
                data = base64.b64decode(data_uri.group(1), validate=True)
            except binascii.Error as exc:
                raise InvalidInputError(
                    "image: the data URI is not valid base64.", field="image"
                ) from exc
            if len(data) > limit:
                raise InvalidInputError(f"image is larger than {limit:,} bytes.", field="image")
            return data
        if not value.startswith(("https://", "http://")):
            raise InvalidInputError(
                "image must be an https URL or a data URI (data:image/png;base64,…).",
                field="image",
            )
        with tempfile.TemporaryDirectory(prefix="prediction_") as folder:
            local = Path(folder) / "image"
            try:
                fetch_outbound(
                    value,
                    local,
                    allow=parse_allowlist(self.ctx.settings.outbound_allow),
                    max_bytes=limit,
                    max_seconds=self.ctx.settings.clip_fetch_seconds,
                )
            except InvalidInputError as exc:
                raise InvalidInputError(f"image: {exc.message}", field="image") from exc
            return local.read_bytes()

    def run(self, prediction_id: str) -> None:
        """Render the prediction's images; any failure is the prediction's, never lost."""
        prediction = self.ctx.jobs.get_prediction(prediction_id)
        self.ctx.jobs.start_prediction(prediction_id)
        started = time.perf_counter()
        try:
            result = self._render(prediction)
            error = None
        except CharPipelineError as exc:
            result, error = None, exc.message
        except Exception as exc:  # the innermost cause, as every door reports it
            result, error = None, f"{type(exc).__name__}: {exc}"
        elapsed = round((time.perf_counter() - started) * 1000)
        finished = self.ctx.jobs.get_prediction(prediction_id)
        payload = None
        if finished.webhook_url:
            payload = self.envelope(
                _with(
                    finished,
                    result=result,
                    error=error,
                    inference_ms=elapsed,
                    status="completed" if error is None else "failed",
                )
            )
        self.ctx.jobs.finish_prediction(
            prediction_id, result=result, error=error, inference_ms=elapsed, webhook_payload=payload
        )

    def _render(self, prediction: Prediction) -> dict:
        request = prediction.request
        reference_id = request["reference_image_id"]
        mask_record = References(self.ctx).require_processed(reference_id)
        if prediction.model == FLUX_MODEL:
            return self._render_flux(prediction, mask_record)
        control = text_control(
            self.ctx,
            TextControlIn(
                reference_image_id=reference_id,
                prompt=request["prompt"],
                steps=MOTION_STEPS,
                model="custom-nlp",
            ),
        )
        z_sequence = np.asarray(control["z_sequence"], dtype=np.float32)
        scene_word = scene_for(request["prompt"])
        renderer = get_renderer(self.ctx.settings.renderer)
        character = processing.load_character(self.store, reference_id, mask_record)
        scene = processing.prepare_scene(
            renderer,
            character,
            request["width"],
            request["height"],
            "image" if scene_word else "auto",
            background_image=scene_image(scene_word[0]) if scene_word else None,
        )
        played = playable_sequence(renderer, scene, z_sequence)
        rng = np.random.default_rng(request["seed"])
        phase = float(rng.random())
        images = []
        for index in range(request["num_images"]):
            moment = int(((phase + index / request["num_images"]) % 1.0) * len(played))
            images.append(renderer.render_layers(scene, played[moment])[0])
        return self._store_outputs(
            prediction,
            images,
            {
                "motion": control["motion"],
                "motion_notice": control.get("notice"),
                "scene": scene_word[0] if scene_word else "the reference's own background",
                "served_note": request.get("served_note"),
            },
        )

    def _render_flux(self, prediction: Prediction, mask_record: dict) -> dict:
        request = prediction.request
        generator, why = self._generator()
        if generator is None:
            raise ResourceUnavailableError(f"The FLUX generator is no longer available: {why}.")
        character = processing.load_character(
            self.store, request["reference_image_id"], mask_record
        )
        alpha = character.soft_mask[..., None].astype(np.float32) / 255.0
        over_white = character.rgb.astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        x0, y0, x1, y1 = character.bbox
        cutout = np.clip(over_white[y0:y1, x0:x1], 0, 255).astype(np.uint8)
        images = generator.generate(
            cutout,
            request["prompt"],
            width=request["width"],
            height=request["height"],
            seed=request["seed"],
            num_images=request["num_images"],
            steps=request["num_inference_steps"],
            guidance_scale=request["guidance_scale"],
            negative_prompt=request["negative_prompt"],
        )
        return self._store_outputs(prediction, images, {"backend": generator.report()})

    def _store_outputs(self, prediction: Prediction, images: list, extra: dict) -> dict:
        """Each image through the safety checker (blurred when flagged), then stored."""
        request = prediction.request
        outputs, flags, checks = [], [], []
        for index, frame in enumerate(images):
            flagged = False
            if request["enable_safety_checker"]:
                check = safety.check_image(
                    frame,
                    threshold=self.ctx.settings.nsfw_threshold,
                    classes=tuple(self.ctx.settings.nsfw_classes.split(",")),
                )
                flagged = check.flagged
                checks.append(check.to_json())
                if flagged:
                    frame = safety.withheld(frame)
            key = f"predictions/{prediction.id}/{index}.png"
            self.store.write_bytes(key, encode_png(frame))
            outputs.append(key)
            flags.append(flagged)
        return {
            "output_keys": outputs,
            "has_nsfw_contents": flags,
            "reference_image_id": request["reference_image_id"],
            "safety": checks,
            **extra,
        }

    def get(self, prediction_id: str) -> Prediction:
        prediction = self.ctx.jobs.get_prediction(prediction_id)
        if prediction is None or not self.ctx.may_see(prediction.account_id):
            raise NotFoundError(f"Prediction {prediction_id!r} not found.", id=prediction_id)
        if prediction.status in ("created", "processing") and _age(prediction) > STALE_SECONDS:
            # Its API process stopped while it rendered (a restart): say so instead of
            # leaving the client polling forever.
            self.ctx.jobs.finish_prediction(
                prediction_id,
                result=None,
                error="Interrupted: the server stopped while this prediction rendered; "
                "submit it again.",
                inference_ms=None,
                webhook_payload=None,
            )
            prediction = self.ctx.jobs.get_prediction(prediction_id)
        return prediction

    def envelope(self, prediction: Prediction) -> dict:
        """WaveSpeed's response, field for field."""
        base = self.ctx.settings.base_url
        result = prediction.result or {}
        outputs = []
        if prediction.status == "completed":
            expires = int(time.time()) + DEFAULT_URL_TTL
            for key in result.get("output_keys", []):
                if prediction.request.get("enable_base64_output"):
                    data = base64.b64encode(self.store.read_bytes(key)).decode()
                    outputs.append(f"data:image/png;base64,{data}")
                else:
                    outputs.append(signed_url(self.store, self.ctx.signing_key, base, key, expires))
        return {
            "code": 200,
            "message": "success",
            "data": {
                "id": prediction.id,
                "model": prediction.model,
                "outputs": outputs,
                "urls": {"get": f"{base}/api/v3/predictions/{prediction.id}/result"},
                "has_nsfw_contents": result.get("has_nsfw_contents", [])
                if prediction.status == "completed"
                else [],
                "status": prediction.status,
                "created_at": prediction.created_at.replace("Z", ".000Z"),
                "error": prediction.error or "",
                "timings": {"inference": prediction.inference_ms or 0},
            },
        }


def _age(prediction: Prediction) -> float:
    from datetime import UTC, datetime

    created = datetime.strptime(prediction.created_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return time.time() - created.timestamp()


def _with(prediction: Prediction, **changes) -> Prediction:
    from dataclasses import replace

    return replace(prediction, **changes)
