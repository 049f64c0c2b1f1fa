"""Writing reports atomically, never destroying earlier evidence, never losing a finished run.

By default a run writes ``<report_dir>/<suite>/<UTC timestamp>.json`` and ``.html`` (a new pair
per run) and then replaces ``latest.json`` / ``latest.html`` beside them -- unless the run
covers part of the suite (``-k``, ``-x``, ad-hoc checks), which never becomes "latest". Two
suite files with the same ``name`` get separate folders. An explicit path that already holds a
report is first moved aside to ``<name>.<its mtime><suffix>``, and the move is reported, so
nothing is overwritten silently.

Each file appears complete or not at all (written beside its target, then linked or renamed
into place). A timestamped JSON is claimed with a hard link, which fails if the name is taken,
so concurrent writers in one folder (threads, processes, xdist controllers) each get their own
stem (``-2``, ``-3``... on a clash) and their HTML beside their own JSON; ``latest.*`` is
replaced as a pair under a lock on the folder (``fcntl.flock``; where there is no ``fcntl``,
the pair is replaced without the lock).

If the chosen location cannot be written (a read-only folder, a ``--report-dir`` that is a
file...), the report goes to :func:`fallback_dir` instead and :attr:`ReportPaths.notes` says
where and why: a finished run is never lost to a report folder.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import itertools
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from audit.cache import atomic_write_bytes
from audit.errors import AuditError, display_path
from audit.report.html import render_html
from audit.report.jsonio import report_to_json, validate_report
from audit.results import AuditReport

__all__ = ["ReportPaths", "ReportNotWritten", "write_report", "fallback_dir", "why_unwritable"]


class ReportNotWritten(AuditError, OSError):
    """Neither the report's own location nor the fallback folder could be written."""


@dataclass
class ReportPaths:
    """Where a report went, and any earlier file that was moved aside to make room."""

    json: Path | None = None
    html: Path | None = None
    moved: list[tuple[Path, Path]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [str(p) for p in (self.html, self.json) if p is not None]
        out += [f"(kept earlier {old.name} as {new})" for old, new in self.moved]
        out += [f"({note})" for note in self.notes]
        return out


def fallback_dir() -> Path:
    """Where a report goes when its own location cannot be written: the system temporary
    folder's ``distill-audit-reports`` (``$TMPDIR`` decides it).

    A shared temporary folder is writable by everyone, so a ``distill-audit-reports`` that is a
    symlink or belongs to another user is not used: a new private folder with a random suffix
    (``tempfile.mkdtemp(prefix="distill-audit-reports-")``) is made beside it instead.
    """
    base = Path(tempfile.gettempdir()) / "distill-audit-reports"
    try:
        info = base.lstat()
    except OSError:  # not there yet (or cannot be there): writing will say which
        return base
    getuid = getattr(os, "getuid", None)
    if stat.S_ISLNK(info.st_mode) or (getuid is not None and info.st_uid != getuid()):
        return Path(tempfile.mkdtemp(prefix="distill-audit-reports-"))
    return base


def _stamp(when: datetime) -> str:
    return when.strftime("%Y%m%dT%H%M%SZ")


def _free(path: Path) -> Path:
    """``path``, or ``path`` with ``-2``, ``-3``... before the suffix if it exists."""
    candidate, i = path, 2
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}-{i}{path.suffix}")
        i += 1
    return candidate


def _suite_folder(report_dir: Path, report: AuditReport) -> Path:
    """``report_dir/<suite name>``, unless that folder already holds another suite file's
    reports under the same name: then ``<name>-<8 hex digits of the suite's path>``."""
    name = report.suite["name"]
    folder = report_dir / name
    path = report.suite.get("path")
    latest = folder / "latest.json"
    if path and latest.exists():
        try:
            other = json.loads(latest.read_text(encoding="utf-8"))["suite"].get("path")
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            other = None
        if other and other != path:
            return report_dir / f"{name}-{hashlib.sha256(path.encode()).hexdigest()[:8]}"
    return folder


def _make_room(path: Path, moved: list[tuple[Path, Path]]) -> None:
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a report file", str(path))
    if path.exists():
        mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        aside = _free(path.with_name(f"{path.stem}.{_stamp(mtime)}{path.suffix}"))
        os.replace(path, aside)
        moved.append((path, aside))


