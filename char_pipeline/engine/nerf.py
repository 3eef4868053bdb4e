"""A subject-specific radiance field from ONE image, and volume rendering of it.

One photo does not determine a 3D shape, so the geometry here is a *shape prior*, said
plainly: the subject's silhouette is inflated into a closed body (Teddy-style height
field from the distance transform, with a symmetric back). The front is the reference
projected onto that body; the unseen back carries the colours of the silhouette's inner
ring (hair, fur, a garment's edge) pushed inward and smoothed, so it has no features to
mirror (a back of the head, not a blurred face); front and back are blended by how far
the surface turns away from the reference camera, so an orbit changes gradually.

The result is stored as a dense voxel radiance field (occupancy → density, and RGB) and
rendered by emission–absorption along camera rays: a coarse pass over 8³-voxel blocks
finds where each ray meets the subject, a fine pass samples the grid trilinearly around
that point (torch ``grid_sample``), so the cost follows the visible surface, not the box.

Frame and cameras (docs/nerf.md): right-handed, +y up, the subject centred at the origin
with unit height; the reference camera sits on +z at ``REFERENCE_DISTANCE`` looking at the
origin, with a vertical field of view ``REFERENCE_FOV`` in which the subject fills
``SUBJECT_FILL`` of the height.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from char_pipeline.engine.errors import InvalidInputError
from char_pipeline.engine.metrics import silhouette_holes

REFERENCE_DISTANCE = 2.5
SUBJECT_FILL = 0.75
REFERENCE_FOV = math.degrees(2 * math.atan(0.5 / SUBJECT_FILL / REFERENCE_DISTANCE))
REFERENCE_ROWS = 256  # height of the reference view the model is fitted to
GRID_SIZE = 192  # voxels along the larger of width and height
BLOCK = 8  # voxels per coarse block side (empty-space skipping)
FINE_SAMPLES = 24  # trilinear samples per window
FINE_STEP = 0.8  # voxels between fine samples
RAY_CHUNK = 32_768  # rays marched together (bounds the coarse pass's memory)
MAX_WINDOWS = 8  # windows per ray (a ray that grazes one limb goes on to the next)
THICKNESS = 0.8  # depth of the inflated body relative to a round cross-section
OPACITY_PER_VOXEL = 0.98  # a fully occupied voxel stops this much light
BACK_RING = 0.05  # width of the outline's inner ring the back's colours come from (view heights)
BACK_SMOOTH = 0.04  # Gaussian σ over the back's colours (view heights): no features survive
FRONT_BLEND = 0.5  # |cos| of the surface's turn from the reference camera where the blend ends
MIN_FOV, MAX_FOV = 1.0, 150.0
FORMAT_VERSION = 1
DEFAULT_BACKGROUND = (236, 236, 232)


class CameraError(InvalidInputError):
    """A camera pose or trajectory is unusable (NaN, degenerate, absurd field of view)."""


@dataclass(frozen=True)
class CameraPose:
    """A pinhole camera in the subject's normalised frame; ``fov`` is vertical, in degrees."""

    position: tuple[float, float, float]
    look_at: tuple[float, float, float] = (0.0, 0.0, 0.0)
    up: tuple[float, float, float] = (0.0, 1.0, 0.0)
    fov: float = 40.0

    def to_json(self) -> dict[str, Any]:
        return {
            "position": [round(v, 6) for v in self.position],
            "look_at": [round(v, 6) for v in self.look_at],
            "up": [round(v, 6) for v in self.up],
            "fov": round(self.fov, 6),
        }

    def basis(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Right, true-up and forward unit vectors."""
        position, look_at, up = (
            np.asarray(v, np.float64) for v in (self.position, self.look_at, self.up)
        )
        forward = look_at - position
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, up)
        right /= np.linalg.norm(right)
        return right, np.cross(right, forward), forward


REFERENCE_CAMERA = CameraPose((0.0, 0.0, REFERENCE_DISTANCE), fov=REFERENCE_FOV)


def _vector(value: Any, name: str, index: int) -> tuple[float, float, float]:
    try:
        vector = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        vector = ()
    if len(vector) != 3:
        raise CameraError(
            f"camera_trajectory[{index}].{name} must be 3 numbers [x, y, z]; got {value!r}.",
            index=index,
            field=name,
        )
    if not all(math.isfinite(v) for v in vector):
        raise CameraError(
            f"camera_trajectory[{index}].{name} must be finite; got {list(vector)}.",
            index=index,
            field=name,
        )
    if max(abs(v) for v in vector) > 1000:
        raise CameraError(
            f"camera_trajectory[{index}].{name} is more than 1000 subject heights away; the subject would not be visible.",
            index=index,
            field=name,
        )
    return vector  # type: ignore[return-value]


def parse_camera(data: Any, index: int = 0) -> CameraPose:
    """A CameraPose from JSON (``position`` required; ``look_at``, ``up``, ``fov`` defaulted)."""
    if not isinstance(data, dict):
        raise CameraError(
            f"camera_trajectory[{index}] must be an object with position, look_at, up and fov.",
            index=index,
        )
    if "position" not in data:
        raise CameraError(f"camera_trajectory[{index}].position is required.", index=index)
    unknown = set(data) - {"position", "look_at", "up", "fov"}
    if unknown:
        raise CameraError(
            f"camera_trajectory[{index}] has unknown fields {sorted(unknown)}; use position, look_at, up, fov.",
            index=index,
        )
    position = _vector(data["position"], "position", index)
    look_at = _vector(data.get("look_at", (0, 0, 0)), "look_at", index)
    up = _vector(data.get("up", (0, 1, 0)), "up", index)
    try:
        fov = float(data.get("fov", 40.0))
    except (TypeError, ValueError):
        fov = math.nan
    if not (math.isfinite(fov) and MIN_FOV <= fov <= MAX_FOV):
        raise CameraError(
            f"camera_trajectory[{index}].fov must be {MIN_FOV:g}–{MAX_FOV:g} degrees; got {data.get('fov')!r}.",
            index=index,
            field="fov",
        )
    forward = np.subtract(look_at, position)
    distance = float(np.linalg.norm(forward))
    if distance < 1e-6:
        raise CameraError(
            f"camera_trajectory[{index}]: look_at equals position, so the camera has no direction.",
            index=index,
            field="look_at",
        )
    if np.linalg.norm(up) < 1e-9 or np.linalg.norm(
        np.cross(forward / distance, up)
    ) < 1e-6 * np.linalg.norm(up):
        raise CameraError(
            f"camera_trajectory[{index}].up is zero or parallel to the viewing direction; the camera's roll is undefined.",
            index=index,
            field="up",
        )
    return CameraPose(position, look_at, up, fov)


def parse_trajectory(data: Any, *, max_cameras: int = 3000) -> list[CameraPose]:
    if not isinstance(data, list) or not data:
        raise CameraError("camera_trajectory must be a non-empty list of camera poses.")
    if len(data) > max_cameras:
        raise CameraError(
            f"camera_trajectory has {len(data)} poses; at most {max_cameras} per request.",
            cameras=len(data),
        )
    return [parse_camera(item, index) for index, item in enumerate(data)]


def orbit(
    frames: int,
    *,
    distance: float = REFERENCE_DISTANCE,
    elevation: float = 10.0,
    start_azimuth: float = 0.0,
    turns: float = 1.0,
    fov: float = REFERENCE_FOV,
) -> list[CameraPose]:
    """A turntable: the camera circles the subject; azimuth 0 is the reference view (+z),
    increasing towards +x; elevation in degrees above the subject's centre."""
    return arc(
        frames,
        start_azimuth=start_azimuth,
        end_azimuth=start_azimuth + 360.0 * turns * (frames - 1) / max(frames, 1)
        if frames > 1
        else start_azimuth,
        distance=distance,
        elevation=elevation,
        fov=fov,
    )


def swing(
    frames: int,
    *,
    amplitude: float = 30.0,
    distance: float = REFERENCE_DISTANCE,
    elevation: float = 10.0,
    fov: float = REFERENCE_FOV,
) -> list[CameraPose]:
    """The default turntable: the camera swings ±``amplitude`` degrees about the reference
    view and back (azimuth = amplitude · sin 2πt, a seamless loop). One photo shows one side
    of the subject; a full orbit's back half is a guess, so it is shown only when asked for."""
    return [
        _orbit_pose(
            amplitude * math.sin(2 * math.pi * index / max(frames, 1)), elevation, distance, fov
        )
        for index in range(frames)
    ]


def _orbit_pose(azimuth: float, elevation: float, distance: float, fov: float) -> CameraPose:
    """A camera on the sphere about the subject, looking at its centre (degrees)."""
    azimuth, tilt = math.radians(azimuth), math.radians(elevation)
    position = (
        distance * math.cos(tilt) * math.sin(azimuth),
        distance * math.sin(tilt),
        distance * math.cos(tilt) * math.cos(azimuth),
    )
    return CameraPose(position, fov=fov)


def arc(
    frames: int,
    *,
    start_azimuth: float = -30.0,
    end_azimuth: float = 30.0,
    distance: float = REFERENCE_DISTANCE,
    elevation: float = 0.0,
    fov: float = REFERENCE_FOV,
) -> list[CameraPose]:
    """Part of an orbit, from one azimuth to another (degrees), both ends included."""
    shares = [index / (frames - 1) if frames > 1 else 0.0 for index in range(frames)]
    return [
        _orbit_pose(start_azimuth + (end_azimuth - start_azimuth) * share, elevation, distance, fov)
        for share in shares
    ]


def dolly(
    frames: int,
    *,
    start_distance: float = REFERENCE_DISTANCE * 1.6,
    end_distance: float = REFERENCE_DISTANCE * 0.8,
    fov: float = REFERENCE_FOV,
) -> list[CameraPose]:
    """The camera moves along the reference axis (+z) towards the subject."""
    return [
        CameraPose(
            (0.0, 0.0, start_distance + (end_distance - start_distance) * i / max(frames - 1, 1)),
            fov=fov,
        )
        for i in range(frames)
    ]


@dataclass
class RadianceField:
    """A voxel radiance field over the box ``[-half, half]`` (x, y, z), y up.

    ``occupancy`` is (nz, ny, nx) uint8, density = occupancy / 255 × ``sigma_max`` per unit
    length; ``colour`` is (nz, ny, nx, 3) uint8 RGB. ``reference_rgb``/``reference_mask``
    are the reference view the field was built from (the quality check renders it back).
    """

    occupancy: np.ndarray
    colour: np.ndarray
    half: tuple[float, float, float]
    sigma_max: float
    reference_rgb: np.ndarray
    reference_mask: np.ndarray
    build: dict[str, Any] = field(default_factory=dict)
    _volume: Any = field(default=None, repr=False)
    _coarse: np.ndarray | None = field(default=None, repr=False)

    @property
    def voxel(self) -> float:
        return float(2 * self.half[1] / self.occupancy.shape[1])

    def header(self) -> dict[str, Any]:
        nz, ny, nx = self.occupancy.shape
        return {
            "format": "char_pipeline.nerf_model",
            "version": FORMAT_VERSION,
            "representation": "dense voxel grid: occupancy uint8 (z, y, x) → density = occupancy/255 × sigma_max; colour uint8 RGB (z, y, x, 3); trilinear; emission–absorption rendering",
            "resolution": [nx, ny, nz],
            "bounds": [[-h for h in self.half], list(self.half)],
            "voxel_size": self.voxel,
            "sigma_max": self.sigma_max,
            "frame": "right-handed, +y up, subject centred at the origin with unit height; units = subject heights",
            "reference_camera": REFERENCE_CAMERA.to_json(),
            "camera_model": "pinhole; fov is vertical in degrees; image rows go down, columns right",
            "geometry": "silhouette inflation (shape prior), symmetric back",
            "build": self.build,
        }

    def to_bytes(self) -> bytes:
        """An .npz: the arrays plus the JSON header as a string array named ``header``."""
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            header=np.array(json.dumps(self.header())),
            occupancy=self.occupancy,
            colour=self.colour,
            reference_rgb=self.reference_rgb,
            reference_mask=self.reference_mask,
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> RadianceField:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            header = json.loads(str(archive["header"]))
            if (
                header.get("format") != "char_pipeline.nerf_model"
                or header.get("version") != FORMAT_VERSION
            ):
                raise InvalidInputError("Not a char_pipeline nerf_model (version 1) archive.")
            return cls(
                occupancy=archive["occupancy"],
                colour=archive["colour"],
                half=tuple(header["bounds"][1]),
                sigma_max=float(header["sigma_max"]),
                reference_rgb=archive["reference_rgb"],
                reference_mask=archive["reference_mask"],
                build=header.get("build", {}),
            )

    # Rendering ---------------------------------------------------------------------

    def _tensors(self):
        import torch

        if self._volume is None:
            volume = (
                np.concatenate([self.occupancy[..., None], self.colour], axis=-1).astype(np.float32)
                / 255.0
            )
            # (1, 4, nz, ny, nx) for grid_sample; channel 0 is occupancy.
            self._volume = torch.from_numpy(np.ascontiguousarray(volume.transpose(3, 0, 1, 2)))[
                None
            ]
            # Trilinear reads reach one voxel around an occupied one: grow by a voxel, then
            # mark each BLOCK³ block that holds anything.
            grown = torch.nn.functional.max_pool3d(
                torch.from_numpy(self.occupancy)[None, None].float(), 3, stride=1, padding=1
            )[0, 0].numpy()
            nz, ny, nx = grown.shape
            padded = np.zeros(
                (-(-nz // BLOCK) * BLOCK, -(-ny // BLOCK) * BLOCK, -(-nx // BLOCK) * BLOCK),
                np.float32,
            )
            padded[:nz, :ny, :nx] = grown
            pz, py, px = (s // BLOCK for s in padded.shape)
            self._coarse = padded.reshape(pz, BLOCK, py, BLOCK, px, BLOCK).max(axis=(1, 3, 5)) > 0
        return self._volume, self._coarse

    def render(
        self,
        camera: CameraPose,
        width: int,
        height: int,
        background: tuple[int, int, int] | np.ndarray | None = DEFAULT_BACKGROUND,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(RGB uint8 H×W×3 composited over ``background``, alpha float32 H×W in 0..1).

        ``background=None`` returns the premultiplied colour over black.
        """
        self._tensors()
        focal = (height / 2) / math.tan(math.radians(camera.fov) / 2)
        rows, cols = np.mgrid[0:height, 0:width]
        origin, directions, t_near, t_far = self._rays(camera, focal, width, height, rows, cols)
        colour = np.zeros((width * height, 3), np.float32)
        transmittance = np.ones(width * height, np.float32)
        hit = np.flatnonzero(t_far > t_near)
        tile = self._tile_size(camera, focal)
        if tile > 1 and hit.size:
            # Image-space hierarchy: one ray per tile finds where the subject starts; pixels
            # whose 3×3 tiles saw nothing are empty, the rest start their window there.
            tile_rows, tile_cols = np.mgrid[0 : -(-height // tile), 0 : -(-width // tile)]
            centre_rows = np.minimum(tile_rows * tile + tile // 2, height - 1)
            centre_cols = np.minimum(tile_cols * tile + tile // 2, width - 1)
            _, tile_dirs, tile_near, tile_far = self._rays(
                camera, focal, width, height, centre_rows, centre_cols
            )
            tile_alpha = np.zeros(tile_dirs.shape[0], np.float32)
            tile_first = np.full(tile_dirs.shape[0], np.inf, np.float32)
            for chunk in _chunks(np.flatnonzero(tile_far > tile_near)):
                _, through, first = self._march(
                    origin, tile_dirs[chunk], tile_near[chunk], tile_far[chunk]
                )
                tile_alpha[chunk], tile_first[chunk] = 1.0 - through, first
            square = np.ones((3, 3), np.uint8)
            seen = cv2.dilate(tile_alpha.reshape(tile_rows.shape), square, borderValue=0)
            nearest = cv2.erode(tile_first.reshape(tile_rows.shape), square, borderValue=np.inf)
            pixel_rows, pixel_cols = rows.ravel()[hit] // tile, cols.ravel()[hit] // tile
            marked = seen[pixel_rows, pixel_cols] > 0.002
            hit = hit[marked]
            candidate = nearest[pixel_rows[marked], pixel_cols[marked]]
            start = np.maximum(t_near[hit], candidate - 2 * self.voxel)
            for chunk in _chunks(np.arange(hit.size)):
                rays = hit[chunk]
                colour[rays], transmittance[rays], _ = self._window(
                    origin, directions[rays], start[chunk], t_far[rays]
                )
            # Rays that grazed the subject (or met it later) continue with the full search.
            remaining = transmittance[hit] > 0.02
            hit, resume = hit[remaining], (start + FINE_SAMPLES * FINE_STEP * self.voxel)[remaining]
        else:
            resume = t_near[hit]
        for chunk in _chunks(np.arange(hit.size)):
            rays = hit[chunk]
            extra, through, _ = self._march(origin, directions[rays], resume[chunk], t_far[rays])
            colour[rays] += transmittance[rays, None] * extra
            transmittance[rays] *= through
        colour = colour.reshape(height, width, 3)
        alpha = 1.0 - transmittance.reshape(height, width)
        if background is None:
            return np.clip(colour * 255 + 0.5, 0, 255).astype(np.uint8), alpha
        plate = (
            np.asarray(background, np.float32)[None, None, :] / 255.0
            if not isinstance(background, np.ndarray) or background.ndim == 1
            else background.astype(np.float32) / 255.0
        )
        out = colour + plate * (1.0 - alpha[..., None])
        return np.clip(out * 255 + 0.5, 0, 255).astype(np.uint8), alpha

    def _rays(self, camera: CameraPose, focal: float, width: int, height: int, rows, cols):
        """Origin, unit directions and box entry/exit distances for the given pixels."""
        right, true_up, forward = camera.basis()
        x = (cols.ravel() + 0.5 - width / 2) / focal
        y = (height / 2 - rows.ravel() - 0.5) / focal
        directions = forward[None, :] + x[:, None] * right[None, :] + y[:, None] * true_up[None, :]
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        origin = np.asarray(camera.position, np.float64)
        half = np.asarray(self.half, np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            inverse = 1.0 / directions
            t_low = (-half - origin) * inverse
            t_high = (half - origin) * inverse
        t_near = np.nanmax(np.minimum(t_low, t_high), axis=1).clip(min=0.0)
        t_far = np.nanmin(np.maximum(t_low, t_high), axis=1)
        return origin, directions.astype(np.float32), t_near, t_far

    def _tile_size(self, camera: CameraPose, focal: float) -> int:
        """Pixels per tile such that neighbouring tile rays pass within two voxels of each
        other at the subject's nearest point (trilinear density spans two voxels)."""
        distance = float(np.linalg.norm(camera.position)) - float(np.linalg.norm(self.half))
        pixel = max(distance, 0.0) / focal
        if pixel <= 0:
            return 1
        return int(np.clip(2 * self.voxel / pixel, 1, 8))

    def _first_block(self, origin, directions, t_near, t_far):
        """Per ray: whether it crosses an occupied block, and a distance safely before it."""
        block = BLOCK * self.voxel
        step = block / 3  # a ray clipping a block's corner still lands a sample in it
        count = int(np.ceil((t_far - t_near).max() / step)) + 1
        t = t_near[:, None].astype(np.float32) + (np.arange(count, dtype=np.float32) + 0.5) * step
        position = origin.astype(np.float32)[None, None, :] + t[..., None] * directions[:, None, :]
        position += np.asarray(self.half, np.float32)
        position *= 1.0 / block
        index = position.astype(np.int32)
        pz, py, px = self._coarse.shape
        np.clip(index, 0, [px - 1, py - 1, pz - 1], out=index)
        flat = (index[..., 2] * py + index[..., 1]) * px + index[..., 0]
        occupied = np.take(self._coarse.ravel(), flat) & (t < t_far[:, None])
        found = occupied.any(axis=1)
        # The sample before the first occupied one lay in an empty block: start there.
        start = t_near + np.maximum(occupied.argmax(axis=1) - 0.5, 0.0) * step
        return found, start

    def _window(self, origin, directions, start, t_far):
        """Emission–absorption over FINE_SAMPLES trilinear samples from ``start``:
        (premultiplied colour, transmittance left) per ray."""
        import torch
        import torch.nn.functional as F

        step = FINE_STEP * self.voxel
        t = (
            start[:, None].astype(np.float32)
            + (np.arange(FINE_SAMPLES, dtype=np.float32) + 0.5) * step
        )
        position = origin.astype(np.float32)[None, None, :] + t[..., None] * directions[:, None, :]
        position *= 1.0 / np.asarray(self.half, np.float32)
        grid = torch.from_numpy(position).view(1, len(start), FINE_SAMPLES, 1, 3)
        samples = F.grid_sample(
            self._volume, grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )[0, :, :, :, 0]  # 4, rays, samples
        density = samples[0].numpy() * np.float32(self.sigma_max * step)
        density[t > t_far[:, None]] = 0.0
        opacity = -np.expm1(-density)
        through = np.cumprod(1.0 - opacity, axis=1)
        weights = opacity
        weights[:, 1:] *= through[:, :-1]
        colour = torch.einsum("rs,crs->rc", torch.from_numpy(weights), samples[1:]).numpy()
        dense = density > 1e-4
        first = np.where(dense.any(axis=1), t[np.arange(len(t)), dense.argmax(axis=1)], np.inf)
        return colour, through[:, -1], first

    def _march(self, origin, directions, t_near, t_far):
        """Windows at each occupied stretch along the rays until they are opaque:
        (premultiplied colour, transmittance left, distance of the first density met)."""
        colour = np.zeros((len(directions), 3), np.float32)
        first = np.full(len(directions), np.inf, np.float32)
        transmittance = np.ones(len(directions), np.float32)
        active = np.arange(len(directions))
        t_from = t_near.copy()
        for _ in range(MAX_WINDOWS):
            live = t_far[active] > t_from[active]
            active = active[live]
            if not active.size:
                break
            found, start = self._first_block(
                origin, directions[active], t_from[active], t_far[active]
            )
            active, start = active[found], start[found]
            if not active.size:
                break
            extra, through, met = self._window(origin, directions[active], start, t_far[active])
            first[active] = np.minimum(first[active], met)
            colour[active] += transmittance[active, None] * extra
            transmittance[active] *= through
            t_from[active] = start + FINE_SAMPLES * FINE_STEP * self.voxel
            active = active[transmittance[active] > 0.02]
        return colour, transmittance, first


def _chunks(indices: np.ndarray) -> list[np.ndarray]:
    return np.array_split(indices, -(-indices.size // RAY_CHUNK)) if indices.size else []


def reference_view(
    rgb: np.ndarray, soft_mask: np.ndarray, bbox: Sequence[int], rows: int = REFERENCE_ROWS
) -> tuple[np.ndarray, np.ndarray]:
    """The reference as the reference camera sees it: subject centred, filling
    ``SUBJECT_FILL`` of the height; width just wide enough for the subject."""
    x0, y0, x1, y1 = bbox
    if x1 <= x0 or y1 <= y0:
        raise InvalidInputError(
            "The subject mask is empty; there is nothing to build a 3D model of."
        )
    scale = rows * SUBJECT_FILL / (y1 - y0)
    cols = int(min(4 * rows, max(rows // 4, math.ceil((x1 - x0) * scale / SUBJECT_FILL))))
    cols += cols % 2
    centre_x, centre_y = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    # Pixel centres: output (j + 0.5) ↔ input (x + 0.5).
    matrix = np.array(
        [
            [scale, 0.0, cols / 2 - centre_x * scale + 0.5 * scale - 0.5],
            [0.0, scale, rows / 2 - centre_y * scale + 0.5 * scale - 0.5],
        ]
    )
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    if scale < 1:
        # INTER_AREA only applies through resize; blur first so warpAffine does not alias.
        sigma = 0.5 / scale
        rgb = cv2.GaussianBlur(rgb, (0, 0), sigma)
        soft_mask = cv2.GaussianBlur(soft_mask, (0, 0), sigma)
        interpolation = cv2.INTER_LINEAR
    view_rgb = cv2.warpAffine(
        rgb, matrix, (cols, rows), flags=interpolation, borderMode=cv2.BORDER_REPLICATE
    )
    view_mask = cv2.warpAffine(
        soft_mask, matrix, (cols, rows), flags=interpolation, borderMode=cv2.BORDER_CONSTANT
    )
    return view_rgb, view_mask


def _extend_colours(rgb: np.ndarray, weight: np.ndarray, sigma: float) -> np.ndarray:
    """Colours inside the subject, and outside it the nearby subject colours spread out
    (normalised convolution), so trilinear reads at the surface never fetch background."""
    rgb = rgb.astype(np.float32)
    spread = cv2.GaussianBlur(rgb * weight[..., None], (0, 0), sigma)
    norm = cv2.GaussianBlur(weight, (0, 0), sigma)
    filled = spread / np.maximum(norm, 1e-4)[..., None]
    # Far from the subject the normalised blur runs out; a wider pass fills the rest.
    wide = (
        cv2.GaussianBlur(rgb * weight[..., None], (0, 0), sigma * 6)
        / np.maximum(cv2.GaussianBlur(weight, (0, 0), sigma * 6), 1e-4)[..., None]
    )
    filled = np.where((norm > 1e-3)[..., None], filled, wide)
    solid = (weight > 0.99)[..., None]
    return np.where(solid, rgb, filled)


def _fill_from(rgb: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``rgb`` where ``weight`` is 1, elsewhere the weighted colours pushed in from coarser
    pyramid levels (push–pull): a smooth fill of any size with no seams between scales."""
    levels = [(rgb.astype(np.float32) * weight[..., None], weight.astype(np.float32))]
    while min(levels[-1][1].shape) > 2:
        colour, known = levels[-1]
        levels.append((cv2.pyrDown(colour), cv2.pyrDown(known)))
    colour, known = levels[-1]
    filled = np.broadcast_to(
        colour.sum(axis=(0, 1)) / max(float(known.sum()), 1e-6), colour.shape
    ).astype(np.float32)
    for colour, known in reversed(levels[:-1]):
        coarse = cv2.pyrUp(filled, dstsize=(known.shape[1], known.shape[0]))
        own = colour / np.maximum(known, 1e-6)[..., None]
        trust = np.clip(2.0 * known, 0.0, 1.0)[..., None]
        filled = own * trust + coarse * (1.0 - trust)
    return filled


def _back_colours(front: np.ndarray, binary: np.ndarray, rows: int) -> np.ndarray:
    """The unseen back in reference-view pixels: the colours of the silhouette's inner ring
    (a head's hair, a cat's fur, a garment's edge) pushed inward and smoothed. Only the ring
    feeds it, so the face inside the outline is never copied (mirrored) onto the back."""
    distance = cv2.distanceTransform(binary.astype(np.uint8), cv2.DIST_L2, 5)
    ring = ((distance > 0) & (distance <= max(2.0, BACK_RING * rows))).astype(np.float32)
    return cv2.GaussianBlur(_fill_from(front, ring), (0, 0), BACK_SMOOTH * rows)


def _facing(height_field: np.ndarray, binary: np.ndarray, world_per_pixel: float) -> np.ndarray:
    """|cos| of the angle between the inflated surface's normal and the reference axis, per
    reference-view pixel (1 facing the camera, 0 at the outline, where the body turns away)."""
    smooth = cv2.GaussianBlur(height_field.astype(np.float32), (0, 0), 1.0)
    slope_x = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3) / (8 * world_per_pixel)
    slope_y = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3) / (8 * world_per_pixel)
    facing = 1.0 / np.sqrt(1.0 + slope_x**2 + slope_y**2)
    return np.where(binary, facing, 0.0).astype(np.float32)


def _front_share(turn: np.ndarray) -> np.ndarray:
    """How much of the reference a surface point shows, from its signed facing (+1 towards
    the reference camera, −1 away): all of it up to 60°, half side-on, none from 120°,
    smoothstep between — so an orbit passes from front to back without a seam."""
    share = np.clip(0.5 + turn / (2 * FRONT_BLEND), 0.0, 1.0)
    return share * share * (3.0 - 2.0 * share)


def inflate(mask: np.ndarray) -> np.ndarray:
    """Half-thickness (pixels) of the inflated body at each pixel of a binary silhouette.

    A round cross-section of local radius R has depth sqrt(d (2R − d)) at distance d from
    the outline; R is the largest distance in the neighbourhood (the local medial ball).
    """
    distance = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
    largest = float(distance.max())
    if largest <= 0:
        return distance
    size = max(3, int(largest * 0.6) | 1)
    local = cv2.dilate(distance, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))
    distance = np.minimum(distance, local)
    return THICKNESS * np.sqrt(np.maximum(distance * (2 * local - distance), 0.0))


def build_radiance_field(
    rgb: np.ndarray,
    soft_mask: np.ndarray,
    bbox: Sequence[int],
    *,
    grid_size: int = GRID_SIZE,
    rows: int = REFERENCE_ROWS,
) -> RadianceField:
    """The subject's voxel radiance field from its reference image and soft mask."""
    view_rgb, view_mask = reference_view(rgb, soft_mask, bbox, rows)
    weight = view_mask.astype(np.float32) / 255.0
    binary = weight > 0.5
    if binary.sum() < 16:
        raise InvalidInputError(
            "The subject is too small in the reference to build a 3D model (fewer than 16 pixels at the reference view).",
        )
    focal = rows / 2 / math.tan(math.radians(REFERENCE_FOV) / 2)  # pixels, reference view
    world_per_pixel = REFERENCE_DISTANCE / focal  # at z = 0
    height_field = inflate(binary) * world_per_pixel
    z_half = float(height_field.max()) + 2 * world_per_pixel
    # Box: the silhouette's extent at the far side (widest under perspective), plus a margin.
    ys, xs = np.nonzero(weight > 0.02)
    cols = view_rgb.shape[1]
    spread = (REFERENCE_DISTANCE + z_half) / focal
    x_half = (max(abs(xs.min() - cols / 2), abs(xs.max() + 1 - cols / 2)) + 2) * spread
    y_half = (max(abs(ys.min() - rows / 2), abs(ys.max() + 1 - rows / 2)) + 2) * spread
    voxel = float(2 * max(x_half, y_half) / grid_size)
    nx, ny, nz = (max(BLOCK, math.ceil(2 * h / voxel)) for h in (x_half, y_half, z_half))
    half = (float(nx * voxel / 2), float(ny * voxel / 2), float(nz * voxel / 2))

    sigma = max(1.0, 0.01 * rows)
    front = _extend_colours(view_rgb, weight, sigma)
    back = _back_colours(front, binary, rows)
    facing = _facing(height_field, binary, world_per_pixel)
    occupancy = np.zeros((nz, ny, nx), np.uint8)
    colour = np.zeros((nz, ny, nx, 3), np.uint8)
    centre_u, centre_v = cols / 2 - 0.5, rows / 2 - 0.5
    for k in range(nz):
        z = -half[2] + (k + 0.5) * voxel
        pixels_per_unit = focal / (REFERENCE_DISTANCE - z)
        # Voxel (j, i) of this slice → reference-view pixel; y grows upwards, rows downwards.
        matrix = np.array(
            [
                [
                    pixels_per_unit * voxel,
                    0.0,
                    centre_u + pixels_per_unit * (-half[0] + 0.5 * voxel),
                ],
                [
                    0.0,
                    -pixels_per_unit * voxel,
                    centre_v - pixels_per_unit * (-half[1] + 0.5 * voxel),
                ],
            ]
        )
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        size = (nx, ny)
        slice_mask = cv2.warpAffine(
            weight, matrix, size, flags=flags, borderMode=cv2.BORDER_CONSTANT
        )
        slice_depth = cv2.warpAffine(
            height_field, matrix, size, flags=flags, borderMode=cv2.BORDER_CONSTANT
        )
        inside = np.clip((slice_depth - abs(z)) / voxel + 0.5, 0.0, 1.0) * slice_mask
        occupancy[k] = np.clip(inside * 255 + 0.5, 0, 255).astype(np.uint8)
        slice_facing = cv2.warpAffine(
            facing, matrix, size, flags=flags, borderMode=cv2.BORDER_CONSTANT
        )
        share_front = _front_share(
            np.clip(z / np.maximum(slice_depth, voxel), -1.0, 1.0) * slice_facing
        )[..., None]
        slice_front = cv2.warpAffine(
            front, matrix, size, flags=flags, borderMode=cv2.BORDER_REPLICATE
        )
        slice_back = cv2.warpAffine(
            back, matrix, size, flags=flags, borderMode=cv2.BORDER_REPLICATE
        )
        mixed = slice_front * share_front + slice_back * (1.0 - share_front)
        colour[k] = np.clip(mixed + 0.5, 0, 255).astype(np.uint8)
    sigma_max = -math.log(1.0 - OPACITY_PER_VOXEL) / voxel
    return RadianceField(
        occupancy=occupancy,
        colour=colour,
        half=half,
        sigma_max=sigma_max,
        reference_rgb=view_rgb,
        reference_mask=view_mask,
        build={
            "reference_view": [int(cols), int(rows)],
            "thickness": THICKNESS,
            "appearance": "front: reference projected; back: colours of the silhouette's inner ring (5% of the view height) pushed inward and smoothed (Gaussian σ = 4%); blended by the surface's turn from the reference camera (all front up to 60°, half at 90°, all back from 120°)",
        },
    )


def psnr_in_mask(rendered: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> float:
    """PSNR (dB) over the pixels where ``mask`` (uint8) is at least half on."""
    inside = mask >= 128
    if not inside.any():
        return 0.0
    error = (rendered.astype(np.float64) - reference.astype(np.float64))[inside]
    mse = float(np.mean(error**2))
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def reference_psnr(model: RadianceField, rendered: np.ndarray | None = None) -> float:
    """The model rendered from the reference camera (over black; or ``rendered``, such a
    render) against the reference view, inside the mask."""
    if rendered is None:
        rows, cols = model.reference_mask.shape
        rendered, _ = model.render(REFERENCE_CAMERA, cols, rows, background=None)
    return psnr_in_mask(rendered, model.reference_rgb, model.reference_mask)


@dataclass
class TrajectoryStats:
    """What a camera-trajectory render measured: silhouette coverage and holes per frame."""

    frames: int = 0
    seconds: float = 0.0
    alpha_coverage: list[float] = field(default_factory=list)
    hole_fraction: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "render_seconds": round(self.seconds, 3),
            "frames_per_second": round(self.frames / self.seconds, 2) if self.seconds else None,
            "alpha_coverage_min": round(min(self.alpha_coverage, default=0.0), 4),
            "alpha_coverage_mean": round(float(np.mean(self.alpha_coverage or [0.0])), 4),
            "hole_fraction_max": round(max(self.hole_fraction, default=0.0), 5),
        }


def render_trajectory(
    model: RadianceField,
    cameras: Sequence[CameraPose],
    width: int,
    height: int,
    stats: TrajectoryStats | None = None,
    background: tuple[int, int, int] = DEFAULT_BACKGROUND,
):
    """Frames (RGB uint8) along ``cameras``, one at a time, measured into ``stats``."""
    import time

    for camera in cameras:
        started = time.perf_counter()
        rgb, alpha = model.render(camera, width, height, background)
        if stats is not None:
            stats.seconds += time.perf_counter() - started
            stats.frames += 1
            stats.alpha_coverage.append(float(alpha.mean()))
            stats.hole_fraction.append(silhouette_holes(alpha))
        yield rgb
