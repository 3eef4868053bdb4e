"""The FastAPI application: routers per resource, one error envelope, rate-limit headers."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from char_pipeline.api.deps import AppState
from char_pipeline.api.errors import install_error_handlers
from char_pipeline.api.routers import batch, controls, files, generate, jobs, references
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
    app = FastAPI(
        title="Character AI API",
        version="1.0.0",
        description="One reference image → consistent frames and videos, driven by pose, text or latent controls.",
    )
    app.state.char = AppState.from_settings(settings)
    install_error_handlers(app)
    for router in (
        references.router,
        controls.router,
        generate.router,
        batch.router,
        jobs.router,
        files.router,
    ):
        app.include_router(router)

    app.add_middleware(RateLimitHeaders)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict:
        return {"status": "ok"}

    return app
