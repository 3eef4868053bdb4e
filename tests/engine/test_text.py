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
