"""Characters (the Sora-style door): a reference with a username, owned by an account."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

import sqlalchemy as sa

from char_pipeline.jobstore.schema import StoreBase, characters, iso, now


@dataclass(frozen=True)
class Character:
    id: str
    account_id: str
    username: str
    display_name: str
    reference_image_id: str
    source: dict
    created_at: str

    @classmethod
    def from_row(cls, row) -> Character:
        return cls(
            row.id,
            row.account_id,
            row.username,
            row.display_name,
            row.reference_image_id,
            json.loads(row.source),
            iso(row.created_at),
        )


class UsernameTaken(Exception):
    """The account already has a character with this username."""


class Characters(StoreBase):
    def create_character(
        self,
        account_id: str,
        api_key_id: str | None,
        username: str,
        display_name: str,
        reference_image_id: str,
        source: dict,
        *,
        character_id: str | None = None,
    ) -> Character:
        character_id = character_id or "char_" + secrets.token_hex(6)
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    characters.insert().values(
                        id=character_id,
                        account_id=account_id,
                        api_key_id=api_key_id,
                        username=username,
                        display_name=display_name,
                        reference_image_id=reference_image_id,
                        source=json.dumps(source),
                        created_at=now(),
                    )
                )
        except sa.exc.IntegrityError as exc:
            raise UsernameTaken(username) from exc
        character = self.get_character(account_id, character_id)
        assert character is not None
        return character

    def get_character(self, account_id: str, name: str) -> Character | None:
        """By id (char_…) or username, within the account: another account's is None."""
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(characters).where(
                    characters.c.account_id == account_id,
                    sa.or_(characters.c.id == name, characters.c.username == name),
                )
            ).first()
        return Character.from_row(row) if row else None

    def username_taken(self, account_id: str, username: str) -> bool:
        with self.engine.connect() as connection:
            return (
                connection.execute(
                    sa.select(characters.c.id).where(
                        characters.c.account_id == account_id, characters.c.username == username
                    )
                ).first()
                is not None
            )

    def list_characters(
        self, account_id: str, limit: int, after: str | None = None
    ) -> tuple[list[Character], bool]:
        """Newest first, ``limit`` at a time after the character ``after``; and whether more."""
        query = sa.select(characters).where(characters.c.account_id == account_id)
        with self.engine.connect() as connection:
            if after:
                seq = connection.execute(
                    sa.select(characters.c.seq).where(
                        characters.c.account_id == account_id, characters.c.id == after
                    )
                ).scalar()
                if seq is not None:
                    query = query.where(characters.c.seq < seq)
            rows = connection.execute(
                query.order_by(characters.c.seq.desc()).limit(limit + 1)
            ).fetchall()
        return [Character.from_row(row) for row in rows[:limit]], len(rows) > limit

    def delete_character(self, account_id: str, character_id: str) -> bool:
        with self.engine.begin() as connection:
            deleted = connection.execute(
                characters.delete().where(
                    characters.c.account_id == account_id, characters.c.id == character_id
                )
            ).rowcount
        return bool(deleted)
