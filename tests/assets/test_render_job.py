"""The asset graph materialised for real on a temporary Dagster instance."""

import cv2
import dagster as dg
import numpy as np
import pytest

from char_pipeline import catalog
from char_pipeline.assets.jobs import VIDEO_ASSETS
from char_pipeline.assets.partitions import reference_partitions
from char_pipeline.definitions import ASSETS, build_resources
from char_pipeline.engine.encode import probe_video
from char_pipeline.engine.images import decode_png, encode_png, load_reference_image
from char_pipeline.resources.compute import ComputeFleet
from char_pipeline.settings import Settings

RUN_CONFIG = {
    "ops": {
        "control_sequences": {"config": {"steps": 6}},
        "frames": {"config": {"resolution": "96x64"}},
        "video": {"config": {"fps": 12, "formats": ["mp4", "gif"]}},
        "nerf_video": {"config": {"frames": 8, "resolution": "96x64"}},
    }
}


@pytest.fixture()
def setup(tmp_path, image_paths):
    settings = Settings(pipeline_home=tmp_path)
    resources = build_resources(settings)
    store = resources["store"]
    catalog.save_upload(
        store, image_paths["present"].read_bytes(), "present.png", reference_id="ref_present"
    )
    png = image_paths["astronaut"].read_bytes()
    catalog.save_upload(store, png[: len(png) // 4], "truncated.png", reference_id="ref_truncated")
    catalog.save_upload(store, b"not an image at all", "notes.txt", reference_id="ref_text")
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        instance.add_dynamic_partitions(
            reference_partitions.name, ["ref_present", "ref_truncated", "ref_text"]
        )
        yield instance, resources, store


def test_one_partition_end_to_end(setup):
    instance, resources, store = setup
    result = dg.materialize(
        ASSETS,
        partition_key="ref_present",
        instance=instance,
        resources=resources,
        run_config=RUN_CONFIG,
    )
    assert result.success
    videos = result.output_for_node("video")["videos"]
    assert {(v["control"], v["format"]) for v in videos} == {
        (c, f) for c in ("pose", "text", "latent") for f in ("mp4", "gif")
    }
    for entry in videos:
        with store.local_copy(entry["key"]) as path:
            info = probe_video(path)
        assert (info.frames, info.width, info.height) == (6, 96, 64)
        assert info.codec == ("h264" if entry["format"] == "mp4" else "gif")
    checks = result.get_asset_check_evaluations()
    assert {c.check_name for c in checks} == {
        "video_decodes",
        "identity_preserved",
        "colour_consistent",
        "temporally_coherent",
        "low_jitter",
        "no_pops",
        "face_visible",
        "silhouette_matches_mask",
        "background_clean",
        "no_tears",
        "no_empty_frames",
        "reference_view_psnr",
        "turntable_silhouette_complete",
    }
    passed = {c.check_name: c.passed for c in checks}
    for name in (
        "silhouette_matches_mask",
        "background_clean",
        "no_tears",
        "no_empty_frames",
        "face_visible",  # the product has no face: nothing to check, and it says so
    ):
        assert passed[name], next(c for c in checks if c.check_name == name).metadata
    assert passed["reference_view_psnr"] and passed["turntable_silhouette_complete"]
    psnr = next(c for c in checks if c.check_name == "reference_view_psnr")
    assert psnr.metadata["psnr_db"].value >= 25.0
    turntable = result.output_for_node("nerf_video")
    with store.local_copy(turntable["key"]) as path:
        info = probe_video(path)
    assert (info.frames, info.width, info.height, info.codec) == (8, 96, 64, "h264")
    assert turntable["quality"]["hole_fraction_max"] <= 0.005
    assert store.read_json("references/ref_present/nerf_model.json")["bounds"]
    assert passed["video_decodes"] and passed["identity_preserved"] and passed["colour_consistent"]
    # A whole dance cycle squeezed into 6 frames really is jerky: the jitter check says so.
    jitter = next(c for c in checks if c.check_name == "low_jitter").metadata["jitter"].value
    assert not passed["low_jitter"] and jitter["pose"] > 0.03 > jitter["latent"]
    identity = (
        next(c for c in checks if c.check_name == "identity_preserved").metadata["min_cosine"].value
    )
    assert set(identity) == {"pose", "text", "latent"} and min(identity.values()) > 0.6
    mask_meta = result.asset_materializations_for_node("subject_mask")[0].metadata
    assert mask_meta["mask_source"].value == "alpha"
    assert "data:image/png;base64" in mask_meta["preview"].value
    assert store.exists("references/ref_present/mask.png")
    assert store.exists("frames/ref_present/text/00005.png")


@pytest.mark.parametrize(
    ("partition", "message"),
    [("ref_truncated", "corrupt or truncated"), ("ref_text", "not a readable")],
)
def test_bad_input_fails_only_its_partition(setup, partition, message):
    instance, resources, _store = setup
    bad = dg.materialize(
        ASSETS,
        partition_key=partition,
        instance=instance,
        resources=resources,
        run_config=RUN_CONFIG,
        raise_on_error=False,
    )
    assert not bad.success
    failure = next(e for e in bad.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert failure.step_key == "reference_image"
    assert message in failure.step_failure_data.error.message
    assert f"Reference {partition} is not a usable image" in failure.step_failure_data.error.message
    assert (
        failure.step_failure_data.user_failure_data.metadata["error_code"].value
        == "UnprocessableEntity"
    )
    # The good partition still renders afterwards, on the same instance.
    good = dg.materialize(
        ASSETS,
        partition_key="ref_present",
        instance=instance,
        resources=resources,
        run_config=RUN_CONFIG,
    )
    assert good.success


def test_oversized_image_fails_with_the_limit(setup, tmp_path):
    instance, resources, _store = setup
    resources = {**resources, "compute": ComputeFleet.build(max_image_pixels=1000)}
    result = dg.materialize(
        ASSETS[:1],
        partition_key="ref_present",
        instance=instance,
        resources=resources,
        raise_on_error=False,
    )
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert "the limit is 1,000 pixels" in failure.step_failure_data.error.message


def test_picture_checks_fail_on_what_the_old_renderer_made():
    """The figures bench/quality_sheets.py measured on the old renderer's astronaut (mirror-
    padded plate, a torn helmet arm) and coffee cup (NaN mesh: an empty frame) fail; today's
    pass."""
    from char_pipeline.assets.rendering import picture_checks

    def outcome(scene: dict, control: dict) -> dict[str, bool]:
        frames = {"picture": scene, "controls": {"pose": {"picture": control}}}
        return {result.check_name: result.passed for result in picture_checks(frames)}

    old_astronaut = outcome(
        {"silhouette_iou": 0.996, "dark_fill_share": 0.095, "mirror_mismatch": 0.019},
        {"max_torn_share": 0.1422, "min_coverage_share": 0.99},
    )
    assert not old_astronaut["background_clean"] and not old_astronaut["no_tears"]
    old_coffee = outcome(
        {"silhouette_iou": 0.0, "dark_fill_share": 0.085, "mirror_mismatch": 0.112},
        {"max_torn_share": 1.0, "min_coverage_share": 0.0},
    )
    assert not any(old_coffee.values())
    today = outcome(
        {"silhouette_iou": 1.0, "dark_fill_share": 0.0, "mirror_mismatch": 1.0},
        {"max_torn_share": 0.0058, "min_coverage_share": 1.0},
    )
    assert all(today.values())
    # A video made before the picture figures existed cannot vouch for them.
    assert not outcome({}, {})["silhouette_matches_mask"]


def _pig_rgba_png() -> bytes:
    """AnimatedDrawings' pig with its own mask, as a client would upload it: an RGBA PNG."""
    from tests.conftest import DRAWINGS

    texture = load_reference_image((DRAWINGS / "pig_texture.jpg").read_bytes()).rgb
    mask = cv2.imread(str(DRAWINGS / "pig_mask.png"), cv2.IMREAD_GRAYSCALE)
    return encode_png(np.dstack([texture, mask]))


def test_the_engine_and_a_dagster_run_give_the_same_frames(tmp_path):
    """The pig given its own mask rendered blank through the engine's functions (ARAP NaN)
    and whole through an upload: one path now, the same pixels both ways, the pig in each."""
    from char_pipeline.engine.pipeline import prepare_character
    from char_pipeline.engine.render import RenderSettings
    from char_pipeline.engine.renderers import get_renderer
    from char_pipeline.services.processing import load_npy

    upload = _pig_rgba_png()
    settings = Settings(pipeline_home=tmp_path)
    resources = build_resources(settings)
    store = resources["store"]
    catalog.save_upload(store, upload, "pig.png", reference_id="ref_drawn_pig")
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        instance.add_dynamic_partitions(reference_partitions.name, ["ref_drawn_pig"])
        result = dg.materialize(
            ASSETS,
            selection=VIDEO_ASSETS,
            partition_key="ref_drawn_pig",
            instance=instance,
            resources=resources,
            run_config={
                "ops": {
                    "control_sequences": {"config": {"steps": 6, "control_types": ["text"]}},
                    "frames": {"config": {"resolution": "160x128"}},
                    "video": {"config": {"fps": 12, "formats": ["mp4"]}},
                }
            },
        )
    assert result.success
    z_sequence = load_npy(store, catalog.control_key("ref_drawn_pig", "text", "npy"))
    renderer = get_renderer("mesh")
    character = prepare_character(upload)
    scene = renderer.prepare(character, RenderSettings(160, 128))
    for index, z_t in enumerate(z_sequence):
        frame, alpha = renderer.render_layers(scene, z_t)
        stored = decode_png(store.read_bytes(catalog.frame_key("ref_drawn_pig", "text", index)))
        assert np.array_equal(frame, stored[..., :3]), index
        assert (alpha > 127).sum() > 0.9 * (scene.subject[..., 3] > 127).sum()


def test_a_motion_clip_drives_the_pose_control(setup):
    """The Dagster door for motion clips: a library clip retargeted in control_sequences; an
    unknown clip fails the partition with the engine's message."""
    instance, resources, _ = setup
    config = {
        "ops": {
            "control_sequences": {
                "config": {"control_types": ["pose"], "motion_clip": "jumping", "clip_fps": 4}
            },
            "frames": {"config": {"resolution": "64x64"}},
            "video": {"config": {"fps": 4, "formats": ["mp4"]}},
        }
    }
    result = dg.materialize(
        ASSETS,
        selection=VIDEO_ASSETS,
        partition_key="ref_present",
        instance=instance,
        resources=resources,
        run_config=config,
    )
    assert result.success
    control = result.output_for_node("control_sequences")["controls"]["pose"]
    assert control["motion_clip"] == "jumping" and control["frames"] == round(
        control["seconds"] * 4
    )
    config["ops"]["control_sequences"]["config"]["motion_clip"] = "moonwalk"
    failed = dg.materialize(
        ASSETS,
        selection=VIDEO_ASSETS,
        partition_key="ref_present",
        instance=instance,
        resources=resources,
        run_config=config,
        raise_on_error=False,
    )
    assert not failed.success
    failure = next(e for e in failed.all_events if e.is_step_failure)
    assert "Unknown motion clip 'moonwalk'" in str(failure.step_failure_data.error)
