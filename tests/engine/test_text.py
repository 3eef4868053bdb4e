import numpy as np
import pytest

from char_pipeline.engine.motion import plan_motion
from char_pipeline.engine.text import embed_sentences, minilm_path


def test_minilm_ships_in_the_package_and_embeds():
    assert (minilm_path() / "model.safetensors").stat().st_size > 80_000_000
    vectors = embed_sentences(["a dog runs", "a puppy is running", "a stock market report"])
    assert vectors.shape == (3, 384)
    assert vectors[0] @ vectors[1] > 0.6 > vectors[0] @ vectors[2] + 0.3


@pytest.mark.parametrize(
    ("prompt", "motion"),
    [
        ("celebrate the victory", "clap"),
        ("sprinting to catch the bus", "run"),
        ("shivering in the snow", "shake"),
        ("a product rotating on a turntable", "spin"),
        ("sitting quietly", "idle"),
    ],
)
def test_custom_nlp_picks_motions_by_meaning(prompt, motion):
    plan = plan_motion(prompt, "custom-nlp")
    assert plan.primary == motion and plan.similarity is not None


def test_library_words_still_win_and_keyword_model_stays_literal():
    assert plan_motion("dance while waving", "custom-nlp").similarity is None
    assert plan_motion("celebrate the victory", "keyword").primary == "idle"


def test_clip_is_not_installed_unless_configured(monkeypatch):
    from char_pipeline.engine.errors import ModelNotInstalledError

    monkeypatch.delenv("CHAR_CLIP_MODEL_PATH", raising=False)
    assert plan_motion("wave hello", "clip").primary == "wave"  # library words need no encoder
    with pytest.raises(ModelNotInstalledError, match="custom-nlp"):
        plan_motion("celebrate the victory", "clip")


def test_clip_code_path_with_a_tiny_clip_built_here(tmp_path, monkeypatch):
    """The real loading and embedding code, on a 1-layer CLIP text model made in the test
    (its weights are random: this checks the wiring, not the choice of motion)."""
    import json

    import torch
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection, CLIPTokenizer

    from char_pipeline.engine import text

    # GPT-2/CLIP byte-level alphabet: printable bytes as themselves, the rest shifted.
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    shifted = [256 + i for i, _ in enumerate(b for b in range(256) if b not in printable)]
    symbols = [chr(c) for c in printable + shifted]
    vocab = {token: i for i, token in enumerate(symbols + [s + "</w>" for s in symbols])}
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt"))
    torch.manual_seed(0)
    config = CLIPTextConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        projection_dim=16,
        max_position_embeddings=128,
        bos_token_id=vocab["<|startoftext|>"],
        eos_token_id=vocab["<|endoftext|>"],
    )
    folder = tmp_path / "tiny-clip"
    CLIPTextModelWithProjection(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    monkeypatch.setenv("CHAR_CLIP_MODEL_PATH", str(folder))
    embeddings = text.embed_clip(["celebrate the victory", "a quiet evening"])
    assert embeddings.shape == (2, 16)
    assert np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    plan = plan_motion("celebrate the victory", "clip")
    assert plan.primary in text.MOTION_DESCRIPTIONS and plan.similarity is not None
    assert plan_motion("celebrate the victory", "clip") == plan  # deterministic


def test_a_prompt_without_a_close_motion_says_so():
    """'dab' has no library word and maps to bounce at cosine 0.20: the motion plays, and the
    plan says it may not be what was asked; a paraphrase of a library motion says nothing."""
    from char_pipeline.engine.motion import plan_motion
    from char_pipeline.engine.text import CONFIDENT_SIMILARITY

    dab = plan_motion("dab", model="custom-nlp")
    assert dab.similarity < CONFIDENT_SIMILARITY
    assert dab.notice and "'dab'" in dab.notice and repr(dab.primary) in dab.notice
    hop = plan_motion("leap in the air", model="custom-nlp")
    assert hop.primary == "jump" and hop.notice is None
    assert plan_motion("wave hello", model="custom-nlp").notice is None  # a library word
    assert "idle" in plan_motion("ponder", model="keyword").notice
