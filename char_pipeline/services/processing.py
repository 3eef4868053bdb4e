"""Reference processing and rendering over the artifact store, shared by every door.

The Dagster assets and the API call these functions, so a reference processed by either
has the same artifacts at the same keys (``catalog``), and a render is the same frames.
"""

from __future__ import annotations

import io
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from char_pipeline import catalog
from char_pipeline.engine.controls import RestPose, empty_z
from char_pipeline.engine.generators import Layers, MeshGenerator
from char_pipeline.engine.identity import extract_identity
from char_pipeline.engine.images import (
    ReferenceImage,
    decode_png,
    encode_png,
    load_reference_image,
)
from char_pipeline.engine.mesh import Mesh
from char_pipeline.engine.metrics import PictureTrack
from char_pipeline.engine.metrics import scene_picture as metrics_scene_picture
from char_pipeline.engine.render import (
    Character,
    Renderer,
    RenderSettings,
    apply_camera,
    camera_matrix,
)
from char_pipeline.engine.rig import Rig, build_rig
from char_pipeline.engine.segmentation import SubjectMask, segment_subject
from char_pipeline.storage import ArtifactStore


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def load_npy(store: ArtifactStore, key: str) -> np.ndarray:
    return np.load(io.BytesIO(store.read_bytes(key)), allow_pickle=False)


@dataclass
class Ingested:
    record: dict
    reference: ReferenceImage
    upload_bytes: int


def ingest_reference(
    store: ArtifactStore, reference_id: str, *, max_bytes: int, max_pixels: int
) -> Ingested:
    """Decode the upload (typed errors for bad input) and store it as a normalised PNG."""
    data = store.read_bytes(catalog.upload_key(reference_id))
    reference = load_reference_image(data, max_bytes=max_bytes, max_pixels=max_pixels)
    pixels = (
        reference.rgb if reference.alpha is None else np.dstack([reference.rgb, reference.alpha])
    )
    key = catalog.reference_key(reference_id, "reference.png")
    store.write_bytes(key, encode_png(pixels))
    record = {
        "reference_image_id": reference_id,
        "key": key,
        "width": reference.width,
        "height": reference.height,
        "has_alpha": reference.alpha is not None,
        "source_format": reference.source_format,
    }
    return Ingested(record=record, reference=reference, upload_bytes=len(data))


def load_reference_rgba(
    store: ArtifactStore, reference_id: str
) -> tuple[np.ndarray, np.ndarray | None]:
    pixels = decode_png(store.read_bytes(catalog.reference_key(reference_id, "reference.png")))
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        return np.ascontiguousarray(pixels[..., :3]), np.ascontiguousarray(pixels[..., 3])
    return pixels, None


@dataclass
class Segmented:
    record: dict
    mask: SubjectMask
    rest: RestPose
    seconds: float
    rig: Rig | None = None


def reference_keypoints(store: ArtifactStore, reference_id: str) -> list[dict] | None:
    """Keypoints the client supplied with the upload (they override detection), if any."""
    key = catalog.reference_key(reference_id, "keypoints.json")
    return store.read_json(key) if store.exists(key) else None


def segment_reference(store: ArtifactStore, reference_id: str) -> Segmented:
    """Mask the subject and rig it; writes mask.png, rest_pose.json and rig.json."""
    rgb, alpha = load_reference_rgba(store, reference_id)
    started = time.perf_counter()
    mask = segment_subject(ReferenceImage(rgb=rgb, alpha=alpha, source_format="PNG"))
    seconds = time.perf_counter() - started
    rig_started = time.perf_counter()
    rig = build_rig(
        rgb,
        mask.soft,
        mask.binary,
        mask.bbox,
        reference_keypoints(store, reference_id),
        mask_source=mask.source,
    )
    rig_seconds = time.perf_counter() - rig_started
    mask_key = catalog.reference_key(reference_id, "mask.png")
    rest_key = catalog.reference_key(reference_id, "rest_pose.json")
    rig_key = catalog.reference_key(reference_id, "rig.json")
    store.write_bytes(mask_key, encode_png(mask.soft))
    store.write_json(rest_key, {**rig.rest.to_json(), "rig_kind": rig.kind})
    store.write_json(rig_key, rig.to_json())
    record = {
        "mask_key": mask_key,
        "rest_pose_key": rest_key,
        "rig_key": rig_key,
        "source": mask.source,
        "bbox": list(mask.bbox),
        "coverage": mask.coverage,
        "rig_kind": rig.kind,
        "subject_kind": rig.subject_kind,
        "kind_reason": rig.kind_reason,
        "free_arm": rig.free_arm,  # the arm "wave" lifts (engine/limbs.py)
        "free_arm_reason": rig.free_arm_reason,
        "face_box": list(rig.face_box) if rig.face_box is not None else None,
        "rig_seconds": round(rig_seconds, 3),
        "mesh": {"vertices": len(rig.mesh.vertices), "triangles": len(rig.mesh.triangles)},
    }
    return Segmented(record=record, mask=mask, rest=rig.rest, seconds=seconds, rig=rig)


