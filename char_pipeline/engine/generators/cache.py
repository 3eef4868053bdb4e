"""Loaded pipelines, once per process: least recently used out first, by memory.

Loading SD 1.5 + ControlNet + AnimateDiff + IP-Adapter takes tens of seconds and ~5 GB;
the API process (sync frames) and each run worker keep what they loaded and reuse it.
A policy's ``concurrency`` is the number of copies (slots) of one pipeline that may run at
once; a generation holds its slot, so a pipeline's mutable state (the IP-Adapter scale) is
never shared between two calls. Entries in use are never evicted.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

DEFAULT_BUDGET_GB = 48.0


def pipeline_bytes(pipeline: Any) -> int:
    """Bytes of the parameters and buffers of a pipeline's torch modules."""
    import torch

    total, seen = 0, set()
    for component in getattr(pipeline, "components", {}).values():
        if not isinstance(component, torch.nn.Module):
            continue
        for tensor in [*component.parameters(), *component.buffers()]:
            if id(tensor) not in seen:
                seen.add(id(tensor))
                total += tensor.numel() * tensor.element_size()
    return total


class PipelineCache:
    def __init__(self, budget_bytes: int | None = None) -> None:
        if budget_bytes is None:
            budget_gb = float(os.environ.get("CHAR_GENERATOR_CACHE_GB", DEFAULT_BUDGET_GB))
            budget_bytes = int(budget_gb * 1e9)
        self.budget = budget_bytes
        self._entries: OrderedDict[tuple, tuple[Any, int]] = OrderedDict()
        self._in_use: set[tuple] = set()
        self._free_slots: dict[tuple, list[int]] = {}
        self._lock = threading.Condition()
        self.loads = 0  # how many times a loader ran (tests: once per process)

    @contextmanager
    def use(self, key: tuple, slots: int, load: Callable[[], Any]) -> Iterator[Any]:
        """The pipeline of ``key``, loaded on first use, held by this caller until exit."""
        with self._lock:
            free = self._free_slots.setdefault(key, list(range(max(1, slots))))
            self._lock.wait_for(lambda: bool(free))
            slot = free.pop(0)
            entry_key = (*key, slot)
            self._in_use.add(entry_key)
            cached = self._entries.get(entry_key)
            if cached is not None:
                self._entries.move_to_end(entry_key)
        try:
            if cached is None:
                pipeline = load()
                size = pipeline_bytes(pipeline)
                with self._lock:
                    self.loads += 1
                    self._entries[entry_key] = (pipeline, size)
                    self._evict()
            else:
                pipeline = cached[0]
            yield pipeline
        finally:
            with self._lock:
                self._in_use.discard(entry_key)
                self._free_slots[key].append(slot)
                self._free_slots[key].sort()
                self._evict()
                self._lock.notify_all()

    def _evict(self) -> None:
        total = sum(size for _, size in self._entries.values())
        for candidate in list(self._entries):
            if total <= self.budget:
                return
            if candidate in self._in_use:
                continue
            total -= self._entries.pop(candidate)[1]

    def clear(self) -> None:
        with self._lock:
            for candidate in list(self._entries):
                if candidate not in self._in_use:
                    del self._entries[candidate]

    def __len__(self) -> int:
        return len(self._entries)


PIPELINES = PipelineCache()
