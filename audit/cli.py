"""The ``distill-audit`` command.

``run`` wraps pytest (the same collection, gates and reports as ``pytest suites/``), so
everything pytest offers keeps working; ``validate``, ``schema``, ``report`` (re-render or sign
a report) and ``diff`` (what changed between two reports) need no pytest run. ``monitor``
judges a deployed student's new production windows against its teacher (exit 1 while a
blocking alert fires) and ``history`` traces one suite's saved release audits; both end with
the trend page's path.

Exit codes: 0 every blocking gate passed; 1 a gate failed or a check could not run;
2 a usage or suite error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


SIGNOFF = ("reviewer", "role", "decision", "date")


def _signoff_options(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("sign-off (printed in the report's sign-off block)")
    group.add_argument("--reviewer", metavar="NAME")
    group.add_argument("--role", metavar="ROLE", help="e.g. 'Model risk officer'")
    group.add_argument("--decision", metavar="DECISION", help="e.g. approved, rejected")
    group.add_argument("--date", metavar="DATE", help="e.g. 2026-11-28")


def _signoff(args: argparse.Namespace) -> dict[str, str]:
    return {k: getattr(args, k) for k in SIGNOFF if getattr(args, k, None)}


def _print(text: object, *, file: TextIO | None = None, newlines: bool = True) -> None:
    """Print a line whose parts come from users' files, with control and bidi characters
    made visible (:func:`audit.safe.visible`): no escape reaches the terminal raw."""
    from audit.safe import visible

    print(visible(text, newlines=newlines), file=file)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="distill-audit",
                                description="Audit a distilled student model against its teacher.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run suites through pytest and write their reports")
    run.add_argument("suites", nargs="+", type=Path, help="*.audit.yaml files or folders")
    run.add_argument("--report", type=Path, metavar="PATH.html", help="HTML report path")
    run.add_argument("--json", type=Path, metavar="PATH.json", help="JSON report path")
    run.add_argument("--flips", type=Path, metavar="PATH",
                     help="flip table path, .csv or .parquet (default: <report>.flips.csv)")
    run.add_argument("--no-flips", action="store_true", help="write no flip table")
    run.add_argument("--mlflow", metavar="URI", nargs="?", const="", default=None,
                     help="log each report as an MLflow run (to URI, else MLFLOW_TRACKING_URI)")
    run.add_argument("--engine", choices=("memory", "stream", "ray"),
                     help="read the eval tables whole (memory) or in batches (stream); default: "
                          "each suite's settings.engine")
    run.add_argument("--report-dir", type=Path, metavar="DIR",
                     help="folder for timestamped reports (default: reports)")
    run.add_argument("--cache-dir", type=Path, metavar="DIR",
                     help="where cached predictions, measurements and attack artifacts live "
                          "(default: .distill_audit_cache)")
    run.add_argument("--no-cache", action="store_true",
                     help="do not read or write the cache (predictions, measurements, attacks)")
    run.add_argument("--trust-cache", action="store_true",
                     help="use cached entries without verifying them (the report says so)")
    run.add_argument("-k", metavar="EXPR", help="only run checks matching EXPR (as pytest -k)")
    run.add_argument("-x", "--exitfirst", action="store_true", help="stop at the first failure")
    run.add_argument("-n", "--numprocesses", metavar="N", help="run in N processes (pytest-xdist)")
    run.add_argument("-q", "--quiet", action="store_true", help="less pytest output")
    _signoff_options(run)

    val = sub.add_parser("validate", help="check suite files without running them")
    val.add_argument("suites", nargs="+", type=Path)
    val.add_argument("--deep", action="store_true",
                     help="also read the data, load the models (columns, labels, classes, "
                          "trust) and have both predict the first 5 eval rows")

    sch = sub.add_parser("schema", help="print the JSON Schema of the suite format")
    sch.add_argument("-o", "--output", type=Path, help="write to this file instead of stdout")

    rep = sub.add_parser("report", help="re-render the HTML report from a JSON report")
    rep.add_argument("json_report", type=Path, metavar="REPORT.json")
    rep.add_argument("-o", "--output", type=Path, metavar="PATH",
                     help="default: the JSON path with .html (with --format md: print it)")
    rep.add_argument("--format", choices=("html", "md"), default="html",
                     help="html (default) or md: the Markdown summary (scorecard, gates that "
                          "did not pass, every gate)")
    _signoff_options(rep)

    pl = sub.add_parser("plan", help="how many eval rows each gate needs to pass a faithful "
                                     "student, from a pilot run of the suite or a report",
                        description="Run the suite once as a pilot (or read a JSON report) and "
                                    "print, per gate bound, the eval rows at which a faithful "
                                    "student passes with the given power.")
    pl.add_argument("source", type=Path, metavar="SUITE.audit.yaml|REPORT.json",
                    help="one suite file (a pilot run; predictions come from the cache) or a "
                         "JSON report")
    pl.add_argument("--power", type=float, default=0.8,
                    help="the chance a faithful student passes (default 0.8)")
    pl.add_argument("--regression", type=float, default=0.0,
                    help="the true regression a faithful student has, in each metric's units "
                         "(a relative gate: a fraction of the teacher's value); default 0")
    pl.add_argument("--cache-dir", type=Path, metavar="DIR", default=Path(".distill_audit_cache"),
                    help="prediction cache for the pilot run (default: .distill_audit_cache)")

    dif = sub.add_parser("diff", help="what changed between two JSON reports")
    dif.add_argument("old", type=Path, metavar="OLD.json")
    dif.add_argument("new", type=Path, metavar="NEW.json")
    dif.add_argument("--html", type=Path, metavar="PATH.html", help="also write the diff as HTML")

    mon = sub.add_parser("monitor", help="judge new production windows of a deployed student "
                                         "against its teacher, and write the trend page")
    mon.add_argument("monitor", type=Path, metavar="FILE.monitor.yaml")
    mon.add_argument("--cache-dir", type=Path, metavar="DIR", default=Path(".distill_audit_cache"),
                     help="prediction cache for the reference (default: .distill_audit_cache)")
    mon.add_argument("--schema", action="store_true",
                     help="print the JSON Schema of the monitor file (FILE is then ignored)")

    card = sub.add_parser("model-card", help="a Hugging Face model-card section (model-index "
                                             "YAML and an evaluation section) from a JSON report")
    card.add_argument("json_report", type=Path, metavar="REPORT.json")
    card.add_argument("-o", "--output", type=Path, metavar="PATH.md",
                      help="write to this file (default: print it)")

    ini = sub.add_parser("init", help="write a starter suite for a teacher, a student and a "
                                      "data file (checks that apply, commented gates)")
    ini.add_argument("teacher", type=Path)
    ini.add_argument("student", type=Path)
    ini.add_argument("data", type=Path, help="the eval table (.csv or .parquet)")
    ini.add_argument("--target", help="the label column (default: guessed, or asked)")
    ini.add_argument("--train", type=Path, help="the training table (privacy and drift checks)")
    ini.add_argument("--baseline", type=Path,
                     help="a third model: the one in production today (the suite's baseline:)")
    ini.add_argument("-o", "--output", type=Path, metavar="PATH.audit.yaml",
                     help="where to write it (default: distilled.audit.yaml; never overwritten)")

    his = sub.add_parser("history", help="a suite's saved release audits as a trend page")
    his.add_argument("folder", type=Path, metavar="DIR", help="one suite's report folder "
                                                              "(reports/<suite>)")
    return p


def _cmd_run(args: argparse.Namespace) -> int:
    import pytest

    from audit.suite import SUITE_SUFFIX

    missing = [str(s) for s in args.suites if not s.exists()]
    if missing:
        _print(f"distill-audit: not found: {', '.join(missing)}", file=sys.stderr)
        return EXIT_USAGE
    # pytest would say "not found" for an existing file that no plugin collects
    others = [str(s) for s in args.suites if s.is_file() and not s.name.endswith(SUITE_SUFFIX)]
    if others:
        _print(f"distill-audit: not a suite file: {', '.join(others)} (suite files end in "
              f"{SUITE_SUFFIX})", file=sys.stderr)
        return EXIT_USAGE
    argv = [str(s) for s in args.suites]
    # every path we were given is collected; testpaths and python_files do not apply
    argv += ["-p", "no:cacheprovider", "-o", "python_files=", "-rN",
             # suites hold no assert statements to rewrite, and rewriting this package's
             # modules (an entry-point plugin's) costs ~1 s a run where bytecode is not cached
             "--assert=plain",
             # hypothesis' plugin imports hypothesis (~1 s) at the end of every run; no suite
             # uses it
             "-p", "no:hypothesispytest"]
    if args.report:
        argv += ["--audit-report", str(args.report)]
    if args.json:
        argv += ["--audit-json", str(args.json)]
    if args.flips:
        argv += ["--audit-flips", str(args.flips)]
    if args.no_flips:
        argv += ["--audit-no-flips"]
    if args.mlflow is not None:
        argv += [f"--audit-mlflow={args.mlflow}"] if args.mlflow else ["--audit-mlflow"]
    if args.engine:
        argv += ["--audit-engine", args.engine]
    if args.report_dir:
        argv += ["--audit-report-dir", str(args.report_dir)]
    if args.cache_dir:
        argv += ["--audit-cache-dir", str(args.cache_dir)]
    if args.no_cache:
        argv.append("--audit-no-cache")
    if args.trust_cache:
        argv.append("--audit-trust-cache")
    if args.k:
        argv += ["-k", args.k]
    if args.exitfirst:
        argv.append("-x")
    if args.numprocesses:
        argv += ["-n", args.numprocesses]
    if args.quiet:
        argv.append("-q")
    for key, value in _signoff(args).items():
        argv += [f"--audit-{key}", value]
    seen = _ConfigSeen()
    code = pytest.main(argv, plugins=[seen])
    # the run ends with the report's path, after pytest's own last line
    for path in _html_reports(seen.config):
        _print(f"distill-audit: report {path}")
    if code == pytest.ExitCode.OK:
        return EXIT_OK
    if code == pytest.ExitCode.TESTS_FAILED:
        return EXIT_FAILED
    if code == pytest.ExitCode.NO_TESTS_COLLECTED:
        print("distill-audit: no checks collected (suite files must end in .audit.yaml)",
              file=sys.stderr)
    return EXIT_USAGE


class _ConfigSeen:
    """A plugin object that keeps the run's pytest config (for the paths it wrote)."""

    config: Any = None

    def pytest_configure(self, config: Any) -> None:
        self.config = config


