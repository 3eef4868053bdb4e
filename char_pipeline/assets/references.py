"""reference_image → subject_mask, identity_features: one partition per reference."""

import cv2
import dagster as dg
import numpy as np

from char_pipeline import catalog
from char_pipeline.assets.partitions import reference_partitions
from char_pipeline.assets.previews import markdown_images
from char_pipeline.engine.errors import CharPipelineError
from char_pipeline.engine.render import bone_segments
from char_pipeline.resources.compute import ComputeFleet
from char_pipeline.services import processing
from char_pipeline.storage import ArtifactStore


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


@dg.asset(
    partitions_def=reference_partitions,
    group_name="reference",
    kinds={"python", "image"},
    description="The uploaded reference image, decoded, upright, size-checked, stored as PNG.",
)
def reference_image(
    context: dg.AssetExecutionContext, store: dg.ResourceParam[ArtifactStore], compute: ComputeFleet
) -> dict:
    reference_id = context.partition_key
    limits = compute.for_run(context)
    if not store.exists(catalog.upload_key(reference_id)):
        raise dg.Failure(
            description=f"No upload found for reference {reference_id}.", allow_retries=False
        )
    try:
        ingested = processing.ingest_reference(
            store,
            reference_id,
            max_bytes=limits.max_image_bytes,
            max_pixels=limits.max_image_pixels,
        )
    except CharPipelineError as exc:
        raise engine_failure(exc, f"Reference {reference_id} is not a usable image") from exc
    record = ingested.record
    context.add_output_metadata(
        {
            "width": record["width"],
            "height": record["height"],
            "source_format": record["source_format"],
            "has_alpha": record["has_alpha"],
            "upload_bytes": ingested.upload_bytes,
            "path": dg.MetadataValue.path(store.uri(record["key"])),
            "preview": markdown_images({"reference": ingested.reference.rgb}),
        }
    )
    return record


def draw_skeleton(rgb: np.ndarray, joints: np.ndarray, rig: dict | None = None) -> np.ndarray:
    """The rig over the cut-out: mesh edges (thin), bones (green), joints (red), and for a
    skeleton-graph rig the medial axis's end (yellow) and branch (magenta) points."""
    canvas = rgb.copy()
    thickness = max(1, int(0.006 * max(rgb.shape[:2])))
    if rig is not None:
        vertices = np.asarray(rig["mesh"]["vertices"], dtype=np.float64)
        triangles = np.asarray(rig["mesh"]["triangles"], dtype=np.int64)
        polygons = [np.round(vertices[t]).astype(np.int32) for t in triangles]
        cv2.polylines(canvas, polygons, True, (120, 170, 255), 1, cv2.LINE_AA)
        graph = rig.get("skeleton_graph", {})
        for name, colour in (("end_points", (255, 220, 0)), ("branch_points", (230, 0, 230))):
            for x, y in graph.get(name, []):
                cv2.circle(canvas, (int(x), int(y)), thickness * 2, colour, -1, cv2.LINE_AA)
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
    context: dg.AssetExecutionContext, store: dg.ResourceParam[ArtifactStore], reference_image: dict
) -> dict:
    reference_id = context.partition_key
    try:
        segmented = processing.segment_reference(store, reference_id)
    except CharPipelineError as exc:
        raise engine_failure(exc, f"Segmentation of {reference_id} failed") from exc
    rgb, _ = processing.load_reference_rgba(store, reference_id)
    mask = segmented.mask
    cutout = (rgb.astype(np.float32) * (mask.soft[..., None] / 255.0)).astype(np.uint8)
    context.add_output_metadata(
        {
            "mask_source": mask.source,
            "coverage": round(mask.coverage, 4),
            "bbox": dg.MetadataValue.json(list(mask.bbox)),
            "rig_kind": segmented.record["rig_kind"],
            "subject_kind": segmented.record["subject_kind"],
            "kind_reason": segmented.record["kind_reason"],
            "rig_seconds": segmented.record["rig_seconds"],
            "mesh": dg.MetadataValue.json(segmented.record["mesh"]),
            "rig_path": dg.MetadataValue.path(store.uri(segmented.record["rig_key"])),
            "segment_seconds": round(segmented.seconds, 3),
            "path": dg.MetadataValue.path(store.uri(segmented.record["mask_key"])),
            "preview": markdown_images(
                {
                    f"mask ({mask.source})": mask.soft,
                    f"rig ({segmented.record['rig_kind']}, {segmented.record['subject_kind']})": draw_skeleton(
                        cutout, segmented.rest.joints, segmented.rig.to_json()
                    ),
                }
            ),
        }
    )
    return segmented.record


@dg.asset(
    partitions_def=reference_partitions,
    group_name="reference",
    kinds={"pytorch"},
    description="EfficientNet-Lite0 embedding of the masked subject (model 'cnn').",
)
def identity_features(
    context: dg.AssetExecutionContext,
    store: dg.ResourceParam[ArtifactStore],
    reference_image: dict,
    subject_mask: dict,
) -> dict:
    reference_id = context.partition_key
    try:
        record = processing.embed_reference(store, reference_id, subject_mask)
    except CharPipelineError as exc:
        raise engine_failure(exc, f"Identity features of {reference_id} failed") from exc
    context.add_output_metadata(
        {
            "model": record["model"],
            "feature_dim": record["feature_dim"],
            "seconds": record["seconds"],
            "path": dg.MetadataValue.path(store.uri(record["key"])),
        }
    )
    return record
