"""How a batch run is cut into steps, and where the executor sends them."""

from __future__ import annotations

import pytest

from char_pipeline.assets.batch import CELERY_QUEUE_TAG, batch_render_job, chunk_tasks
from char_pipeline.definitions import build_definitions
from char_pipeline.resources.compute import COMPUTE_TYPES
from char_pipeline.settings import Settings


def tasks(*references: str) -> list[dict]:
    return [{"job_id": f"job_{i}", "reference_image_id": r} for i, r in enumerate(references)]


def test_chunks_keep_a_reference_together_and_respect_the_size():
    batch = tasks("b", "a", "b", "a", "c")
    (everything,) = chunk_tasks(batch, 0)  # in process: one step, every task
    assert [t["reference_image_id"] for t in everything] == ["a", "a", "b", "b", "c"]
    pairs = chunk_tasks(batch, 2)
    assert [[t["reference_image_id"] for t in chunk] for chunk in pairs] == [
        ["a", "a"],
        ["b", "b"],
        ["c"],
    ]
    assert sorted(t["job_id"] for chunk in chunk_tasks(batch, 1) for t in chunk) == sorted(
        t["job_id"] for t in batch
    )


def test_each_compute_type_has_its_queue():
    queues = {
        node.name: node.definition.tags.get(CELERY_QUEUE_TAG)
        for node in batch_render_job.graph.nodes
        if node.name.startswith("render_chunk_")
    }
    assert queues == {f"render_chunk_{name}": name for name in COMPUTE_TYPES}
    plan = batch_render_job.graph.node_named("plan_batch")
    assert CELERY_QUEUE_TAG not in plan.definition.tags  # every worker's default queue


@pytest.mark.parametrize(
    ("profile", "executor", "expected", "step_tasks"),
    [
        ("embedded", None, "in_process", 0),
        ("distributed", None, "celery", 1),
        ("distributed", "in_process", "in_process", 0),
    ],
)
def test_the_profile_chooses_the_batch_executor(tmp_path, profile, executor, expected, step_tasks):
    settings = Settings(
        pipeline_home=tmp_path,
        profile=profile,
        executor=executor,
        dagster_postgres_url="postgresql://postgres@127.0.0.1:5432/test",
    )
    assert settings.resolved_batch_step_tasks == step_tasks
    defs = build_definitions(settings)
    assert defs.resolve_job_def("batch_render_job").executor_def.name == expected
    # API request jobs stay in process whatever the profile (one partition, one step chain).
    assert defs.resolve_job_def("render_request_job").executor_def.name == "in_process"
