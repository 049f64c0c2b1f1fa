"""A model folder's content: every file that can affect its outputs, hashed and sized.

A Hugging Face model folder (config, weights, tokenizer files) or a tokenizer folder is
fingerprinted over all of its regular files, by relative path and content, except hidden
files and Markdown (model cards): a changed weight, vocabulary or config changes the hash.
Symlinks must stay inside the folder (a link out of it is refused, never followed), and
sub-folders are included (sharded checkpoints), up to :data:`MAX_FILES` files.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from audit.data import file_sha256
from audit.errors import ModelError, display_path

__all__ = ["folder_files", "folder_sha256", "folder_bytes", "with_tokenizer"]

MAX_FILES = 10_000


def folder_files(folder: Path, label: str) -> list[Path]:
    """The files of ``folder`` that count, sorted by relative path."""
    root = folder.resolve()
    out: list[Path] = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or path.suffix.lower() == ".md":
            continue
        if path.is_symlink() and not path.resolve().is_relative_to(root):
            raise ModelError(f"{label}: {display_path(path)} is a link to "
                             f"{display_path(path.resolve())}, outside the model's folder; copy "
                             "the file into the folder instead")
        if path.is_file():
            out.append(path)
        if len(out) > MAX_FILES:
            raise ModelError(f"{label}: {display_path(folder)} holds more than {MAX_FILES} files; "
                             "name the model's own folder")
    return out


def folder_sha256(folder: Path, label: str) -> str:
    """SHA-256 over ``(relative path, content hash)`` of every file that counts."""
    h = hashlib.sha256(b"distill-audit-folder-v1\0")
    for path in folder_files(folder, label):
        h.update(path.relative_to(folder).as_posix().encode() + b"\0")
        h.update(file_sha256(path).encode() + b"\0")
    return h.hexdigest()


def folder_bytes(folder: Path, label: str) -> int:
    """Size on disk of the files that count (the whole model, not only its weights)."""
    return sum(p.stat().st_size for p in folder_files(folder, label))


def with_tokenizer(sha256: str, size: int, tokenizer: Path, label: str) -> tuple[str, int]:
    """A model file's hash and size together with its tokenizer folder's (a text model's
    outputs depend on the tokenizer its texts go through, and it ships with it)."""
    both = hashlib.sha256(f"{sha256}\0tokenizer\0{folder_sha256(tokenizer, label)}".encode())
    return both.hexdigest(), size + folder_bytes(tokenizer, label)
