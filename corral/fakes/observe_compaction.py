"""In-memory ColdCompactionManifest over the manifest of an InMemoryTelemetryStore."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from corral.core.observe.ports import ColdFile, ColdGroup
from corral.fakes.observe import InMemoryTelemetryStore

__all__ = ["InMemoryColdCompactionManifest"]

_KINDS = {"t": "trace", "s": "session"}  # the store's own names of the lookup key kinds


class InMemoryColdCompactionManifest:
    """ColdCompactionManifest sharing ``store.manifest`` / ``cold_keys`` / ``retired``. Set
    ``fail_replace`` to an exception to make the next ``replace`` fail (a crash before the commit)."""

    def __init__(self, store: InMemoryTelemetryStore) -> None:
        self.store = store
        self.fail_replace: Exception | None = None

    async def compactable(
        self, signal: str, before: date, max_rows: int, min_files: int, limit: int
    ) -> list[ColdGroup]:
        groups: dict[tuple[date, uuid.UUID | None], list[ColdFile]] = {}
        for f in self.store.manifest.values():
            if f.signal == signal and f.day < before and f.rows < max_rows and f.key not in self.store.retired:
                groups.setdefault((f.day, f.project_id), []).append(f)
        chosen = sorted(
            (k for k, files in groups.items() if len(files) >= min_files), key=lambda k: (k[0], str(k[1] or ""))
        )[:limit]
        return [
            ColdGroup(signal, day, project, tuple(sorted(groups[(day, project)], key=lambda f: (f.min_ts, f.key))))
            for day, project in chosen
        ]

    async def replace(
        self, old: list[ColdFile], new: list[ColdFile], keys: list[frozenset[tuple[str, str]]], retired_at: datetime
    ) -> bool:
        if self.fail_replace is not None:
            exc, self.fail_replace = self.fail_replace, None
            raise exc
        store = self.store
        if any(f.key not in store.manifest or f.key in store.retired for f in old):
            return False
        if any(f.key in store.manifest for f in new):
            return False
        for f, ks in zip(new, keys, strict=True):
            store.manifest[f.key] = f
            store.cold_keys[f.key] = {(_KINDS[kind], value) for kind, value in ks}
        for f in old:
            store.retired[f.key] = retired_at  # its lookup keys stay until the purge (files() skips it)
        return True

    async def purge_retired(self, retired_before: datetime) -> list[ColdFile]:
        store = self.store
        gone = [store.manifest[k] for k, at in store.retired.items() if at < retired_before]
        for f in gone:
            del store.manifest[f.key], store.retired[f.key]
            store.cold_keys.pop(f.key, None)
        return gone
