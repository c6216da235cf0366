"""Output storage through pyarrow.fs: a local path or a URI (s3://, gs://, file://) shared by every node.

Every file is committed atomically: it is written under a hidden temporary name and moved to its final name
(a rename on a local filesystem, a server-side copy on object stores, where readers see the whole object or
nothing). Nothing else in the package touches the filesystem of a version directly.
"""

from __future__ import annotations

import contextlib
import io
import json
import posixpath
import uuid
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq


class Storage:
    """A root directory on some filesystem; paths given to its methods are relative to that root."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.fs, root = pafs.FileSystem.from_uri(uri) if "://" in uri else (pafs.LocalFileSystem(), _abspath(uri))
        self.root = root.rstrip("/") or "/"
        self.local = isinstance(self.fs, pafs.LocalFileSystem)

    def __reduce__(self):  # picklable for Ray: rebuild from the URI on the worker
        return (Storage, (self.uri,))

    def path(self, *parts: str) -> str:
        return posixpath.join(self.root, *parts)

    def child(self, *parts: str) -> "Storage":
        uri = posixpath.join(self.uri, *parts) if "://" in self.uri else self.path(*parts)
        return Storage(uri)

    def exists(self, rel: str) -> bool:
        return self.fs.get_file_info(self.path(rel)).type != pafs.FileType.NotFound

    def makedirs(self, rel: str = "") -> None:
        self.fs.create_dir(self.path(rel) if rel else self.root, recursive=True)

    def list(self, rel: str = "", suffix: str = "") -> list[str]:
        """Names (not paths) of the files directly under `rel`, sorted; hidden temporaries excluded."""
        sel = pafs.FileSelector(self.path(rel) if rel else self.root, allow_not_found=True)
        names = [posixpath.basename(i.path) for i in self.fs.get_file_info(sel) if i.type == pafs.FileType.File]
        return sorted(n for n in names if n.endswith(suffix) and not n.startswith(".tmp-"))

    def list_dirs(self, rel: str = "") -> list[str]:
        sel = pafs.FileSelector(self.path(rel) if rel else self.root, allow_not_found=True)
        return sorted(posixpath.basename(i.path) for i in self.fs.get_file_info(sel) if i.type == pafs.FileType.Directory)

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write a whole file atomically: to a temporary name, then moved (a rename locally, a server-side copy
        on object stores), so a failure mid-write can never leave a partial file under the final name."""
        final = self.path(rel)
        self.fs.create_dir(posixpath.dirname(final), recursive=True)
        tmp = posixpath.join(posixpath.dirname(final), f".tmp-{uuid.uuid4().hex}-{posixpath.basename(final)}")
        try:
            with self.fs.open_output_stream(tmp) as out:
                out.write(data)
            self.fs.move(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):  # a failed write leaves nothing behind, not even the temporary
                if self.fs.get_file_info(tmp).type == pafs.FileType.File:
                    self.fs.delete_file(tmp)
            raise

    def read_bytes(self, rel: str) -> bytes:
        with self.fs.open_input_stream(self.path(rel)) as f:
            return f.read()

    def write_json(self, rel: str, obj: Any) -> None:
        self.write_bytes(rel, json.dumps(obj, indent=2, sort_keys=True, default=str).encode())

    def read_json(self, rel: str) -> Any:
        return json.loads(self.read_bytes(rel))

    def write_parquet(self, rel: str, table: pa.Table, *, row_group_size: int = 1024) -> None:
        """Write a Parquet file (zstd) atomically: serialised in memory, then committed as one file."""
        buf = io.BytesIO()
        if table.num_rows:
            pq.write_table(table, buf, compression="zstd", row_group_size=row_group_size, write_statistics=True)
        else:  # no row group at all: readers such as `datasets` reject an empty row group
            pq.ParquetWriter(buf, table.schema, compression="zstd").close()
        self.write_bytes(rel, buf.getvalue())

    def read_parquet(self, rel: str) -> pa.Table:
        return pq.read_table(self.path(rel), filesystem=self.fs)

    def delete(self, rel: str) -> None:
        info = self.fs.get_file_info(self.path(rel))
        if info.type == pafs.FileType.Directory:
            self.fs.delete_dir(self.path(rel))
        elif info.type == pafs.FileType.File:
            self.fs.delete_file(self.path(rel))


def _abspath(path: str) -> str:
    import os

    return os.path.abspath(os.path.expanduser(path))