def _html_reports(config: Any) -> list[str]:
    """The HTML reports the run wrote (none when it wrote none or did not get that far)."""
    from audit.plugin import STATE

    state = config.stash.get(STATE, None) if config is not None else None
    if state is None:
        return []
    return [line for _, lines in state.written for line in lines if line.endswith(".html")]


def _cmd_plan(args: argparse.Namespace) -> int:
    from audit.errors import AuditError
    from audit.plan import format_plan, plan_rows

    if not 0.5 <= args.power < 1.0:
        _print(f"error: --power {args.power:g}: must be in [0.5, 1)", file=sys.stderr)
        return EXIT_USAGE
    if args.source.is_dir():
        _print(f"error: {args.source}: is a folder; name one *.audit.yaml or a JSON report",
               file=sys.stderr)
        return EXIT_USAGE
    errors: list[str] = []
    try:
        if args.source.suffix.lower() == ".json":
            from audit.report.jsonio import read_report

            report = read_report(args.source)
            errors += [c.name for c in report.checks if c.error and c.status == "error"]
            rows = plan_rows(list(report.checks), power=args.power, regression=args.regression)
        else:
            from audit.checks.registry import get_metric
            from audit.plan import TIMING, PlanRow
            from audit.reuse import measures_the_machine
            from audit.runner import AuditSession, SuiteRun
            from audit.suite import load_suite

            suite = load_suite(args.source)
            run = SuiteRun(suite, AuditSession(args.cache_dir))
            rows = []
            for spec in suite.checks:
                if spec.gate is None:
                    continue
                if measures_the_machine(get_metric(spec.metric), spec.params):  # not run
                    rows += [PlanRow(spec.name, f"{spec.metric} {kind} {t:g}", None, 0, TIMING)
                             for kind, t in spec.gate.bounds()]
                    continue
                result, _ = run.execute(spec)
                if result.error:
                    _print(f"error: {spec.name}: {result.error.splitlines()[0]}", file=sys.stderr)
                    errors.append(spec.name)
                rows += plan_rows([result], power=args.power, regression=args.regression)
    except AuditError as exc:
        _print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not rows:
        why = f"{', '.join(errors)} could not run (fix them first)" if errors else "no check has a gate"
        _print(f"error: no gate to plan: {why}", file=sys.stderr)
        return EXIT_FAILED
    for line in format_plan(rows, args.power):
        _print(line)
    return EXIT_FAILED if errors else EXIT_OK


