"""Characters from a video clip (the Sora-style door, seed 002): create, list, get, delete.

A character is a reference (the same upload, processing and Dagster assets as
``POST /v1/reference-image``) made from the best frame of a 1–3 s segment of a video, with a
username the account's prompts can @mention. The video comes from a URL (fetched under the
same outbound rules as webhooks) or is one this service rendered for the account
(``video_id``). A photographic human face is refused by default (the seed's policy;
``CHAR_CHARACTERS_FACE_POLICY``), drawn characters, products and animals pass.
"""

from __future__ import annotations

import re
import secrets
import tempfile
import time
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import cv2
import numpy as np

from char_pipeline.engine import clips
from char_pipeline.engine.errors import ConflictError, InvalidInputError, NotFoundError
from char_pipeline.engine.faces import face_score
from char_pipeline.engine.images import encode_png, load_reference_image
from char_pipeline.engine.segmentation import segment_subject
from char_pipeline.jobstore import Character, UsernameTaken
from char_pipeline.links import DEFAULT_URL_TTL, signed_url
from char_pipeline.services.context import ServiceContext
from char_pipeline.services.references import References
from char_pipeline.services.requests import CharacterIn
from char_pipeline.webhooks import OutboundUrlError, check_outbound_url, parse_allowlist

MODEL = "sora-character"
USERNAME = re.compile(r"^[a-z0-9_.]{3,40}$")
MAX_REDIRECTS = 3
PROFILE_SIDE = 256


