"""References: upload, processing beside the requests, metadata, waiting for processing."""

from __future__ import annotations

import hashlib
import json
import time

from char_pipeline import catalog
from char_pipeline.engine.controls import keypoints_from_json
from char_pipeline.engine.errors import (
    BadRequestError,
    CharPipelineError,
    InvalidInputError,
    NotFoundError,
)
from char_pipeline.engine.identity import extract_identity
from char_pipeline.engine.images import decode_png, load_reference_image
from char_pipeline.services import processing
from char_pipeline.services.context import ServiceContext

PROCESSING_WAIT_SECONDS = 60.0


class References:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.store = ctx.store

    def upload(self, data: bytes, name: str, keypoints: list[dict] | None = None) -> dict:
        settings = self.ctx.settings
        if keypoints is not None:
            keypoints_from_json(keypoints)  # shape first: a typed 422 before anything is stored
        try:
            reference = load_reference_image(
                data, max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels
            )
        except CharPipelineError as exc:
            raise BadRequestError(exc.message, reason=type(exc).__name__, **exc.details) from exc
        reference_id = self._reference_id_for(data)
        if self.store.exists(catalog.upload_meta_key(reference_id)):
            meta = self.store.read_json(catalog.upload_meta_key(reference_id))
        else:
            upload = catalog.save_upload(
                self.store,
                data,
                name=name,
                reference_id=reference_id,
                account_id=self.ctx.account,
            )
            meta = upload.__dict__
            meta.update(width=reference.width, height=reference.height)
            self.store.write_json(catalog.upload_meta_key(reference_id), meta)
        reprocess = False
        if keypoints is not None:
            from char_pipeline.engine.rig import client_rest_pose

            # Checked against the image now, so bad keypoints are a 422 at upload.
            client_rest_pose(
                keypoints,
                (0, 0, reference.width, reference.height),
                (reference.width, reference.height),
            )
            key = catalog.reference_key(reference_id, "keypoints.json")
            old = self.store.read_json(key) if self.store.exists(key) else None
            if old != keypoints:
                self.store.write_json(key, keypoints)
                reprocess = True
        if reprocess or not self._processed(reference_id):
            if reprocess:
                self.store.delete(catalog.record_key("identity_features", reference_id))
            self.ctx.processor.submit(self.process, reference_id)
        return {k: meta[k] for k in ("reference_image_id", "width", "height", "uploaded_at")}

    def _reference_id_for(self, data: bytes) -> str:
        """The operator's content id, or the account's reference for these bytes: the one it
        has, an old content-addressed one it may adopt, or a new random id."""
        account = self.ctx.account
        if account is None:
            return catalog.reference_id_for(data)
        sha = catalog.content_sha(data)
        if existing := self.ctx.jobs.reference_for_content(account, sha):
            return existing
        legacy_id = catalog.reference_id_for(data)
        adoptable = self._legacy(legacy_id) and self.ctx.jobs.first_job_account(legacy_id) in (
            None,
            account,
        )
        reference_id, _ = self.ctx.jobs.own_reference(
            account, sha, legacy_id if adoptable else None
        )
        return reference_id

    def _legacy(self, reference_id: str) -> bool:
        """Uploaded before references had owners (and nobody has adopted it since)."""
        key = catalog.upload_meta_key(reference_id)
        return (
            self.store.exists(key)
            and "account_id" not in self.store.read_json(key)
            and self.ctx.jobs.reference_account(reference_id) is None
        )

    def _check_visible(self, reference_id: str) -> None:
        """404 unless the reference exists and belongs to the caller's account.

        Another account's reference is reported missing, not forbidden: its existence is
        not to be probed. An old reference is adopted by the account of its first job.
        """
        missing = NotFoundError(
            f"Reference image {reference_id!r} not found.", reference_image_id=reference_id
        )
        if not catalog.REFERENCE_ID.match(reference_id) or not self.store.exists(
            catalog.upload_meta_key(reference_id)
        ):
            raise missing
        account = self.ctx.account
        if account is None:
            return
        owner = self.ctx.jobs.reference_account(reference_id)
        if owner == account:
            return
        if (
            owner is None
            and self._legacy(reference_id)
            and self.ctx.jobs.first_job_account(reference_id) == account
        ):
            sha = catalog.content_sha(self.store.read_bytes(catalog.upload_key(reference_id)))
            adopted, _ = self.ctx.jobs.own_reference(account, sha, reference_id)
            if adopted == reference_id:
                return
        raise missing

    def process(self, reference_id: str) -> None:
        """Ingest, segment and embed; writes the records the Dagster assets would write."""
        settings = self.ctx.settings
        try:
            ingested = processing.ingest_reference(
                self.store,
                reference_id,
                max_bytes=settings.max_image_bytes,
                max_pixels=settings.max_image_pixels,
            )
            self.store.write_json(
                catalog.record_key("reference_image", reference_id), ingested.record
            )
            segmented = processing.segment_reference(self.store, reference_id)
            self.store.write_json(
                catalog.record_key("subject_mask", reference_id), segmented.record
            )
            features = processing.embed_reference(self.store, reference_id, segmented.record)
            self.store.write_json(catalog.record_key("identity_features", reference_id), features)
        except CharPipelineError as exc:
            self.store.write_json(
                catalog.reference_key(reference_id, "error.json"),
                {
                    "code": exc.code,
                    "message": exc.message,
                    "details": {k: str(v) for k, v in exc.details.items()},
                },
            )

    def _processed(self, reference_id: str) -> bool:
        return self.store.exists(catalog.record_key("identity_features", reference_id))

    def metadata(self, reference_id: str) -> dict:
        self._check_visible(reference_id)
        return self._metadata(reference_id)

    def _metadata(self, reference_id: str) -> dict:
        meta = self.store.read_json(catalog.upload_meta_key(reference_id))
        error_key = catalog.reference_key(reference_id, "error.json")
        kind = None
        if self._processed(reference_id):
            status, error = "processed", None
            mask_key = catalog.record_key("subject_mask", reference_id)
            if self.store.exists(mask_key):
                record = self.store.read_json(mask_key)
                kind = {k: record.get(k) for k in ("subject_kind", "kind_reason")}
        elif self.store.exists(error_key):
            status, error = "failed", self.store.read_json(error_key)
        else:
            status, error = "pending", None
        return {
            **{
                k: meta.get(k)
                for k in ("reference_image_id", "width", "height", "uploaded_at", "name")
            },
            "status": status,
            "error": error,
            **(kind or {}),
        }

    def require_processed(self, reference_id: str, *, wait: bool = True) -> dict:
        """The subject_mask record of a processed reference; waits briefly while pending."""
        self._check_visible(reference_id)
        deadline = time.monotonic() + (PROCESSING_WAIT_SECONDS if wait else 0)
        while True:
            meta = self._metadata(reference_id)
            if meta["status"] == "processed":
                return self.store.read_json(catalog.record_key("subject_mask", reference_id))
            if meta["status"] == "failed":
                raise InvalidInputError(
                    f"Reference image {reference_id} could not be processed: {meta['error']['message']}",
                    reference_image_id=reference_id,
                )
            if time.monotonic() >= deadline:
                raise NotFoundError(
                    f"Reference image {reference_id} is still being processed; retry in a few seconds.",
                    reference_image_id=reference_id,
                    status="pending",
                )
            time.sleep(0.05)

    def mask_png(self, reference_id: str) -> bytes:
        """The soft mask as PNG bytes (no waiting: a pending reference is a 404)."""
        mask_record = self.require_processed(reference_id, wait=False)
        return self.store.read_bytes(mask_record["mask_key"])

    def features(self, reference_id: str, model: str) -> dict:
        """The identity vector: the stored CNN one, or the local ViT's computed now."""
        mask_record = self.require_processed(reference_id)
        if model == "cnn":
            vector = processing.load_npy(
                self.store, catalog.reference_key(reference_id, "identity_cnn.npy")
            )
        else:
            rgb, _ = processing.load_reference_rgba(self.store, reference_id)
            soft = decode_png(self.store.read_bytes(mask_record["mask_key"]))
            vector = extract_identity(rgb, soft, model="vit").vector
        return {
            "reference_image_id": reference_id,
            "model": model,
            "feature_dim": int(vector.shape[0]),
            "f_identity": [round(float(v), 6) for v in vector],
        }

    def version(self, reference_id: str, mask_record: dict) -> str:
        """What a reference adds to a render's cache key: its id and what processing made of
        it (mask, rig, identity), so re-processing or re-rigging it means new renders."""
        parts = [json.dumps(mask_record, sort_keys=True)]
        for key in (
            mask_record.get("rig_key"),
            catalog.record_key("identity_features", reference_id),
        ):
            if key and self.store.exists(key):
                parts.append(hashlib.sha256(self.store.read_bytes(key)).hexdigest())
        digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]
        return f"{reference_id}:{digest}"
