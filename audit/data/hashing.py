"""SHA-256 of files, each read once per process while it is unchanged."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

__all__ = ["file_sha256"]

_HASHED: dict[tuple[Any, ...], str] = {}


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's full content, read once per process: a file whose size, inode
    and modification and change times are unchanged since it was hashed in this process is
    not read again (a write changes its change time, which no user call can set back).

    A folder (a Parquet dataset) hashes as the SHA-256 of its ``.parquet`` files' names and
    hashes, in name order."""
    if path.is_dir():
        h = hashlib.sha256()
        for part in sorted(p for p in path.iterdir() if p.suffix.lower() in (".parquet", ".pq")):
            h.update(f"{part.name}\0{file_sha256(part)}\n".encode())
        return h.hexdigest()
    st = path.stat()
    stamp = (str(Path(path).resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns,
             st.st_ctime_ns)
    if stamp in _HASHED:
        return _HASHED[stamp]
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    _HASHED[stamp] = h.hexdigest()
    return _HASHED[stamp]
