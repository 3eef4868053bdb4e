"""Reference ownership: which account a reference belongs to, and per-account dedupe."""

from __future__ import annotations

import secrets

import sqlalchemy as sa

from char_pipeline.jobstore.schema import StoreBase, jobs, now, reference_owners


def new_reference_id() -> str:
    """Random, so an id says nothing about the image and cannot be guessed from it."""
    return "ref_" + secrets.token_hex(8)


class ReferenceOwners(StoreBase):
    def own_reference(
        self, account_id: str, content_sha: str, reference_id: str | None = None
    ) -> tuple[str, bool]:
        """The account's reference for these bytes: (id, True) when newly made, else the one
        it already has. ``reference_id`` names the id to give a new one (adopting old data)."""
        existing = self.reference_for_content(account_id, content_sha)
        if existing:
            return existing, False
        new_id = reference_id or new_reference_id()
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    reference_owners.insert().values(
                        reference_image_id=new_id,
                        account_id=account_id,
                        content_sha=content_sha,
                        created_at=now(),
                    )
                )
        except sa.exc.IntegrityError:
            # Another request of the same account uploaded the same bytes first.
            existing = self.reference_for_content(account_id, content_sha)
            if existing is None:
                raise
            return existing, False
        return new_id, True

    def reference_for_content(self, account_id: str, content_sha: str) -> str | None:
        with self.engine.connect() as connection:
            return connection.execute(
                sa.select(reference_owners.c.reference_image_id).where(
                    reference_owners.c.account_id == account_id,
                    reference_owners.c.content_sha == content_sha,
                )
            ).scalar()

    def reference_account(self, reference_id: str) -> str | None:
        with self.engine.connect() as connection:
            return connection.execute(
                sa.select(reference_owners.c.account_id).where(
                    reference_owners.c.reference_image_id == reference_id
                )
            ).scalar()

    def first_job_account(self, reference_id: str) -> str | None:
        """The account of the first job that rendered a reference: its owner from before
        references had owners."""
        with self.engine.connect() as connection:
            return connection.execute(
                sa.select(jobs.c.account_id)
                .where(jobs.c.reference_image_id == reference_id, jobs.c.account_id.isnot(None))
                .order_by(jobs.c.seq)
                .limit(1)
            ).scalar()
