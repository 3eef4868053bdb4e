"""The application layer: every use case, called by every door.

The REST routers, the Dagster assets, the CLI and the batch/manifest code call these modules;
none of them imports fastapi or dagster. Inputs are typed (``services.requests`` models,
plain values), state comes in a ``ServiceContext`` built from settings, and failures are the
engine's typed errors (``CharPipelineError`` with ``code`` and ``http_status``), which each door
maps to its own envelope.
"""
