"""reference_image → subject_mask, identity_features: one partition per reference."""

import time

import cv2
import dagster as dg
import numpy as np

from char_pipeline import catalog
from char_pipeline.assets.partitions import reference_partitions
from char_pipeline.assets.previews import markdown_images
from char_pipeline.engine.errors import CharPipelineError
from char_pipeline.engine.identity import extract_identity
from char_pipeline.engine.images import decode_png, encode_png, load_reference_image
from char_pipeline.engine.rig import estimate_rest_pose
from char_pipeline.engine.segmentation import segment_subject
from char_pipeline.resources.compute import ComputeResource
from char_pipeline.resources.storage import ArtifactStore


def engine_failure(exc: CharPipelineError, what: str) -> dg.Failure:
    """A failed partition with the engine's own readable message (no retry: input is bad)."""
    return dg.Failure(
        description=f"{what}: {exc.message}",
        metadata={
            "error_code": exc.code,
            "error_type": type(exc).__name__,
            **{k: dg.MetadataValue.text(str(v)) for k, v in exc.details.items()},
        },
        allow_retries=False,
    )


def load_reference_rgba(
    store: ArtifactStore, reference_id: str
) -> tuple[np.ndarray, np.ndarray | None]:
    pixels = decode_png(store.read_bytes(catalog.reference_key(reference_id, "reference.png")))
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        return np.ascontiguousarray(pixels[..., :3]), np.ascontiguousarray(pixels[..., 3])
    return pixels, None


@dg.asset(
    partitions_def=reference_partitions,
    group_name="reference",
    kinds={"python", "image"},
    description="The uploaded reference image, decoded, upright, size-checked, stored as PNG.",
)
def reference_image(
    context: dg.AssetExecutionContext, store: ArtifactStore, compute: ComputeResource
) -> dict:
    reference_id = context.partition_key
    if not store.exists(catalog.upload_key(reference_id)):
        raise dg.Failure(
            description=f"No upload found for reference {reference_id}.", allow_retries=False
        )
    data = store.read_bytes(catalog.upload_key(reference_id))
    try:
        reference = load_reference_image(
            data, max_bytes=compute.max_image_bytes, max_pixels=compute.max_image_pixels
        )
    except CharPipelineError as exc:
        raise engine_failure(exc, f"Reference {reference_id} is not a usable image") from exc
    pixels = (
        reference.rgb if reference.alpha is None else np.dstack([reference.rgb, reference.alpha])
    )
    key = catalog.reference_key(reference_id, "reference.png")
    uri = store.write_bytes(key, encode_png(pixels))
    context.add_output_metadata(
        {
            "width": reference.width,
            "height": reference.height,
            "source_format": reference.source_format,
            "has_alpha": reference.alpha is not None,
            "upload_bytes": len(data),
            "path": dg.MetadataValue.path(uri),
            "preview": markdown_images({"reference": reference.rgb}),
        }
    )
    return {
        "reference_image_id": reference_id,
        "key": key,
        "width": reference.width,
        "height": reference.height,
        "has_alpha": reference.alpha is not None,
        "source_format": reference.source_format,
    }


def draw_skeleton(rgb: np.ndarray, joints: np.ndarray) -> np.ndarray:
    from char_pipeline.engine.render import bone_segments

    canvas = rgb.copy()
    thickness = max(1, int(0.006 * max(rgb.shape[:2])))
    starts, ends = bone_segments(joints)
    for start, end in zip(starts, ends, strict=True):
        cv2.line(
            canvas,
            tuple(int(v) for v in start),
            tuple(int(v) for v in end),
            (40, 220, 90),
            thickness,
            cv2.LINE_AA,
        )
    for point in joints:
        cv2.circle(
            canvas, tuple(int(v) for v in point), thickness * 2, (255, 60, 40), -1, cv2.LINE_AA
        )
    return canvas


@dg.asset(
    partitions_def=reference_partitions,
    group_name="reference",
    kinds={"onnx", "image"},
    description="Subject mask (alpha channel or U²-Net-p) and the rest pose renderer v1 animates.",
)
def subject_mask(
    context: dg.AssetExecutionContext, store: ArtifactStore, reference_image: dict
) -> dict:
    reference_id = context.partition_key
    rgb, alpha = load_reference_rgba(store, reference_id)
    from char_pipeline.engine.images import ReferenceImage

    started = time.perf_counter()
    try:
        mask = segment_subject(ReferenceImage(rgb=rgb, alpha=alpha, source_format="PNG"))
    except CharPipelineError as exc:
        raise engine_failure(exc, f"Segmentation of {reference_id} failed") from exc
    segment_s = time.perf_counter() - started
    rest, rig_kind = estimate_rest_pose(rgb, mask.binary, mask.bbox)
    mask_key = catalog.reference_key(reference_id, "mask.png")
    rest_key = catalog.reference_key(reference_id, "rest_pose.json")
    uri = store.write_bytes(mask_key, encode_png(mask.soft))
    store.write_json(rest_key, {**rest.to_json(), "rig_kind": rig_kind})
    cutout = (rgb.astype(np.float32) * (mask.soft[..., None] / 255.0)).astype(np.uint8)
    context.add_output_metadata(
        {
            "mask_source": mask.source,
            "coverage": round(mask.coverage, 4),
            "bbox": dg.MetadataValue.json(list(mask.bbox)),
            "rig_kind": rig_kind,
            "segment_seconds": round(segment_s, 3),
            "path": dg.MetadataValue.path(uri),
            "preview": markdown_images(
                {"mask": mask.soft, "rig": draw_skeleton(cutout, rest.joints)}
            ),
        }
    )
    return {
        "mask_key": mask_key,
        "rest_pose_key": rest_key,
        "source": mask.source,
        "bbox": list(mask.bbox),
        "coverage": mask.coverage,
        "rig_kind": rig_kind,
    }


@dg.asset(
    partitions_def=reference_partitions,
    group_name="reference",
    kinds={"pytorch"},
    description="EfficientNet-Lite0 embedding of the masked subject (model 'cnn').",
)
def identity_features(
    context: dg.AssetExecutionContext,
    store: ArtifactStore,
    reference_image: dict,
    subject_mask: dict,
) -> dict:
    reference_id = context.partition_key
    rgb, _ = load_reference_rgba(store, reference_id)
    soft = decode_png(store.read_bytes(subject_mask["mask_key"]))
    started = time.perf_counter()
    try:
        features = extract_identity(rgb, soft, model="cnn")
    except CharPipelineError as exc:
        raise engine_failure(exc, f"Identity features of {reference_id} failed") from exc
    key = catalog.reference_key(reference_id, "identity_cnn.npy")
    import io

    buffer = io.BytesIO()
    np.save(buffer, features.vector, allow_pickle=False)
    uri = store.write_bytes(key, buffer.getvalue())
    context.add_output_metadata(
        {
            "model": features.model,
            "feature_dim": features.feature_dim,
            "seconds": round(time.perf_counter() - started, 3),
            "path": dg.MetadataValue.path(uri),
        }
    )
    return {"model": features.model, "feature_dim": features.feature_dim, "key": key}