def _suite_files(paths: list[Path]) -> list[Path]:
    from audit.suite import SUITE_SUFFIX

    out: list[Path] = []
    for p in paths:
        out += sorted(p.rglob(f"*{SUITE_SUFFIX}")) if p.is_dir() else [p]
    return out


def _cmd_validate(args: argparse.Namespace) -> int:
    from audit.errors import AuditError, SuiteError, display_path
    from audit.extras import missing_extras
    from audit.suite import SUITE_SUFFIX, load_suite

    files = _suite_files(args.suites)
    if not files:
        where = ", ".join(str(p) for p in args.suites)
        _print(f"distill-audit: no suite files (*{SUITE_SUFFIX}) in {where}", file=sys.stderr)
        return EXIT_USAGE
    code = EXIT_OK
    for f in files:
        try:
            suite = load_suite(f)
            missing = missing_extras(suite)
            if missing:
                for line in missing:
                    _print(f"error: {line}", file=sys.stderr)
                code = EXIT_USAGE
                continue
            if args.deep:
                from audit.runner import SuiteRun

                SuiteRun(suite).preflight()
        except AuditError as exc:
            prefix = "" if isinstance(exc, SuiteError) else f"{display_path(f)}: "
            _print(f"error: {prefix}{exc}", file=sys.stderr)
            code = EXIT_USAGE
            continue
        names = ", ".join(c.name for c in suite.checks)
        count = f"{len(suite.checks)} check{'s' if len(suite.checks) != 1 else ''}"
        _print(f"ok: {display_path(f)}: suite {suite.name!r}, {count} ({names})",
               newlines=False)
    return code


