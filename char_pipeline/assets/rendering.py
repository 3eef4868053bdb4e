"""control_sequences → frames → video: what to render, the frames, the encoded videos.

A run tagged ``char/job_id`` is an API job: the assets report progress, the result and
failures to the job store, so GET /v1/jobs/{id} follows the run.
"""

import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dagster as dg
import numpy as np
from pydantic import Field

from char_pipeline import catalog
from char_pipeline.assets.partitions import reference_partitions
from char_pipeline.assets.previews import markdown_images
from char_pipeline.assets.references import engine_failure
from char_pipeline.engine.controls import (
    encode_pose_sequence,
    keypoints_from_json,
    latent_sequence,
    validate_z_sequence,
)
from char_pipeline.engine.encode import VideoInfo, VideoWriter, probe_video
from char_pipeline.engine.errors import CharPipelineError
from char_pipeline.engine.faces import FaceVisibility, face_visibility
from char_pipeline.engine.generators import GenerationOptions
from char_pipeline.engine.images import contact_sheet, encode_png, sheet_indices
from char_pipeline.engine.kinds import motion_for_kind
from char_pipeline.engine.metrics import (
    MAX_COLOUR_DISTANCE,
    MAX_DARK_FILL_SHARE,
    MAX_JITTER,
    MAX_POP_RATIO,
    MAX_TORN_SHARE,
    MAX_WARP_ERROR,
    MIN_FRAME_COVERAGE_SHARE,
    MIN_IDENTITY_COSINE,
    MIN_MIRROR_MISMATCH,
    MIN_SILHOUETTE_IOU,
    TEAR_STRETCH,
    PictureTrack,
    TemporalCoherence,
    colour_distance,
    colour_histogram,
    joint_jitter,
)
from char_pipeline.engine.motion import keypoint_track, text_sequence
from char_pipeline.engine.render import camera_matrix, parse_resolution
from char_pipeline.resources.compute import ComputeFleet
from char_pipeline.resources.jobs import INSTANCE_COUNT_TAG, JobStoreResource, job_ids_of
from char_pipeline.services import processing
from char_pipeline.services.generation import from_spec
from char_pipeline.storage import ArtifactStore

# Share of a job's progress spent rendering; the rest is encoding.
RENDER_SHARE = 85.0


class ControlsConfig(dg.Config):
    """Which control sequences to build for this reference (run config of a render request)."""

    control_types: list[str] = Field(default=["pose", "text", "latent"])
    steps: int = Field(default=48, ge=1, le=10_000, description="Frames per sequence.")
    pose_keypoints_file: str | None = Field(
        default=None, description="JSON file: a list of frames, each a list of keypoints."
    )
    pose_motion: str = Field(
        default="dance",
        description="Motion whose keypoint track drives 'pose' when no file is given.",
    )
    motion_clip: str | None = Field(
        default=None,
        description="A motion-capture clip for 'pose' instead: a library name (wave_hello, "
        "jumping, dab; quadruped_walk for four-legged animals) or a BVH file's path; it "
        "plays for its own duration at clip_fps.",
    )
    clip_fps: int = Field(default=24, ge=1, le=120)
    clip_loop: bool = Field(
        default=True,
        description="The clip's last quarter eases back into its first pose (no seam in a GIF).",
    )
    text_prompt: str = "wave hello"
    text_model: str = Field(default="custom-nlp", description="custom-nlp (MiniLM) or keyword.")
    latent_seed: int = 7
    latent_distribution: str = "gaussian"
    latent_loop: bool = Field(
        default=True, description="The latent sequence loops seamlessly (no seam in a GIF)."
    )
    sequences: dict[str, str] = Field(
        default={},
        description="Ready-made z sequences: control name → artifact key of a T×64 .npy.",
    )


