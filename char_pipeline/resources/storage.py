"""The IO manager for the small JSON records assets hand downstream (they point at files).

The artifact store itself is a plain ``char_pipeline.storage.ArtifactStore``: definitions.py
passes the object built from settings, Dagster wraps it as a resource, and assets receive it
as ``store: dg.ResourceParam[ArtifactStore]``.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from char_pipeline.catalog import record_key, run_output_key
from char_pipeline.storage import ArtifactStore


class JsonRecordIOManager(dg.ConfigurableIOManager):
    """Stores each asset partition's output (a JSON-serialisable record) as a JSON file, and
    an op's output (a batch's chunks) under its run, where a step on another machine (a
    Celery worker) reads it from the same artifact store."""

    root_url: str
    s3_endpoint_url: str | None = None

    def _key(self, context: dg.OutputContext | dg.InputContext) -> str:
        if not context.has_asset_key:
            output = context if isinstance(context, dg.OutputContext) else context.upstream_output
            return run_output_key(output.run_id, output.step_key, output.name, output.mapping_key)
        partition = context.partition_key if context.has_partition_key else "__all__"
        return record_key("/".join(context.asset_key.path), partition)

    def _store(self) -> ArtifactStore:
        return ArtifactStore(root_url=self.root_url, s3_endpoint_url=self.s3_endpoint_url)

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if obj is None:
            return
        self._store().write_json(self._key(context), obj)

    def load_input(self, context: dg.InputContext) -> Any:
        return self._store().read_json(self._key(context))