class Characters:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.store = ctx.store

    @property
    def account(self) -> str:
        assert self.ctx.account is not None, "characters belong to an account"
        return self.ctx.account

    def create(self, body: CharacterIn, api_key_id: str | None = None) -> dict:
        if body.model != MODEL:
            raise InvalidInputError(
                f"model must be '{MODEL}'; got {body.model!r}.", field="model", rule="model"
            )
        if (body.url is None) == (body.video_id is None):
            raise InvalidInputError(
                "Send exactly one of url (a video to fetch) or video_id (a video this service "
                "rendered).",
                field="url",
                rule="url xor video_id",
            )
        start, end = clips.parse_timestamps(body.timestamps)
        if body.username is not None and not USERNAME.match(body.username):
            raise InvalidInputError(
                "username must be 3–40 characters of a–z, 0–9, '_' or '.'.",
                field="username",
                rule="username",
            )
        with tempfile.TemporaryDirectory(prefix="clip_") as folder:
            local = Path(folder) / "clip"
            source = self._fetch(body, local)
            segment = clips.read_segment(local, start, end)
        chosen, figures, mask_source = self._choose(segment)
        frame = segment.frames[chosen]
        username = body.username or self._derive_username(body.display_name, source)
        if body.username is not None and self.ctx.jobs.username_taken(self.account, username):
            raise ConflictError(
                f"This account already has a character named @{username}.",
                field="username",
                rule="username unique",
            )
        reference = References(self.ctx).upload(encode_png(frame), f"{username}.png")
        character_id = "char_" + secrets.token_hex(6)
        self.store.write_bytes(_profile_key(character_id), _profile_jpeg(frame, figures["mask"]))
        record = {
            **source,
            "timestamps": body.timestamps,
            "segment": [start, end],
            "video": {
                "duration_s": segment.duration_s,
                "fps": segment.fps,
                "width": segment.width,
                "height": segment.height,
                "container": segment.container,
                "codec": segment.codec,
            },
            "chosen_time_s": segment.times[chosen],
            "frames": figures["scores"],
            "mask_source": mask_source,
        }
        try:
            character = self.ctx.jobs.create_character(
                self.account,
                api_key_id,
                username,
                body.display_name or _display_name(username),
                reference["reference_image_id"],
                record,
                character_id=character_id,
            )
        except UsernameTaken as exc:
            raise ConflictError(
                f"This account already has a character named @{username}.",
                field="username",
                rule="username unique",
            ) from exc
        return self.view(character)

    def view(self, character: Character, *, detail: bool = False) -> dict:
        base = self.ctx.settings.base_url
        expires = int(time.time()) + DEFAULT_URL_TTL
        view = {
            "id": character.id,
            "username": character.username,
            "display_name": character.display_name,
            "permalink": f"{base}/sora/v1/characters/{character.username}",
            "profile_picture_url": signed_url(
                self.store, self.ctx.signing_key, base, _profile_key(character.id), expires
            ),
        }
        if detail:
            view.update(
                object="character",
                reference_image_id=character.reference_image_id,
                created_at=character.created_at,
                source=character.source,
            )
        return view

    def get(self, name: str) -> Character:
        character = self.ctx.jobs.get_character(self.account, name)
        if character is None:
            raise NotFoundError(f"No character {name!r}.", character=name)
        return character

    def listing(self, limit: int, after: str | None) -> dict:
        if after is not None:
            self.get(after)  # an unknown cursor is a 404, as for videos
        found, more = self.ctx.jobs.list_characters(self.account, limit, after)
        return {
            "object": "list",
            "data": [self.view(character, detail=True) for character in found],
            "has_more": more,
            "last_id": found[-1].id if found else None,
        }

    def delete(self, name: str) -> dict:
        character = self.get(name)
        self.ctx.jobs.delete_character(self.account, character.id)
        self.store.delete(_profile_key(character.id))
        return {"id": character.id, "object": "character.deleted", "deleted": True}

    # — the clip —

    def _fetch(self, body: CharacterIn, local: Path) -> dict:
        if body.video_id is not None:
            return self._rendered_video(body.video_id, local)
        fetch_outbound(
            body.url,
            local,
            allow=parse_allowlist(self.ctx.settings.outbound_allow),
            max_bytes=self.ctx.settings.clip_max_bytes,
            max_seconds=self.ctx.settings.clip_fetch_seconds,
        )
        return {"url": body.url}

    def _rendered_video(self, video_id: str, local: Path) -> dict:
        """A video this service rendered for the account: a completed video job's MP4."""
        job = self.ctx.jobs.get_job(video_id)
        if job is None or not self.ctx.may_see(job.account_id) or job.kind != "video":
            raise NotFoundError(f"No video {video_id!r}.", field="video_id")
        if job.status != "completed" or not (job.result or {}).get("video_key"):
            raise InvalidInputError(
                f"The video {video_id!r} is {job.status}; only a completed video can make a "
                "character.",
                field="video_id",
                rule="video completed",
            )
        local.write_bytes(self.store.read_bytes(job.result["video_key"]))
        return {"video_id": video_id}

    def _choose(self, segment: clips.Segment) -> tuple[int, dict, str]:
        """The best sampled frame, every frame's figures, and the face policy on them all."""
        masks, sources, faces = [], [], []
        for rgb in segment.frames:
            reference = load_reference_image(encode_png(rgb))
            mask = segment_subject(reference)
            masks.append(mask.binary)
            sources.append(mask.source)
            faces.append(face_score(rgb))
        scores = clips.score_frames(segment.frames, masks, segment.times)
        chosen = int(np.argmax([score.score for score in scores]))
        if scores[chosen].score <= 0:
            raise InvalidInputError(
                "No character was found in the segment (segmentation found no subject in any "
                "sampled frame).",
                field="timestamps",
                rule="subject visible",
            )
        if self.ctx.settings.characters_face_policy:
            for time_s, score, source in zip(segment.times, faces, sources, strict=True):
                if clips.photographic_face(score, source):
                    raise InvalidInputError(
                        f"The clip shows a real human face (face detector score {score:.2f} at "
                        f"{time_s:g} s). Characters cannot be made of real people; drawn or "
                        "animated characters, products and animals can.",
                        field="url",
                        rule="no real human faces",
                        face_score=round(score, 3),
                        time_s=time_s,
                    )
        figures = {
            "scores": [
                {**score.to_json(), "face_score": round(face or 0.0, 3), "mask_source": source}
                for score, face, source in zip(scores, faces, sources, strict=True)
            ],
            "mask": masks[chosen],
        }
        return chosen, figures, sources[chosen]

    def _derive_username(self, display_name: str | None, source: dict) -> str:
        stem = display_name or Path(urlsplit(source.get("url", "")).path).stem or "character"
        slug = re.sub(r"[^a-z0-9]+", "_", stem.lower()).strip("_")[:24] or "character"
        if len(slug) < 3:
            slug = f"{slug}_char"
        for _ in range(8):
            candidate = f"{slug}_{secrets.token_hex(2)}"
            if not self.ctx.jobs.username_taken(self.account, candidate):
                return candidate
        return f"{slug}_{secrets.token_hex(6)}"


