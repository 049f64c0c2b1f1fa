"""Writing reports atomically, never destroying earlier evidence, never losing a finished run.

By default a run writes ``<report_dir>/<suite>/<UTC timestamp>.json``, ``.html`` and ``.md``
(the Markdown summary, :mod:`audit.report.markdown`; a new set per run) and then replaces
``latest.json`` / ``latest.html`` / ``latest.md`` beside them -- unless the run covers part of
the suite (``-k``, ``-x``, ad-hoc checks), which never becomes "latest". Two suite files with
the same ``name`` get separate folders. With explicit paths the summary goes beside the JSON
(``r.json`` -> ``r.md``); a re-render that writes only the HTML writes no summary. An explicit
path that already holds a report is first moved aside to ``<name>.<its mtime><suffix>``, and
the move is reported, so nothing is overwritten silently.

When the environment variable ``GITHUB_STEP_SUMMARY`` names a file (GitHub Actions sets it
for each step), the summary is also appended to it, cut to what is left of GitHub's 1 MiB per
step (:data:`audit.report.markdown.STEP_SUMMARY_LIMIT`).

Each file appears complete or not at all (written beside its target, then linked or renamed
into place). A timestamped JSON is claimed with a hard link, which fails if the name is taken,
so concurrent writers in one folder (threads, processes, xdist controllers) each get their own
stem (``-2``, ``-3``... on a clash) and their HTML and Markdown beside their own JSON;
``latest.*`` is replaced together under a lock on the folder (``fcntl.flock``; where there is
no ``fcntl``, the files are replaced without the lock).

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from audit.cache import atomic_write_bytes
from audit.errors import AuditError, display_path
from audit.report.html import render_html
from audit.report.jsonio import report_to_json, validate_report
from audit.report.markdown import STEP_SUMMARY_LIMIT, render_markdown
from audit.results import AuditReport

__all__ = ["ReportPaths", "ReportNotWritten", "write_report", "fallback_dir", "why_unwritable",
           "append_step_summary"]

# renders the Markdown summary for an HTML report at this relative name (None: no HTML), cut
# to a number of bytes (None: whole)
Summary = Callable[[str | None, int | None], str]


class ReportNotWritten(AuditError, OSError):
    """Neither the report's own location nor the fallback folder could be written."""


@dataclass
class ReportPaths:
    """Where a report went, and any earlier file that was moved aside to make room."""

    json: Path | None = None
    html: Path | None = None
    markdown: Path | None = None
    moved: list[tuple[Path, Path]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [str(p) for p in (self.html, self.json, self.markdown) if p is not None]
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
    no file has, nor its ``.html`` or ``.md``) and return that path.

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
            if path.with_suffix(".html").exists() or path.with_suffix(".md").exists():
                continue  # an earlier run's HTML or summary: never mix runs' files
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
                  summary: Summary, out: ReportPaths) -> None:
    """The timestamped JSON, HTML and Markdown in ``folder`` (a stem no other writer has) and
    ``latest.*`` (``latest.md`` links ``latest.html``)."""
    folder.mkdir(parents=True, exist_ok=True)
    json_path = _claim(folder, _stamp(datetime.now(UTC)), text)
    html_path = json_path.with_suffix(".html")
    out.json = json_path
    atomic_write_bytes(html_path, html)
    out.html = html_path
    md_path = json_path.with_suffix(".md")
    atomic_write_bytes(md_path, summary(html_path.name, None).encode("utf-8"))
    out.markdown = md_path
    if report.suite.get("not_run"):
        out.notes.append("latest.* not updated: this run covers part of the suite")
        return
    latest = summary("latest.html", None).encode("utf-8")
    with _folder_lock(folder):
        atomic_write_bytes(folder / "latest.json", text)
        atomic_write_bytes(folder / "latest.html", html)
        atomic_write_bytes(folder / "latest.md", latest)


# an explicit file to write: which of ReportPaths' fields it is, where, and its bytes (the
# summary's are rendered once its place and the HTML's are known)
Target = tuple[str, Path, bytes | None]


def _explicit(json_path: Path | None, html_path: Path | None, text: bytes,
              html: bytes) -> list[Target]:
    """The files of explicit paths, in writing order: the JSON, the HTML, and the summary beside
    the JSON."""
    targets: list[Target] = [(kind, p, b) for kind, p, b in
                             (("json", json_path, text), ("html", html_path, html)) if p is not None]
    md_path = None if json_path is None else json_path.with_suffix(".md")
    if md_path is not None and md_path not in (json_path, html_path):
        targets.append(("markdown", md_path, None))
    return targets


