"""The Celery app a worker runs (`char-pipeline worker`): dagster-celery's step task on the
broker and backend of the settings."""

from __future__ import annotations

from dagster_celery.config import dict_wrapper
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from char_pipeline.runner import prepare_dagster_home
from char_pipeline.settings import get_settings
from char_pipeline.workers import executor_config

settings = get_settings()
# A step's task opens the run's instance from its ref, which names CHAR_DAGSTER_POSTGRES_URL.
prepare_dagster_home(settings)
config = executor_config(settings)
app = make_app({**config, "config_source": dict_wrapper(config["config_source"])})
execute_plan = create_task(app)
