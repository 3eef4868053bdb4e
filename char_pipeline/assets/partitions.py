import dagster as dg

# One partition per reference image; render requests travel as run config and tags.
reference_partitions = dg.DynamicPartitionsDefinition(name="reference_image_id")
