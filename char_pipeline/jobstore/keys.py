"""API keys: hashed at rest, scoped, revocable, each with its webhook signing secrets."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from char_pipeline.jobstore.schema import StoreBase, api_keys, iso, now

SCOPES = ("reference:read", "control:write", "generate:write")
ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: str
    revoked_at: str | None
    webhook_secret: str | None = field(default=None, repr=False)
    account_id: str = ""

    def to_json(self) -> dict[str, Any]:
        """The key's public record; the webhook secret is shown only where it is created."""
        data = {k: v for k, v in self.__dict__.items() if k != "webhook_secret"}
        return {**data, "scopes": list(self.scopes)}


class Keys(StoreBase):
    def create_key(
        self, name: str, scopes: list[str] | tuple[str, ...], account: str | None = None
    ) -> tuple[ApiKey, str]:
        """Create a key; the plaintext is returned once and only its hash is stored.

        Keys created with the same ``account`` share references and jobs; without one, the
        key is an account of its own.
        """
        if account is not None and not ACCOUNT_NAME.match(account):
            raise ValueError(
                f"Invalid account name {account!r}: 1-64 letters, digits, '_', '.' or '-'."
            )
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown or not scopes:
            raise ValueError(
                f"Unknown or empty scopes {unknown or scopes}; choose from {', '.join(SCOPES)}."
            )
        plaintext = "sk_live_" + secrets.token_urlsafe(32)
        key_id = "key_" + secrets.token_hex(8)
        row = {
            "id": key_id,
            "name": name,
            "prefix": plaintext[:12],
            "key_hash": hash_key(plaintext),
            "scopes": ",".join(sorted(set(scopes))),
            "created_at": now(),
            "revoked_at": None,
            "webhook_secret": new_webhook_secret(),
            "webhook_secret_previous": None,
            "account_id": account,
        }
        with self.engine.begin() as connection:
            connection.execute(api_keys.insert().values(**row))
        return self._key(row), plaintext

    @staticmethod
    def _key(row) -> ApiKey:
        row = dict(row._mapping) if hasattr(row, "_mapping") else row
        return ApiKey(
            id=row["id"],
            name=row["name"],
            prefix=row["prefix"],
            scopes=tuple(s for s in row["scopes"].split(",") if s),
            created_at=iso(row["created_at"]),
            revoked_at=iso(row["revoked_at"]),
            webhook_secret=row.get("webhook_secret"),
            account_id=row.get("account_id") or row["id"],
        )

    def verify_key(self, plaintext: str) -> ApiKey | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(api_keys).where(api_keys.c.key_hash == hash_key(plaintext))
            ).first()
        if row is None or row.revoked_at is not None:
            return None
        return self._key(row)

    def get_key(self, key_id: str) -> ApiKey | None:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(api_keys).where(api_keys.c.id == key_id)).first()
        return None if row is None else self._key(row)

    def rotate_webhook_secret(self, key_id: str) -> str | None:
        """A new signing secret; the old one keeps signing too until the next rotation."""
        secret = new_webhook_secret()
        with self.engine.begin() as connection:
            result = connection.execute(
                api_keys.update()
                .where(api_keys.c.id == key_id)
                .values(webhook_secret_previous=api_keys.c.webhook_secret, webhook_secret=secret)
            )
        return secret if result.rowcount == 1 else None

    def webhook_secrets(self, key_id: str) -> list[str]:
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(api_keys.c.webhook_secret, api_keys.c.webhook_secret_previous).where(
                    api_keys.c.id == key_id
                )
            ).first()
        return [secret for secret in (row or ()) if secret]

    def list_keys(self) -> list[ApiKey]:
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(api_keys).order_by(api_keys.c.created_at)).all()
        return [self._key(row) for row in rows]

    def revoke_key(self, key_id: str) -> bool:
        with self.engine.begin() as connection:
            result = connection.execute(
                api_keys.update()
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now())
            )
        return result.rowcount == 1
