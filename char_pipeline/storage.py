"""Artifact storage on any fsspec URL: a local folder by default, s3://bucket/prefix by setting.

Assets, services and the API write real media files (PNG, MP4, GIF, NPY, JSON) through
:class:`ArtifactStore`, by relative key. Nothing is pickled.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from upath import UPath

if TYPE_CHECKING:
    from char_pipeline.settings import Settings


def open_root(url: str, endpoint_url: str | None = None) -> UPath:
    """A UPath for a folder or fsspec URL; S3 URLs may name a custom endpoint."""
    if url.startswith("s3://") and endpoint_url:
        return UPath(url, endpoint_url=endpoint_url)
    return UPath(url)


class ArtifactStore:
    """Reads and writes artifacts under one root URL, by relative key ('videos/ref/x.mp4').

    A plain object: the API, the CLI, services and Dagster (through ``StorageResource``) all
    build it from settings; nothing here imports Dagster.
    """

    def __init__(self, root_url: str, s3_endpoint_url: str | None = None) -> None:
        self.root_url = root_url
        self.s3_endpoint_url = s3_endpoint_url

    def __repr__(self) -> str:
        return f"ArtifactStore({self.root_url!r})"

    @property
    def root(self) -> UPath:
        return open_root(self.root_url, self.s3_endpoint_url)

    def path(self, key: str) -> UPath:
        return self.root / key

    @property
    def is_local(self) -> bool:
        return self.root.protocol in ("", "file", "local")

    def uri(self, key: str) -> str:
        """The artifact's location as a string: a file path locally, else its URL."""
        path = self.path(key)
        return str(Path(path.path)) if self.is_local else str(path)

    def write_bytes(self, key: str, data: bytes) -> str:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        if self.is_local:
            # Write to a sibling and rename, so readers never see half a file.
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(data)
            Path(tmp.path).replace(Path(path.path))
        else:
            path.write_bytes(data)
        return self.uri(key)

    def read_bytes(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self.path(key).exists()

    def delete(self, key: str) -> None:
        """Remove one artifact if it exists."""
        path = self.path(key)
        if path.exists():
            path.unlink()

    def write_json(self, key: str, value: Any) -> str:
        return self.write_bytes(key, json.dumps(value, indent=2, sort_keys=True).encode())

    def read_json(self, key: str) -> Any:
        return json.loads(self.read_bytes(key))

    def list_dirs(self, key: str) -> list[str]:
        path = self.path(key)
        if not path.exists():
            return []
        return sorted(child.name for child in path.iterdir() if child.is_dir())

    def list_files(self, key: str) -> list[str]:
        path = self.path(key)
        if not path.exists():
            return []
        return sorted(child.name for child in path.iterdir() if child.is_file())

    def put_file(self, local_path: str | Path, key: str) -> str:
        destination = self.path(key)
        destination.parent.mkdir(parents=True, exist_ok=True)
        if self.is_local:
            shutil.copyfile(local_path, Path(destination.path))
        else:
            with open(local_path, "rb") as source, destination.open("wb") as target:
                shutil.copyfileobj(source, target, length=8 * 1024 * 1024)
        return self.uri(key)

    @contextlib.contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        """A local file path for an artifact (the file itself when local, else a download)."""
        if self.is_local:
            yield Path(self.path(key).path)
            return
        with tempfile.TemporaryDirectory() as folder:
            target = Path(folder) / Path(key).name
            with self.path(key).open("rb") as source, open(target, "wb") as sink:
                shutil.copyfileobj(source, sink, length=8 * 1024 * 1024)
            yield target


def build_store(settings: Settings) -> ArtifactStore:
    """The deployment's artifact store, from settings alone."""
    return ArtifactStore(root_url=settings.artifacts_root, s3_endpoint_url=settings.s3_endpoint_url)
