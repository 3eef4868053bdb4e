"""The REST API (Character AI API v1): FastAPI routes over the engine and the job store."""
