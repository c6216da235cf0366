"""The request journal: completed teacher, judge and rewrite responses survive crashes and are never paid twice.

Each work unit (an expansion chunk or a sample shard) has a folder `_journal/<unit>/`; each attempt at the unit
appends to its own file in it, so attempts never contend. On a local filesystem every record is appended and
flushed at once (it survives SIGKILL of the process); on object stores, where appends do not exist, records are
buffered and committed as small chunk objects every `chunk_records` records or `chunk_seconds` seconds.
A torn last line (a crash mid-write) is ignored on load.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from pipeline.storage import Storage


class Journal:
    def __init__(self, storage: Storage, unit: str, *, chunk_records: int = 16, chunk_seconds: float = 1.0) -> None:
        self.storage = storage
        self.folder = f"_journal/{unit}"
        self.attempt = f"{int(time.time() * 1000):013d}-{uuid.uuid4().hex[:8]}"
        self._chunk_records = chunk_records
        self._chunk_seconds = chunk_seconds
        self._buffer: list[str] = []
        self._last_flush = time.monotonic()
        self._chunks = 0
        self._file = None
        if storage.local:
            storage.makedirs(self.folder)
            self._file = open(storage.path(self.folder, f"{self.attempt}.jsonl"), "a", encoding="utf-8")  # noqa: SIM115

    def load(self) -> dict[str, dict[str, Any]]:
        """Every record of earlier attempts at this unit, by key."""
        out: dict[str, dict[str, Any]] = {}
        for name in self.storage.list(self.folder, suffix=".jsonl"):
            for line in self.storage.read_bytes(f"{self.folder}/{name}").decode("utf-8").splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue  # torn final line of a killed attempt
                out[rec["k"]] = rec["v"]
        return out

    def record(self, key: str, value: dict[str, Any]) -> None:
        line = json.dumps({"k": key, "v": value}, separators=(",", ":")) + "\n"
        if self._file is not None:
            self._file.write(line)
            self._file.flush()
            return
        self._buffer.append(line)
        if len(self._buffer) >= self._chunk_records or time.monotonic() - self._last_flush >= self._chunk_seconds:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            self.storage.write_bytes(f"{self.folder}/{self.attempt}-{self._chunks:05d}.jsonl", "".join(self._buffer).encode())
            self._chunks += 1
            self._buffer.clear()
        self._last_flush = time.monotonic()

    def close(self) -> None:
        self.flush()
        if self._file is not None:
            self._file.close()
            self._file = None