def _build_control(
    config: ControlsConfig,
    control_type: str,
    store: dg.ResourceParam[ArtifactStore],
    reference_id: str,
    subject_mask: dict,
):
    rest = processing.rest_pose(store, subject_mask)
    if control_type == "pose" and config.motion_clip:
        from char_pipeline.engine.bvh import load_clip, loop_clip, retarget

        clip = load_clip(config.motion_clip)  # a library name or a .bvh file's path
        z = retarget(clip, rest, fps=config.clip_fps, subject_kind=subject_mask.get("subject_kind"))
        if config.clip_loop:
            z = loop_clip(z)
        return z, {
            "motion_clip": config.motion_clip,
            "seconds": round(clip.seconds, 3),
            "loop": config.clip_loop,
        }
    if control_type == "pose":
        if not config.pose_keypoints_file:
            motion, reason = config.pose_motion, None
            if subject_mask.get("subject_kind") == "quadruped":
                # Other kinds keep the joints they do not move still (engine/kinds.py); an
                # animal on four legs moves them all, so a person's dance would throw its
                # front legs over its back: the track plays the motion that applies.
                motion, reason = motion_for_kind(motion, "quadruped")
            frames, z = keypoint_track(motion, config.steps, rest)
            store.write_json(catalog.control_key(reference_id, "pose", "keypoints.json"), frames)
            return z, {
                "keypoints": f"keypoint track of motion '{motion}'",
                **({"motion_reason": reason} if reason else {}),
            }
        frames = json.loads(Path(config.pose_keypoints_file).read_text())
        z = encode_pose_sequence([keypoints_from_json(frame) for frame in frames], rest)
        return z, {"keypoints": config.pose_keypoints_file}
    if control_type == "text":
        z, plan = text_sequence(
            config.text_prompt,
            config.steps,
            model=config.text_model,
            subject_kind=subject_mask.get("subject_kind"),
            free_arm=subject_mask.get("free_arm"),
        )
        return z, {
            "prompt": config.text_prompt,
            "motion": plan.primary,
            "overlay": plan.overlay,
            "similarity": None if plan.similarity is None else round(plan.similarity, 4),
            "notice": plan.notice,
            "subject_kind": subject_mask.get("subject_kind"),
            "motion_reason": plan.kind_reason,
            "arm": plan.arm,
        }
    if control_type == "latent":
        z = latent_sequence(
            config.steps, config.latent_seed, config.latent_distribution, loop=config.latent_loop
        )
        return z, {
            "seed": config.latent_seed,
            "distribution": config.latent_distribution,
            "loop": config.latent_loop,
        }
    raise dg.Failure(
        description=f"Unknown control type {control_type!r}; use pose, text or latent.",
        allow_retries=False,
    )


@dg.asset(
    partitions_def=reference_partitions,
    group_name="render",
    kinds={"numpy"},
    description="Control sequences z_1..z_T (layout v1, docs/controls.md) from pose keypoints, a text prompt, a seed, or a request.",
)
def control_sequences(
    context: dg.AssetExecutionContext,
    config: ControlsConfig,
    store: dg.ResourceParam[ArtifactStore],
    subject_mask: dict,
) -> dict:
    reference_id = context.partition_key
    controls = {}
    for control_type in config.control_types:
        try:
            z, detail = _build_control(config, control_type, store, reference_id, subject_mask)
        except CharPipelineError as exc:
            raise engine_failure(
                exc, f"The {control_type} control for {reference_id} is invalid"
            ) from exc
        key = catalog.control_key(reference_id, control_type, "npy")
        store.write_bytes(key, processing.npy_bytes(z))
        controls[control_type] = {
            "control_type": control_type,
            "key": key,
            "frames": len(z),
            **detail,
        }
    for name, key in config.sequences.items():
        try:
            z = validate_z_sequence(processing.load_npy(store, key))
        except CharPipelineError as exc:
            raise engine_failure(exc, f"The control sequence {name} is invalid") from exc
        controls[name] = {"control_type": "request", "key": key, "frames": len(z)}
    notices = {
        name: " ".join(filter(None, (c.get("notice"), c.get("motion_reason"))))
        for name, c in controls.items()
        if c.get("notice") or c.get("motion_reason")
    }
    for name, notice in notices.items():
        context.log.info(f"{reference_id} {name}: {notice}")
    context.add_output_metadata(
        {"controls": dg.MetadataValue.json(controls), "notices": dg.MetadataValue.json(notices)}
    )
    return {"controls": controls}


