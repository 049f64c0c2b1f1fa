"""Running checks: load a suite's data and models once, predict once, measure, judge.

:class:`AuditSession` owns the prediction cache and one :class:`SuiteRun` per suite. A
:class:`SuiteRun` loads the eval table and both models lazily, gets each model's predictions
from the cache (so each model predicts once per dataset), draws the shared bootstrap replicates
once, and turns each :class:`~audit.suite.CheckSpec` into a :class:`~audit.results.CheckResult`:
it asks the check's metric what it needs beyond the eval predictions (``Metric.needs``), has
its :class:`~audit.probes.probe.Probes` build those artifacts (once per run), calls the metric
(a pure function of them) and judges the measurements with the gates.

A problem loading the data or the models is remembered and reported by every check of the suite
as an error (it fails closed); it is not retried for each check.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Mapping
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from audit.cache import PredictionCache
from audit.checks.measure import Resampler, measure_all
from audit.checks.registry import Metric, MetricInput, get_metric
from audit.coltypes import plain_value as _plain
from audit.data import LabelEncoding, Table, file_sha256, load_table
from audit.data.inputs import describe as describe_inputs
from audit.data.inputs import inputs_sha256
from audit.errors import AuditError, DataError, SuiteError, display_path
from audit.gates import check_status, evaluate_baseline_gate, evaluate_gate
from audit.models import (
    LoadedModel,
    check_skops_trust,
    content_bytes,
    load_model,
    model_fingerprint,
)
from audit.probes.predictions import verify_predictions
from audit.probes.probe import Probes
from audit.results import AuditReport, CheckResult, Measurement, Status
from audit.reuse import measurement_key, measures_the_machine
from audit.spec import TABLES, TEXTS
from audit.suite import CheckSpec, Suite, parse_check

__all__ = ["AuditSession", "SuiteRun", "suite_info"]


class AuditSession:
    """Shared state of one audit run: the prediction cache and the suites being run."""

    # reuse a check's measurements from an authenticated cache entry (see audit.reuse);
    # False: reuse only predictions and attack artifacts
    reuse_measurements = True

    def __init__(self, cache_dir: Path | None = None, *, trust_cache: bool = False) -> None:
        self.cache = PredictionCache.open(cache_dir, trust=trust_cache)
        self._runs: dict[Any, SuiteRun] = {}
        # where long computations (black-box attacks) report progress; the pytest plugin
        # writes it to the terminal
        self.progress: Any = None
        # "memory" or "stream" for every suite (--engine), else each suite's settings.engine
        self.engine: str | None = None

    def run_for(self, suite: Suite) -> SuiteRun:
        """The (memoised) :class:`SuiteRun` of ``suite``."""
        key = suite.path if suite.path is not None else id(suite)
        if key not in self._runs:
            self._runs[key] = SuiteRun(suite, self)
        return self._runs[key]


class SuiteRun:
    """One suite's loaded data, models, cached predictions and check results.

    A suite with a ``baseline`` model measures it through two more runs of the same engine
    (:meth:`baseline_run`): one with the baseline in the student's place (its values, and its
    regression from the teacher: the numbers a run with the baseline as the student gives) and
    one with it in the teacher's place (the student's regression from the baseline, judged by
    ``max_baseline_regression``). They share this run's tables, loaded models and prediction
    cache, so each model still loads once and predicts once per table.
    """

    def __init__(self, suite: Suite, session: AuditSession | None = None, *,
                 parent: SuiteRun | None = None, roles: Mapping[str, str] | None = None) -> None:
        self.suite = suite
        self.session: AuditSession = session or (
            parent.session if parent is not None else AuditSession())
        # a baseline run: the run whose tables and models it shares, and the parent's name of
        # each of its roles (e.g. {"teacher": "teacher", "student": "baseline"})
        self._parent = parent
        self.roles: dict[str, str] = dict(roles or {"teacher": "teacher", "student": "student"})
        self._failure: AuditError | None = None
        self.prediction_sources: dict[str, str] = {}
        self.prediction_checks: dict[str, str] = {}  # role/table -> how a cached entry was checked
        self.load_seconds = 0.0
        self.encoding: LabelEncoding | None = None  # set when inputs are built
        self._models: dict[str, LoadedModel] = {}
        self._hashes: dict[str, str] = {}
        self._classes: dict[str, tuple[Any, ...]] = {}
        self._eval_summary: dict[str, Any] | None = None  # from reused measurements
        self._fingerprints: dict[str, tuple[str, str] | None] = {}
        self._untrusted: dict[str, list[str]] = {}  # skops types beyond skops' defaults
        self.probes = Probes(self)  # what metrics need beyond the eval predictions
        # reuse measurements from the cache; not for a run over a sample (audit.stream),
        # whose numbers must never stand for the whole table's
        self.reuse = True

    # -- lazily loaded artifacts -----------------------------------------------------
    def _guard(self, build: Any) -> Any:
        if self._failure is not None:
            raise self._failure
        try:
            return build()
        except AuditError as exc:
            self._failure = exc
            raise

    @cached_property
    def eval_table(self) -> Table:
        if self._parent is not None:
            return self._parent.eval_table
        return self._guard(lambda: load_table(self.suite.data, "eval"))

    def train_table(self) -> Table:
        """The training table (loaded on first use; an error if the suite names none)."""
        return self.table("train")

    def table(self, role: str) -> Table:
        """The table the suite names for ``role`` (one of ``TABLES``), loaded once; an error
        if the suite names none."""
        if role == "eval":
            return self.eval_table
        if self._parent is not None:
            return self._parent.table(role)
        key = f"_table_{role}"
        if key not in self.__dict__:
            self.__dict__[key] = load_table(self.suite.data, role)
        return self.__dict__[key]

    def model(self, role: str) -> LoadedModel:
        """The loaded teacher, student or baseline (loaded on first use only)."""
        if self._parent is not None:
            return self._parent.model(self.roles[role])
        if role not in self._models:
            spec = getattr(self.suite, role)
            self._models[role] = self._guard(lambda: load_model(spec, role))
        return self._models[role]

    def runnable_models(self, doing: str) -> dict[str, LoadedModel]:
        """Both models, for checks that run them (timing, attacks): precomputed predictions
        cannot be run, which is an error saying ``doing`` (e.g. "efficiency checks time")."""
        models = {who: self.model(who) for who in ("teacher", "student")}
        for who, m in models.items():
            if m.spec.kind == "predictions":
                raise DataError(f"{doing} the models, but the {self.roles[who]} is a file of precomputed "
                                "predictions; audit a model that runs (skops, onnx, torch, "
                                "callable)")
        return models

    @property
    def teacher(self) -> LoadedModel:
        return self.model("teacher")

    @property
    def student(self) -> LoadedModel:
        return self.model("student")

    def predictions(self, role: str, table: Table) -> tuple[np.ndarray, tuple[Any, ...]]:
        """Raw class probabilities of the teacher or student on ``table``, and their classes.

        Served from the prediction cache when possible. For file-based models the cache key
        is known from the file's hash, so an authenticated cache hit does not even load the
        model. An unauthenticated hit is verified: the model is loaded (which enforces a skops
        file's trust list) and re-predicts a fresh random sample of rows (see
        :func:`verify_predictions`). A skops file's trust always comes from the file itself or
        from an authenticated record, never from what the cache says.
        """
        spec = getattr(self.suite, role)
        cache = self.session.cache

        def identity() -> str:
            known = self._fingerprint(role)
            return self.model(role).cache_identity if known is None else known[1]

        def compute() -> tuple[np.ndarray, dict[str, Any]]:
            model = self.model(role)
            info: dict[str, Any] = {"classes": [_plain(c) for c in model.classes]}
            if spec.kind == "skops":
                info["untrusted_types"] = list(model.untrusted_types)
            return model.predict_proba(table), info

        def verify(P: np.ndarray, info: dict[str, Any]) -> str:
            return verify_predictions(self.model(role), table, P, info)

        key = cache.key(self._guard(identity), table.sha256, table.role,
                        "\0".join(f"{c}:{t}" for c, t in table.features.dtypes.astype(str).items()))
        # a callable's behaviour may depend on files we cannot see: never reuse it across runs
        persist = spec.kind not in ("callable", "object")
        def get() -> tuple[np.ndarray, dict[str, Any], str]:
            return cache.get_with_info(key, compute, persist=persist, verify=verify,
                                       label=f"{self.roles[role]} predictions on {table.role}")

        # a failure on the eval table stops every check; on another table (a predictions file
        # that covers the eval rows only) it is the failure of the checks that read that table
        P, info, source = self._guard(get) if table.role == "eval" else get()
        how = cache.obtained(key)
        if spec.kind == "skops" and not self._loaded(role) and source != "computed":
            # this suite's trust list against the file's types: from a record this session
            # computed, authenticated or verified (it depends only on the file's content), or
            # from the file itself; never from an unverified cache entry
            recorded = info.get("untrusted_types") if how != "unverified" else None
            self._guard(lambda: check_skops_trust(spec, self.roles[role], recorded))
        # where the predictions came from: later reads of the same table are served from memory
        top, name = self._top(), self.roles[role]
        top.prediction_sources.setdefault(f"{name}/{table.role}", source)
        top.prediction_checks.setdefault(f"{name}/{table.role}", cache.describe(key))
        self._classes[role] = tuple(info["classes"])
        top._classes.setdefault(name, self._classes[role])
        if spec.kind == "skops" and how != "unverified" and "untrusted_types" in info:
            top._untrusted[name] = list(info["untrusted_types"])
        return P, self._classes[role]

    def record_classes(self, **classes: tuple[Any, ...]) -> None:
        """The classes each role's model predicted (for the provenance), as an engine saw them."""
        self._classes.update({role: tuple(c) for role, c in classes.items()})

    @property
    def eval_summary(self) -> dict[str, Any] | None:
        """What the report says about an eval table this run did not read whole."""
        return self._eval_summary

    @eval_summary.setter
    def eval_summary(self, summary: dict[str, Any]) -> None:
        self._eval_summary = summary

    @cached_property
    def stream(self) -> Any:
        """The streaming engine when this run streams its eval table (the session's engine,
        else ``settings.engine``), else ``None``: the whole table in memory."""
        if self._parent is not None or "eval_table" in self.__dict__:
            return None
        engine = self.session.engine or self.suite.settings.engine
        if engine == "memory":
            return None
        from audit.stream.engine import StreamEngine

        return StreamEngine(self, engine)

    def over(self, table: Table, inputs: MetricInput) -> SuiteRun:
        """A run of this suite, in memory, over ``table`` whose predictions ``inputs`` hold
        (the streaming engine's sample); it loads no table and predicts none of its rows."""
        run = SuiteRun(self.suite, self.session)
        run.__dict__["eval_table"] = table
        run.__dict__["inputs"] = inputs
        run.encoding = self.encoding
        run.reuse = False
        run._models = self._models  # the same loaded models
        run._classes = dict(self._classes)
        return run

    def _top(self) -> SuiteRun:
        """The run that owns the tables and models (itself, unless a baseline run)."""
        return self if self._parent is None else self._parent

    def _loaded(self, role: str) -> bool:
        """Whether the model in ``role`` has been loaded (by this run or the one it shares)."""
        return self.roles[role] in self._top()._models

    def _fingerprint(self, role: str) -> tuple[str, str] | None:
        """``(sha256, cache identity)`` of a file-based model, hashed once per run (``None``
        for models known only once loaded: callables, pickles)."""
        if self._parent is not None:
            return self._parent._fingerprint(self.roles[role])
        if role not in self._fingerprints:
            known = model_fingerprint(getattr(self.suite, role), role)
            if known is not None:
                self._hashes[role] = known[0]
            self._fingerprints[role] = known
        return self._fingerprints[role]

    @cached_property
    def inputs(self) -> MetricInput:
        def build() -> MetricInput:
            start = time.perf_counter()
            table = self.eval_table
            p_teacher, teacher_classes = self.predictions("teacher", table)
            p_student, student_classes = self.predictions("student", table)
            self.encoding = LabelEncoding.from_models(
                teacher_classes, student_classes, self.suite.data.positive,
                names=(self.roles["teacher"], self.roles["student"]))
            y = self.encoding.encode(table.labels, f"{display_path(table.path)} column "
                                                   f"{self.suite.data.target!r}")
            inputs = MetricInput(y=y, p_teacher=p_teacher[:, self.encoding.reorder(teacher_classes)],
                                 p_student=p_student[:, self.encoding.reorder(student_classes)],
                                 classes=self.encoding.classes, pos=self.encoding.pos,
                                 sensitive=table.sensitive)
            self.load_seconds = time.perf_counter() - start
            return inputs

        return self._guard(build)

    PREFLIGHT_ROWS = 5  # eval rows both models predict in a preflight

    def preflight(self) -> None:
        """Everything a run needs, on a few rows: read the tables, load both models, match
        their classes, encode the labels, and have both models predict the first
        ``PREFLIGHT_ROWS`` eval rows (raises the same errors a run would). Precomputed
        predictions are checked whole (their rows must follow the eval rows)."""
        if self.stream is not None:
            return self.stream.preflight()
        table = self.eval_table
        data = self.suite.data
        for role in TABLES[1:]:
            if getattr(data, role) is not None and data.choices is None:
                self.table(role)
        if data.choices is not None:  # a language model's documents and pairs: read whole
            from audit.data.documents import read_documents, read_pairs

            for role in (*TABLES[1:], "documents"):
                if getattr(data, role) is not None:
                    read_documents(getattr(data, role), role)
            if data.pairs is not None:
                read_pairs(data.pairs)
        teacher, student = self.model("teacher"), self.model("student")
        models = [teacher, student]
        if self.suite.baseline is not None:
            models.append(self.model("baseline"))
        head = table.take(slice(0, self.PREFLIGHT_ROWS))

        def predict_first_rows() -> None:
            for model in models:
                model.predict_proba(table if model.spec.kind == "predictions" else head)

        # a text or image model that cannot read the inputs says so before any class mismatch
        inputs_first = table.modality != "tabular"
        if inputs_first:
            predict_first_rows()
        encoding = LabelEncoding.from_models(teacher.classes, student.classes,
                                             self.suite.data.positive)
        encoding.encode(table.labels, f"{display_path(table.path)} column "
                                      f"{self.suite.data.target!r}")
        if self.suite.baseline is not None:
            LabelEncoding.from_models(teacher.classes, models[2].classes, self.suite.data.positive,
                                      names=("teacher", "baseline"))
        if not inputs_first:
            predict_first_rows()

    @cached_property
    def resampler(self) -> Resampler:
        s = self.suite.settings
        return Resampler(self.inputs, s.bootstrap, s.seed)

    # -- checks ----------------------------------------------------------------------
    def execute(self, spec: CheckSpec, *, source: str = "suite",
                location: str | None = None) -> tuple[CheckResult, BaseException | None]:
        """Run one check; return its result and the exception if it could not run.

        An :class:`~audit.errors.AuditError` (bad data, a model that fails) and any other
        exception (a bug) both give a result with status ``error``; the exception is returned
        too, so a caller such as the pytest plugin can show its traceback.
        """
        start = time.perf_counter()
        where = location or spec.where()
        try:
            metric = get_metric(spec.metric)
            ms, details = self._measurements(spec, metric)
            try:
                baseline, versus = self._baseline_measurements(spec, metric)
            except AuditError as exc:
                if spec.gate is not None and spec.gate.max_baseline_regression is not None:
                    raise  # a gate on the baseline cannot be judged: the check fails closed
                # the student's own numbers stand; the report says why the baseline has none
                baseline, versus = (), ()
                details["baseline_error"] = (f"{exc}; the baseline is not measured by this "
                                             "check (set baseline: false on it to skip it)")
            gates = tuple(g for m in ms for g in evaluate_gate(spec.gate, m)) if spec.gate else ()
            if spec.gate is not None and spec.gate.max_baseline_regression is not None:
                gates += tuple(g for m in versus for g in evaluate_baseline_gate(spec.gate, m))
            status = check_status(gates, self.suite.settings.inconclusive)
            details["seconds"] = round(time.perf_counter() - start, 4)
            result = CheckResult(name=spec.name, status=status, measurements=ms, gates=gates,
                                 source=source, location=where, description=spec.description,
                                 details=details, baseline=baseline, versus_baseline=versus)
            return result, None
        except Exception as exc:
            message = str(exc) if isinstance(exc, AuditError) else (
                f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}")
            result = CheckResult(name=spec.name, status=Status.ERROR, error=message, source=source,
                                 location=where, description=spec.description,
                                 details={"seconds": round(time.perf_counter() - start, 4)})
            return result, exc

    # -- the baseline ----------------------------------------------------------------
    def baseline_run(self, place: str) -> SuiteRun:
        """The run of this suite with its baseline in the ``place`` of the teacher or the
        student (memoised); it shares this run's tables, models and cache."""
        if self.suite.baseline is None:
            raise SuiteError("the suite names no baseline model; add baseline: <model> at the "
                             "top level", file=self.suite.path, key="baseline")
        key = f"_baseline_{place}"
        if key not in self.__dict__:
            roles = {"teacher": "teacher", "student": "student", place: "baseline"}
            baseline = self.suite.baseline
            suite = (replace(self.suite, baseline=None, student=baseline) if place == "student"
                     else replace(self.suite, baseline=None, teacher=baseline))
            self.__dict__[key] = SuiteRun(suite, parent=self, roles=roles)
        return self.__dict__[key]

    def _baseline_measurements(self, spec: CheckSpec, metric: Metric
                               ) -> tuple[tuple[Measurement, ...], tuple[Measurement, ...]]:
        """The check measured with the baseline as the student (its values beside the
        teacher's), and with the baseline as the teacher (the student's regression from it;
        for a pairwise metric, the student against the baseline: its agreement with it, its
        negative flips from it). Empty when the suite names no baseline, the check opts out or
        it measures the tables, not models."""
        gated = spec.gate is not None and spec.gate.max_baseline_regression is not None
        if self.suite.baseline is None:
            if gated:
                raise SuiteError("sets max_baseline_regression, but the suite names no "
                                 "baseline model; add baseline: <model> at the top level",
                                 file=spec.file, line=spec.line,
                                 key=f"checks.{spec.name}.gate.max_baseline_regression")
            return (), ()
        if self._parent is not None or not spec.baseline or metric.family == "data":
            return (), ()
        if self.stream is not None:
            return self.stream.baseline_measurements(spec, metric)
        as_student = self.baseline_run("student")._measurements(spec, metric)[0]
        versus = self.baseline_run("teacher")._measurements(spec, metric)[0]
        return _numbers_only(as_student), _numbers_only(versus)

    def _measure(self, spec: CheckSpec, metric: Metric) -> tuple[Measurement, ...]:
        """The check's measurements, computed: predictions, artifacts, the metric."""
        inputs = self.inputs
        if spec.params.get("average") == "binary" and inputs.pos is None:
            raise SuiteError(f"='binary': the models have {inputs.k} classes; use macro, micro or "
                             "weighted", file=spec.file, line=spec.line,
                             key=f"checks.{spec.name}.average")
        if metric.needs is not None:  # the artifacts it declares, built by the probes
            inputs = replace(inputs, artifacts={
                r.kind: self.probes.build(r) for r in metric.needs(spec.params)})
        return measure_all(metric, spec.params, inputs, self.resampler,
                           self.suite.settings.confidence)

    def _measurements(self, spec: CheckSpec,
                      metric: Metric) -> tuple[tuple[Measurement, ...], dict[str, Any]]:
        """The check's measurements and details: from an authenticated cache entry when a
        previous run measured the same thing (see :mod:`audit.reuse`), else computed (by the
        streaming engine when the run streams)."""
        if self.stream is not None:
            return self.stream.measurements(spec, metric)
        key = self._reuse_key(spec, metric)
        if key is None:
            return self._measure(spec, metric), self._details()

        def compute() -> tuple[np.ndarray, dict[str, Any]]:
            ms = self._measure(spec, metric)
            return np.zeros(0), {"measurements": [m.to_dict() for m in ms],
                                 "details": self._details(), "run": self._run_summary()}

        cache = self.session.cache
        _, info, source = cache.get_with_info(key, compute, verify=None,
                                              label=f"check {spec.name!r}'s measurements")
        self.prediction_checks.setdefault(f"measurements/{spec.name}", cache.describe(key))
        if source != "computed":
            self._adopt(info["run"], cache.obtained(key))
        return (tuple(Measurement.from_dict(m) for m in info["measurements"]),
                dict(info["details"]))

    def _reuse_key(self, spec: CheckSpec, metric: Metric) -> str | None:
        """The measurement cache key of ``spec`` (:func:`audit.reuse.measurement_key`), or
        ``None`` when it must be computed: no disk cache, a timing, a model without a
        fingerprint."""
        cache = self.session.cache
        if not self.reuse or not self.session.reuse_measurements or cache.directory is None or (
                cache.auth is None and not cache.trust):
            return None  # nothing could vouch for a stored measurement
        if measures_the_machine(metric, spec.params):
            return None
        models = {}
        for role in ("teacher", "student"):
            known = self._guard(lambda role=role: self._fingerprint(role))
            if known is None:
                return None
            models[role] = (known[1], getattr(self.suite, role))
        tables = {role: self._table_sha256(role) for role in (*TABLES, *TEXTS)
                  if getattr(self.suite.data, role) is not None}
        return measurement_key(spec, self.suite.data, self.suite.settings, models, tables)

    def _run_summary(self) -> dict[str, Any]:
        """What the report says about the data and models, stored with reused measurements
        (a rerun that reuses every check loads neither)."""
        t = self.eval_table
        out: dict[str, Any] = {"eval": {"rows": t.n_rows, "features": [str(c) for c in t.features.columns]},
                               "classes": {r: [_plain(c) for c in cs] for r, cs in self._classes.items()},
                               "untrusted_types": dict(self._untrusted)}
        return out

    def _adopt(self, summary: dict[str, Any], how: str) -> None:
        """Take a reused entry's data and model summary, enforcing each skops file's trust list
        (against the entry's record when it is authenticated, else against the file itself)."""
        self._eval_summary = summary["eval"]
        for role in ("teacher", "student"):
            self._classes.setdefault(role, tuple(summary["classes"].get(role, ())))
            spec = getattr(self.suite, role)
            if spec.kind == "skops" and not self._loaded(role):
                recorded = summary["untrusted_types"].get(role) if how == "authenticated" else None
                self._guard(lambda spec=spec, role=role, r=recorded:
                            check_skops_trust(spec, self.roles[role], r))

    def run_check(self, spec: CheckSpec | str) -> CheckResult:
        """Run a check of the suite (by name or spec) and return its result."""
        if isinstance(spec, str):
            spec = self.suite.check(spec)
        return self.execute(spec)[0]

    def check(self, name: str, definition: Mapping[str, Any], *, location: str = "") -> CheckResult:
        """Run an ad-hoc check written like a suite entry, e.g.
        ``run.check("acc", {"metric": "accuracy", "gate": {"min": 0.8}})``."""
        spec = parse_check(name, definition, suite_path=self.suite.path,
                           sensitive=self.suite.data.sensitive,
                           has_baseline=self.suite.baseline is not None)
        spec = replace(spec, file=None, line=None)
        return self.execute(spec, source="python", location=location or f"<python>::{name}")[0]

    def run_all(self) -> list[CheckResult]:
        """Run every check of the suite in order."""
        return [self.execute(spec)[0] for spec in self.suite.checks]

    def record(self, result: CheckResult) -> dict[str, Any]:
        """The plain-data record of ``result`` that reports are assembled from."""
        info = suite_info(self.suite)
        info["checks"] = [c.name for c in self.suite.checks]
        return {"suite": info, "artifacts": self.artifacts(), "result": result.to_dict()}

    def report(self, results: list[CheckResult] | None = None) -> AuditReport:
        """Run every check (unless ``results`` are given) and assemble the suite's report."""
        from audit.provenance import utc_now
        from audit.report.assemble import reports_from_records

        started = utc_now()
        results = self.run_all() if results is None else results
        return reports_from_records([self.record(r) for r in results], started=started)[0]

    def _details(self) -> dict[str, Any]:
        """A check's details beyond its measurements (its seconds are added by the caller), from
        the count table (the streaming engine's sum of batches, or the in-memory one)."""
        s = self.suite.settings
        J = self.stream.joint if self.stream is not None else self.resampler.joint
        assert self.encoding is not None  # set when the inputs were built
        classes = self.encoding.classes
        n = int(J.sum())
        d: dict[str, Any] = {
            "n_eval": n, "classes": [_plain(c) for c in classes],
            "seed": s.seed, "confidence": s.confidence, "bootstrap": s.bootstrap,
        }
        if self.encoding.pos_note:
            d["positive"] = self.encoding.pos_note
        counts = J.sum(axis=(1, 2))
        top = int(counts.argmax())
        d["majority_class"] = (f"{_plain(classes[top])!r} is {counts[top] / counts.sum():.1%} "
                               "of the eval rows (a constant prediction's accuracy)")
        single = _one_class(J, classes)
        if single:  # the most common way a distillation run fails: say it on every check
            d["one_class_models"] = single
            d["one_class"] = one_class_note(single, n)
        return d

    # -- provenance ------------------------------------------------------------------
    def table_sha256(self, role: str) -> str:
        """The SHA-256 of the table ``role`` (its file, or a Parquet folder's files, with a
        text or image suite's inputs), hashed once per run."""
        return self._table_sha256(role)

    def _table_sha256(self, role: str) -> str:
        key = f"table:{role}"
        if key not in self._hashes:
            data = self.suite.data  # the table file's hash, with its images' for an image suite
            self._hashes[key] = inputs_sha256(data, role, file_sha256(getattr(data, role)))
        return self._hashes[key]

    def artifacts(self) -> dict[str, Any]:
        """Hashes and sizes of what was audited (only what loaded without error)."""
        out: dict[str, Any] = {}
        roles = ("teacher", "student") + (("baseline",) if self.suite.baseline is not None else ())
        for role in roles:
            spec = getattr(self.suite, role)
            entry: dict[str, Any] = {"kind": spec.kind,
                                     "path": str(spec.path) if spec.path else (
                                         spec.target or spec.label)}
            if spec.tokenizer is not None:  # part of the model: in its hash and its size
                entry["tokenizer"] = str(spec.tokenizer)
            if role in self._models:
                model = self._models[role]
                entry.update(sha256=model.sha256, size_bytes=model.size_bytes,
                             classes=[_plain(c) for c in model.classes],
                             warnings=list(model.warnings), loaded=True)
            elif role in self._hashes or (role == "baseline" and self._fingerprint(role)):
                # predictions came from the cache; the model never loaded
                entry.update(sha256=self._hashes[role], size_bytes=content_bytes(spec),
                             classes=list(self._classes.get(role, ())), warnings=[], loaded=False)
            out[role] = entry
        data: dict[str, Any] = {"target": self.suite.data.target,
                                "sensitive": list(self.suite.data.sensitive)}
        if self.suite.data.choices is not None:  # how the items' contexts and choices are read
            d = self.suite.data
            data["items"] = {"context": d.context, "choices": d.options or d.choices,
                             "lettered": d.options is not None}
        if "eval_table" in self.__dict__:
            t: Table = self.__dict__["eval_table"]
            data["eval"] = {"path": str(t.path), "sha256": t.sha256, "rows": t.n_rows,
                            "features": [str(c) for c in t.features.columns]}
            if t.bins:  # the edges binned sensitive columns were cut at (quantiles: resolved)
                data["sensitive_bins"] = {col: list(edges) for col, edges in t.bins}
        elif self._eval_summary is not None:  # every check reused: the table was not read
            data["eval"] = {"path": str(self.suite.data.eval), "sha256": self._table_sha256("eval"),
                            **self._eval_summary}
        else:
            data["eval"] = {"path": str(self.suite.data.eval)}
        for role in (*TABLES[1:], *TEXTS):  # hashed even when no check read them
            path = getattr(self.suite.data, role)
            if path is not None:
                data[role] = {"path": str(path), "sha256": self._table_sha256(role)}
        inputs = describe_inputs(self.suite.data, "eval")
        if inputs:  # what text and image models read, and from where
            data["inputs"] = {role: describe_inputs(self.suite.data, role) for role in TABLES
                              if getattr(self.suite.data, role) is not None}
        out["data"] = data
        out["predictions"] = dict(self.prediction_sources)
        out["cache"] = {**self.session.cache.provenance(), "entries": dict(self.prediction_checks)}
        t_sha, s_sha = out["teacher"].get("sha256"), out["student"].get("sha256")
        if t_sha and t_sha == s_sha:
            out["student"].setdefault("warnings", []).append(
                "the student is the teacher: both files have the same SHA-256, so every "
                "teacher-vs-student comparison is trivially equal")
        b_sha = out.get("baseline", {}).get("sha256")
        for who, sha in (("student", s_sha), ("teacher", t_sha)):
            if b_sha and b_sha == sha:
                out["baseline"].setdefault("warnings", []).append(
                    f"the baseline is the {who}: both files have the same SHA-256, so every "
                    f"comparison of the two is trivially equal")
        return out


