"""Dagster resources: thin, configurable handles on storage and compute."""