class FramesConfig(dg.Config):
    resolution: str = Field(default="512x512", description="WIDTHxHEIGHT of the rendered frames.")
    model: str = Field(
        default="gan",
        description="Generator mode of every control: gan (the mesh renderer), diffusion or "
        "transformer (model store weights and a GPU, docs/generators.md).",
    )
    prompt: str | None = Field(
        default=None, description="diffusion/transformer: what the frames should look like."
    )
    generation: dict[str, dict] = Field(
        default={},
        description="Per control (an API job's id): its served mode and options, as the API "
        "planned them (services/generation.py); overrides model/prompt for that control.",
    )
    background: str = Field(
        default="auto",
        description="auto, scene (the reference's own, inpainted and softened), solid or image.",
    )
    background_color: list[int] = Field(
        default=[236, 236, 232],
        min_length=3,
        max_length=3,
        description="RGB of the 'solid' background.",
    )
    background_image: str | None = Field(
        default=None, description="Path or artifact key of the 'image' background (PNG/JPEG)."
    )
    camera_motion: str = Field(
        default="none",
        description="Virtual camera: none, push-in, pull-out, pan-left, pan-right or drift.",
    )


@dg.asset(
    partitions_def=reference_partitions,
    group_name="render",
    kinds={"python", "image"},
    description="Rendered frames (PNG) for every control sequence; identity similarity on samples.",
)
def frames(
    context: dg.AssetExecutionContext,
    config: FramesConfig,
    store: dg.ResourceParam[ArtifactStore],
    compute: ComputeFleet,
    jobs: JobStoreResource,
    subject_mask: dict,
    identity_features: dict,
    control_sequences: dict,
) -> dict:
    reference_id = context.partition_key
    job_ids = set(job_ids_of(context))
    for job_id in job_ids:
        jobs.store.start_job(job_id, context.run.run_id)
    compute_type = compute.for_run(context)
    try:
        width, height = parse_resolution(
            config.resolution, max_pixels=compute_type.max_render_pixels
        )
    except CharPipelineError as exc:
        raise engine_failure(exc, "Bad render settings") from exc
    renderer = compute_type.make_renderer()
    character = processing.load_character(store, reference_id, subject_mask)
    try:
        backdrop = (
            processing.load_background(store, config.background_image)
            if config.background_image
            else None
        )
        scene = processing.prepare_scene(
            renderer,
            character,
            width,
            height,
            config.background,
            background_color=tuple(config.background_color),
            background_image=backdrop,
        )
        camera_matrix(config.camera_motion, 0.0, width, height)  # a typo fails here, once
    except CharPipelineError as exc:
        raise engine_failure(exc, "Bad background or camera settings") from exc
    try:
        picture = processing.scene_picture(renderer, scene, character)
    except CharPipelineError as exc:
        raise engine_failure(exc, f"Rendering {reference_id} at rest failed") from exc
    reference_vector = processing.load_npy(store, identity_features["key"])
    reference_histogram = colour_histogram(character.rgb, character.soft_mask)
    previews: dict[str, np.ndarray] = {}
    plans = {}
    for name in control_sequences["controls"]:
        mode, options = generation_of(config, name)
        plans[name] = compute_type.served_mode(mode), options
    try:  # a missing model or GPU fails the partition at once, with the command that fixes it
        generators = {
            mode: compute_type.make_generator(mode, renderer)
            for mode in {mode for mode, _ in plans.values()}
        }
    except CharPipelineError as exc:
        raise engine_failure(exc, "The generator mode cannot run here") from exc

    def render_control(name: str, control: dict) -> tuple[str, dict, float]:
        """Render one sequence; an API job's progress follows its own frames."""
        z_sequence = processing.load_npy(store, control["key"])
        count, middle = len(z_sequence), len(z_sequence) // 2
        similarity: list[float] = []
        colour: list[float] = []
        unmeasured: list[int] = []  # sampled frames the identity metric could not measure
        last_report = [0.0]
        started = time.perf_counter()

        def on_frame(index, frame, alpha):
            if index in (0, middle):
                previews[f"{name} frame {index}"] = frame
                # The rendered subject against the reference's identity (cnn features).
                sample = processing.identity_sample(reference_vector, frame, alpha)
                if sample is None:
                    unmeasured.append(index)
                else:
                    similarity.append(sample)
                    colour.append(
                        colour_distance(reference_histogram, colour_histogram(frame, alpha))
                    )
            if name in job_ids and (time.monotonic() - last_report[0] > 0.5 or index + 1 == count):
                last_report[0] = time.monotonic()
                jobs.store.update_progress(
                    name, RENDER_SHARE * (index + 1) / count, f"Rendered {index + 1}/{count} frames"
                )
            if (index + 1) % 24 == 0 or index + 1 == count:
                context.log.info(f"{reference_id} {name}: rendered {index + 1}/{count} frames")

        track = PictureTrack(rest_area=picture["rest_area"])
        mode, options = plans[name]
        processing.render_frames(
            store,
            reference_id,
            name,
            z_sequence,
            renderer=renderer,
            scene=scene,
            on_frame=on_frame,
            camera_motion=config.camera_motion,
            picture=track,
            layers=generators[mode].generate(scene, z_sequence, options),
        )
        record = {
            "generator": {"model": mode, **generators[mode].report()},
            "frames": count,
            "prefix": f"frames/{reference_id}/{name}",
            "sequence_key": control["key"],
            "identity_cosine": [round(v, 4) for v in similarity],
            "identity_unmeasured_frames": unmeasured,
            "colour_distance": [round(v, 4) for v in colour],
            "picture": track.to_json(),
        }
        return name, record, round(time.perf_counter() - started, 3)

    # X-Instance-Count workers render a run's sequences side by side (OpenCV releases the GIL).
    workers = max(1, min(4, int(context.run.tags.get(INSTANCE_COUNT_TAG, "1") or 1)))
    controls = list(control_sequences["controls"].items())
    with ThreadPoolExecutor(max_workers=min(workers, max(1, len(controls)))) as pool:
        try:
            outcomes = list(pool.map(lambda item: render_control(*item), controls))
        except CharPipelineError as exc:
            # A pose that collapses or tears the subject is the input's problem: the job fails
            # at once with the engine's code and message, not as a retried InternalError.
            raise engine_failure(exc, f"Rendering {reference_id} failed") from exc
    rendered = {name: record for name, record, _ in outcomes}
    timings = {name: seconds for name, _, seconds in outcomes}
    context.add_output_metadata(
        {
            "renderer": renderer.name,
            **compute_type.run_metadata(),
            "workers": workers,
            "resolution": f"{width}x{height}",
            "render_seconds": dg.MetadataValue.json(timings),
            "identity_cosine": dg.MetadataValue.json(
                {k: v["identity_cosine"] for k, v in rendered.items()}
            ),
            "picture": dg.MetadataValue.json(picture),
            "preview": markdown_images(dict(sorted(previews.items()))),
        }
    )
    return {
        "width": width,
        "height": height,
        "renderer": renderer.name,
        "controls": rendered,
        "picture": picture,
        "subject_kind": character.subject_kind,
    }


