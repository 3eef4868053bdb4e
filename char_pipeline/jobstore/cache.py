"""The render cache: a response per ETag, with an expiry."""

from __future__ import annotations

import json
from datetime import timedelta

import sqlalchemy as sa

from char_pipeline.jobstore.schema import StoreBase, _aware, now, response_cache


class RenderCache(StoreBase):
    def cache_get(self, etag: str) -> dict | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(response_cache).where(response_cache.c.etag == etag)
            ).first()
        if row is None:
            return None
        if _aware(row.expires_at) <= now():
            return None
        return json.loads(row.response)

    def cache_put(self, etag: str, response: dict, ttl_seconds: int) -> None:
        moment = now()
        values = {
            "response": json.dumps(response),
            "created_at": moment,
            "expires_at": moment + timedelta(seconds=ttl_seconds),
        }
        with self.engine.begin() as connection:
            updated = connection.execute(
                response_cache.update().where(response_cache.c.etag == etag).values(**values)
            )
            if updated.rowcount == 0:
                connection.execute(response_cache.insert().values(etag=etag, **values))
