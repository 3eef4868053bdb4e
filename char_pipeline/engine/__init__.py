"""Pure compute: images, segmentation, identity, controls, motion, rendering, encoding.

Nothing here imports Dagster or FastAPI, so the engine can be driven from a plain script.
"""