def generation_of(config: FramesConfig, control: str) -> tuple[str, GenerationOptions]:
    """The mode and options of one control: the API job's plan, else the run's config."""
    if control in config.generation:
        return from_spec(config.generation[control])
    return config.model, GenerationOptions(prompt=config.prompt)


class VideoConfig(dg.Config):
    fps: int = Field(default=24, ge=1, le=120)
    formats: list[str] = Field(default=["mp4", "gif"])
    job_results: dict[str, dict] = Field(
        default={},
        description="API jobs of this run: job id (= its control name) → fields its result carries over.",
    )


@dg.asset(
    partitions_def=reference_partitions,
    group_name="render",
    kinds={"video"},
    description="MP4 (H.264, yuv420p, faststart) and GIF videos, streamed from the frames.",
    check_specs=[
        dg.AssetCheckSpec(
            "video_decodes",
            asset="video",
            description="Every video decodes back with the frame count, size and codec asked for.",
        ),
        dg.AssetCheckSpec(
            "identity_preserved",
            asset="video",
            description=f"Masked cnn-embedding cosine of sampled frames vs the reference ≥ {MIN_IDENTITY_COSINE}.",
        ),
        dg.AssetCheckSpec(
            "colour_consistent",
            asset="video",
            description=f"HSV-histogram Bhattacharyya distance of the subject vs the reference ≤ {MAX_COLOUR_DISTANCE}.",
        ),
        dg.AssetCheckSpec(
            "temporally_coherent",
            asset="video",
            description=f"Mean DIS-flow warping error between consecutive frames ≤ {MAX_WARP_ERROR} (0–255).",
        ),
        dg.AssetCheckSpec(
            "low_jitter",
            asset="video",
            description=f"Mean joint-track acceleration ≤ {MAX_JITTER} subject heights/frame².",
        ),
        dg.AssetCheckSpec(
            "face_visible",
            asset="video",
            description="The face the reference shows (MediaPipe face detector) is found in every frame of the contact sheet.",
        ),
        dg.AssetCheckSpec(
            "no_pops",
            asset="video",
            description=f"No step between frames (nor a GIF's loop seam) above {MAX_POP_RATIO}× the median step.",
        ),
        dg.AssetCheckSpec(
            "silhouette_matches_mask",
            asset="video",
            description=f"The still character covers its mask: IoU ≥ {MIN_SILHOUETTE_IOU} (no notch, no lost stroke).",
        ),
        dg.AssetCheckSpec(
            "background_clean",
            asset="video",
            description=f"The background plate has ≤ {MAX_DARK_FILL_SHARE:.0%} more near-black than the photo's own and no mirrored strip (mismatch ≥ {MIN_MIRROR_MISMATCH}).",
        ),
        dg.AssetCheckSpec(
            "no_tears",
            asset="video",
            description=f"No frame stretches more than {MAX_TORN_SHARE:.0%} of the subject past {TEAR_STRETCH}× (tears, smears).",
        ),
        dg.AssetCheckSpec(
            "no_empty_frames",
            asset="video",
            description=f"Every frame shows at least {MIN_FRAME_COVERAGE_SHARE:.0%} of the still subject's area.",
        ),
    ],
)
def video(
    context: dg.AssetExecutionContext,
    config: VideoConfig,
    store: dg.ResourceParam[ArtifactStore],
    jobs: JobStoreResource,
    frames: dict,
):
    reference_id = context.partition_key
    width, height = frames["width"], frames["height"]
    videos, problems = [], []
    coherence: dict[str, TemporalCoherence] = {}
    sheets: dict[str, np.ndarray] = {}
    sheet_strips: dict[str, list[np.ndarray]] = {}  # the sampled frames, for the face check
    with tempfile.TemporaryDirectory() as folder:
        for name, rendered in frames["controls"].items():
            job_id = name if name in config.job_results else None
            coherence[name] = TemporalCoherence()
            sheet_at, sheet_frames = set(sheet_indices(rendered["frames"])), []
            sheet_uri = None
            for format_index, video_format in enumerate(config.formats):
                local = Path(folder) / f"{name}.{video_format}"
                started = time.perf_counter()
                if job_id:
                    jobs.store.update_progress(job_id, RENDER_SHARE, f"Encoding {video_format}")
                try:
                    with VideoWriter(
                        local, video_format=video_format, fps=config.fps, width=width, height=height
                    ) as writer:
                        last_report = time.monotonic()
                        frames_in = processing.read_frames(
                            store, reference_id, name, rendered["frames"]
                        )
                        for index, frame in enumerate(frames_in):
                            writer.write(frame)
                            if format_index == 0:
                                coherence[name].add(frame)
                                if index in sheet_at:
                                    sheet_frames.append(frame)
                            if job_id and time.monotonic() - last_report > 2.0:
                                # Long encodes keep reporting, so the reconciler sees a live run.
                                last_report = time.monotonic()
                                done = (index + 1) / rendered["frames"]
                                jobs.store.update_progress(
                                    job_id,
                                    RENDER_SHARE + (100 - RENDER_SHARE) * 0.95 * done,
                                    f"Encoding {video_format}: {index + 1}/{rendered['frames']} frames",
                                )
                except CharPipelineError as exc:
                    raise engine_failure(exc, f"Encoding {name}.{video_format} failed") from exc
                encode_s = time.perf_counter() - started
                info = probe_video(local)
                expected_codec = "h264" if video_format == "mp4" else "gif"
                if (info.frames, info.width, info.height, info.codec) != (
                    rendered["frames"],
                    width,
                    height,
                    expected_codec,
                ):
                    problems.append(f"{name}.{video_format}: got {info.to_json()}")
                key = catalog.video_key(reference_id, name, video_format)
                uri = store.put_file(local, key)
                if sheet_uri is None and sheet_frames:
                    # A strip of 8 frames beside the video: look at it before any metric.
                    sheet = contact_sheet(sheet_frames)
                    sheet_uri = store.write_bytes(
                        catalog.video_key(reference_id, f"{name}.sheet", "png"), encode_png(sheet)
                    )
                    sheets[name] = sheet
                    sheet_strips[name] = sheet_frames
                videos.append(
                    {
                        "control": name,
                        "format": video_format,
                        "key": key,
                        "uri": uri,
                        "encode_seconds": round(encode_s, 3),
                        "sheet_uri": sheet_uri,
                        **info.to_json(),
                    }
                )
    for job_id, job_result in config.job_results.items():
        video = next((v for v in videos if v["control"] == job_id), None)
        if video is None:
            continue
        result = processing.video_result(
            job_result,
            video["key"],
            VideoInfo(**{k: video[k] for k in VideoInfo.__dataclass_fields__}),
            video_format=video["format"],
            fps=config.fps,
            renderer=frames["renderer"],
        )
        jobs.complete(job_id, result, store, job_result.get("url_ttl"))
        if "etag" in result:
            jobs.store.cache_put(result["etag"], result, int(job_result.get("cache_ttl", 86400)))
    version, row = (
        context.run.tags.get("char/manifest_version"),
        context.run.tags.get("char/manifest_row"),
    )
    if version and row and videos:
        # The manifest results sensor reads this when every row of the manifest has run.
        from char_pipeline.manifests import row_outcome

        control = next(iter(frames["controls"]))
        outcome = row_outcome(
            {"videos": videos}, frames, {"format": videos[0]["format"], "control_type": control}
        )
        store.write_json(f"manifest_state/{version}/rows/{row}.json", outcome)
    yield dg.Output(
        {"videos": videos},
        metadata={
            "videos": dg.MetadataValue.md(
                "| control | format | frames | fps | size | bytes | path |\n|---|---|---|---|---|---|---|\n"
                + "\n".join(
                    f"| {v['control']} | {v['format']} | {v['frames']} | {v['fps']} | {v['width']}x{v['height']} | {v['size_bytes']:,} | {v['uri']} |"
                    for v in videos
                )
            ),
            "count": len(videos),
            "contact_sheets": markdown_images(sheets, max_side=1280),
        },
    )
    yield dg.AssetCheckResult(
        check_name="video_decodes",
        passed=not problems,
        metadata={"videos_checked": len(videos), "problems": dg.MetadataValue.json(problems)},
    )
    yield from quality_checks(frames, coherence, store, loops="gif" in config.formats)
    faces = {}
    if frames.get("subject_kind") in FACE_KINDS:
        reference_rgb, _ = processing.load_reference_rgba(store, reference_id)
        faces = {
            name: face_visibility(reference_rgb, strip) for name, strip in sheet_strips.items()
        }
    yield face_check(faces)


