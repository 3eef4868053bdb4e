"""Videos of @mentioned characters (the Sora-style door's `/v1/videos`, OpenAI's video object).

A prompt such as "@gift_box_1a2b hopping on a beach, sunny day" names a character of the
account; the rest of the prompt drives the text control (the motion) and, for the generative
modes, describes the look. The video is an ordinary video job (services/renders.py): the
same ETag, cache, Dagster runs, cancelling and webhooks as `/v1/generate/video`; this module
only maps it to and from OpenAI's words (queued / in_progress / completed / failed).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from char_pipeline import jobstate
from char_pipeline.engine.backgrounds import scene_for, scene_image
from char_pipeline.engine.errors import ConflictError, InvalidInputError, NotFoundError
from char_pipeline.engine.images import encode_png
from char_pipeline.jobstore import Job
from char_pipeline.jobstore.jobs import JobFilter
from char_pipeline.services import jobs as job_views
from char_pipeline.services.context import ServiceContext
from char_pipeline.services.controls import text_control
from char_pipeline.services.renders import Renders
from char_pipeline.services.requests import TextControlIn, VideoTask

MENTION = re.compile(r"@([A-Za-z0-9_.]+)")
FPS = 24
MAX_SECONDS = 20
MAX_CAST = 4  # characters side by side in one frame
STATUS_WORDS = {
    "pending": "queued",
    "processing": "in_progress",
    "completed": "completed",
    "failed": "failed",
    "cancelled": "failed",
}


def parse_seconds(value: str | int | None) -> int:
    text = "4" if value is None else str(value).strip()
    if not text.isdigit() or not 1 <= int(text) <= MAX_SECONDS:
        raise InvalidInputError(
            f"seconds must be a whole number of seconds from 1 to {MAX_SECONDS}; got {value!r}.",
            field="seconds",
        )
    return int(text)


def parse_size(value: str | None) -> str:
    text = (value or "1280x720").strip()
    if not re.fullmatch(r"\d+x\d+", text):
        raise InvalidInputError(
            f"size must look like '1280x720' (WIDTHxHEIGHT); got {value!r}.", field="size"
        )
    return text


class Videos:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.renders = Renders(ctx)

    def create(
        self,
        *,
        model: str | None,
        prompt: str | None,
        size: str | None,
        seconds: str | int | None,
        gpu: str,
        count: int,
        key_id: str,
        callback_url: str | None = None,
    ) -> dict:
        if not prompt or not prompt.strip():
            raise InvalidInputError("prompt is required.", field="prompt")
        if len(prompt) > 2000:
            raise InvalidInputError("prompt is at most 2000 characters.", field="prompt")
        seconds_value, resolution = parse_seconds(seconds), parse_size(size)
        characters = self._mentioned(prompt)
        if len(characters) > MAX_CAST:
            names = ", ".join("@" + c.username for c in characters)
            raise InvalidInputError(
                f"The prompt mentions {len(characters)} characters ({names}); at most "
                f"{MAX_CAST} fit in one video.",
                field="prompt",
                characters=[c.id for c in characters],
            )
        generator = self.ctx.settings.videos_generator
        if len(characters) > 1 and generator != "gan":
            raise InvalidInputError(
                f"Several characters in one video are rendered by the mesh renderer only; this "
                f"deployment renders videos with '{generator}'. Mention one character.",
                field="prompt",
            )
        character = characters[0]  # the first mentioned leads: its kind picks the motion
        action = MENTION.sub(" ", prompt).strip() or "idle"
        control = text_control(
            self.ctx,
            TextControlIn(
                reference_image_id=character.reference_image_id,
                prompt=action,
                steps=seconds_value * FPS,
                model="custom-nlp",
            ),
        )
        task = VideoTask(
            reference_image_id=character.reference_image_id,
            control_type="text",
            z_sequence=control["z_sequence"],
            format="mp4",
            resolution=resolution,
            fps=FPS,
            model=generator,
            prompt=action,
            callback_url=callback_url,
        )
        self.renders.check_callback(callback_url)
        scene = scene_for(action)
        background_key = self._background(scene[0]) if scene else None
        cast = [c.reference_image_id for c in characters] if len(characters) > 1 else None
        z_sequence, _, etag = self.renders.video_plan(
            task, gpu, background_key=background_key, cast=cast
        )
        spec = self.renders.job_spec(
            task,
            z_sequence,
            etag,
            gpu,
            count,
            key_id,
            None,
            background_key=background_key,
            cast=cast,
        )
        spec["request"]["video"] = {
            "model": model or "sora-2",
            "prompt": prompt,
            "size": resolution,
            "seconds": str(seconds_value),
            "characters": [c.id for c in characters],
            "motion": control["motion"],
            "motion_notice": control.get("notice"),
            "scene": scene[0] if scene else None,
        }
        (job,) = self.renders.create_jobs([spec], [None])
        return self.view(job)

    def _background(self, scene: str) -> str:
        """The scene's photograph as an artifact (written once), so any worker can read it."""
        key = f"backgrounds/{scene.replace(' ', '_')}.png"
        if not self.ctx.store.exists(key):
            self.ctx.store.write_bytes(key, encode_png(scene_image(scene)))
        return key

    def _mentioned(self, prompt: str) -> list:
        names = list(dict.fromkeys(MENTION.findall(prompt)))
        if not names:
            raise InvalidInputError(
                "The prompt mentions no character: start it with @username or @char_id of one "
                "of your characters (POST /sora/v1/characters).",
                field="prompt",
            )
        found = []
        for name in names:
            character = self.ctx.jobs.get_character(self.ctx.account, name)
            if character is None:
                raise InvalidInputError(
                    f"The prompt mentions @{name}, which is not one of your characters.",
                    field="prompt",
                    mention=name,
                )
            if character.id not in [c.id for c in found]:
                found.append(character)
        return found

    # — views —

    def owned(self, video_id: str) -> Job:
        job = self.ctx.jobs.get_job(video_id)
        if (
            job is None
            or not self.ctx.may_see(job.account_id)
            or "video" not in job.request
            or self.ctx.store.exists(_deleted_key(video_id))
        ):
            raise NotFoundError(f"No video {video_id!r}.", video_id=video_id)
        return job

    def view(self, job: Job) -> dict:
        video = job.request["video"]
        status = STATUS_WORDS[job.status]
        view = {
            "id": job.id,
            "object": "video",
            "model": video["model"],
            "status": status,
            "progress": round(job.progress if jobstate.is_open(job.status) else 100),
            "created_at": _unix(job.created_at),
            "completed_at": _unix(job.updated_at) if job.status == "completed" else None,
            "size": video["size"],
            "seconds": video["seconds"],
            "prompt": video["prompt"],
            "characters": video["characters"],
            "motion": video.get("motion"),  # extensions: what the text control played, and why
            "motion_notice": video.get("motion_notice"),
            "scene": video.get("scene"),
            "error": None,
        }
        if job.status == "failed":
            error = job.error or {}
            view["error"] = {"code": error.get("code", "failed"), "message": error.get("message")}
        elif job.status == "cancelled":
            view["error"] = {"code": "cancelled", "message": job.message or "Cancelled."}
        if job.status == "completed":
            result = self.renders.present(job.result, None)
            view["backend"] = job.result.get("backend")
            view["expires_at"] = _unix(result.get("expires_at"))
        return view

    def get(self, video_id: str) -> dict:
        return self.view(self.owned(video_id))

    def content(self, video_id: str) -> bytes:
        job = self.owned(video_id)
        if job.status != "completed":
            raise ConflictError(
                f"Video {video_id} is {STATUS_WORDS[job.status]}; its content exists once it "
                "has completed.",
                video_id=video_id,
                status=STATUS_WORDS[job.status],
            )
        return self.ctx.store.read_bytes(job.result["video_key"])

    def listing(self, limit: int, after: str | None) -> dict:
        """The account's videos, newest first (video jobs made by this door)."""
        before = None
        if after:
            before = self.owned(after).seq
        found: list[Job] = []
        more = False
        while True:
            page = self.ctx.jobs.list_jobs(
                self.ctx.account, JobFilter(kind="video"), before_seq=before, limit=100
            )
            for job in page:
                if "video" in job.request and not self.ctx.store.exists(_deleted_key(job.id)):
                    if len(found) == limit:
                        more = True
                        break
                    found.append(job)
            if more or len(page) < 100:
                break
            before = page[-1].seq
        data = [self.view(job) for job in found]
        return {
            "object": "list",
            "data": data,
            "has_more": more,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }

    def delete(self, video_id: str) -> dict:
        """Cancel it if it is still running, and forget it. The MP4 itself stays while the
        render cache may still answer an identical request with it (its TTL)."""
        job = self.owned(video_id)
        if jobstate.is_open(job.status):
            job_views.cancel(self.ctx, video_id)
        self.ctx.store.write_json(_deleted_key(video_id), {"deleted_at": time.time()})
        return {"id": video_id, "object": "video.deleted", "deleted": True}


def _deleted_key(video_id: str) -> str:
    return f"videos/deleted/{video_id}.json"


def _unix(iso: str | None) -> int | None:
    if iso is None:
        return None
    return int(datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())
