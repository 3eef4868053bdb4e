"""One settings object for the CLI, the Dagster resources and (later) the API.

Every field reads an environment variable; the README lists them. Everything the project
writes by default lives under one data root, ``CHAR_PIPELINE_HOME``.
"""

from __future__ import annotations

import functools
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

CHECKOUT_ROOT = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHAR_", extra="ignore")

    pipeline_home: Path = Field(
        default=CHECKOUT_ROOT / ".char_pipeline",
        description="Data root: Dagster instance, artifacts, job store, outputs.",
    )
    artifacts_url: str | None = Field(
        default=None,
        description="Where artifacts go: a folder or any fsspec URL (s3://bucket/prefix). "
        "Default: $CHAR_PIPELINE_HOME/artifacts.",
    )
    s3_endpoint_url: str | None = Field(
        default=None, description="Endpoint of an S3-compatible server for s3:// artifact URLs."
    )
    max_image_bytes: int = Field(default=20 * 1024 * 1024, description="Upload size limit.")
    max_image_pixels: int = Field(default=40_000_000, description="Decoded pixel limit.")
    renderer: str = Field(default="warp", description="Renderer backend name.")

    @property
    def home(self) -> Path:
        return self.pipeline_home.expanduser().resolve()

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def artifacts_root(self) -> str:
        return self.artifacts_url or str(self.home / "artifacts")


@functools.cache
def get_settings() -> Settings:
    return Settings()
