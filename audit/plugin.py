"""pytest plugin: every ``*.audit.yaml`` file is a suite, every check a test item.

This module is the ``pytest11`` entry point, so it imports only pytest and the standard library
at module level: a project that does not use distill-audit pays nothing for it. numpy, pandas
and the model runtimes load when a suite is collected or a fixture is used.

Flow: ``pytest_collect_file`` -> :class:`SuiteFile` (parses the suite) -> one
:class:`CheckItem` per check -> ``runtest`` runs the check and raises on a blocking verdict ->
``repr_failure`` prints the verdict. Check results travel on the test reports (so they cross
pytest-xdist's worker boundary) and the controlling process writes one report per suite at the
end of the session.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from audit.results import CheckResult
    from audit.runner import AuditSession, SuiteRun
    from audit.suite import CheckSpec, Suite

SUITE_SUFFIX = ".audit.yaml"

__all__ = ["distill_audit", "SuiteFile", "CheckItem", "AuditState"]


# --------------------------------------------------------------------------- options
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("distill-audit", "distill-audit: audit distilled models")
    group.addoption("--audit-report-dir", metavar="DIR", default=None,
                    help="folder for reports: DIR/<suite>/<timestamp>.{json,html} and latest.* "
                         "(ini: audit_report_dir; default: reports)")
    group.addoption("--audit-report", metavar="PATH.html", default=None,
                    help="write the HTML report to this path (one suite per run)")
    group.addoption("--audit-json", metavar="PATH.json", default=None,
                    help="write the JSON report to this path (one suite per run)")
    group.addoption("--audit-no-report", action="store_true", default=False,
                    help="write no report files (the terminal summary still shows)")
    group.addoption("--audit-flips", metavar="PATH", default=None,
                    help="write the flip table (the rows where the models disagree) to this "
                         ".csv or .parquet path (one suite per run; default: "
                         "<report>.flips.csv beside the JSON report)")
    group.addoption("--audit-no-flips", action="store_true", default=False,
                    help="write no flip table beside the report")
    group.addoption("--audit-engine", choices=("memory", "stream", "ray"), default=None,
                    help="run every suite in memory or streamed in batches (default: each "
                         "suite's settings.engine)")
    group.addoption("--audit-mlflow", metavar="URI", nargs="?", const="", default=None,
                    help="log each suite's report as an MLflow run (to URI, else "
                         "MLFLOW_TRACKING_URI; needs the mlflow extra)")
    group.addoption("--audit-cache-dir", metavar="DIR", default=None,
                    help="where cached predictions live (ini: audit_cache_dir; "
                         "default: .distill_audit_cache)")
    group.addoption("--audit-no-cache", action="store_true", default=False,
                    help="do not read or write cached predictions on disk")
    group.addoption("--audit-trust-cache", action="store_true", default=False,
                    help="use cached entries without verifying them against the models (the "
                         "report says so); by default an entry is used only when authenticated "
                         "or verified")
    for field, metavar, example in (("reviewer", "NAME", "J. Doe"), ("role", "ROLE", "Model risk"),
                                    ("decision", "DECISION", "approved"),
                                    ("date", "DATE", "2026-11-28")):
        group.addoption(f"--audit-{field}", metavar=metavar, default=None,
                        help=f"fill the report's sign-off {field} (e.g. {example!r})")
    parser.addini("audit_report_dir", "folder for distill-audit reports", default="reports")
    parser.addini("audit_cache_dir", "folder for distill-audit's prediction cache",
                  default=".distill_audit_cache")


class AuditState:
    """Per-process run state, kept in ``config.stash``."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self._session: AuditSession | None = None
        self.records: list[dict[str, Any]] = []
        self.written: list[tuple[Any, list[str]]] = []
        self.started = ""

    def session(self) -> AuditSession:
        if self._session is None:
            from audit.runner import AuditSession

            self._session = AuditSession(self.cache_dir(),
                                         trust_cache=self.config.getoption("audit_trust_cache"))
            self._session.engine = self.config.getoption("audit_engine")
            reporter = self.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None and not hasattr(self.config, "workerinput"):
                self._session.progress = lambda msg: reporter.write_line(f"  [distill-audit] {msg}")
        return self._session

    def cache_dir(self) -> Path | None:
        if self.config.getoption("audit_no_cache"):
            return None
        raw = self.config.getoption("audit_cache_dir") or self.config.getini("audit_cache_dir")
        return _under_root(self.config, raw)

    def report_dir(self) -> Path:
        raw = self.config.getoption("audit_report_dir") or self.config.getini("audit_report_dir")
        return _under_root(self.config, raw)

    # hooks of this run (registered as a plugin object, so they see this config's state)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        records = getattr(report, "distill_audit", None)
        if records:
            self.records.extend(records)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if hasattr(self.config, "workerinput") or not self.records:
            return  # an xdist worker: the controlling process writes the report
        _write_reports(self)

    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int,
                                config: pytest.Config) -> None:
        if not self.written:
            return
        from audit.report.terminal import format_summary

        terminalreporter.section("distill-audit")
        for line in format_summary(self.written):
            terminalreporter.write_line(line)


