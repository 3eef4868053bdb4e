"""One settings object for the CLI, the Dagster resources and (later) the API.

Every field reads an environment variable; the README lists them. Everything the project
writes by default lives under one data root, ``CHAR_PIPELINE_HOME``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
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
    renderer: str = Field(
        default="mesh", description="Renderer backend: mesh (ARAP, v2) or warp (v1)."
    )
    job_store_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the job store. Default: SQLite in the data root (the distributed profile: its PostgreSQL).",
    )
    profile: Literal["embedded", "distributed"] = Field(
        default="embedded",
        description="embedded: SQLite under the data root, one machine. distributed: the Dagster instance (runs, event log, schedules) and the job store on PostgreSQL (docs/scaling.md).",
    )
    dagster_postgres_url: str | None = Field(
        default=None,
        description="postgresql://user:password@host:port/database of the Dagster storage; required by the distributed profile.",
    )
    executor: Literal["in_process", "celery"] | None = Field(
        default=None,
        description="Where a batch's steps run: in_process (the embedded default) or celery "
        "(the distributed profile's default): Celery workers, one queue per compute type.",
    )
    celery_broker_url: str = Field(
        default="pyamqp://guest:guest@127.0.0.1:5672//",
        description="Broker of the Celery executor and workers (RabbitMQ, or redis://…).",
    )
    celery_backend_url: str = Field(
        default="rpc://", description="Result backend of the Celery executor and workers."
    )
    batch_step_tasks: int | None = Field(
        default=None,
        ge=0,
        description="Tasks per step of a batch run. Default: all in one step in process "
        "(X-Instance-Count threads), one per step on Celery (each task where a worker is free).",
    )
    model_cache: Path | None = Field(
        default=None,
        description="Where models derived on this machine are kept (the identity model's ONNX "
        "copy). Default: $CHAR_PIPELINE_HOME/models.",
    )
    models_dir: Path | None = Field(
        default=None,
        description="The model store: weights of the generative modes and optional "
        "transformers models, one folder per registry entry (docs/models.md; `char-pipeline "
        "models …`). Default: $CHAR_PIPELINE_HOME/models.",
    )
    allow_cpu_generation: bool = Field(
        default=False,
        description="Let the diffusion and transformer modes run on the CPU when there is no "
        "GPU (float32, slow, small limits); otherwise they answer 503 ResourceUnavailable.",
    )
    generator_aliases: str = Field(
        default="",
        description="Generator modes this deployment serves with another, e.g. "
        "'diffusion=gan,transformer=gan' on a CPU-only box; the response's backend says so.",
    )
    characters_face_policy: bool = Field(
        default=True,
        description="The Sora-style door refuses clips that show a photographic human face "
        "(the seed's policy); drawn characters, products and animals pass.",
    )
    clip_max_bytes: int = Field(
        default=100 * 1024 * 1024, description="Largest video a character is made from."
    )
    clip_fetch_seconds: float = Field(
        default=60.0, description="Longest time fetching a character's video may take."
    )
    videos_generator: Literal["gan", "diffusion", "transformer"] = Field(
        default="gan",
        description="The generator mode that renders POST /v1/videos (the Sora-style door): "
        "gan (the mesh renderer) by default; diffusion or transformer with weights and a GPU.",
    )
    nsfw_threshold: float = Field(
        default=0.5,
        description="The predictions door's safety checker flags a detection of a flagged "
        "class at this score or above.",
    )
    nsfw_classes: str = Field(
        default="FEMALE_GENITALIA_EXPOSED,MALE_GENITALIA_EXPOSED,FEMALE_BREAST_EXPOSED,"
        "BUTTOCKS_EXPOSED,ANUS_EXPOSED",
        description="NudeNet classes the safety checker flags (comma-separated).",
    )
    api_port: int = Field(default=8000, description="Port of the API server (char-pipeline serve).")
    public_url: str | None = Field(
        default=None, description="Base URL clients reach the API at (links, status_url)."
    )
    url_signing_key: str | None = Field(
        default=None,
        description="Secret for signed download links. Default: generated once per data root.",
    )
    rate_limit_storage: str = Field(
        default="memory://", description="limits storage URI, e.g. redis://127.0.0.1:6379/0."
    )
    rate_limit: str = Field(
        default="100/minute", description="Standard per-key rate limit (limits notation)."
    )
    rate_limit_burst: str = Field(default="50/10 seconds", description="Burst per-key rate limit.")
    text_model_aliases: str = Field(
        default="",
        description="Text models this deployment answers with another, e.g. 'clip=custom-nlp' where no CLIP encoder is installed; responses name the model that ran (served_by).",
    )
    rate_limit_job_reads: str = Field(
        default="600/minute",
        description="Per-key limit of job reads (GET /v1/jobs…), a bucket of its own so polling cannot starve submissions.",
    )
    sync_max_frames: int = Field(
        default=48, description="Videos up to this many frames render synchronously."
    )
    max_video_frames: int = Field(default=3000, description="Longest video accepted.")
    outbound_allow: str = Field(
        default="",
        description="Hosts or CIDRs callbacks may reach despite being private (comma-separated).",
    )
    webhook_retry_schedule: str = Field(
        default="5,30,120,600,1800,3600,7200,14400,28800",
        description="Seconds between webhook retries.",
    )
    job_max_attempts: int = Field(
        default=3, description="Runs per job before it is failed (infrastructure errors)."
    )
    job_stale_seconds: int = Field(
        default=120, description="Open jobs untouched this long are reconciled."
    )
    manifest_url: str | None = Field(
        default=None,
        description="Folder or fsspec URL watched for manifests. Default: $CHAR_PIPELINE_HOME/manifests.",
    )
    backfill_cron: str | None = Field(
        default=None,
        description="Cron of the backfill schedule (missing/failed videos); off when unset.",
    )
    sensor_interval_seconds: int = Field(
        default=2, description="How often job sensors look for work."
    )
    idempotency_lease_seconds: int = Field(
        default=600,
        description="The request time limit for Idempotency-Key claims: a claim still in "
        "progress after this long (or whose API process is gone) is released to a retry.",
    )
    dagster_url: str | None = Field(
        default=None,
        description="Base URL of the Dagster webserver (serve sets it): the API submits a lone "
        "async job's run at once through its GraphQL API; the job sensor stays the safety net.",
    )
    code_server: str | None = Field(
        default=None,
        description="host:port of the Dagster code server (serve sets it): /readyz and the "
        "launch watchdog ask it whether the code location loaded.",
    )
    supervision_dir: Path | None = Field(
        default=None,
        description="Where serve's supervisor keeps its state (serve sets it): /readyz reports "
        "a process that is restarting.",
    )
    launch_timeout_seconds: int = Field(
        default=120,
        description="While the code location cannot load or the daemon is silent, pending jobs "
        "fail after this long with that error (and their callbacks fire).",
    )
    daemon_max_silence_seconds: int = Field(
        default=180,
        description="A daemon heartbeat older than this makes /readyz unready (Dagster's "
        "daemon beats every 30 s; a loaded machine can delay a few).",
    )

    @model_validator(mode="after")
    def _profile_has_its_storage(self) -> Settings:
        if self.profile == "distributed" and not self.dagster_postgres_url:
            raise ValueError(
                "CHAR_PROFILE=distributed needs CHAR_DAGSTER_POSTGRES_URL "
                "(postgresql://user:password@host:5432/database): the Dagster storage lives there."
            )
        return self

    @property
    def resolved_job_store_url(self) -> str:
        if self.job_store_url:
            return self.job_store_url
        if self.profile == "distributed":
            # The same database as Dagster's storage, through the job store's driver, in a
            # schema of its own (Dagster has a table named jobs too).
            rest = self.dagster_postgres_url.split("://", 1)[1]
            joiner = "&" if "?" in rest else "?"
            return f"postgresql+psycopg://{rest}{joiner}options=-csearch_path%3Dchar_pipeline"
        return f"sqlite:///{self.home / 'jobs.db'}"

    @property
    def resolved_executor(self) -> str:
        if self.executor:
            return self.executor
        return "celery" if self.profile == "distributed" else "in_process"

    @property
    def resolved_batch_step_tasks(self) -> int:
        if self.batch_step_tasks is not None:
            return self.batch_step_tasks
        return 1 if self.resolved_executor == "celery" else 0

    @property
    def manifest_root(self) -> str:
        return self.manifest_url or str(self.home / "manifests")

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://127.0.0.1:{self.api_port}").rstrip("/")

    def signing_key(self) -> bytes:
        """The URL-signing secret: the setting, else a random key kept in the data root."""
        if self.url_signing_key:
            return self.url_signing_key.encode()
        path = self.home / "url_signing.key"
        if not path.exists():
            import secrets

            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(secrets.token_hex(32))
            tmp.replace(path)
        return path.read_text().strip().encode()

    @property
    def home(self) -> Path:
        return self.pipeline_home.expanduser().resolve()

    @property
    def model_cache_dir(self) -> Path:
        """Models derived on this machine (the identity model's ONNX copy)."""
        return (self.model_cache or self.home / "models").expanduser().resolve()

    @property
    def models_root(self) -> Path:
        """The model store (engine/generators/store.py)."""
        return (self.models_dir or self.home / "models").expanduser().resolve()

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def artifacts_root(self) -> str:
        return self.artifacts_url or str(self.home / "artifacts")


def parse_aliases(setting: str, names: tuple[str, ...], variable: str) -> dict[str, str]:
    """'a=b,c=d' → {'a': 'b', 'c': 'd'} over ``names``: what a deployment answers with another
    (text models, generator modes); an unknown name is a settings error naming ``variable``."""
    aliases = {}
    for pair in filter(None, (part.strip() for part in setting.split(","))):
        requested, _, served = (word.strip() for word in pair.partition("="))
        if requested not in names or served not in names:
            raise ValueError(f"{variable}: {pair!r} must map one of {names} to another.")
        aliases[requested] = served
    return aliases


@functools.cache
def get_settings() -> Settings:
    return Settings()