def embed_reference(
    store: ArtifactStore, reference_id: str, mask_record: dict, model: str = "cnn"
) -> dict:
    """Identity features of the masked subject; writes identity_<model>.npy."""
    rgb, _ = load_reference_rgba(store, reference_id)
    soft = decode_png(store.read_bytes(mask_record["mask_key"]))
    started = time.perf_counter()
    features = extract_identity(rgb, soft, model=model)
    key = catalog.reference_key(reference_id, f"identity_{model}.npy")
    store.write_bytes(key, npy_bytes(features.vector))
    return {
        "model": features.model,
        "feature_dim": features.feature_dim,
        "key": key,
        "seconds": round(time.perf_counter() - started, 3),
    }


def rest_pose(store: ArtifactStore, mask_record: dict) -> RestPose:
    return RestPose.from_json(store.read_json(mask_record["rest_pose_key"]))


def load_character(store: ArtifactStore, reference_id: str, mask_record: dict) -> Character:
    rgb, _ = load_reference_rgba(store, reference_id)
    soft = decode_png(store.read_bytes(mask_record["mask_key"]))
    return Character(
        rgb=rgb,
        soft_mask=soft,
        bbox=tuple(mask_record["bbox"]),
        rest=rest_pose(store, mask_record),
        mask_source=mask_record["source"],
        rig_kind=mask_record["rig_kind"],
        mesh=Mesh.from_json(store.read_json(mask_record["rig_key"])["mesh"])
        if mask_record.get("rig_key")
        else None,
        subject_kind=mask_record.get("subject_kind"),  # None for references rigged before kinds
        face_box=_face_box(rgb, soft, mask_record),
    )


def _face_box(rgb: np.ndarray, soft: np.ndarray, mask_record: dict) -> tuple | None:
    """The face found at rigging; a reference rigged before faces were held looks once."""
    if "face_box" in mask_record:
        box = mask_record["face_box"]
        return tuple(box) if box is not None else None
    from char_pipeline.engine.faces import subject_face_box

    return subject_face_box(rgb, soft, mask_record.get("subject_kind"))


def render_frames(
    store: ArtifactStore,
    reference_id: str,
    control: str,
    z_sequence: np.ndarray,
    *,
    renderer: Renderer,
    scene,
    on_frame: Callable[[int, np.ndarray, np.ndarray], None] | None = None,
    camera_motion: str = "none",
    picture: PictureTrack | None = None,
    layers: Iterable[Layers] | None = None,
) -> int:
    """Render each z_t (with the renderer, or take a generator's ``layers``) and store it as
    a PNG frame; ``on_frame(index, frame, alpha)``;
    ``picture`` collects each frame's coverage and torn area (for the quality checks).

    PNG encoding and writing run on two worker threads (OpenCV and zlib release the GIL)
    while the next frame renders; at most a few frames are in flight, so memory stays flat.
    """
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="png") as pool:
        pending: deque[Future] = deque()
        count = len(z_sequence)
        if layers is None:  # the renderer itself (mode 'gan')
            layers = MeshGenerator(renderer).generate(scene, z_sequence)
        for index, (frame, alpha, torn) in enumerate(layers):
            if picture is not None:
                picture.add(alpha, torn)
            camera = camera_matrix(camera_motion, index / max(count - 1, 1), *frame.shape[1::-1])
            frame, alpha = apply_camera(frame, camera), apply_camera(alpha, camera)
            key = catalog.frame_key(reference_id, control, index)
            pending.append(
                pool.submit(lambda key=key, frame=frame: store.write_bytes(key, encode_png(frame)))
            )
            if on_frame is not None:
                on_frame(index, frame, alpha)
            while len(pending) > 4:
                pending.popleft().result()
        for future in pending:
            future.result()
    return len(z_sequence)


def scene_picture(renderer: Renderer, scene, character: Character) -> dict:
    """The picture figures of a prepared scene (engine.metrics.scene_picture): the still
    character rendered against its placed mask, and the background plate."""
    _, rest_alpha = renderer.render_layers(scene, empty_z())
    return metrics_scene_picture(
        rest_alpha, scene.subject[..., 3], scene.background, character.rgb, character.soft_mask
    )


def read_frames(
    store: ArtifactStore, reference_id: str, control: str, count: int
) -> Iterator[np.ndarray]:
    """Stored frames in order, decoded a few ahead on worker threads."""
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="png") as pool:
        pending: deque[Future] = deque()
        for index in range(count):
            key = catalog.frame_key(reference_id, control, index)
            pending.append(pool.submit(lambda key=key: decode_png(store.read_bytes(key))[..., :3]))
            if len(pending) > 4:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def prepare_scene(
    renderer: Renderer,
    character: Character,
    width: int,
    height: int,
    background: str = "auto",
    *,
    background_color: tuple[int, int, int] | None = None,
    background_image: np.ndarray | None = None,
):
    settings = RenderSettings(width=width, height=height, background=background)
    if background_color is not None:
        settings = RenderSettings(
            width, height, background, background_color=tuple(background_color)
        )
    if background_image is not None:
        settings = RenderSettings(
            width,
            height,
            background,
            background_color=settings.background_color,
            background_image=background_image,
        )
    return renderer.prepare(character, settings)