STATE = pytest.StashKey[AuditState]()
RESULTS = pytest.StashKey[list]()


def _under_root(config: pytest.Config, raw: str) -> Path:
    p = Path(os.path.expanduser(raw))
    return p if p.is_absolute() else config.rootpath / p


def pytest_configure(config: pytest.Config) -> None:
    no_report = config.getoption("audit_no_report")
    if no_report and (config.getoption("audit_report") or config.getoption("audit_json")):
        raise pytest.UsageError("--audit-no-report contradicts --audit-report/--audit-json; "
                                "drop one of them")
    if config.getoption("audit_trust_cache") and config.getoption("audit_no_cache"):
        raise pytest.UsageError("--audit-trust-cache contradicts --audit-no-cache; drop one of them")
    for opt, suffix in (("audit_report", ".html"), ("audit_json", ".json")):
        value = config.getoption(opt)
        if value and not value.lower().endswith(suffix):
            flag = "--" + opt.replace("_", "-")
            raise pytest.UsageError(f"{flag}={value}: the path must end in {suffix}")
    state = AuditState(config)
    from datetime import UTC, datetime

    state.started = datetime.now(UTC).replace(microsecond=0).isoformat()
    config.stash[STATE] = state
    config.pluginmanager.register(state, "distill-audit-state")
    config.addinivalue_line("markers", "distill_audit: a check collected from a distill-audit suite")


# --------------------------------------------------------------------------- collection
def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.name.endswith(SUITE_SUFFIX):
        return SuiteFile.from_parent(parent, path=file_path)
    return None


class SuiteFile(pytest.File):
    """A suite file; collecting it parses and validates the whole suite."""

    suite: Suite

    def collect(self) -> Iterator[CheckItem]:
        from audit.suite import load_suite

        self.suite = load_suite(self.path)
        for spec in self.suite.checks:
            yield CheckItem.from_parent(self, name=spec.name, spec=spec)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        from audit.errors import AuditError
        from audit.safe import visible

        if isinstance(excinfo.value, AuditError):
            return visible(str(excinfo.value), newlines=True)
        return super().repr_failure(excinfo)