def _numbers_only(ms: tuple[Measurement, ...]) -> tuple[Measurement, ...]:
    """Baseline measurements without the rows shown beside a check (the flip table and the
    examples are the teacher's and the student's)."""
    return tuple(replace(m, extra={k: v for k, v in m.extra.items()
                                   if k not in ("flips", "examples")}) for m in ms)


def _one_class(J: np.ndarray, classes: tuple[Any, ...]) -> dict[str, Any]:
    """The models whose top-1 prediction is the same class on every row, with that class, from
    the count table ``J[true, teacher, student]``."""
    out: dict[str, Any] = {}
    for who, predicted in (("student", J.sum(axis=(0, 1))), ("teacher", J.sum(axis=(0, 2)))):
        used = np.flatnonzero(predicted)
        if len(used) == 1:
            out[who] = _plain(classes[int(used[0])])
    return out


def one_class_note(single: Mapping[str, Any], n: int) -> str:
    """``the student predicts 'No' for every one of the 1568 eval rows``, the teacher too if so.

    >>> one_class_note({"student": "No", "teacher": "No"}, 1568)
    "the student predicts 'No' for every one of the 1568 eval rows, and so does the teacher"
    """
    rows = "the only eval row" if n == 1 else f"every one of the {n} eval rows"
    who = list(single)
    text = f"the {who[0]} predicts {single[who[0]]!r} for {rows}"
    if len(who) == 2:
        if single[who[0]] == single[who[1]]:
            text += f", and so does the {who[1]}"
        else:
            text += f"; the {who[1]} predicts {single[who[1]]!r} for every one of them"
    return text


def suite_info(suite: Suite) -> dict[str, Any]:
    """The ``suite`` block of a report."""
    return {"name": suite.name, "path": str(suite.path) if suite.path else None,
            "sha256": suite.sha256, "description": suite.description, "text": suite.text,
            "includes": [{"path": p, "sha256": h} for p, h in suite.includes],
            "settings": {"seed": suite.settings.seed, "confidence": suite.settings.confidence,
                         "bootstrap": suite.settings.bootstrap,
                         "inconclusive": suite.settings.inconclusive}}