def _cmd_schema(args: argparse.Namespace) -> int:
    from audit.suite import suite_json_schema

    text = json.dumps(suite_json_schema(), indent=2) + "\n"
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _cmd_report(args: argparse.Namespace) -> int:
    from audit.errors import AuditError
    from audit.report.jsonio import read_report
    from audit.report.writer import write_report

    if args.format == "md":
        from audit.report.markdown import cmd_markdown

        return cmd_markdown(args.json_report, args.output)

    out = args.output or args.json_report.with_suffix(".html")
    if out.suffix.lower() != ".html" or out.resolve() == args.json_report.resolve():
        _print(f"error: -o {out}: the HTML report's path must end in .html (and not be the JSON "
               "report)", file=sys.stderr)
        return EXIT_USAGE
    try:
        report = read_report(args.json_report)
    except AuditError as exc:
        _print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        paths = write_report(report, html_path=out, signoff=_signoff(args), fallback=False)
    except OSError as exc:
        from audit.errors import display_path
        from audit.report.writer import why_unwritable

        _print(f"error: {display_path(out)}: cannot write the HTML report "
               f"({why_unwritable(exc, out)}); choose another path with -o", file=sys.stderr)
        return EXIT_USAGE
    for line in paths.lines():
        _print(line, newlines=False)
    return EXIT_OK


def _cmd_diff(args: argparse.Namespace) -> int:
    from audit.cache import atomic_write_bytes
    from audit.errors import AuditError
    from audit.report.diff import diff_reports, format_diff, render_diff_html
    from audit.report.jsonio import read_report

    try:
        old, new = read_report(args.old), read_report(args.new)
    except AuditError as exc:
        _print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    d = diff_reports(old, new)
    for line in format_diff(d):
        _print(line, newlines=False)
    if args.html:
        atomic_write_bytes(args.html, render_diff_html(d).encode("utf-8"))
        _print(args.html, newlines=False)
    return EXIT_OK


