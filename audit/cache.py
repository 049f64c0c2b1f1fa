"""Artifacts computed once per fingerprint, in memory and on disk, never trusted blindly.

The key is the SHA-256 of the model's content, the data file's content and the feature
columns, so an unchanged teacher is not re-run on the next CI run, and any change to the
model or the data misses. Writes are atomic (a temporary file renamed into place), so
parallel workers never read half an entry.

Whoever can write the cache folder (a CI cache restored from shared storage) must not be able
to change a verdict, so an entry read from disk is used only when it is

* **authenticated**: its record carries an HMAC-SHA256 over the entry (its key, content hash,
  shape and info) made with a secret that does not live in the cache: the environment variable
  ``DISTILL_AUDIT_CACHE_KEY`` (set it from a CI secret), or else a key file created on first
  use at ``$XDG_CONFIG_HOME/distill-audit/cache.key`` (``~/.config/...``), readable by its
  owner only. ``DISTILL_AUDIT_CACHE_KEY=`` (set, empty) disables the key; or
* **verified**: the caller's ``verify`` re-derives part of it from the real model (for
  predictions: a sample of rows drawn afresh each run, never stored, re-predicted and compared)
  and raises :class:`CacheRejected` on any mismatch; a refused entry is recomputed, written
  back and named in the report; or
* **trusted on request** (``--audit-trust-cache``), which the report says.

An entry with neither a valid MAC nor a verifier (adversarial examples, whose absence of a
flip cannot be re-checked cheaply) is recomputed. Entries also carry the SHA-256 of their bytes;
an unreadable or mismatching entry is recomputed, never trusted.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import secrets
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["PredictionCache", "CacheStats", "CacheRejected", "CacheKey", "atomic_write_bytes",
           "load_cache_key", "KEY_ENV"]

CACHE_FORMAT = 3
KEY_ENV = "DISTILL_AUDIT_CACHE_KEY"

# how an entry was obtained (the report's provenance says it per artifact)
COMPUTED = "computed"
AUTHENTICATED = "authenticated"
VERIFIED = "verified"
UNVERIFIED = "unverified"


class CacheRejected(Exception):
    """Raised by a verifier: the entry does not match what the real model gives."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (same-directory temporary file + rename).

    The file keeps the permissions of the one it replaces, and a new file is readable by all
    (0644) like an ordinary file, not private as the temporary file is created.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        mode = 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class CacheKey:
    """The secret that authenticates cache entries, and where it came from (for the report)."""

    secret: bytes = field(repr=False)
    source: str


def _key_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "distill-audit" / "cache.key"


def load_cache_key(cache_dir: Path | None) -> tuple[CacheKey | None, str]:
    """The authentication key, and a note saying why there is none.

    ``DISTILL_AUDIT_CACHE_KEY`` wins (empty: no key). Otherwise the key file, created with 32
    random bytes (mode 0600) when missing. A key file inside the cache folder, one that is not
    a regular file, or one that others may write is not used: whoever writes the cache could
    forge it.
    """
    if KEY_ENV in os.environ:
        raw = os.environ[KEY_ENV]
        if not raw:
            return None, f"{KEY_ENV} is set empty"
        if len(raw) < 16:
            return None, f"{KEY_ENV} is shorter than 16 characters, too short to be a secret"
        return CacheKey(raw.encode("utf-8"), f"environment variable {KEY_ENV}"), ""
    path = _key_file()
    try:
        if cache_dir is not None:
            resolved, cache = path.resolve(), cache_dir.resolve()
            if resolved == cache or cache in resolved.parents:
                return None, f"the key file {path} is inside the cache folder"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
        st = path.lstat()
        if not stat.S_ISREG(st.st_mode):
            return None, f"{path} is not a regular file"
        if st.st_mode & 0o022:
            return None, f"{path} may be written by others (chmod 600 it)"
        secret = path.read_bytes().strip()
    except FileExistsError:  # another process created it between our check and open
        try:
            secret = path.read_bytes().strip()
        except OSError as exc:
            return None, f"cannot read {path}: {exc.strerror or exc}"
    except OSError as exc:
        return None, f"cannot create or read {path}: {exc.strerror or exc}"
    if len(secret) < 16:
        return None, f"{path} holds fewer than 16 bytes"
    return CacheKey(secret, f"key file {path}"), ""


