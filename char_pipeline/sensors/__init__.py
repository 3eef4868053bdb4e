"""Sensors turn outside events (uploads, manifests, run status) into runs."""
