"""ASGI entry point: ``uvicorn char_pipeline.api.main:app``."""

from char_pipeline.api.app import create_app

app = create_app()
