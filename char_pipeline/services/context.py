"""What a use case needs: settings, the artifact store, the job store, the signing key."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Self

from char_pipeline.engine.generators.store import use_model_store
from char_pipeline.engine.identity import use_onnx_cache
from char_pipeline.jobstore import JobStore, open_job_store
from char_pipeline.launching import GraphQLLauncher
from char_pipeline.settings import Settings
from char_pipeline.storage import ArtifactStore, build_store


@dataclass
class ServiceContext:
    settings: Settings
    store: ArtifactStore
    jobs: JobStore
    signing_key: bytes
    # Reference processing runs beside the request threads, one at a time: the models
    # load once and the CPU is not oversubscribed.
    processor: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(max_workers=1))
    # Launches a lone async job's run at once (launching.GraphQLLauncher); None: the job
    # sensor's next tick does (services/renders.py).
    launcher: Any = None
    # Whose request this is: references and jobs of other accounts do not exist for it.
    # None is the operator (CLI, Dagster, manifests), who sees everything.
    account: str | None = None

    def as_account(self, account: str) -> Self:
        """The same context, narrowed to one account's objects (one per request)."""
        return replace(self, account=account)

    def may_see(self, owner: str | None) -> bool:
        return self.account is None or owner == self.account

    @classmethod
    def from_settings(cls, settings: Settings, **extra) -> Self:
        """Built from settings alone; ``extra`` fills a subclass's own fields."""
        use_onnx_cache(settings.model_cache_dir)  # identity without torch (engine/identity.py)
        use_model_store(settings.models_root)  # the generative modes' weights
        return cls(
            settings=settings,
            store=build_store(settings),
            jobs=open_job_store(settings.resolved_job_store_url),
            signing_key=settings.signing_key(),
            launcher=GraphQLLauncher(settings.dagster_url) if settings.dagster_url else None,
            **extra,
        )