# A photographed person's face: the detector is reliable there; on a drawn smiley or a cat it
# is not (a drawn face was "lost" in 3 of 8 frames of a plain sway).
FACE_KINDS = ("person", "portrait")


def face_check(faces: dict[str, FaceVisibility]) -> dg.AssetCheckResult:
    """The face the reference shows is found in every sampled frame (not covered by a limb,
    not turned away, not torn)."""
    applies = {name: visibility for name, visibility in faces.items() if visibility.applies}
    missing = {name: v.frames_without_face for name, v in applies.items()}
    return dg.AssetCheckResult(
        check_name="face_visible",
        passed=not any(missing.values()),
        metadata={
            "frames_without_face": dg.MetadataValue.json(missing),
            "faces": dg.MetadataValue.json({name: v.to_json() for name, v in faces.items()}),
            "measured": bool(applies),
            "note": "face found in the reference: checked on the contact sheet's frames"
            if applies
            else "not a photographed person's face (or no detector): nothing to check",
        },
    )


def quality_checks(
    frames: dict,
    coherence: dict,
    store: dg.ResourceParam[ArtifactStore],
    *,
    loops: bool = False,
):
    """The quality asset checks, each with its figure per control sequence (``loops``: the
    videos play in a loop — a GIF — so the seam from the last frame to the first counts)."""
    controls = frames["controls"]
    # A sampled frame the metric could not measure fails the check (it cannot vouch for
    # identity there) and is named, instead of counting as a pass.
    identity = {
        name: min(c["identity_cosine"]) if c.get("identity_cosine") else None
        for name, c in controls.items()
    }
    unmeasured = {
        name: c["identity_unmeasured_frames"]
        for name, c in controls.items()
        if c.get("identity_unmeasured_frames")
    }
    colour = {name: max(c.get("colour_distance") or [0.0]) for name, c in controls.items()}
    warp = {name: round(tracker.mean, 3) for name, tracker in coherence.items()}
    warp_p95 = {name: round(tracker.p95, 3) for name, tracker in coherence.items()}
    jitter = {
        name: round(joint_jitter(processing.load_npy(store, c["sequence_key"])), 5)
        if c.get("sequence_key")
        else 0.0
        for name, c in controls.items()
    }
    yield dg.AssetCheckResult(
        check_name="identity_preserved",
        passed=not unmeasured
        and all(v is None or v >= MIN_IDENTITY_COSINE for v in identity.values()),
        metadata={
            "min_cosine": dg.MetadataValue.json(identity),
            "unmeasured_frames": dg.MetadataValue.json(unmeasured),
            "threshold": MIN_IDENTITY_COSINE,
        },
    )
    yield dg.AssetCheckResult(
        check_name="colour_consistent",
        passed=all(v <= MAX_COLOUR_DISTANCE for v in colour.values()),
        metadata={"max_distance": dg.MetadataValue.json(colour), "threshold": MAX_COLOUR_DISTANCE},
    )
    yield dg.AssetCheckResult(
        check_name="temporally_coherent",
        passed=all(v <= MAX_WARP_ERROR for v in warp.values()),
        metadata={
            "mean_warp_error": dg.MetadataValue.json(warp),
            "p95_warp_error": dg.MetadataValue.json(warp_p95),
            "threshold": MAX_WARP_ERROR,
        },
    )
    yield dg.AssetCheckResult(
        check_name="low_jitter",
        passed=all(v <= MAX_JITTER for v in jitter.values()),
        metadata={"jitter": dg.MetadataValue.json(jitter), "threshold": MAX_JITTER},
    )
    pops = {name: round(t.pop_ratio(loop=loops), 3) for name, t in coherence.items()}
    yield dg.AssetCheckResult(
        check_name="no_pops",
        passed=all(v <= MAX_POP_RATIO for v in pops.values()),
        metadata={
            "pop_ratio": dg.MetadataValue.json(pops),
            "loop_seam": dg.MetadataValue.json(
                {name: round(t.seam, 3) for name, t in coherence.items()}
            ),
            "median_step": dg.MetadataValue.json(
                {
                    name: round(float(np.median(t.steps or [0.0])), 3)
                    for name, t in coherence.items()
                }
            ),
            "seam_counted": loops,
            "threshold": MAX_POP_RATIO,
        },
    )
    yield from picture_checks(frames)


