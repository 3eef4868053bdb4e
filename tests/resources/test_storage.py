"""Artifact storage on a real S3-compatible server (moto) on loopback."""

import pytest

from char_pipeline.storage import ArtifactStore
from tests.services import moto_s3


@pytest.fixture(scope="module")
def s3_endpoint():
    with moto_s3() as endpoint:
        yield endpoint


@pytest.fixture()
def s3_store(s3_endpoint, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    import boto3

    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(
        Bucket="artifacts"
    )
    return ArtifactStore(root_url="s3://artifacts/char", s3_endpoint_url=s3_endpoint)


def test_local_store_round_trip(store, tmp_path):
    assert store.is_local
    uri = store.write_json("a/b.json", {"x": 1})
    assert uri.endswith("a/b.json") and store.read_json("a/b.json") == {"x": 1}
    source = tmp_path / "clip.bin"
    source.write_bytes(b"\x00" * 1000)
    store.put_file(source, "videos/clip.bin")
    with store.local_copy("videos/clip.bin") as path:
        assert path.read_bytes() == b"\x00" * 1000
    assert store.list_dirs("a") == [] and store.list_dirs("missing") == []


def test_s3_store_round_trip(s3_store, tmp_path):
    assert not s3_store.is_local
    uri = s3_store.write_bytes("references/ref_x/upload.bin", b"hello")
    assert uri == "s3://artifacts/char/references/ref_x/upload.bin"
    assert s3_store.read_bytes("references/ref_x/upload.bin") == b"hello"
    assert s3_store.list_dirs("references") == ["ref_x"]
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"\x01" * 2048)
    s3_store.put_file(source, "videos/ref_x/text.mp4")
    with s3_store.local_copy("videos/ref_x/text.mp4") as path:
        assert path.read_bytes() == b"\x01" * 2048


def test_s3_links_are_presigned_and_expire(s3_store):
    import time

    import httpx

    from char_pipeline.links import signed_url

    s3_store.write_bytes("videos/ref_x/clip.mp4", b"\x00\x01video")
    url = signed_url(
        s3_store, b"unused", "http://127.0.0.1:1", "videos/ref_x/clip.mp4", int(time.time()) + 60
    )
    assert "Signature=" in url and "Expires=" in url and url.startswith(s3_store.s3_endpoint_url)
    assert httpx.get(url, timeout=10).content == b"\x00\x01video"


def test_the_asset_graph_runs_on_s3_by_changing_one_setting(s3_store, image_paths, tmp_path):
    import dagster as dg

    from char_pipeline import catalog
    from char_pipeline.definitions import ASSETS, build_resources
    from char_pipeline.engine.encode import probe_video
    from char_pipeline.settings import Settings

    settings = Settings(
        pipeline_home=tmp_path,
        artifacts_url="s3://artifacts/run",
        s3_endpoint_url=s3_store.s3_endpoint_url,
    )
    resources = build_resources(settings)
    store = resources["store"]
    assert not store.is_local
    catalog.save_upload(
        store, image_paths["present"].read_bytes(), "present.png", reference_id="ref_s3present"
    )
    run_config = {
        "ops": {
            "control_sequences": {"config": {"control_types": ["latent"], "steps": 4}},
            "frames": {"config": {"resolution": "64x64"}},
            "video": {"config": {"fps": 8, "formats": ["mp4"]}},
            # The 3D turntable is not what these tests are about: keep it short.
            "nerf_video": {"config": {"frames": 4}},
        }
    }
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        instance.add_dynamic_partitions("reference_image_id", ["ref_s3present"])
        result = dg.materialize(
            ASSETS,
            partition_key="ref_s3present",
            instance=instance,
            resources=resources,
            run_config=run_config,
        )
    assert result.success
    (video,) = result.output_for_node("video")["videos"]
    assert video["uri"] == "s3://artifacts/run/videos/ref_s3present/latent.mp4"
    with store.local_copy(video["key"]) as path:
        assert probe_video(path).frames == 4
    assert store.exists("records/subject_mask/ref_s3present.json")
