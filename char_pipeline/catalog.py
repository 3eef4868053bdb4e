"""The reference catalog: uploaded reference images and where their artifacts live.

Shared by the CLI, the Dagster assets and the API, so every door agrees on artifact keys.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from char_pipeline.storage import ArtifactStore

REFERENCE_ID = re.compile(r"^ref_[a-z0-9_]{4,64}$")


@dataclass(frozen=True)
class Upload:
    reference_image_id: str
    name: str
    uploaded_at: str
    size_bytes: int
    # The owning account (None: an operator's, from the CLI or a manifest). A record without
    # this field predates accounts; services/references.py adopts those for their first owner.
    account_id: str | None = None


def content_sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def reference_id_for(data: bytes) -> str:
    """Content-addressed id for the operator's doors (CLI, manifests): the same image is one
    reference. API accounts get random ids instead (jobstore/owners.py)."""
    return "ref_" + content_sha(data)[:16]


def upload_key(reference_id: str) -> str:
    return f"references/{reference_id}/upload.bin"


def upload_meta_key(reference_id: str) -> str:
    return f"references/{reference_id}/upload.json"


def reference_key(reference_id: str, name: str) -> str:
    return f"references/{reference_id}/{name}"


def control_key(reference_id: str, control: str, suffix: str) -> str:
    return f"controls/{reference_id}/{control}.{suffix}"


def frame_key(reference_id: str, control: str, index: int) -> str:
    return f"frames/{reference_id}/{control}/{index:05d}.png"


def video_key(reference_id: str, control: str, video_format: str) -> str:
    return f"videos/{reference_id}/{control}.{video_format}"


def record_key(asset: str, partition: str) -> str:
    """Where the IO manager keeps an asset partition's JSON record."""
    return f"records/{asset}/{partition}.json"


def run_output_key(run_id: str, step_key: str, output: str, mapping_key: str | None) -> str:
    """Where the IO manager keeps an op's output (one value per mapping key)."""
    return (
        f"runs/{run_id}/{step_key}/{output}" + (f"/{mapping_key}" if mapping_key else "") + ".json"
    )


def job_sequence_key(job_id: str) -> str:
    return f"jobs/{job_id}/z_sequence.npy"


def generated_key(etag: str, name: str) -> str:
    return f"generated/{etag}/{name}"


def save_upload(
    store: ArtifactStore,
    data: bytes,
    name: str = "",
    reference_id: str | None = None,
    account_id: str | None = None,
) -> Upload:
    """Store the uploaded bytes as they came; decoding and checks happen downstream."""
    reference_id = reference_id or reference_id_for(data)
    if not REFERENCE_ID.match(reference_id):
        raise ValueError(f"Invalid reference id {reference_id!r}.")
    upload = Upload(
        reference_image_id=reference_id,
        name=name,
        uploaded_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        size_bytes=len(data),
        account_id=account_id,
    )
    store.write_bytes(upload_key(reference_id), data)
    store.write_json(upload_meta_key(reference_id), upload.__dict__)
    return upload


def list_uploads(store: ArtifactStore) -> list[str]:
    return [name for name in store.list_dirs("references") if store.exists(upload_meta_key(name))]


def job_trajectory_key(job_id: str) -> str:
    return f"jobs/{job_id}/camera_trajectory.json"
