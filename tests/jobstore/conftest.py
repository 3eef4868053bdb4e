"""Each aggregate of the job store, on SQLite (default) and on the machine's PostgreSQL
(a schema of its own per test, dropped after)."""

import secrets

import pytest
import sqlalchemy as sa

from char_pipeline.jobstore import JobStore
from tests.services import POSTGRES_URL, require_service


@pytest.fixture(params=["sqlite", "postgresql"])
def job_store(request, tmp_path):
    if request.param == "sqlite":
        yield JobStore(f"sqlite:///{tmp_path / 'jobs.db'}")
        return
    require_service("PostgreSQL", "127.0.0.1", 5432)
    schema = "t_" + secrets.token_hex(4)
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
    store = JobStore(POSTGRES_URL + f"?options=-csearch_path%3D{schema}")
    yield store
    store.engine.dispose()
    with admin.begin() as connection:
        connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()