class CheckItem(pytest.Item):
    """One check of a suite."""

    def __init__(self, *, spec: CheckSpec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self.add_marker("distill_audit")

    @property
    def suite(self) -> Suite:
        assert isinstance(self.parent, SuiteFile)
        return self.parent.suite

    def runtest(self) -> None:
        from audit.errors import AuditError, GateFailure
        from audit.report.terminal import format_check

        state = self.config.stash[STATE]
        run = state.session().run_for(self.suite)
        result, exc = run.execute(self.spec, location=f"{self.spec.where()}")
        _record(self, run, result)
        self.user_properties.extend(_junit_properties(result))
        if exc is not None and not isinstance(exc, AuditError):
            raise exc  # a bug: keep its traceback
        if result.status.blocking:  # fail, error, or inconclusive under inconclusive: fail
            raise GateFailure(format_check(result))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        from audit.errors import GateFailure
        from audit.safe import visible

        if isinstance(excinfo.value, GateFailure):
            return visible(excinfo.value.verdict, newlines=True)  # format_check's, made safe
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, (self.spec.line or 1) - 1, f"{self.suite.name}::{self.spec.name}"


def _junit_properties(result: CheckResult) -> list[tuple[str, object]]:
    """Key numbers of a check as JUnit XML properties, for CI systems that display them
    (names and values made visible: a scope holds users' column names and group values)."""
    from audit.safe import visible

    props: list[tuple[str, object]] = [("audit.status", result.status.value)]  # plain: xdist
    for m in result.measurements:
        name = m.metric + (f"[{m.scope}]" if m.scope else "")
        for who in ("student", "teacher", "regression"):
            est = getattr(m, who)
            if est is not None:
                props.append((f"audit.{name}.{who}", f"{est.value:.6g}"))
                if est.ci is not None:
                    props.append((f"audit.{name}.{who}.ci", f"[{est.ci[0]:.6g}, {est.ci[1]:.6g}]"))
    for g in result.gates:
        scope = f"[{g.scope}]" if g.scope else ""
        props.append((f"audit.gate.{g.kind}{scope}", f"{g.status} (threshold {g.threshold:g})"))
    return [(visible(name), visible(value)) for name, value in props]


def _record(item: pytest.Item, run: SuiteRun, result: CheckResult) -> None:
    item.stash.setdefault(RESULTS, []).append(run.record(result))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if call.when == "call":
        records = item.stash.get(RESULTS, None)
        if records:
            # a plain attribute: pytest-xdist serialises it to the controlling process
            report.distill_audit = records
            item.stash[RESULTS] = []
    return report


# --------------------------------------------------------------------------- reports
def _write_reports(state: AuditState) -> None:
    from audit.report.assemble import reports_from_records
    from audit.report.writer import ReportNotWritten, write_report

    config = state.config
    signoff = {f: config.getoption(f"audit_{f}") for f in ("reviewer", "role", "decision", "date")}
    reports = reports_from_records(state.records, started=state.started,
                                   signoff={k: v for k, v in signoff.items() if v})
    explicit_html = config.getoption("audit_report")
    explicit_json = config.getoption("audit_json")
    for report in reports:
        if config.getoption("audit_no_report"):
            state.written.append((report, []))
            continue
        html = Path(explicit_html) if explicit_html else None
        js = Path(explicit_json) if explicit_json else None
        if len(reports) > 1 and (html or js):
            name = report.suite["name"]
            html = html.with_name(f"{html.stem}-{name}{html.suffix}") if html else None
            js = js.with_name(f"{js.stem}-{name}{js.suffix}") if js else None
        try:  # an unwritable location falls back to a temporary folder (said in the lines)
            paths = write_report(report, report_dir=None if (html or js) else state.report_dir(),
                                 json_path=js, html_path=html)
            lines = paths.lines()
        except ReportNotWritten as exc:  # the fallback too: the summary is all that is left
            lines = [f"({exc}; the verdict above is the run's only record)"]
            paths = None
        if paths is not None and paths.json is not None and not config.getoption("audit_no_flips"):
            lines += _write_flips(report, paths.json, config.getoption("audit_flips"),
                                  len(reports))
        uri = config.getoption("audit_mlflow")
        if uri is not None:
            lines += _log_mlflow(report, paths, uri)
        state.written.append((report, lines))


def _log_mlflow(report: Any, paths: Any, uri: str) -> list[str]:
    """Log the report as an MLflow run; a line saying where, or why not (never fails a run)."""
    from audit.errors import AuditError
    from audit.tracking import log_report

    files: list[Path] = []
    if paths is not None and paths.json is not None:
        stem = paths.json.with_suffix("")
        files = [p for p in (paths.json, paths.html, stem.with_suffix(".md"),
                             stem.with_name(stem.name + ".flips.csv")) if p is not None]
    try:
        run_id = log_report(report.to_dict(), files, tracking_uri=uri or None)
    except AuditError as exc:
        return [f"(not logged to MLflow: {exc})"]
    except Exception as exc:  # the tracking server's own errors: the audit still stands
        return [f"(not logged to MLflow: {type(exc).__name__}: {exc})"]
    return [f"mlflow run {run_id}"]


def _write_flips(report: Any, json_path: Path, explicit: str | None, n_reports: int) -> list[str]:
    """The flip table beside the JSON report (or at ``--audit-flips``); its path, or why not."""
    from audit.report.flips import write_flips

    if explicit:
        target = Path(explicit)
        if n_reports > 1:
            target = target.with_name(f"{target.stem}-{report.suite['name']}{target.suffix}")
    else:
        target = json_path.with_name(json_path.stem + ".flips.csv")
    try:
        written = write_flips(report.to_dict(), target)
    except OSError as exc:
        return [f"(flip table not written: {target}: {exc.strerror or exc})"]
    return [] if written is None else [str(written)]


# --------------------------------------------------------------------------- fixtures
class AdHocAudit:
    """What the ``distill_audit`` fixture gives a test: run checks on a suite, in Python."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request

    def suite(self, suite: str | os.PathLike[str] | Suite) -> AdHocRun:
        """Load a suite file (or take a :class:`~audit.suite.Suite` built in code)."""
        from audit.suite import Suite, load_suite

        loaded = suite if isinstance(suite, Suite) else load_suite(Path(suite))
        state = self._request.config.stash[STATE]
        return AdHocRun(state.session().run_for(loaded), self._request.node)


class AdHocRun:
    """A suite's loaded models and data; checks run here appear in the session's report."""

    def __init__(self, run: SuiteRun, node: pytest.Item) -> None:
        self.run = run
        self._node = node

    @property
    def suite(self) -> Suite:
        return self.run.suite

    def check(self, name: str, definition: dict[str, Any] | None = None) -> CheckResult:
        """Run a check: a suite check by name, or an ad-hoc one written like a suite entry."""
        if definition is None:
            result = self.run.run_check(name)
        else:
            result = self.run.check(name, definition, location=f"{self._node.nodeid}::{name}")
        _record(self._node, self.run, result)
        return result

    def require(self, name: str, definition: dict[str, Any] | None = None) -> CheckResult:
        """Like :meth:`check`, but fail the test with the verdict unless the check passes."""
        from audit.report.terminal import format_check

        result = self.check(name, definition)
        if not result.passed:
            pytest.fail(f"{name} {result.status.upper()}\n{format_check(result)}", pytrace=False)
        return result


@pytest.fixture
def distill_audit(request: pytest.FixtureRequest) -> AdHocAudit:
    """Audit a teacher/student pair from a plain pytest test.

    Example::

        def test_student_is_accurate(distill_audit):
            run = distill_audit.suite("suites/arrests.audit.yaml")
            result = run.check("bal_acc", {"metric": "balanced_accuracy",
                                           "gate": {"max_regression": 0.03}})
            assert result.passed
    """
    return AdHocAudit(request)