@dataclass
class CacheStats:
    """How artifacts were obtained this session."""

    memory_hits: int = 0
    disk_hits: int = 0
    computed: int = 0
    corrupt: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # entries a verifier refused (forged?)


class PredictionCache:
    """Memoise ``compute()`` under a key, in memory and (optionally) in ``directory``.

    ``key`` authenticates entries (see the module docstring; ``None``: none are); ``trust``
    uses unauthenticated entries without verifying them (``--audit-trust-cache``).
    """

    def __init__(self, directory: Path | None, *, key: CacheKey | None = None,
                 trust: bool = False, key_note: str = "") -> None:
        self.directory = directory
        self.auth = key
        self.key_note = key_note
        self.trust = trust
        self._memory: dict[str, tuple[np.ndarray, dict[str, Any]]] = {}
        self.how: dict[str, tuple[str, str]] = {}  # key -> (COMPUTED/..., description)
        self.stats = CacheStats()

    @classmethod
    def open(cls, directory: Path | None, *, trust: bool = False) -> PredictionCache:
        """A cache in ``directory`` with the machine's authentication key (if any)."""
        if directory is None:
            return cls(None, trust=trust)
        key, note = load_cache_key(directory)
        return cls(directory, key=key, trust=trust, key_note=note)

    @staticmethod
    def key(*parts: str) -> str:
        """A cache key from fingerprints (model sha256, data sha256, columns, ...)."""
        h = hashlib.sha256(f"distill-audit-cache-v{CACHE_FORMAT}".encode())
        for part in parts:
            h.update(b"\0" + part.encode())
        return h.hexdigest()

    def get(self, key: str, compute: Callable[[], np.ndarray]) -> tuple[np.ndarray, str]:
        """Return the array for ``key`` and where it came from (memory, disk or computed)."""
        value, _, source = self.get_with_info(key, lambda: (compute(), {}))
        return value, source

    def get_with_info(self, key: str, compute: Callable[[], tuple[np.ndarray, dict[str, Any]]],
                      *, persist: bool = True,
                      persist_if: Callable[[dict[str, Any]], bool] | None = None,
                      verify: Callable[[np.ndarray, dict[str, Any]], str] | None = None,
                      label: str = "") -> tuple[np.ndarray, dict[str, Any], str]:
        """Like :meth:`get`, with a small JSON-able ``info`` dict stored beside the array
        (for predictions: the model's classes, so an authenticated hit needs no model at all).

        ``persist=False`` keeps the entry in memory only (this run), never on disk;
        ``persist_if(info)`` decides it per computed entry (false: memory only).
        ``verify(value, info)`` checks an unauthenticated disk entry against the real model and
        returns how (for the report), or raises :class:`CacheRejected`; without it such an
        entry is recomputed. ``label`` names the artifact in the report's notes.
        """
        if key in self._memory:
            self.stats.memory_hits += 1
            value, info = self._memory[key]
            return value, info, "memory"
        found = self._read(key, verify, label) if persist else None
        source = "disk"
        if found is None:
            raw, info = compute()
            value = np.ascontiguousarray(raw)
            source = "computed"
            self.stats.computed += 1
            self.how[key] = (COMPUTED, "computed in this run")
            if persist and (persist_if is None or persist_if(info)):
                self._write(key, value, info)
        else:
            value, info = found
            self.stats.disk_hits += 1
        value.setflags(write=False)
        self._memory[key] = (value, info)
        return value, info, source

    def obtained(self, key: str) -> str:
        """How the entry under ``key`` was obtained: ``computed``, ``authenticated``,
        ``verified`` or ``unverified`` (``--audit-trust-cache``)."""
        return self.how.get(key, (COMPUTED, ""))[0]

    def describe(self, key: str) -> str:
        return self.how.get(key, (COMPUTED, "computed in this run"))[1]

    def _paths(self, key: str) -> tuple[Path, Path]:
        assert self.directory is not None
        return self.directory / f"{key}.npy", self.directory / f"{key}.json"

    def _mac(self, key: str, meta: dict[str, Any]) -> str | None:
        if self.auth is None:
            return None
        body = {k: meta[k] for k in ("format", "sha256", "shape", "info")}
        message = json.dumps({"key": key, **body}, sort_keys=True, separators=(",", ":"))
        return hmac.new(self.auth.secret, message.encode(), hashlib.sha256).hexdigest()

    def _read(self, key: str, verify: Callable[[np.ndarray, dict[str, Any]], str] | None,
              label: str) -> tuple[np.ndarray, dict[str, Any]] | None:
        if self.directory is None:
            return None
        if self.auth is None and not self.trust and verify is None:
            return None  # nothing could vouch for the entry: do not even read it
        data_path, meta_path = self._paths(key)
        if not data_path.exists() and not meta_path.exists():
            return None
        where = meta_path.name
        try:
            meta = json.loads(meta_path.read_text())
            if not isinstance(meta, dict):
                raise ValueError(f"holds {type(meta).__name__}, not a record")
            if meta.get("format") != CACHE_FORMAT:
                raise ValueError(f"format {meta.get('format')!r}, not {CACHE_FORMAT}")
            where = data_path.name
            data = data_path.read_bytes()
            if hashlib.sha256(data).hexdigest() != meta["sha256"]:
                raise ValueError("content does not match its recorded sha256")
            value = np.load(io.BytesIO(data), allow_pickle=False)
            if list(value.shape) != meta["shape"]:
                raise ValueError(f"shape {list(value.shape)} does not match its record "
                                 f"{meta['shape']}")
            info = meta.get("info", {})
            if not isinstance(info, dict):
                raise ValueError("its info is not a record")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            if isinstance(exc, KeyError):
                where, problem = meta_path.name, f"missing key {exc}"
            else:
                problem = str(exc)
            self.stats.corrupt.append(f"{where}: {problem}; recomputed")
            return None
        expected = self._mac(key, meta)
        mac = meta.get("mac")
        if expected is not None and isinstance(mac, str) and hmac.compare_digest(mac, expected):
            self.how[key] = (AUTHENTICATED, f"read from the cache, authenticated (HMAC-SHA256, "
                                            f"{self.auth.source if self.auth else ''})")
            return value, info
        if self.trust:
            self.how[key] = (UNVERIFIED, "read from the cache without verification "
                                         "(--audit-trust-cache)")
            return value, info
        if verify is None:  # nothing can re-check it: never trust it
            return None
        value.setflags(write=False)
        try:
            how = verify(value, info)
        except CacheRejected as exc:
            self.stats.refused.append(f"{label or data_path.name}: the cached entry "
                                      f"{data_path.name} was refused ({exc}); recomputed")
            return None
        self.how[key] = (VERIFIED, f"read from the cache, verified: {how}")
        return value, info

    def _write(self, key: str, value: np.ndarray, info: dict[str, Any]) -> None:
        if self.directory is None:
            return
        buf = io.BytesIO()
        np.save(buf, value, allow_pickle=False)
        data = buf.getvalue()
        data_path, meta_path = self._paths(key)
        try:
            atomic_write_bytes(data_path, data)
            meta: dict[str, Any] = {"format": CACHE_FORMAT,
                                    "sha256": hashlib.sha256(data).hexdigest(),
                                    "shape": list(value.shape), "info": info}
            mac = self._mac(key, meta)
            if mac is not None:
                meta["mac"] = mac
            atomic_write_bytes(meta_path, json.dumps(meta).encode())
        except OSError as exc:  # a read-only cache directory must not fail the audit
            self.stats.corrupt.append(f"could not write {data_path.name}: {exc}")

    def provenance(self) -> dict[str, Any]:
        """How cached artifacts are protected in this run, for the report."""
        if self.directory is None:
            return {"mode": "off", "authentication": None,
                    "summary": "no disk cache: everything was computed in this run"}
        auth = self.auth.source if self.auth else None
        if self.trust:
            mode, summary = "trusted", ("--audit-trust-cache: entries read from the cache were "
                                        "used without verification")
        else:
            mode = "verified"
            summary = ("entries read from the cache are used only when authenticated with "
                       + (f"the key from {auth}" if auth else "a key (none here: "
                          f"{self.key_note or 'no key'})")
                       + "; otherwise cached predictions are checked by re-predicting a "
                       "fresh random sample of rows with the real model, and other "
                       "artifacts are recomputed")
        return {"mode": mode, "authentication": auth, "summary": summary,
                "refused": list(self.stats.refused)}
