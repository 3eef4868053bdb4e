"""The FastAPI application: routers per resource, one error envelope, rate-limit headers."""

from __future__ import annotations

import contextlib
import threading

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from char_pipeline import health
from char_pipeline.api import body_limits
from char_pipeline.api.deps import AppState
from char_pipeline.api.errors import install_error_handlers
from char_pipeline.api.openapi import document_errors
from char_pipeline.api.routers import (
    batch,
    controls,
    files,
    generate,
    jobs,
    predictions,
    references,
    sora,
    videos,
)
from char_pipeline.api.schemas import BatchIn, VideoIn
from char_pipeline.launch_watchdog import LaunchWatchdog
from char_pipeline.settings import Settings, get_settings


class RateLimitHeaders:
    """Adds the X-RateLimit-* headers the auth dependency computed to every response.

    A plain ASGI middleware: Starlette's BaseHTTPMiddleware costs milliseconds a request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                state = scope.get("state") or {}
                extra = state.get("rate_limit_headers") if isinstance(state, dict) else None
                if extra:
                    headers = MutableHeaders(scope=message)
                    for name, value in extra.items():
                        if name not in headers:
                            headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    state = AppState.from_settings(settings)

    opened: list = []
    opening = threading.Lock()

    def dagster_instance():
        """The deployment's Dagster instance, opened once (daemon heartbeats live there)."""
        import dagster as dg

        with opening:  # the watchdog thread and a request may ask first at the same time
            if not opened:
                opened.append(dg.DagsterInstance.from_config(str(settings.dagster_home)))
            return opened[0]

    def readiness() -> list[health.Check]:
        return health.readiness(settings, dagster_instance)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        # Only a deployment with a code server launches runs; elsewhere there is nothing to watch.
        watchdog = LaunchWatchdog(settings, state.jobs, readiness) if settings.code_server else None
        if watchdog:
            watchdog.start()
        yield
        if watchdog:
            watchdog.stop()
        for instance in opened:
            instance.dispose()

    app = FastAPI(
        title="Character AI API",
        version="1.0.0",
        description="One reference image → consistent frames and videos, driven by pose, text or latent controls.",
        lifespan=lifespan,
    )
    app.state.char = state
    install_error_handlers(app)
    routers = (
        references.router,
        controls.router,
        generate.router,
        batch.router,
        jobs.router,
        files.router,
        sora.router,
        videos.router,
        predictions.router,
    )
    for router in routers:
        app.include_router(router)

    app.add_middleware(RateLimitHeaders)
    limits = body_limits.route_limits(settings)
    app.add_middleware(body_limits.BodyLimits, limits=limits)

    def openapi() -> dict:
        """FastAPI's document, plus each route's body limit, the json_body models and every
        error status in the envelope."""
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            body_limits.add_models(schema, [VideoIn, BatchIn])
            schema = body_limits.document_limits(schema, limits)
            routes = [route for router in routers for route in router.routes]
            app.openapi_schema = document_errors(schema, routes)
        return app.openapi_schema

    app.openapi = openapi

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict:
        """Liveness: the API process answers. Whether jobs can run is /readyz."""
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        """Readiness: the job store opens, the code location loaded, the daemon ticks."""
        checks = readiness()
        failing = [c for c in checks if c.required and not c.ok]
        body = {
            "status": "unready" if failing else "ready",
            "checks": [c.to_json() for c in checks],
        }
        if failing:
            body["error"] = "; ".join(f"{c.name}: {c.detail}" for c in failing)
        return JSONResponse(body, status_code=503 if failing else 200)

    return app
