"""One run for a batch's tasks across many references (POST /v1/batch/video, async, and the
small jobs one sensor tick groups).

A batch of N videos for N references would otherwise pay N run launches (a few seconds
each). Dagster runs one partition (or a contiguous range of dynamic partitions) per asset
run, and a batch's references are any set, so this run is an op job:

    plan_batch ──(one dynamic output per compute type)──▶ render_chunk_<type> × chunks

``plan_batch`` cuts the tasks into chunks (tasks of one reference stay together, so a chunk
prepares each scene once) and maps them onto the op of the run's compute type, whose
``dagster-celery/queue`` tag names that type's queue. The executor decides where a chunk
renders: the embedded default runs them in this process (one chunk of every task, rendered
with X-Instance-Count threads, as before); the distributed profile's Celery executor sends
each chunk (one task by default) to a worker of that queue (docs/scaling.md). Each chunk
records an AssetMaterialization of ``video`` per reference partition it rendered, so the
asset's partitions stay true. A task that fails on bad input fails its job alone; the
others go on.
"""

import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dagster as dg
import numpy as np

from char_pipeline import catalog
from char_pipeline.engine.errors import CharPipelineError
from char_pipeline.engine.generators.base import cast_layers
from char_pipeline.engine.render import RenderSettings, parse_resolution
from char_pipeline.resources.compute import COMPUTE_TYPES, ComputeFleet
from char_pipeline.resources.jobs import GPU_TYPE_TAG, INSTANCE_COUNT_TAG, JobStoreResource
from char_pipeline.services import processing
from char_pipeline.services.generation import from_spec
from char_pipeline.storage import ArtifactStore

# dagster_celery.tags.DAGSTER_CELERY_QUEUE_TAG, spelled out so the embedded default does not
# import Celery to read a constant.
CELERY_QUEUE_TAG = "dagster-celery/queue"


class BatchRenderConfig(dg.Config):
    tasks: list[dict]  # job_id, reference_image_id, sequence_key, result_fields, ttls
    resolution: str
    fps: int
    format: str
    tasks_per_step: int = 0  # 0: every task in one step (in-process threads)


def chunk_tasks(tasks: list[dict], tasks_per_step: int) -> list[list[dict]]:
    """Tasks in chunks of at most ``tasks_per_step`` (0: one chunk), each reference's tasks
    consecutive so most chunks hold one reference and prepare its scene once."""
    ordered = sorted(tasks, key=lambda task: task["reference_image_id"])
    size = tasks_per_step if tasks_per_step > 0 else max(1, len(ordered))
    return [ordered[start : start + size] for start in range(0, len(ordered), size)]


@dg.op(
    description="Cut a batch into chunks and map them onto the op of the run's compute type.",
    out={name: dg.DynamicOut(dict, is_required=False) for name in COMPUTE_TYPES},
)
def plan_batch(context: dg.OpExecutionContext, config: BatchRenderConfig, compute: ComputeFleet):
    compute_type = compute.select(context.run.tags.get(GPU_TYPE_TAG)).name
    chunks = chunk_tasks(config.tasks, config.tasks_per_step)
    settings = {"resolution": config.resolution, "fps": config.fps, "format": config.format}
    for index, chunk in enumerate(chunks):
        yield dg.DynamicOutput(
            {"tasks": chunk, **settings},
            mapping_key=f"chunk_{index}",
            output_name=compute_type,
        )
    context.log.info(f"{len(config.tasks)} tasks in {len(chunks)} step(s) on {compute_type}")


