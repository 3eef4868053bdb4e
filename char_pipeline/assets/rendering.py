"""control_sequences → frames → video: what to render, the frames, the encoded videos."""

import io
import json
import tempfile
import time
from pathlib import Path

import dagster as dg
import numpy as np
from pydantic import Field

from char_pipeline import catalog
from char_pipeline.assets.partitions import reference_partitions
from char_pipeline.assets.previews import markdown_images
from char_pipeline.assets.references import engine_failure, load_reference_rgba
from char_pipeline.engine.controls import (
    RestPose,
    encode_pose_sequence,
    keypoints_from_json,
    keypoints_from_z,
    latent_sequence,
)
from char_pipeline.engine.encode import VideoWriter, probe_video
from char_pipeline.engine.errors import CharPipelineError
from char_pipeline.engine.identity import cosine_similarity, extract_identity
from char_pipeline.engine.images import decode_png, encode_png
from char_pipeline.engine.motion import MotionParams, MotionPlan, motion_sequence, text_sequence
from char_pipeline.engine.render import Character, RenderSettings, parse_resolution
from char_pipeline.resources.compute import ComputeResource
from char_pipeline.resources.storage import ArtifactStore


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
    text_prompt: str = "wave hello"
    latent_seed: int = 7
    latent_distribution: str = "gaussian"


def _rest_pose(store: ArtifactStore, subject_mask: dict) -> RestPose:
    return RestPose.from_json(store.read_json(subject_mask["rest_pose_key"]))


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


@dg.asset(
    partitions_def=reference_partitions,
    group_name="render",
    kinds={"numpy"},
    description="Control sequences z_1..z_T (layout v1, docs/controls.md) from pose keypoints, a text prompt or a seed.",
)
def control_sequences(
    context: dg.AssetExecutionContext,
    config: ControlsConfig,
    store: ArtifactStore,
    subject_mask: dict,
) -> dict:
    reference_id = context.partition_key
    rest = _rest_pose(store, subject_mask)
    controls = {}
    for control_type in config.control_types:
        try:
            if control_type == "pose":
                if config.pose_keypoints_file:
                    frames = json.loads(Path(config.pose_keypoints_file).read_text())
                    source = config.pose_keypoints_file
                else:
                    track = motion_sequence(
                        MotionPlan(config.pose_motion, None, MotionParams(), ()), config.steps
                    )
                    frames = keypoints_from_z(track, rest)
                    source = f"keypoint track of motion '{config.pose_motion}'"
                    store.write_json(
                        catalog.control_key(reference_id, "pose", "keypoints.json"), frames
                    )
                z = encode_pose_sequence([keypoints_from_json(frame) for frame in frames], rest)
                detail = {"keypoints": source}
            elif control_type == "text":
                z, plan = text_sequence(config.text_prompt, config.steps)
                detail = {
                    "prompt": config.text_prompt,
                    "motion": plan.primary,
                    "overlay": plan.overlay,
                }
            elif control_type == "latent":
                z = latent_sequence(config.steps, config.latent_seed, config.latent_distribution)
                detail = {"seed": config.latent_seed, "distribution": config.latent_distribution}
            else:
                raise dg.Failure(
                    description=f"Unknown control type {control_type!r}; use pose, text or latent.",
                    allow_retries=False,
                )
        except CharPipelineError as exc:
            raise engine_failure(
                exc, f"The {control_type} control for {reference_id} is invalid"
            ) from exc
        key = catalog.control_key(reference_id, control_type, "npy")
        store.write_bytes(key, _npy_bytes(z))
        controls[control_type] = {
            "control_type": control_type,
            "key": key,
            "frames": len(z),
            **detail,
        }
    context.add_output_metadata({"controls": dg.MetadataValue.json(controls)})
    return {"controls": controls}


