"""What a failed Dagster run says to a user: the innermost exception, not Dagster's wrapper.

Shared by the sensors (job and manifest results), health checks and the CLI runner; imports
Dagster only inside ``run_failure_cause``.
"""

from __future__ import annotations


def innermost_error(error) -> str:
    """``Type: message`` of the deepest cause of a Dagster error (SerializableErrorInfo).

    Dagster wraps what an op raised ("Error occurred while executing op …"); the user needs the
    exception that started it, e.g. ``AttributeError: … has no attribute 'label'``. Only
    explicit causes are followed (``raise … from``), not the exception being handled when
    another was raised; a ``dg.Failure`` is the op's own readable word and ends the walk.
    """
    while error.cause is not None and not (error.cls_name or "").endswith("Failure"):
        error = error.cause
    text = (error.message or "").strip()
    first = text.splitlines()[0] if text else error.cls_name or "error"
    name, colon, rest = first.partition(": ")
    if colon and "." in name and " " not in name:  # dagster._core….Failure → Failure
        first = f"{name.rsplit('.', 1)[1]}: {rest}"
    return first


def run_failure_cause(instance, run_id: str) -> str:
    """Why a run failed, step by step, each with its innermost exception."""
    import dagster as dg

    messages = []
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        event = record.dagster_event
        error = event.step_failure_data.error if event and event.step_failure_data else None
        text = innermost_error(error) if error else (record.message or "").strip()
        messages.append(f"{event.step_key if event else '?'}: {text}")
    if messages:
        return "; ".join(messages)
    # No step failed: the run itself could not start (launch or code-loading errors).
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE):
        event = record.dagster_event
        data = event.event_specific_data if event else None
        error = getattr(data, "error", None)
        return innermost_error(error) if error else (record.message or "run failed").strip()
    run = instance.get_run_by_id(run_id)
    return f"run {run_id} ended as {run.status.value}" if run else f"run {run_id} not found"