def render_chunk(
    context: dg.OpExecutionContext,
    chunk: dict,
    store: dg.ResourceParam[ArtifactStore],
    jobs: JobStoreResource,
    compute: ComputeFleet,
) -> None:
    """Render one chunk's videos (X-Instance-Count threads); see the module docstring."""
    tasks = chunk["tasks"]
    video_format, fps = chunk["format"], chunk["fps"]
    compute_type = compute.select(context.run.tags.get(GPU_TYPE_TAG))
    width, height = parse_resolution(chunk["resolution"], max_pixels=compute_type.max_render_pixels)
    renderer = compute_type.make_renderer()
    scenes, references = {}, {}
    for reference_id, background in sorted(
        {(task["reference_image_id"], task.get("background_key")) for task in tasks},
        key=lambda pair: (pair[0], pair[1] or ""),
    ):
        mask_record = store.read_json(catalog.record_key("subject_mask", reference_id))
        identity = store.read_json(catalog.record_key("identity_features", reference_id))
        character = processing.load_character(store, reference_id, mask_record)
        scenes[reference_id, background] = processing.prepare_scene(
            renderer,
            character,
            width,
            height,
            "image" if background else "auto",
            background_image=processing.load_background(store, background) if background else None,
        )
        references[reference_id] = processing.load_npy(store, identity["key"])

    def cast_scenes(task: dict) -> list:
        """One scene per character of a cast, each in its slot of the frame, over the task's
        background photograph (or a plain one: each reference's own would not match)."""
        cast, background = task["cast"], task.get("background_key")
        backdrop = processing.load_background(store, background) if background else None
        found = []
        for index, member in enumerate(cast):
            mask_record = store.read_json(catalog.record_key("subject_mask", member))
            character = processing.load_character(store, member, mask_record)
            settings = RenderSettings(
                width,
                height,
                "image" if backdrop is not None else "solid",
                background_image=backdrop,
                slot=(index / len(cast), (index + 1) / len(cast)),
            )
            found.append(renderer.prepare(character, settings))
        return found

    def render_task(task: dict) -> tuple[dict, dict | None, str | None]:
        job_id, reference_id = task["job_id"], task["reference_image_id"]
        if not jobs.store.start_job(job_id, context.run.run_id):
            job = jobs.store.get_job(job_id)
            if job is None or job.status not in ("pending", "processing"):
                return task, None, f"skipped: the job is {job.status if job else 'gone'}"
        samples: list[float] = []
        last_report = [0.0]
        try:
            z_sequence = processing.load_npy(store, task["sequence_key"])
            count, middle = len(z_sequence), len(z_sequence) // 2

            def on_frame(index: int, frame: np.ndarray, alpha: np.ndarray) -> None:
                if index == middle:
                    sample = processing.identity_sample(references[reference_id], frame, alpha)
                    if sample is not None:  # unmeasurable on this frame: reported as []
                        samples.append(sample)
                if time.monotonic() - last_report[0] > 0.5 or index + 1 == count:
                    last_report[0] = time.monotonic()
                    jobs.store.update_progress(
                        job_id, 95.0 * (index + 1) / count, f"Rendered {index + 1}/{count} frames"
                    )

            mode, options = from_spec(task.get("generation"))
            generator = compute_type.make_generator(mode, renderer)
            scene = scenes[reference_id, task.get("background_key")]
            if task.get("cast"):
                cast = cast_scenes(task)
                scene, layers = cast[0], cast_layers(renderer, cast, z_sequence)
            else:
                layers = generator.generate(scene, z_sequence, options)
            with tempfile.TemporaryDirectory() as folder:
                local = Path(folder) / f"{job_id}.{video_format}"
                info = processing.render_video_file(
                    scene,
                    layers,
                    local,
                    video_format=video_format,
                    fps=fps,
                    on_frame=on_frame,
                )
                key = catalog.video_key(reference_id, job_id, video_format)
                uri = store.put_file(local, key)
        except CharPipelineError as exc:  # bad input: this job fails for good, alone
            jobs.store.fail_job(job_id, exc.code, exc.message, {"run_id": context.run.run_id})
            return task, None, exc.message
        except Exception as exc:  # infrastructure: the run fails after the others finish
            context.log.error(f"{job_id}: {type(exc).__name__}: {exc}")
            return task, None, f"infrastructure: {type(exc).__name__}: {exc}"
        result = processing.video_result(
            task["result_fields"],
            key,
            info,
            video_format=video_format,
            fps=fps,
            renderer=renderer.name,
        )
        jobs.complete(job_id, result, store, task.get("url_ttl"))
        jobs.store.cache_put(result["etag"], result, int(task.get("cache_ttl", 86400)))
        video = {"job_id": job_id, "uri": uri, "frames": info.frames, "identity_cosine": samples}
        return task, video, None

    workers = max(1, min(4, int(context.run.tags.get(INSTANCE_COUNT_TAG, "1") or 1)))
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes = list(pool.map(render_task, tasks))
    for task, video, _ in outcomes:
        if video is None:
            continue
        context.log_event(
            dg.AssetMaterialization(
                asset_key="video",
                partition=task["reference_image_id"],
                description=f"Batch task {video['job_id']}",
                metadata={
                    "job_id": video["job_id"],
                    "frames": video["frames"],
                    "resolution": f"{width}x{height}",
                    "renderer": renderer.name,
                    "identity_cosine": dg.MetadataValue.json(
                        [round(v, 4) for v in video["identity_cosine"]]
                    ),
                    "path": dg.MetadataValue.path(video["uri"]),
                },
            )
        )
    failed = {task["job_id"]: error for task, _, error in outcomes if error}
    context.log.info(
        f"{len(outcomes) - len(failed)} of {len(outcomes)} videos for "
        f"{len(scenes)} references in {time.perf_counter() - started:.1f} s with {workers} workers"
    )
    for job_id, error in failed.items():
        context.log.warning(f"{job_id} failed: {error}")
    broken = [job_id for job_id, error in failed.items() if error.startswith("infrastructure")]
    if broken:
        # job_failure_sensor retries these jobs one by one; finished ones are left alone.
        raise dg.Failure(
            description=f"{len(broken)} batch task(s) hit an infrastructure error: {', '.join(broken)}"
        )


def render_chunk_op(compute_type: str) -> dg.OpDefinition:
    """The chunk op of one compute type: its queue tag routes its steps to that type's
    Celery workers (`char-pipeline worker --queue t4`); in process the tag is ignored."""
    return dg.op(
        name=f"render_chunk_{compute_type}",
        description=f"Render a chunk of a batch's videos on {compute_type}.",
        tags={CELERY_QUEUE_TAG: compute_type},
    )(render_chunk)


RENDER_CHUNK_OPS = {name: render_chunk_op(name) for name in COMPUTE_TYPES}


@dg.job(
    description="An async batch's videos for several references: chunks of tasks as steps, "
    "rendered where the executor sends them (in process, or Celery workers per compute type).",
)
def batch_render_job():
    planned = plan_batch()
    for name, render_op in RENDER_CHUNK_OPS.items():
        getattr(planned, name).map(render_op)
