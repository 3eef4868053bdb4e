"""Thin Dagster assets: load inputs, call the engine, write artifacts, log metadata."""
