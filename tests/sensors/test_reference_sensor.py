import dagster as dg

from char_pipeline import catalog
from char_pipeline.assets.partitions import reference_partitions
from char_pipeline.sensors.references import reference_prune_sensor, reference_upload_sensor


def test_new_uploads_become_partitions_and_runs_once(store, image_paths, tmp_path):
    upload = catalog.save_upload(store, image_paths["chelsea"].read_bytes(), "chelsea.png")
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        context = dg.build_sensor_context(instance=instance, resources={"store": store})
        result = reference_upload_sensor(context)
        assert [r.partition_key for r in result.run_requests] == [upload.reference_image_id]
        assert result.run_requests[0].run_key == upload.reference_image_id
        (request,) = result.dynamic_partitions_requests
        assert request.partition_keys == [upload.reference_image_id]

        instance.add_dynamic_partitions(reference_partitions.name, [upload.reference_image_id])
        again = reference_upload_sensor(
            dg.build_sensor_context(instance=instance, resources={"store": store})
        )
        assert not again.run_requests and not again.dynamic_partitions_requests
        assert again.skip_reason is not None


def test_partitions_without_uploads_are_pruned(store, image_paths, tmp_path):
    upload = catalog.save_upload(store, image_paths["present"].read_bytes(), "p.png")
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        instance.add_dynamic_partitions(
            reference_partitions.name, [upload.reference_image_id, "ref_deleted00"]
        )
        result = reference_prune_sensor(
            dg.build_sensor_context(instance=instance, resources={"store": store})
        )
    (request,) = result.dynamic_partitions_requests
    assert isinstance(request, dg.DeleteDynamicPartitionsRequest) and request.partition_keys == [
        "ref_deleted00"
    ]


def test_references_the_api_already_processed_queue_behind_renders(store, image_paths, tmp_path):
    fresh = catalog.save_upload(store, image_paths["chelsea"].read_bytes(), "chelsea.png")
    done = catalog.save_upload(store, image_paths["present"].read_bytes(), "present.png")
    store.write_json(catalog.record_key("identity_features", done.reference_image_id), {})
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        result = reference_upload_sensor(
            dg.build_sensor_context(instance=instance, resources={"store": store})
        )
    priorities = {r.partition_key: r.tags.get("dagster/priority") for r in result.run_requests}
    assert priorities == {fresh.reference_image_id: None, done.reference_image_id: "-1"}
