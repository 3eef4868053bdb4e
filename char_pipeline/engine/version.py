"""The renderers' output version, apart from any heavy import (the API's cache keys use it)."""

# Part of every render's cache key: bump it with any change that alters rendered pixels or
# encoded bytes, so caches and ETags made by older code are not served as new renders.
RENDER_VERSION = "2026.12.4"