def _display_name(username: str) -> str:
    words = re.sub(r"_[0-9a-f]{4}$", "", username).replace("_", " ").replace(".", " ")
    return words.strip().title() or username


def _profile_key(character_id: str) -> str:
    return f"characters/{character_id}/profile.jpg"


def _profile_jpeg(rgb: np.ndarray, mask: np.ndarray) -> bytes:
    """A square crop around the subject (10 % margin), at most PROFILE_SIDE px, JPEG."""
    ys, xs = np.nonzero(mask)
    height, width = mask.shape
    cx, cy = (xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2
    side = max(xs.max() - xs.min(), ys.max() - ys.min()) * 1.2
    side = min(side, width, height)
    x0 = int(np.clip(cx - side / 2, 0, width - side))
    y0 = int(np.clip(cy - side / 2, 0, height - side))
    crop = rgb[y0 : y0 + int(side), x0 : x0 + int(side)]
    if max(crop.shape[:2]) > PROFILE_SIDE:
        crop = cv2.resize(crop, (PROFILE_SIDE, PROFILE_SIDE), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90]
    )
    assert ok
    return data.tobytes()


def fetch_outbound(
    url: str, local: Path, *, allow: list[str], max_bytes: int, max_seconds: float
) -> None:
    """GET a client's URL into ``local`` under the webhooks' outbound rules: https and public
    addresses (unless allowed), every redirect hop checked the same way (at most 3), at most
    ``max_bytes`` and ``max_seconds`` in all. Each broken rule is a 422 naming it."""
    import httpx

    deadline = time.monotonic() + max_seconds
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        try:
            check_outbound_url(current, allow)
        except OutboundUrlError as exc:
            where = current if current == url else f"{url} redirected to {current}"
            raise InvalidInputError(
                f"{where}: {exc.message}", field="url", rule="outbound", **exc.details
            ) from exc
        try:
            with httpx.stream(
                "GET", current, timeout=min(30.0, max_seconds), follow_redirects=False
            ) as response:
                if response.is_redirect:
                    current = urljoin(current, response.headers.get("location", ""))
                    continue
                if response.status_code != 200:
                    raise InvalidInputError(
                        f"GET {url} answered {response.status_code}.",
                        field="url",
                        rule="fetch",
                        status=response.status_code,
                    )
                declared = int(response.headers.get("content-length") or 0)
                if declared > max_bytes:
                    raise _too_big(url, max_bytes)
                size = 0
                with local.open("wb") as handle:
                    for chunk in response.iter_bytes():
                        size += len(chunk)
                        if size > max_bytes:
                            raise _too_big(url, max_bytes)
                        if time.monotonic() > deadline:
                            raise InvalidInputError(
                                f"Fetching {url} took longer than {max_seconds:g} s.",
                                field="url",
                                rule="fetch time",
                            )
                        handle.write(chunk)
                return
        except httpx.HTTPError as exc:
            raise InvalidInputError(
                f"Fetching {url} failed: {type(exc).__name__}: {exc}.", field="url", rule="fetch"
            ) from exc
    raise InvalidInputError(
        f"{url} redirected more than {MAX_REDIRECTS} times.", field="url", rule="redirects"
    )


def _too_big(url: str, max_bytes: int) -> InvalidInputError:
    return InvalidInputError(
        f"{url} is larger than {max_bytes:,} bytes.", field="url", rule="size", max_bytes=max_bytes
    )
