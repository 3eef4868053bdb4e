"""The tables and the engine every part of the job store shares.

SQLAlchemy Core on SQLite by default (one file in the data root, WAL mode so several API
workers and Dagster runs can share it) or any SQLAlchemy URL (PostgreSQL) by setting.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

metadata = sa.MetaData()

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("prefix", sa.String(20), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("scopes", sa.String(200), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    # Webhook signing secrets (Standard Webhooks 'whsec_…'); the previous one stays valid
    # while receivers rotate.
    sa.Column("webhook_secret", sa.String(80), nullable=True),
    sa.Column("webhook_secret_previous", sa.String(80), nullable=True),
    # Keys of one account share its references and jobs; a key made without one is its own
    # account (NULL here, read as the key's id).
    sa.Column("account_id", sa.String(64), nullable=True),
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("progress", sa.Float, nullable=False, default=0.0),
    sa.Column("message", sa.String(500), nullable=True),
    sa.Column("reference_image_id", sa.String(80), nullable=False),
    sa.Column("request", sa.Text, nullable=False),
    sa.Column("result", sa.Text, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("api_key_id", sa.String(40), nullable=True),
    sa.Column("callback_url", sa.String(2000), nullable=True),
    sa.Column("gpu_type", sa.String(10), nullable=False, default="v100"),
    sa.Column("instance_count", sa.Integer, nullable=False, default=1),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=1),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # Whose job it is (NULL: an operator's, from a manifest or the CLI), and the batch a task
    # belongs to; both are what GET /v1/jobs filters on.
    sa.Column("account_id", sa.String(64), nullable=True),
    sa.Column("batch_id", sa.String(40), nullable=True),
    sa.Index("ix_jobs_account_seq", "account_id", "seq"),
    # Open jobs by status: the API's "anything pending?" before it launches a run at once,
    # the reconciler's and the launch watchdog's worklists.
    sa.Index("ix_jobs_status_kind", "status", "kind"),
)

# The outbox: one row per callback, written in the same transaction as the job's final
# status, so a crash can delay a webhook but never lose it.
deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("webhook_id", sa.String(60), nullable=False, unique=True),
    sa.Column("job_id", sa.String(40), nullable=False, index=True),
    sa.Column("api_key_id", sa.String(40), nullable=True),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # pending, delivered, failed, disabled
    sa.Column("attempt_count", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True, index=True),
    sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

delivery_attempts = sa.Table(
    "delivery_attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("delivery_id", sa.Integer, nullable=False, index=True),
    sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("error", sa.String(500), nullable=True),
    sa.Column("duration_ms", sa.Integer, nullable=False),
)

# Endpoints that answered 410 Gone: no more callbacks to them for that key.
disabled_endpoints = sa.Table(
    "disabled_endpoints",
    metadata,
    sa.Column("api_key_id", sa.String(40), primary_key=True),
    sa.Column("url", sa.String(2000), primary_key=True),
    sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=False),
)

idempotency = sa.Table(
    "idempotency",
    metadata,
    sa.Column("api_key_id", sa.String(40), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),  # in_progress, done
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("response", sa.Text, nullable=True),
    sa.Column("headers", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    # While in progress: which process runs the request, and until when its claim holds.
    sa.Column("owner", sa.String(200), nullable=True),
    sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
)

# Who owns each reference an account uploaded. Ids are random; the same bytes uploaded again
# by the same account are the same reference (content_sha), by another account a new one.
reference_owners = sa.Table(
    "reference_owners",
    metadata,
    sa.Column("reference_image_id", sa.String(80), primary_key=True),
    sa.Column("account_id", sa.String(64), nullable=False),
    sa.Column("content_sha", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("account_id", "content_sha", name="uq_reference_owner_content"),
)

# Characters of the Sora-style door (seed 002): a named reference, made from a video clip.
# Usernames are unique per account (a key made alone is its own account).
characters = sa.Table(
    "characters",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column("account_id", sa.String(64), nullable=False),
    sa.Column("api_key_id", sa.String(40), nullable=True),
    sa.Column("username", sa.String(64), nullable=False),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("reference_image_id", sa.String(80), nullable=False),
    sa.Column("source", sa.Text, nullable=False),  # JSON: url or video_id, timestamps, figures
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("account_id", "username", name="uq_character_username"),
)

# Predictions of the InstantCharacter-style door (seeds 003/004): images from a reference and
# a prompt, rendered in the API process (created → processing → completed | failed).
predictions = sa.Table(
    "predictions",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column("account_id", sa.String(64), nullable=False),
    sa.Column("api_key_id", sa.String(40), nullable=True),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("request", sa.Text, nullable=False),
    sa.Column("result", sa.Text, nullable=True),  # output keys, NSFW flags, figures
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("webhook_url", sa.String(2000), nullable=True),
    sa.Column("inference_ms", sa.Integer, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

response_cache = sa.Table(
    "response_cache",
    metadata,
    sa.Column("etag", sa.String(80), primary_key=True),
    sa.Column("response", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes for timezone-aware columns: they are UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return _aware(moment).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _enable_sqlite_wal(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class StoreBase:
    """The engine (and the schema, created or extended on first use) the aggregates share."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite"):
            database = sa.engine.make_url(url).database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            self.engine = sa.create_engine(
                url, connect_args={"timeout": 30, "check_same_thread": False}
            )
            sa.event.listen(self.engine, "connect", _enable_sqlite_wal)
        else:
            self.engine = sa.create_engine(url, pool_pre_ping=True)
            self._create_schema(url)
        metadata.create_all(self.engine)
        self._add_missing_columns()
        self._add_missing_indexes()

    def _create_schema(self, url: str) -> None:
        """Create the PostgreSQL schema a URL's ``options=-csearch_path=NAME`` names: the job
        store's tables then live apart from others in the database (Dagster's has a ``jobs``
        table too, in the distributed profile's shared database)."""
        options = sa.engine.make_url(url).query.get("options", "")
        if isinstance(options, tuple):
            options = " ".join(options)
        match = re.search(r"-c\s*search_path=([A-Za-z_][A-Za-z0-9_]*)", options)
        if match:
            with self.engine.begin() as connection:
                connection.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{match.group(1)}"'))

    def _add_missing_indexes(self) -> None:
        """Create indexes that newer versions declare on tables made by older ones
        (create_all makes a table's indexes only with the table)."""
        for table in metadata.sorted_tables:
            for index in table.indexes:
                index.create(self.engine, checkfirst=True)

    def _add_missing_columns(self) -> None:
        """Add nullable columns that newer versions introduced to tables made by older ones."""
        inspector = sa.inspect(self.engine)
        for table in metadata.sorted_tables:
            existing = {column["name"] for column in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name in existing:
                    continue
                kind = column.type.compile(dialect=self.engine.dialect)
                default = " DEFAULT 1" if column.name == "attempts" else ""
                with self.engine.begin() as connection:
                    connection.execute(
                        sa.text(
                            f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}{default}"
                        )
                    )
                    if (table.name, column.name) == ("jobs", "account_id"):
                        # Jobs made before accounts belonged to their key, which is its own
                        # account (keys made before accounts have none).
                        connection.execute(
                            sa.text(
                                "UPDATE jobs SET account_id = api_key_id WHERE account_id IS NULL"
                            )
                        )
