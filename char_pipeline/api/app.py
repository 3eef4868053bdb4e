"""The FastAPI application: routers per resource, one error envelope, rate-limit headers."""

from __future__ import annotations

from fastapi import FastAPI, Request

from char_pipeline.api.deps import AppState
from char_pipeline.api.errors import install_error_handlers
from char_pipeline.api.routers import controls, files, generate, jobs, references
from char_pipeline.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="Character AI API",
        version="1.0.0",
        description="One reference image → consistent frames and videos, driven by pose, text or latent controls.",
    )
    app.state.char = AppState.from_settings(settings)
    install_error_handlers(app)
    for router in (references.router, controls.router, generate.router, jobs.router, files.router):
        app.include_router(router)

    @app.middleware("http")
    async def rate_limit_headers(request: Request, call_next):
        response = await call_next(request)
        for name, value in getattr(request.state, "rate_limit_headers", {}).items():
            response.headers.setdefault(name, value)
        return response

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict:
        return {"status": "ok"}

    return app