def _claim(folder: Path, stem: str, data: bytes) -> Path:
    """Write ``data`` to ``folder/<stem>.json`` (or ``<stem>-2.json``, ``-3``...: the first name
    no file has, nor its ``.html``) and return that path.

    The bytes go to a temporary file in ``folder`` once and are hard-linked to each candidate
    name until one is free, so the file appears complete and the claim is exclusive even
    between processes. Where hard links are not supported, the name is claimed with
    ``O_CREAT | O_EXCL`` and the content renamed onto it.
    """
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchmod(fh.fileno(), 0o644)
            os.fsync(fh.fileno())
        links = True
        for i in itertools.count(1):
            path = folder / (f"{stem}.json" if i == 1 else f"{stem}-{i}.json")
            if path.with_suffix(".html").exists():
                continue  # an earlier pair's HTML: never mix pairs
            try:
                if links:
                    os.link(tmp, path)
                    return path
            except FileExistsError:
                continue
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV,
                                     errno.EMLINK):
                    raise
                links = False
            try:
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            except FileExistsError:
                continue
            os.replace(tmp, path)
            return path
        raise AssertionError("unreachable")  # pragma: no cover
    finally:
        Path(tmp).unlink(missing_ok=True)


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (released when the holder exits, even by a crash)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: latest.* is replaced without the lock
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _write_layout(folder: Path, report: AuditReport, text: bytes, html: bytes,
                  out: ReportPaths) -> None:
    """The timestamped pair in ``folder`` (a stem no other writer has) and ``latest.*``."""
    folder.mkdir(parents=True, exist_ok=True)
    json_path = _claim(folder, _stamp(datetime.now(UTC)), text)
    html_path = json_path.with_suffix(".html")
    out.json = json_path
    atomic_write_bytes(html_path, html)
    out.html = html_path
    if report.suite.get("not_run"):
        out.notes.append("latest.* not updated: this run covers part of the suite")
        return
    with _folder_lock(folder):
        atomic_write_bytes(folder / "latest.json", text)
        atomic_write_bytes(folder / "latest.html", html)


def _write_explicit(targets: list[tuple[Path, bytes]], out: ReportPaths,
                    current: list[Path]) -> None:
    for path, payload in targets:
        current[:] = [path]
        _make_room(path, out.moved)
        atomic_write_bytes(path, payload)
        if path.suffix.lower() == ".json":
            out.json = path
        else:
            out.html = path


def why_unwritable(exc: OSError, target: Path) -> str:
    """Why ``target`` could not be written, in a few words: a file standing where a folder
    must be, or the OS's words (``Permission denied``, ``Read-only file system``...)."""
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                return f"{display_path(parent)} is a file, not a folder"
            break
    return exc.strerror or str(exc) or type(exc).__name__


def write_report(report: AuditReport, *, report_dir: Path | None = None, json_path: Path | None = None,
                 html_path: Path | None = None, signoff: dict[str, str] | None = None,
                 fallback: bool = True) -> ReportPaths:
    """Write the JSON report and the HTML rendered from it.

    Explicit ``json_path``/``html_path`` win; otherwise both go to a new timestamped pair under
    ``report_dir/<suite name>/`` and ``latest.*`` is updated. ``signoff`` fills the HTML's
    sign-off block without changing the JSON record (re-rendering a report to sign it).

    When the location cannot be written the report goes under :func:`fallback_dir` (the same
    layout, or the same file names) and a note in the result says where and why. Only if the
    fallback fails too (or ``fallback`` is false: re-rendering an existing report) does the
    ``OSError`` propagate.
    """
    data = report.to_dict()
    text = report_to_json(data).encode("utf-8")
    out = ReportPaths()
    if json_path is None and html_path is None and report_dir is None:
        validate_report(data)
        return out
    broken = None
    try:
        html = render_html(data, signoff=signoff).encode("utf-8")
    except Exception as exc:  # a renderer bug must not lose the record: write the JSON anyway
        import html as escaping

        broken = f"the HTML renderer failed ({type(exc).__name__}: {exc}); the JSON is complete"
        html = ("<!doctype html><meta charset='utf-8'><title>report not rendered</title><p>"
                f"{escaping.escape(broken)}; render it again with distill-audit report "
                "&lt;the .json&gt; once fixed.</p>").encode()
    explicit = [(p, b) for p, b in ((json_path, text), (html_path, html)) if p is not None]
    current: list[Path] = []  # the file (or the suite's folder) being written
    try:
        if explicit:
            _write_explicit(explicit, out, current)
        else:
            assert report_dir is not None
            current[:] = [report_dir / report.suite["name"]]
            current[:] = [_suite_folder(report_dir, report)]
            _write_layout(current[0], report, text, html, out)
    except OSError as exc:
        if not fallback:
            raise
        failed = current[0]
        reason = why_unwritable(exc, failed)
        partial = [p for p in (out.json, out.html) if p is not None]
        rescue = Path(tempfile.gettempdir()) / "distill-audit-reports"
        out = ReportPaths(moved=out.moved)
        current[:] = [rescue]
        try:
            rescue = fallback_dir()
            if explicit:
                _write_explicit([(rescue / p.name, b) for p, b in explicit], out, current)
            else:
                current[:] = [rescue / report.suite["name"]]
                _write_layout(current[0], report, text, html, out)
        except OSError as again:
            raise ReportNotWritten(
                f"no report written: could not write it to {display_path(failed)} ({reason}) "
                f"nor to {display_path(rescue)} ({why_unwritable(again, current[0])})") from again
        note = (f"could not write the report to {display_path(failed)} ({reason}); "
                f"wrote it to {display_path(rescue)} instead")
        if partial:
            note += f"; incomplete files left at {', '.join(display_path(p) for p in partial)}"
        out.notes.insert(0, note)
    if broken is not None:
        out.notes.insert(0, broken)
    validate_report(data)  # after writing: a report that breaks its schema is a bug, not lost
    return out
