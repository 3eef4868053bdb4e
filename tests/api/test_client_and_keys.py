import json
import os
import subprocess
import sys

import pytest

from char_pipeline.client import ApiError, Client
from char_pipeline.engine.nerf import orbit


def test_sdk_reads_like_the_seed(api, key, image_paths, tmp_path):
    client = Client(api_key=key, http_client=api)
    ref = client.upload_reference_image(image_paths["present"])
    assert ref.id.startswith("ref_")
    z_seq = client.control.text(
        reference_image_id=ref.id, prompt="A cat playing piano", steps=6, model="custom-nlp"
    )
    video = client.generate.video(
        reference_image_id=ref.id,
        control_type="text",
        z_sequence=z_seq,
        format="mp4",
        resolution="64x64",
        fps=24,
    )
    path = client.download(video.video_url, tmp_path / "v.mp4")
    assert path.stat().st_size == video.size_bytes
    frame = client.generate.frame(
        reference_image_id=ref.id, control_type="text", z_t=z_seq[0], resolution="64x64"
    )
    assert frame.image_url
    assert len(client.control.latent(length=3, seed=1)) == 3
    with pytest.raises(ApiError) as info:
        client.generate.frame(
            reference_image_id=ref.id, control_type="text", z_t=[0.1], resolution="64x64"
        )
    assert info.value.status == 422 and info.value.code == "UnprocessableEntity"
    queued = client.generate.video(
        reference_image_id=ref.id,
        control_type="text",
        z_sequence=z_seq,
        resolution="64x64",
        async_=True,
        wait=False,
    )
    assert client.jobs.get(queued.job_id)["status"] == "pending"
    turntable = client.generate.nerf(
        reference_image_id=ref.id,
        camera_trajectory=[pose.to_json() for pose in orbit(4)],
        resolution="64x48",
        fps=8,
    )
    assert client.download(turntable.video_url, tmp_path / "t.mp4").stat().st_size > 0
    model = client.generate.nerf(
        reference_image_id=ref.id,
        camera_trajectory=[orbit(1)[0].to_json()],
        output_format="nerf_model",
    )
    assert model.header["format"] == "char_pipeline.nerf_model" and model.model_url


def _cli(*args, home):
    env = {**os.environ, "CHAR_PIPELINE_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "char_pipeline.cli", "keys", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_keys_cli(tmp_path):
    created = _cli(
        "create",
        "--name",
        "ci",
        "--scopes",
        "reference:read,generate:write",
        "--json",
        home=tmp_path,
    )
    assert created.returncode == 0, created.stderr
    record = json.loads(created.stdout)
    assert record["api_key"].startswith("sk_live_") and record["scopes"] == [
        "generate:write",
        "reference:read",
    ]
    listed = json.loads(_cli("list", "--json", home=tmp_path).stdout)
    assert [k["id"] for k in listed] == [record["id"]] and "api_key" not in listed[0]
    assert _cli("revoke", record["id"], home=tmp_path).returncode == 0
    assert _cli("revoke", record["id"], home=tmp_path).returncode == 1
    assert _cli("create", "--name", "x", "--scopes", "admin", home=tmp_path).returncode == 2
    human = _cli("create", "--name", "human", home=tmp_path)
    assert "shown once" in human.stdout
    assert record["account_id"] == record["id"]  # no --account: an account of its own
    team = [
        json.loads(
            _cli("create", "--name", n, "--account", "studio", "--json", home=tmp_path).stdout
        )
        for n in ("a", "b")
    ]
    assert [k["account_id"] for k in team] == ["studio", "studio"]
    bad = _cli("create", "--name", "c", "--account", "two words", home=tmp_path)
    assert bad.returncode == 2 and "account" in bad.stderr