def _write_trend(document: dict[str, Any], json_path: Path) -> Path:
    """The trend document as JSON and its page as HTML beside it; the HTML's path."""
    from audit.cache import atomic_write_bytes
    from audit.monitor.trend import write_document
    from audit.report.trend import render_trend

    write_document(document, json_path)
    html = json_path.with_suffix(".html")
    atomic_write_bytes(html, render_trend(document).encode("utf-8"))
    return html


def _alert_lines(document: dict[str, Any]) -> list[str]:
    labels = [w["key"] for w in document["windows"]]
    lines = []
    for a in document["alerts"]:
        measured = [st for st in a["statuses"] if st is not None]
        state = "FIRING" if a["firing_now"] else measured[-1].upper() if measured else "NO DATA"
        if a["severity"] == "warn":
            state += " (warn)"
        fired = ", ".join(labels[i] for i in a["fired_at"]) or "never"
        lines.append(f"  {state:<12} {a['name']} ({a['metric']}, for {a['for']}): fired at {fired}")
    return lines


def _cmd_monitor(args: argparse.Namespace) -> int:
    from audit.errors import AuditError

    if args.schema:
        from audit.monitor.spec import monitor_json_schema

        print(json.dumps(monitor_json_schema(), indent=2))
        return EXIT_OK
    try:
        from audit.monitor.run import run_monitor
        from audit.monitor.spec import load_monitor
        from audit.runner import AuditSession

        spec = load_monitor(args.monitor)
        outcome = run_monitor(spec, session=AuditSession(args.cache_dir),
                              progress=lambda line: _print(f"  {line}", newlines=False))
        html = _write_trend(outcome.document, spec.store.parent / "trend.json")
    except AuditError as exc:
        _print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        _print(f"error: cannot write the trend page ({exc})", file=sys.stderr)
        return EXIT_USAGE
    doc = outcome.document
    _print(f"{spec.name}: {doc['verdict'].upper()} ({len(outcome.judged)} window(s) judged now, "
           f"{outcome.skipped} already in the store, {len(doc['windows'])} in all; "
           f"{outcome.labels_added} new label(s))", newlines=False)
    for note in outcome.notes:
        _print(f"  note: {note}", newlines=False)
    for line in _alert_lines(doc):
        _print(line, newlines=False)
    _print(f"  store: {spec.store}", newlines=False)
    _print(f"distill-audit: trend {html}", newlines=False)
    return EXIT_FAILED if doc["verdict"] == "alert" else EXIT_OK


def _cmd_history(args: argparse.Namespace) -> int:
    from audit.errors import AuditError
    from audit.monitor.trend import history_document

    try:
        doc = history_document(args.folder)
    except AuditError as exc:
        _print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    flips = [n for n in doc["annotations"] if n["kind"] == "flip"]
    _print(f"{doc['name']}: {len(doc['windows'])} release audit(s), {len(doc['alerts'])} gate "
           f"bound(s), {len(flips)} flip(s)", newlines=False)
    labels = [w["key"] for w in doc["windows"]]
    for n in flips:
        _print(f"  {labels[n['window']]}: {n['text']}", newlines=False)
    html = _write_trend(doc, args.folder / "history" / "history.json")
    _print(f"distill-audit: trend {html}", newlines=False)
    return EXIT_OK


def _cmd_model_card(args: argparse.Namespace) -> int:
    from audit.report.modelcard import cmd_model_card

    return cmd_model_card(args.json_report, args.output)


def _cmd_init(args: argparse.Namespace) -> int:
    from audit.init import cmd_init

    return cmd_init(args.teacher, args.student, args.data, args.target, args.output, args.train,
                    args.baseline)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``distill-audit`` console script."""
    args = _parser().parse_args(argv)
    handler = {"run": _cmd_run, "validate": _cmd_validate, "schema": _cmd_schema,
               "report": _cmd_report, "diff": _cmd_diff, "plan": _cmd_plan,
               "monitor": _cmd_monitor, "history": _cmd_history,
               "model-card": _cmd_model_card, "init": _cmd_init}[args.command]
    return handler(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