def build_nerf(store: ArtifactStore, reference_id: str, mask_record: dict) -> dict:
    """Build the reference's radiance field; writes nerf_model.npz and its JSON header."""
    from char_pipeline.engine.nerf import build_radiance_field

    rgb, _ = load_reference_rgba(store, reference_id)
    soft = decode_png(store.read_bytes(mask_record["mask_key"]))
    started = time.perf_counter()
    model = build_radiance_field(rgb, soft, mask_record["bbox"])
    data = model.to_bytes()
    seconds = time.perf_counter() - started
    key = catalog.reference_key(reference_id, "nerf_model.npz")
    header_key = catalog.reference_key(reference_id, "nerf_model.json")
    store.write_bytes(key, data)
    store.write_json(header_key, model.header())
    NERF_MODELS.put(key, model)
    return {
        "model_key": key,
        "header_key": header_key,
        "model_format": "npz",
        "size_bytes": len(data),
        "resolution": model.header()["resolution"],
        "build_seconds": round(seconds, 3),
    }


class ModelCache:
    """Loaded radiance fields by artifact key: decompressing one costs more than a frame."""

    def __init__(self, capacity: int = 4) -> None:
        from collections import OrderedDict
        from threading import Lock

        self.capacity = capacity
        self._models: OrderedDict = OrderedDict()
        self._lock = Lock()

    def put(self, key: str, model) -> None:
        with self._lock:
            self._models[key] = model
            self._models.move_to_end(key)
            while len(self._models) > self.capacity:
                self._models.popitem(last=False)

    def load(self, store: ArtifactStore, key: str):
        from char_pipeline.engine.nerf import RadianceField

        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
        model = RadianceField.from_bytes(store.read_bytes(key))
        self.put(key, model)
        return model


NERF_MODELS = ModelCache()


def render_nerf_video(
    model,
    cameras: list,
    local_path,
    *,
    width: int,
    height: int,
    fps: int,
    video_format: str,
    on_frame: Callable[[int, np.ndarray], None] | None = None,
    background: tuple[int, int, int] | None = None,
):
    """Render a camera trajectory and stream it into a video: (VideoInfo, TrajectoryStats)."""
    from char_pipeline.engine.encode import VideoWriter, probe_video
    from char_pipeline.engine.nerf import TrajectoryStats, render_trajectory

    stats = TrajectoryStats()
    with VideoWriter(
        local_path, video_format=video_format, fps=fps, width=width, height=height
    ) as writer:
        frames = render_trajectory(
            model,
            cameras,
            width,
            height,
            stats,
            **({"background": background} if background else {}),
        )
        for index, frame in enumerate(frames):
            writer.write(frame)
            if on_frame is not None:
                on_frame(index, frame)
    return probe_video(local_path), stats


def load_background(store: ArtifactStore, location: str) -> np.ndarray:
    """A background image from a local path or an artifact key, decoded like an upload."""
    from pathlib import Path

    path = Path(location)
    data = path.read_bytes() if path.is_file() else store.read_bytes(location)
    return load_reference_image(data).rgb


def identity_sample(
    reference_vector: np.ndarray, frame: np.ndarray, alpha: np.ndarray
) -> float | None:
    """Cosine similarity of a rendered frame's subject to the reference, or None when the
    frame gives the metric nothing to measure (e.g. its subject is too small): a metric that
    cannot be computed on one frame is reported as such, never fatal to the render."""
    from char_pipeline.engine.errors import CharPipelineError
    from char_pipeline.engine.identity import cosine_similarity

    try:
        return cosine_similarity(reference_vector, extract_identity(frame, alpha).vector)
    except CharPipelineError:
        return None


def render_video_file(
    scene,
    layers: Iterable[Layers],
    local_path,
    *,
    video_format: str,
    fps: int,
    on_frame: Callable[[int, np.ndarray, np.ndarray], None] | None = None,
):
    """Encode a generator's frames (``layers``: Generator.generate) straight into a video
    file (no PNG frames): its VideoInfo. The API's sync path and batch runs use this;
    ``on_frame(index, frame, alpha)``."""
    from char_pipeline.engine.encode import VideoWriter, probe_video

    with VideoWriter(
        local_path, video_format=video_format, fps=fps, width=scene.width, height=scene.height
    ) as writer:
        for index, (frame, alpha, _) in enumerate(layers):
            writer.write(frame)
            if on_frame is not None:
                on_frame(index, frame, alpha)
    return probe_video(local_path)


def video_result(fields: dict, key: str, info, *, video_format: str, fps: int, **extra) -> dict:
    """A stored video result (a job's or the response cache's): the request's own fields,
    minus its TTLs, plus what the file is. Every door that finishes a video uses this."""
    return {
        **{k: v for k, v in fields.items() if k not in ("cache_ttl", "url_ttl")},
        "video_key": key,
        "format": video_format,
        "frames": info.frames,
        "fps": fps,
        "resolution": f"{info.width}x{info.height}",
        "duration_s": info.duration_s,
        "size_bytes": info.size_bytes,
        **extra,
    }