def _write_explicit(targets: list[Target], summary: Summary, out: ReportPaths,
                    current: list[Path]) -> None:
    html_path = next((p for kind, p, _ in targets if kind == "html"), None)
    for kind, path, payload in targets:
        current[:] = [path]
        if payload is None:  # the summary, linking the HTML by its path relative to it
            link = None if html_path is None else Path(
                os.path.relpath(html_path.absolute(), path.absolute().parent)).as_posix()
            payload = summary(link, None).encode("utf-8")
        _make_room(path, out.moved)
        atomic_write_bytes(path, payload)
        setattr(out, kind, path)


def append_step_summary(summary: Callable[[int | None], str], *,
                        limit: int = STEP_SUMMARY_LIMIT) -> str | None:
    """Append ``summary(room)`` (a Markdown summary cut to ``room`` bytes) to the file that
    ``GITHUB_STEP_SUMMARY`` names, if it names one; ``room`` is what ``limit`` leaves after what
    the file already holds (GitHub refuses a step's whole summary beyond 1 MiB). The file is
    locked while it is measured and appended to, so concurrent writers stay within the limit.

    Returns a note for the report's lines when the summary was cut, left out or could not be
    appended, else ``None``.
    """
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    try:
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        return (f"could not append the summary to $GITHUB_STEP_SUMMARY "
                f"({why_unwritable(exc, Path(target))})")
    try:
        with contextlib.suppress(ImportError):
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
        used = os.fstat(fd).st_size
        gap = b"\n" if used else b""
        room = limit - used - len(gap)
        text = summary(room) if room > 0 else ""
        if not text:
            return (f"summary not appended to $GITHUB_STEP_SUMMARY: it already holds {used:,} "
                    f"of the {limit:,} bytes a step may write")
        data = gap + text.encode("utf-8")
        while data:
            data = data[os.write(fd, data):]
    except OSError as exc:
        return f"could not append the summary to $GITHUB_STEP_SUMMARY ({why_unwritable(exc, Path(target))})"
    finally:
        os.close(fd)
    if text != summary(None):
        return (f"the summary appended to $GITHUB_STEP_SUMMARY was cut to the {room:,} bytes "
                f"left of the {limit:,} a step may write; the .md beside the report is complete")
    return None


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
    """Write the JSON report, the HTML and the Markdown summary rendered from it.

    Explicit ``json_path``/``html_path`` win (the summary goes beside the JSON, none without
    one); otherwise all three go to a new timestamped set under ``report_dir/<suite name>/``
    and ``latest.*`` is updated. When ``GITHUB_STEP_SUMMARY`` names a file, a written summary
    is also appended to it (:func:`append_step_summary`). ``signoff`` fills the HTML's
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
    summary_broken: list[str] = []

    def summary(html_name: str | None, limit: int | None) -> str:
        try:
            return render_markdown(data, html_name=html_name, limit=limit)
        except Exception as exc:  # a renderer bug must not lose the record either
            summary_broken[:] = [f"the Markdown renderer failed ({type(exc).__name__}: {exc})"]
            return (f"The Markdown summary could not be rendered ({type(exc).__name__}); render "
                    "it again with `distill-audit report <the .json> --format md` once fixed.\n")

    explicit = _explicit(json_path, html_path, text, html)
    current: list[Path] = []  # the file (or the suite's folder) being written
    try:
        if explicit:
            _write_explicit(explicit, summary, out, current)
        else:
            assert report_dir is not None
            current[:] = [report_dir / report.suite["name"]]
            current[:] = [_suite_folder(report_dir, report)]
            _write_layout(current[0], report, text, html, summary, out)
    except OSError as exc:
        if not fallback:
            raise
        failed = current[0]
        reason = why_unwritable(exc, failed)
        partial = [p for p in (out.json, out.html, out.markdown) if p is not None]
        rescue = Path(tempfile.gettempdir()) / "distill-audit-reports"
        out = ReportPaths(moved=out.moved)
        current[:] = [rescue]
        try:
            rescue = fallback_dir()
            if explicit:
                _write_explicit([(kind, rescue / p.name, b) for kind, p, b in explicit], summary,
                                out, current)
            else:
                current[:] = [rescue / report.suite["name"]]
                _write_layout(current[0], report, text, html, summary, out)
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
    if out.markdown is not None and not summary_broken:
        # the run's summary in the CI job's page too (GitHub Actions), linking the HTML as the
        # .md does
        link = None if out.html is None else Path(
            os.path.relpath(out.html.absolute(), out.markdown.absolute().parent)).as_posix()
        appended = append_step_summary(lambda room: summary(link, room))
        if appended is not None:
            out.notes.append(appended)
    out.notes[:0] = summary_broken[:1]
    validate_report(data)  # after writing: a report that breaks its schema is a bug, not lost
    return out
