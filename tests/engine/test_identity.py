import numpy as np
import pytest

from char_pipeline.engine import identity
from char_pipeline.engine.errors import ModelNotInstalledError


def test_cnn_weights_recognise_the_cat(chelsea):
    reference, mask = chelsea
    probabilities = identity.cnn_classify(identity.subject_crop(reference.rgb, mask.soft))
    assert int(np.argmax(probabilities)) in (281, 282, 285)  # tabby / tiger cat / Egyptian cat


def test_embedding_is_stable_under_mirroring_and_separates_subjects(chelsea, present):
    cat, cat_mask = chelsea
    features = identity.extract_identity(cat.rgb, cat_mask.soft)
    assert features.feature_dim == 1280
    assert abs(float(np.linalg.norm(features.vector)) - 1.0) < 1e-5
    mirrored = identity.extract_identity(cat.rgb[:, ::-1].copy(), cat_mask.soft[:, ::-1].copy())
    product = identity.extract_identity(present[0].rgb, present[1].soft)
    same = identity.cosine_similarity(features.vector, mirrored.vector)
    different = identity.cosine_similarity(features.vector, product.vector)
    assert same > 0.9
    assert different < 0.5


def test_vit_without_a_local_model_is_a_clear_error(chelsea, monkeypatch):
    monkeypatch.delenv(identity.VIT_MODEL_ENV, raising=False)
    reference, mask = chelsea
    with pytest.raises(ModelNotInstalledError, match="not installed"):
        identity.extract_identity(reference.rgb, mask.soft, model="vit")


def test_vit_loads_a_local_transformers_model(chelsea, tmp_path, monkeypatch):
    transformers = pytest.importorskip("transformers")
    config = transformers.ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=24,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
    )
    transformers.ViTModel(config).save_pretrained(tmp_path)
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path)
    monkeypatch.setenv(identity.VIT_MODEL_ENV, str(tmp_path))
    reference, mask = chelsea
    features = identity.extract_identity(reference.rgb, mask.soft, model="vit")
    assert features.model == "vit" and features.feature_dim == 24


def test_the_onnx_copy_embeds_like_torch_and_spares_torch_the_import(chelsea, tmp_path):
    """The first embedding with a cache folder exports the ONNX copy; a fresh process then
    gets the same vector from it without importing torch."""
    import json
    import subprocess
    import sys

    from char_pipeline.engine.identity import (
        cnn_onnx_path,
        subject_crop,
        torch_cnn_embedding,
    )

    reference, mask = chelsea
    crop = subject_crop(reference.rgb, mask.soft)
    np.save(tmp_path / "crop.npy", crop)
    probe = (
        "import json, sys\n"
        "import numpy as np\n"
        "from pathlib import Path\n"
        "from char_pipeline.engine import identity\n"
        f"identity.use_onnx_cache(Path({str(tmp_path / 'models')!r}))\n"
        f"vector = identity.cnn_embedding(np.load({str(tmp_path / 'crop.npy')!r}))\n"
        "print(json.dumps({'vector': vector.tolist(), 'torch': 'torch' in sys.modules}))\n"
    )
    runs = []
    for _ in range(2):  # the first exports (with torch), the second only reads the file
        done = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=True
        )
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    assert cnn_onnx_path(tmp_path / "models").exists()
    assert [run["torch"] for run in runs] == [True, False]
    expected = torch_cnn_embedding(crop)
    for run in runs:
        assert np.allclose(np.array(run["vector"]), expected, atol=1e-4)
