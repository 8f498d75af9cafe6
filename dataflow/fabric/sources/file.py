"""File sources: one file (``path``) or the files of a ``directory`` matching ``pattern``, parsed
as CSV (a list of dicts), JSON, JSONL (a list) or Parquet (a list of dicts, with pyarrow).

Change detection: a watchdog observer (``watch=True``) reports file events to the runtime's loop;
every poll compares each file's content digest, so a touch without a change refreshes nothing.
"""

from __future__ import annotations

import asyncio
import csv
import fnmatch
import hashlib
import io
import json
import os

from ...errors import SourceError
from .base import Source


def parse(name: str, raw: bytes, fmt: str | None, encoding: str):
    fmt = fmt or os.path.splitext(name)[1].lstrip(".").lower()
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(raw.decode(encoding), newline="")))
    if fmt == "json":
        return json.loads(raw.decode(encoding))
    if fmt in ("jsonl", "ndjson"):
        return [json.loads(line) for line in raw.decode(encoding).splitlines() if line.strip()]
    if fmt == "parquet":
        import pyarrow.parquet as pq
        return pq.read_table(io.BytesIO(raw)).to_pylist()
    raise SourceError(f"{name}: unknown file format {fmt!r} (csv, json, jsonl, parquet)")


class FileSource(Source):
    kind = "file"

    def __init__(self, name, config):
        super().__init__(name, config)
        self._digests: dict = {}
        self._observer = None

    def names(self) -> list:
        if self.config.path is not None:
            return [os.path.basename(self.config.path)]
        try:
            entries = sorted(os.listdir(self.config.directory))
        except OSError as exc:
            raise SourceError(f"source {self.name!r}: {exc}") from exc
        return [e for e in entries if fnmatch.fnmatch(e, self.config.pattern)
                and os.path.isfile(os.path.join(self.config.directory, e))]

    def _file(self, path) -> str:
        cfg = self.config
        if cfg.path is not None:
            if path not in (None, "", os.path.basename(cfg.path)):
                raise SourceError(f"source {self.name!r} is the single file {cfg.path}; fetch() takes no path")
            return cfg.path
        if path is None:
            raise SourceError(f"source {self.name!r} is a directory: fetch(name) one of {self.names()}")
        full = os.path.realpath(os.path.join(cfg.directory, path))
        root = os.path.realpath(cfg.directory)
        if os.path.dirname(full) != root or not fnmatch.fnmatch(os.path.basename(full), cfg.pattern):
            raise SourceError(f"source {self.name!r}: {path!r} is not a file of {cfg.directory} "
                              f"matching {cfg.pattern!r}")
        return full

    async def _fetch(self, path, params, poll: bool = False):
        key = self._key(path, params)
        file = self._file(path)
        self.stats["requests"] += 1
        raw = await asyncio.to_thread(_read, file)
        digest = hashlib.blake2b(raw, digest_size=16).digest()
        if self._digests.get(key) == digest and key in self._data:
            self.stats["not_modified"] += 1
            return self._data[key][0], False
        data = parse(file, raw, self.config.format, self.config.encoding)
        self._digests[key] = digest
        return data, True

    async def read(self):
        """A single file's parsed data, or ``{file name: data}`` for a directory."""
        if self.config.path is not None:
            return await self.fetch(None)
        return await self.fetch_all()

    async def poll(self) -> bool:
        removed = False
        if self.config.directory is not None:
            # files added or removed since the last read are a change too
            names = self.names()
            for key in [k for k in self._data if k[0] not in names]:
                del self._data[key]
                self._digests.pop(key, None)
                removed = True
            for name in names:
                self._data.setdefault(self._key(name, None), (None, 0.0, 0.0))
        return await super().poll() or removed

    async def check(self) -> None:
        target = self.config.path or self.config.directory
        if not os.path.exists(target):
            raise SourceError(f"source {self.name!r}: {target} does not exist")

    def start(self, loop) -> None:
        if not self.config.watch or self._observer is not None:
            return
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        cfg = self.config
        folder = cfg.directory if cfg.directory is not None else os.path.dirname(os.path.abspath(cfg.path))
        wanted = (lambda p: os.path.abspath(p) == os.path.abspath(cfg.path)) if cfg.path is not None else (
            lambda p: os.path.dirname(os.path.abspath(p)) == os.path.abspath(folder)
            and fnmatch.fnmatch(os.path.basename(p), cfg.pattern))
        source = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event):
                paths = [getattr(event, "src_path", ""), getattr(event, "dest_path", "")]
                if event.event_type in ("opened", "closed_no_write") or not any(p and wanted(os.fsdecode(p)) for p in paths):
                    return
                if source.on_change is not None and not loop.is_closed():
                    loop.call_soon_threadsafe(source.on_change, source)

        self._observer = Observer()
        self._observer.schedule(Handler(), folder, recursive=False)
        self._observer.daemon = True
        self._observer.start()

    async def stop(self) -> None:
        obs, self._observer = self._observer, None
        if obs is not None:
            obs.stop()
            await asyncio.to_thread(obs.join, 5)


def _read(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()
