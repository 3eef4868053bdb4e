"""The model store: named weight folders under one root, and the registry that names them.

Each registry entry says which generator mode or feature uses it, which diffusers or
transformers class loads it, where it comes from (a Hugging Face repository and revision,
and the files of it that are needed), about how big it is and under which licence. Entries
live as plain folders under the store's root (``$CHAR_PIPELINE_HOME/models`` or
``CHAR_MODELS_DIR``): ``models pull`` fills one with huggingface_hub, or an operator copies
the folder in by hand on a machine without hub access. Loading never touches the network
(``local_files_only``). A folder that ``pull`` or ``verify --record`` wrote carries a
manifest (``.char-model.json``: revision, files, sizes, SHA-256) that ``verify`` checks.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from char_pipeline.engine.errors import ModelNotInstalledError

MANIFEST = ".char-model.json"


@dataclass(frozen=True)
class ModelEntry:
    name: str
    used_by: str  # a generator mode ('diffusion', 'transformer') or a feature ('vit', 'clip')
    role: str
    loader: str  # the diffusers / transformers class that reads the folder
    repo_id: str
    revision: str
    files: tuple[str, ...]  # huggingface_hub allow_patterns
    required: tuple[str, ...]  # files whose presence means "installed"
    approx_size_gb: float
    licence: str

    @property
    def pull_command(self) -> str:
        return f"char-pipeline models pull {self.name}"


REGISTRY: dict[str, ModelEntry] = {
    entry.name: entry
    for entry in (
        ModelEntry(
            name="sd15",
            used_by="diffusion",
            role="base UNet, VAE, CLIP text encoder and tokenizer (Stable Diffusion 1.5)",
            loader="diffusers.AnimateDiffVideoToVideoControlNetPipeline.from_pretrained",
            repo_id="stable-diffusion-v1-5/stable-diffusion-v1-5",
            revision="main",
            files=(
                "model_index.json",
                "scheduler/*",
                "tokenizer/*",
                "text_encoder/config.json",
                "text_encoder/model.fp16.safetensors",
                "unet/config.json",
                "unet/diffusion_pytorch_model.fp16.safetensors",
                "vae/config.json",
                "vae/diffusion_pytorch_model.fp16.safetensors",
            ),
            required=("model_index.json", "unet/config.json", "vae/config.json"),
            approx_size_gb=2.1,
            licence="CreativeML Open RAIL-M",
        ),
        ModelEntry(
            name="controlnet-openpose-sd15",
            used_by="diffusion",
            role="ControlNet 1.1 OpenPose: the pose of each frame",
            loader="diffusers.ControlNetModel.from_pretrained",
            repo_id="lllyasviel/control_v11p_sd15_openpose",
            revision="main",
            files=("config.json", "diffusion_pytorch_model.fp16.safetensors"),
            required=("config.json",),
            approx_size_gb=0.7,
            licence="CreativeML Open RAIL-M",
        ),
        ModelEntry(
            name="animatediff-motion-adapter",
            used_by="diffusion",
            role="AnimateDiff v1-5-3 motion module: temporal coherence over a window of frames",
            loader="diffusers.MotionAdapter.from_pretrained",
            repo_id="guoyww/animatediff-motion-adapter-v1-5-3",
            revision="main",
            files=("config.json", "*.safetensors"),
            required=("config.json",),
            approx_size_gb=1.7,
            licence="Apache-2.0",
        ),
        ModelEntry(
            name="ip-adapter-sd15",
            used_by="diffusion",
            role="IP-Adapter SD1.5 and its CLIP ViT-H image encoder: identity from the reference",
            loader="pipeline.load_ip_adapter (diffusers) + transformers.CLIPVisionModelWithProjection",
            repo_id="h94/IP-Adapter",
            revision="main",
            files=(
                "models/ip-adapter_sd15.safetensors",
                "models/image_encoder/config.json",
                "models/image_encoder/model.safetensors",
            ),
            required=("models/ip-adapter_sd15.safetensors", "models/image_encoder/config.json"),
            approx_size_gb=2.6,
            licence="Apache-2.0",
        ),
        ModelEntry(
            name="wan2.1-vace-1.3b",
            used_by="transformer",
            role="Wan 2.1 VACE 1.3B: video diffusion transformer, reference image + pose video",
            loader="diffusers.WanVACEPipeline.from_pretrained",
            repo_id="Wan-AI/Wan2.1-VACE-1.3B-diffusers",
            revision="main",
            files=("*.json", "*.txt", "*.model", "*.safetensors"),
            required=("model_index.json", "transformer/config.json"),
            approx_size_gb=23.0,
            licence="Apache-2.0",
        ),
        ModelEntry(
            name="flux1-dev",
            used_by="instant-character",
            role="FLUX.1 [dev]: the diffusion transformer of the predictions door",
            loader="diffusers.FluxPipeline.from_pretrained",
            repo_id="black-forest-labs/FLUX.1-dev",
            revision="main",
            files=("*.json", "*.txt", "*.model", "*.safetensors"),
            required=("model_index.json", "transformer/config.json"),
            approx_size_gb=33.0,
            licence="FLUX.1 [dev] Non-Commercial License",
        ),
        ModelEntry(
            name="siglip-so400m",
            used_by="instant-character",
            role="SigLIP so400m vision encoder: the character image's features",
            loader="transformers.SiglipVisionModel.from_pretrained",
            repo_id="google/siglip-so400m-patch14-384",
            revision="main",
            files=("*.json", "*.safetensors", "*.model"),
            required=("config.json", "preprocessor_config.json"),
            approx_size_gb=3.5,
            licence="Apache-2.0",
        ),
        ModelEntry(
            name="instant-character-adapter",
            used_by="instant-character",
            role="the subject adapter of engine/generators/instant_character.py (projector + "
            "per-block cross-attention); weights come from training it: none are published",
            loader="instant_character.SubjectAdapter (safetensors + config.json)",
            repo_id="local/instant-character-adapter",
            revision="-",
            files=("config.json", "subject_adapter.safetensors"),
            required=("config.json", "subject_adapter.safetensors"),
            approx_size_gb=0.5,
            licence="yours (trained locally)",
        ),
        ModelEntry(
            name="dinov2-small",
            used_by="vit",
            role="identity features for model 'vit' (CLS embedding)",
            loader="transformers.AutoModel.from_pretrained",
            repo_id="facebook/dinov2-small",
            revision="main",
            files=("config.json", "preprocessor_config.json", "model.safetensors"),
            required=("config.json",),
            approx_size_gb=0.09,
            licence="Apache-2.0",
        ),
        ModelEntry(
            name="clip-vit-base-patch32",
            used_by="clip",
            role="text control model 'clip' (text tower)",
            loader="transformers.CLIPTextModelWithProjection.from_pretrained",
            repo_id="openai/clip-vit-base-patch32",
            revision="main",
            files=("*.json", "*.txt", "model.safetensors"),
            required=("config.json",),
            approx_size_gb=0.6,
            licence="MIT",
        ),
    )
}
# What each generator mode needs, in loading order.
MODE_ENTRIES: dict[str, tuple[str, ...]] = {
    "diffusion": (
        "sd15",
        "controlnet-openpose-sd15",
        "animatediff-motion-adapter",
        "ip-adapter-sd15",
    ),
    "transformer": ("wan2.1-vace-1.3b",),
    "instant-character": ("flux1-dev", "siglip-so400m", "instant-character-adapter"),
}
FEATURE_ENTRIES = {"vit": "dinov2-small", "clip": "clip-vit-base-patch32"}

_root: Path | None = None


def use_model_store(root: Path | None) -> None:
    """Name this process's model store (settings.models_dir); the services and the Dagster
    resources call it once, like identity.use_onnx_cache."""
    global _root
    _root = Path(root) if root is not None else None


def model_store() -> ModelStore:
    if _root is None:
        raise ModelNotInstalledError(
            "No model store is configured in this process (settings.models_dir).", model=None
        )
    return ModelStore(_root)


def feature_folder(feature: str) -> Path | None:
    """The store's folder for an optional transformers model ('vit', 'clip'), if installed."""
    if _root is None:
        return None
    store = ModelStore(_root)
    name = FEATURE_ENTRIES[feature]
    return store.path(name) if store.installed(name) else None


