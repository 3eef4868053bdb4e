"""Predictions (the InstantCharacter-style door): one row per request, and its webhook."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

import sqlalchemy as sa

from char_pipeline.jobstore.deliveries import queue_delivery
from char_pipeline.jobstore.schema import StoreBase, iso, now, predictions


@dataclass(frozen=True)
class Prediction:
    id: str
    account_id: str
    api_key_id: str | None
    model: str
    status: str
    request: dict
    result: dict | None
    error: str | None
    webhook_url: str | None
    inference_ms: int | None
    created_at: str

    @classmethod
    def from_row(cls, row) -> Prediction:
        return cls(
            row.id,
            row.account_id,
            row.api_key_id,
            row.model,
            row.status,
            json.loads(row.request),
            json.loads(row.result) if row.result else None,
            row.error,
            row.webhook_url,
            row.inference_ms,
            iso(row.created_at),
        )


class Predictions(StoreBase):
    def create_prediction(
        self,
        account_id: str,
        api_key_id: str | None,
        model: str,
        request: dict,
        webhook_url: str | None,
    ) -> Prediction:
        prediction_id = "pred_" + secrets.token_hex(10)
        moment = now()
        with self.engine.begin() as connection:
            connection.execute(
                predictions.insert().values(
                    id=prediction_id,
                    account_id=account_id,
                    api_key_id=api_key_id,
                    model=model,
                    status="created",
                    request=json.dumps(request),
                    webhook_url=webhook_url,
                    created_at=moment,
                    updated_at=moment,
                )
            )
        found = self.get_prediction(prediction_id)
        assert found is not None
        return found

    def get_prediction(self, prediction_id: str) -> Prediction | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(predictions).where(predictions.c.id == prediction_id)
            ).first()
        return Prediction.from_row(row) if row else None

    def start_prediction(self, prediction_id: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                predictions.update()
                .where(predictions.c.id == prediction_id, predictions.c.status == "created")
                .values(status="processing", updated_at=now())
            )

    def finish_prediction(
        self,
        prediction_id: str,
        *,
        result: dict | None,
        error: str | None,
        inference_ms: int | None,
        webhook_payload: dict | None,
    ) -> None:
        """completed (with a result) or failed (with an error); in the same transaction, its
        webhook joins the outbox the webhook sensor delivers (signed like every callback)."""
        moment = now()
        with self.engine.begin() as connection:
            connection.execute(
                predictions.update()
                .where(predictions.c.id == prediction_id)
                .values(
                    status="failed" if error else "completed",
                    result=json.dumps(result) if result is not None else None,
                    error=error,
                    inference_ms=inference_ms,
                    updated_at=moment,
                )
            )
            row = connection.execute(
                sa.select(predictions.c.webhook_url, predictions.c.api_key_id).where(
                    predictions.c.id == prediction_id
                )
            ).first()
            if row.webhook_url and webhook_payload is not None:
                queue_delivery(
                    connection,
                    prediction_id,
                    row.api_key_id,
                    row.webhook_url,
                    webhook_payload,
                    moment,
                )