class FramesConfig(dg.Config):
    resolution: str = Field(default="512x512", description="WIDTHxHEIGHT of the rendered frames.")
    background: str = Field(
        default="auto", description="auto, scene (the reference's own, softened) or solid."
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
    store: ArtifactStore,
    compute: ComputeResource,
    subject_mask: dict,
    identity_features: dict,
    control_sequences: dict,
) -> dict:
    reference_id = context.partition_key
    try:
        width, height = parse_resolution(config.resolution, max_pixels=compute.max_render_pixels)
    except CharPipelineError as exc:
        raise engine_failure(exc, "Bad render settings") from exc
    rgb, _ = load_reference_rgba(store, reference_id)
    soft = decode_png(store.read_bytes(subject_mask["mask_key"]))
    character = Character(
        rgb=rgb,
        soft_mask=soft,
        bbox=tuple(subject_mask["bbox"]),
        rest=_rest_pose(store, subject_mask),
        mask_source=subject_mask["source"],
        rig_kind=subject_mask["rig_kind"],
    )
    renderer = compute.make_renderer()
    scene = renderer.prepare(
        character, RenderSettings(width=width, height=height, background=config.background)
    )
    reference_vector = np.load(io.BytesIO(store.read_bytes(identity_features["key"])))
    rendered, previews, timings = {}, {}, {}
    for name, control in control_sequences["controls"].items():
        z_sequence = np.load(io.BytesIO(store.read_bytes(control["key"])))
        started = time.perf_counter()
        similarity = []
        middle = len(z_sequence) // 2
        for index, z_t in enumerate(z_sequence):
            frame, alpha = renderer.render_layers(scene, z_t)
            store.write_bytes(catalog.frame_key(reference_id, name, index), encode_png(frame))
            if index in (0, middle):
                previews[f"{name} frame {index}"] = frame
                # The rendered subject against the reference's identity (cnn features).
                similarity.append(
                    cosine_similarity(reference_vector, extract_identity(frame, alpha).vector)
                )
            if (index + 1) % 24 == 0 or index + 1 == len(z_sequence):
                context.log.info(
                    f"{reference_id} {name}: rendered {index + 1}/{len(z_sequence)} frames"
                )
        timings[name] = round(time.perf_counter() - started, 3)
        rendered[name] = {
            "frames": len(z_sequence),
            "prefix": f"frames/{reference_id}/{name}",
            "identity_cosine": [round(s, 4) for s in similarity],
        }
    context.add_output_metadata(
        {
            "renderer": renderer.name,
            "device": compute.device,
            "resolution": f"{width}x{height}",
            "render_seconds": dg.MetadataValue.json(timings),
            "identity_cosine": dg.MetadataValue.json(
                {k: v["identity_cosine"] for k, v in rendered.items()}
            ),
            "preview": markdown_images(previews),
        }
    )
    return {"width": width, "height": height, "renderer": renderer.name, "controls": rendered}


class VideoConfig(dg.Config):
    fps: int = Field(default=24, ge=1, le=120)
    formats: list[str] = Field(default=["mp4", "gif"])


@dg.asset(
    partitions_def=reference_partitions,
    group_name="render",
    kinds={"video"},
    description="MP4 (H.264, yuv420p, faststart) and GIF videos, streamed from the frames.",
    check_specs=[
        dg.AssetCheckSpec(
            "video_decodes",
            asset="video",
            description="Every video decodes back with the frame count, size, fps and codec asked for.",
        )
    ],
)
def video(
    context: dg.AssetExecutionContext, config: VideoConfig, store: ArtifactStore, frames: dict
):
    reference_id = context.partition_key
    width, height = frames["width"], frames["height"]
    videos, problems = [], []
    with tempfile.TemporaryDirectory() as folder:
        for name, rendered in frames["controls"].items():
            for video_format in config.formats:
                local = Path(folder) / f"{name}.{video_format}"
                started = time.perf_counter()
                try:
                    with VideoWriter(
                        local, video_format=video_format, fps=config.fps, width=width, height=height
                    ) as writer:
                        for index in range(rendered["frames"]):
                            writer.write(
                                decode_png(
                                    store.read_bytes(catalog.frame_key(reference_id, name, index))
                                )[..., :3]
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
                videos.append(
                    {
                        "control": name,
                        "format": video_format,
                        "key": key,
                        "uri": uri,
                        "encode_seconds": round(encode_s, 3),
                        **info.to_json(),
                    }
                )
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
        },
    )
    yield dg.AssetCheckResult(
        check_name="video_decodes",
        passed=not problems,
        metadata={"videos_checked": len(videos), "problems": dg.MetadataValue.json(problems)},
    )
