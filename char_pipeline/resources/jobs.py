"""The job store as a Dagster resource: runs report progress and results to API jobs."""

from __future__ import annotations

import dagster as dg

from char_pipeline.jobstore import JobStore, open_job_store
from char_pipeline.launching import GPU_TYPE_TAG, INSTANCE_COUNT_TAG, JOB_ID_TAG, JOB_IDS_TAG
from char_pipeline.links import completion_payload
from char_pipeline.settings import get_settings
from char_pipeline.storage import ArtifactStore

__all__ = ["GPU_TYPE_TAG", "INSTANCE_COUNT_TAG", "JOB_IDS_TAG", "JOB_ID_TAG", "JobStoreResource"]


class JobStoreResource(dg.ConfigurableResource):
    url: str

    @property
    def store(self) -> JobStore:
        return open_job_store(self.url)

    def complete(
        self, job_id: str, result: dict, artifacts: ArtifactStore, url_ttl: int | None
    ) -> bool:
        """Complete a job and queue its callback, whose links are signed like the API's."""
        settings = get_settings()
        payload = completion_payload(
            job_id,
            result,
            store=artifacts,
            secret=settings.signing_key(),
            base_url=settings.base_url,
            url_ttl=url_ttl,
        )
        return self.store.complete_job(job_id, result, payload)


def job_ids_of(context: dg.AssetExecutionContext) -> list[str]:
    """The API jobs a run renders: one, or a batch group's."""
    tags = context.run.tags
    return [j for j in tags.get(JOB_IDS_TAG, tags.get(JOB_ID_TAG, "")).split(",") if j]
