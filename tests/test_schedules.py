from datetime import UTC, datetime

import dagster as dg

from char_pipeline import catalog
from char_pipeline.definitions import ASSETS, build_resources
from char_pipeline.schedules import backfill_schedule
from char_pipeline.settings import Settings


def test_backfill_picks_missing_and_failed_partitions(tmp_path, image_paths):
    resources = build_resources(Settings(pipeline_home=tmp_path))
    store = resources["store"]
    catalog.save_upload(
        store, image_paths["present"].read_bytes(), "p.png", reference_id="ref_done"
    )
    catalog.save_upload(store, b"broken", "b.png", reference_id="ref_broken")
    catalog.save_upload(
        store, image_paths["present"].read_bytes(), "p.png", reference_id="ref_never"
    )
    run_config = {
        "ops": {
            "control_sequences": {"config": {"control_types": ["latent"], "steps": 2}},
            "frames": {"config": {"resolution": "64x64"}},
            "video": {"config": {"formats": ["mp4"]}},
            # The 3D turntable is not what these tests are about: keep it short.
            "nerf_video": {"config": {"frames": 4}},
        }
    }
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        context = dg.build_schedule_context(
            instance=instance, scheduled_execution_time=datetime(2026, 11, 23, 3, tzinfo=UTC)
        )
        assert isinstance(backfill_schedule(context), dg.SkipReason)
        instance.add_dynamic_partitions(
            "reference_image_id", ["ref_done", "ref_broken", "ref_never"]
        )
        assert dg.materialize(
            ASSETS,
            partition_key="ref_done",
            instance=instance,
            resources=resources,
            run_config=run_config,
        ).success
        assert not dg.materialize(
            ASSETS,
            partition_key="ref_broken",
            instance=instance,
            resources=resources,
            run_config=run_config,
            raise_on_error=False,
        ).success
        requests = backfill_schedule(context)
    assert sorted(r.partition_key for r in requests) == ["ref_broken", "ref_never"]
    assert requests[0].run_key.startswith("backfill:20261123T0300:")


def test_schedule_is_off_by_default():
    assert backfill_schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert backfill_schedule.cron_schedule == "0 3 * * *"