def entry(name: str) -> ModelEntry:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ModelNotInstalledError(
            f"Unknown model {name!r}; the registry has: {', '.join(REGISTRY)} "
            "(char-pipeline models list).",
            model=name,
        ) from None


class ModelStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, name: str) -> Path:
        return self.root / entry(name).name

    def installed(self, name: str) -> bool:
        folder = self.path(name)
        return all((folder / required).is_file() for required in entry(name).required)

    def require(self, name: str) -> Path:
        """The entry's folder, or ModelNotInstalled naming the exact command that fixes it."""
        if not self.installed(name):
            model = entry(name)
            raise ModelNotInstalledError(
                f"The '{model.used_by}' mode needs the model '{name}' ({model.role}), which is "
                f"not installed in {self.root}. Install it with: {model.pull_command} "
                f"(or copy the folder of {model.repo_id} to {self.path(name)}).",
                model=name,
                mode=model.used_by,
                command=model.pull_command,
                path=str(self.path(name)),
            )
        return self.path(name)

    def listing(self) -> list[dict]:
        rows = []
        for name, model in REGISTRY.items():
            folder = self.path(name)
            installed = self.installed(name)
            rows.append(
                {
                    "name": name,
                    "used_by": model.used_by,
                    "installed": installed,
                    "size_bytes": _folder_bytes(folder) if installed else None,
                    "approx_size_gb": model.approx_size_gb,
                    "licence": model.licence,
                    "repo_id": model.repo_id,
                    "path": str(folder),
                }
            )
        return rows

    def pull(self, name: str, *, revision: str | None = None) -> Path:
        """Download the entry's files with huggingface_hub into its folder, then record the
        manifest. Offline (HF_HUB_OFFLINE, or no route to the hub) → a clear error."""
        model = entry(name)
        folder = self.path(name)
        if model.repo_id.startswith("local/"):
            raise ModelNotInstalledError(
                f"'{name}' has no public source ({model.role}). Put its folder at {folder} "
                f"(files: {', '.join(model.files)}), then run `char-pipeline models verify "
                f"{name} --record`.",
                model=name,
            )
        if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
            raise ModelNotInstalledError(_offline_advice(model, folder, "HF_HUB_OFFLINE is set"))
        from huggingface_hub import snapshot_download

        try:
            snapshot_download(
                model.repo_id,
                revision=revision or model.revision,
                allow_patterns=list(model.files),
                local_dir=folder,
            )
        except Exception as exc:  # network, auth, missing revision: the hub's own message
            raise ModelNotInstalledError(
                _offline_advice(model, folder, f"{type(exc).__name__}: {exc}")
            ) from exc
        self.record(name, revision=revision or model.revision)
        return folder

    def record(self, name: str, *, revision: str | None = None) -> dict:
        """Write the folder's manifest: every file's size and SHA-256."""
        folder = self.require(name)
        manifest = {
            "name": name,
            "repo_id": entry(name).repo_id,
            "revision": revision or "copied in (unknown revision)",
            "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "files": {
                str(path.relative_to(folder)): {
                    "bytes": path.stat().st_size,
                    "sha256": _sha256(path),
                }
                for path in _files(folder)
            },
        }
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        return manifest

    def verify(self, name: str) -> dict:
        """Required files present, and every file the manifest lists unchanged."""
        folder = self.require(name)
        manifest_path = folder / MANIFEST
        if not manifest_path.is_file():
            return {
                "name": name,
                "ok": True,
                "checked": 0,
                "note": "no manifest (copied in by hand): required files present, hashes not "
                f"recorded; run: char-pipeline models verify {name} --record",
            }
        manifest = json.loads(manifest_path.read_text())
        problems = []
        for relative, expected in manifest["files"].items():
            path = folder / relative
            if not path.is_file():
                problems.append(f"{relative}: missing")
            elif path.stat().st_size != expected["bytes"] or _sha256(path) != expected["sha256"]:
                problems.append(f"{relative}: changed (SHA-256 differs from the manifest)")
        return {
            "name": name,
            "ok": not problems,
            "checked": len(manifest["files"]),
            "revision": manifest.get("revision"),
            "problems": problems,
        }

    def remove(self, name: str) -> bool:
        folder = self.path(name)
        if not folder.exists():
            return False
        shutil.rmtree(folder)
        return True


def _offline_advice(model: ModelEntry, folder: Path, why: str) -> str:
    return (
        f"Cannot download '{model.name}' from the Hugging Face Hub ({why}). On a machine with "
        f"access run `{model.pull_command}` (or `huggingface-cli download {model.repo_id}`), "
        f"then copy the folder to {folder} and run `char-pipeline models verify {model.name} "
        "--record`."
    )


def _files(folder: Path) -> list[Path]:
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file() and path.name != MANIFEST and ".cache" not in path.parts
    )


def _folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in _files(folder)) if folder.is_dir() else 0


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