def picture_checks(frames: dict):
    """What a viewer sees first: a whole character, a clean background, no tear, no blank."""
    scene = frames.get("picture") or {}
    controls = {name: c.get("picture") or {} for name, c in frames["controls"].items()}
    iou = scene.get("silhouette_iou")
    yield dg.AssetCheckResult(
        check_name="silhouette_matches_mask",
        passed=iou is not None and iou >= MIN_SILHOUETTE_IOU,
        metadata={"silhouette_iou": iou, "threshold": MIN_SILHOUETTE_IOU},
    )
    dark, mirror = scene.get("dark_fill_share"), scene.get("mirror_mismatch")
    yield dg.AssetCheckResult(
        check_name="background_clean",
        passed=dark is not None
        and dark <= MAX_DARK_FILL_SHARE
        and mirror is not None
        and mirror >= MIN_MIRROR_MISMATCH,
        metadata={
            "dark_fill_share": dark,
            "mirror_mismatch": mirror,
            "max_dark_fill_share": MAX_DARK_FILL_SHARE,
            "min_mirror_mismatch": MIN_MIRROR_MISMATCH,
        },
    )
    torn = {name: c.get("max_torn_share") for name, c in controls.items()}
    yield dg.AssetCheckResult(
        check_name="no_tears",
        # A renderer without a mesh (warp) cannot tear triangles: nothing to measure.
        passed=all(v is None or v <= MAX_TORN_SHARE for v in torn.values()),
        metadata={
            "max_torn_share": dg.MetadataValue.json(torn),
            "threshold": MAX_TORN_SHARE,
            "stretch": TEAR_STRETCH,
        },
    )
    coverage = {name: c.get("min_coverage_share") for name, c in controls.items()}
    yield dg.AssetCheckResult(
        check_name="no_empty_frames",
        passed=all(v is not None and v >= MIN_FRAME_COVERAGE_SHARE for v in coverage.values()),
        metadata={
            "min_coverage_share": dg.MetadataValue.json(coverage),
            "threshold": MIN_FRAME_COVERAGE_SHARE,
        },
    )
