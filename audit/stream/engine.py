"""The streaming engine of a suite run: the eval table read batch by batch
(``settings.engine: stream``, or ``--engine stream``).

One pass reads the table in batches (:mod:`audit.stream.batches`); each model predicts each
batch once; the batch is counted into the additive tables (:mod:`audit.stream.partials`) and
offered to a seeded uniform sample of ``settings.sample_rows`` rows; then it is dropped. Peak
memory is set by the batch and the sample, not the table.

A check whose metric has an additive form (count metrics, means of per-row values, binary ROC
AUC) is measured from the tables: the same numbers as the in-memory engine on the whole table
(exactly for counts, to summation order for means). Every other check runs unchanged on the
sample, through an in-memory run over the sample's rows, and each of its measurements says so
(``measured on a seeded uniform sample of 100,000 of the 10,000,000 eval rows``). So does a
suite's baseline.

A :class:`~audit.runner.SuiteRun` whose engine is ``stream`` hands its measurements to a
:class:`StreamEngine` (it keeps the gates, the report and the provenance).
"""

from __future__ import annotations

import dataclasses
import time
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from audit.checks.measure import Resampler, measure, normal_measurement, with_rows
from audit.checks.registry import Metric, MetricInput
from audit.data import LabelEncoding
from audit.errors import DataError, SuiteError, display_path
from audit.results import Measurement
from audit.stream.batches import iter_batches
from audit.stream.partials import Partials, auc_from_counts, table_plan
from audit.suite import CheckSpec

__all__ = ["StreamEngine", "streamable"]

PROGRESS_EVERY = 5.0  # seconds between progress lines of the pass


def streamable(metric: Metric, params: Any = None) -> bool:
    """Whether ``metric`` is measured from the additive tables (else on the sample)."""
    if metric.custom is not None:
        return False
    if metric.engine == "counts":
        return True
    return metric.rows is not None or metric.pair_rows is not None or metric.name == "roc_auc"


class _Counted(Resampler):
    """A :class:`Resampler` over a count table that was added up batch by batch: its replicates
    are the same multinomial draws the in-memory engine makes from the same table."""

    def __init__(self, joint: np.ndarray, n_boot: int, seed: int) -> None:
        self.inputs = None  # type: ignore[assignment]
        self.n_boot, self.seed, self._memo = n_boot, seed, {}
        self.__dict__["joint"] = joint


def _sample_frame(table: Any, rows: np.ndarray, y: np.ndarray, p_t: np.ndarray,
                  p_s: np.ndarray) -> pd.DataFrame:
    """Rows offered to the sample: features, label, groups, their position in the dataset and
    both models' probabilities (so the sample is never predicted again)."""
    k = p_t.shape[1]
    return pd.concat([table.features.reset_index(drop=True), table.labels.rename("__label__"),
                      table.sensitive.add_prefix("__sensitive__"),
                      pd.Series(rows, name="__row__"),
                      pd.DataFrame(np.column_stack([y, p_t, p_s]),
                                   columns=["__y__", *(f"__pt{i}__" for i in range(k)),
                                            *(f"__ps{i}__" for i in range(k))])], axis=1)


def _model_inputs(table: Any) -> np.ndarray | None:
    """What a text or image model reads of ``table`` (``None`` for a tabular one)."""
    return table.texts if table.texts is not None else table.images


class _Sample:
    """A seeded bottom-``size`` sample of a stream of rows: every row draws a key from one
    seeded stream (the same keys whatever the batch size) and the ``size`` rows with the
    smallest keys are kept, with their model inputs (texts, images) beside them."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.keys = np.zeros(0)
        self.frame: pd.DataFrame | None = None
        self.inputs: np.ndarray | None = None

    def offer(self, keys: np.ndarray, frame: pd.DataFrame, inputs: np.ndarray | None) -> None:
        keep = keys < (self.keys.max() if len(self.keys) >= self.size else 2.0)
        if not keep.any():
            return
        merged_keys = np.concatenate([self.keys, keys[keep]])
        order = np.argsort(merged_keys, kind="stable")[:self.size]
        frames = [*([self.frame] if self.frame is not None else []), frame[keep]]
        self.keys = merged_keys[order]
        self.frame = pd.concat(frames, ignore_index=True).iloc[order].reset_index(drop=True)
        if inputs is not None:
            parts = [*([self.inputs] if self.inputs is not None else []), inputs[keep]]
            self.inputs = np.concatenate(parts)[order]

    def rows(self) -> tuple[pd.DataFrame | None, np.ndarray | None]:
        """The sample in the table's order (a sample of every row is the table itself)."""
        if self.frame is None:
            return None, None
        order = np.argsort(self.frame["__row__"].to_numpy(), kind="stable")
        return (self.frame.iloc[order].reset_index(drop=True),
                None if self.inputs is None else self.inputs[order])


class _Given:
    """An input reader that hands back inputs already read (the sample's rows on Ray)."""

    def __init__(self, inputs: dict[str, np.ndarray]) -> None:
        self._inputs = inputs

    def inputs(self, frame: pd.DataFrame, file: Any, start: int) -> dict[str, np.ndarray]:
        return self._inputs


class StreamEngine:
    """How a :class:`~audit.runner.SuiteRun` measures when its eval table is streamed (see the
    module doc): ``run`` is the run it measures for (its models, session, suite)."""

    def __init__(self, run: Any, kind: str = "stream") -> None:
        self.run = run
        self.suite = run.suite
        self.kind = kind  # "stream": batches on this machine; "ray": row groups on Ray workers

    # -- the pass ------------------------------------------------------------------------
    @cached_property
    def stream(self) -> dict[str, Any]:
        """The pass over the eval table: its additive tables, sample and counts."""
        return self.run._guard(self._pass)

    def _pass(self) -> dict[str, Any]:
        s = self.suite.settings
        run = self.run
        teacher, student = run.model("teacher"), run.model("student")
        self._refuse_predictions()
        encoding = LabelEncoding.from_models(teacher.classes, student.classes,
                                             self.suite.data.positive)
        run.encoding = encoding
        t_order = encoding.reorder(teacher.classes)
        s_order = encoding.reorder(student.classes)
        baseline = None
        if self.suite.baseline is not None:  # counted in the same pass, as two more pairs
            baseline = run.model("baseline")
            LabelEncoding.from_models(teacher.classes, baseline.classes, self.suite.data.positive,
                                      names=("teacher", "baseline"))
            b_order = encoding.reorder(baseline.classes)
        means, params, auc = table_plan(self.suite)
        partials = Partials(len(encoding.classes), encoding.pos, means, auc=auc)
        pairs = ({name: partials.blank() for name in ("as_student", "versus")}
                 if baseline is not None else {})
        sample = _Sample(s.sample_rows)
        rng = np.random.default_rng(s.seed)
        progress = run.session.progress
        start = last = time.perf_counter()
        first_path = None
        batches = iter_batches(self.suite.data, "eval", batch_rows=s.batch_rows) \
            if self.kind == "stream" else ()
        if self.kind == "ray":
            partials, pairs, sample = self._on_ray(partials, encoding, params)
        for batch in batches:
            table = batch.table
            first_path = first_path or batch.path
            where = (f"{display_path(batch.path)} column {self.suite.data.target!r}")
            y = encoding.encode(table.labels, where, offset=batch.start)
            p_t = teacher.predict_proba(table)[:, t_order]
            p_s = student.predict_proba(table)[:, s_order]
            partials.add(y, p_t, p_s, params)
            if baseline is not None:
                p_b = baseline.predict_proba(table)[:, b_order]
                pairs["as_student"].add(y, p_t, p_b, params)  # the baseline as the student
                pairs["versus"].add(y, p_b, p_s, params)  # ... and as the teacher
            rows = np.arange(batch.start, batch.start + table.n_rows)
            sample.offer(rng.random(table.n_rows), _sample_frame(table, rows, y, p_t, p_s),
                         _model_inputs(table))
            now = time.perf_counter()
            if progress is not None and now - last > PROGRESS_EVERY:
                last = now
                rate = partials.rows / (now - start)
                total = self._total_rows()
                eta = f", about {(total - partials.rows) / rate:.0f} s left" if total else ""
                progress(f"streaming {display_path(batch.path)}: {partials.rows:,} rows "
                         f"({rate:,.0f} rows/s{eta})")
        if partials.rows == 0:
            raise SuiteError("the eval table has no rows", file=self.suite.path, key="data.eval")
        frame, inputs = sample.rows()
        assert frame is not None
        run.load_seconds = time.perf_counter() - start
        run.prediction_sources.update({f"{role}/eval": "streamed" for role in (
            "teacher", "student", *(("baseline",) if baseline is not None else ()))})
        run.record_classes(teacher=teacher.classes, student=student.classes)
        run.eval_summary = {"rows": partials.rows,
                            "features": [c for c in frame.columns if not c.startswith("__")]}
        return {"partials": partials, "pairs": pairs, "sample": frame, "inputs": inputs,
                "rows": partials.rows, "path": first_path}

    def _refuse_predictions(self) -> None:
        for role in ("teacher", "student", "baseline"):
            spec = getattr(self.suite, role)
            if spec is not None and spec.kind == "predictions":
                raise DataError(f"the {role} is a file of precomputed predictions, which follows "
                                "the eval rows one to one and is not streamed; use "
                                "settings.engine: memory (or audit a model that runs)")

    def _on_ray(self, like: Partials, encoding: Any, params: dict[str, dict[str, Any]]
                ) -> tuple[Partials, dict[str, Partials], _Sample]:
        """The additive tables counted on Ray workers, and the local engine's sample (the same
        seeded keys), read and predicted here."""
        from audit.extras import require
        from audit.stream.batches import column_frames, dataset_files, refuse, table_of
        from audit.stream.distributed import ray_partials, read_rows, sample_indices
        from audit.stream.inputs import InputReader

        require("ray", "settings.engine: ray")
        refuse(self.suite.data)
        s = self.suite.settings
        files = dataset_files(self.suite.data.eval)
        reader = InputReader(self.suite.data, "eval")
        reader.prepare(column_frames(self.suite.data, files, s.batch_rows))
        if self.suite.data.images is not None and self.suite.data.images.column is None and (
                reader.array().compressed):
            path = reader.array().path
            reader.close()  # each worker would inflate the member again for every row group
            raise DataError(f"{display_path(path)}: a compressed .npz is read "
                            "from its start for every row group, which settings.engine: ray "
                            "reads in any order; save the images with numpy.save (.npy) or "
                            "numpy.savez (stored), or use engine: stream")
        try:
            partials, pairs = ray_partials(self.suite, files, like, self.run.session.progress,
                                           reader.decisions)
            teacher, student = self.run.model("teacher"), self.run.model("student")
            sample = _Sample(s.sample_rows)
            rows = sample_indices(partials.rows, s.sample_rows, s.seed)
            for path, start, mine, frame in read_rows(files, rows):
                inputs = reader.take(frame, mine, path)
                table = table_of(frame, self.suite.data, "eval", path, start, _Given(inputs))
                y = encoding.encode(table.labels, display_path(path))
                p_t = teacher.predict_proba(table)[:, encoding.reorder(teacher.classes)]
                p_s = student.predict_proba(table)[:, encoding.reorder(student.classes)]
                # the rows' own order stands: keys only need to keep every row
                sample.offer(np.zeros(len(mine)), _sample_frame(table, mine, y, p_t, p_s),
                             _model_inputs(table))
            if self.suite.data.images is not None and self.suite.data.images.column is None:
                reader.finish(partials.rows)
        finally:
            reader.close()
        return partials, pairs, sample

    def _total_rows(self) -> int | None:
        from audit.stream.batches import count_rows

        if "_total" not in self.__dict__:
            self.__dict__["_total"] = count_rows(self.suite.data.eval)
        return self.__dict__["_total"]

    @cached_property
    def sample_run(self) -> Any:
        """An in-memory run over the sample's rows (the checks with no additive form), with
        the stream's predictions of them: no model predicts these rows again."""
        from audit.data.tables import Table

        frame = self.stream["sample"]
        sens = [c for c in frame.columns if c.startswith("__sensitive__")]
        features = [c for c in frame.columns if not c.startswith("__")]
        given = self.stream["inputs"]
        modality = self.suite.data.modality
        table = Table(role="eval", path=self.suite.data.eval,
                      sha256=(f"sample:{self.suite.settings.seed}:{len(frame)}:"
                              f"{self.run.table_sha256('eval')}"),
                      features=frame[features], labels=frame["__label__"],
                      sensitive=frame[sens].rename(columns=lambda c: c[len("__sensitive__"):]),
                      texts=given if modality == "text" else None,
                      images=given if modality == "images" else None)
        encoding = self.run.encoding
        assert encoding is not None
        k = len(encoding.classes)
        inputs = MetricInput(
            y=frame["__y__"].to_numpy().astype(np.int64),
            p_teacher=frame[[f"__pt{i}__" for i in range(k)]].to_numpy(),
            p_student=frame[[f"__ps{i}__" for i in range(k)]].to_numpy(),
            classes=encoding.classes, pos=encoding.pos, sensitive=table.sensitive)
        return self.run.over(table, inputs)

    def sample_note(self) -> str:
        n, total = len(self.stream["sample"]), self.stream["rows"]
        if n >= total:
            return ""
        return (f"measured on a seeded uniform sample of {n:,} of the {total:,} eval rows "
                "(settings.engine: stream; this metric has no additive form)")

    # -- checks --------------------------------------------------------------------------
    def measurements(self, spec: CheckSpec, metric: Metric
                     ) -> tuple[tuple[Measurement, ...], dict[str, Any]]:
        """The check's measurements and details: from the tables, or from the sample."""
        if not streamable(metric, spec.params):
            from audit.gates import is_table_fact

            if is_table_fact(metric.name, metric.family) and self.sample_note():
                # a fact of the whole table, seen on a sample, could pass a release unseen
                raise DataError(f"{metric.name} is an exact fact of the whole table (judged with "
                                "no interval), which settings.engine: stream would only see on "
                                "its sample; run this check with settings.engine: memory")
            ms, details = self.sample_run._measurements(spec, metric)
            return self._noted(ms), {**details, "engine": "stream (sample)"}
        return self._from_tables(spec, metric), {**self.run._details(), "engine": "stream"}

    def baseline_measurements(self, spec: CheckSpec, metric: Metric
                              ) -> tuple[tuple[Measurement, ...], tuple[Measurement, ...]]:
        """The baseline's measurements of the check: from the pass's tables of the two pairs
        it forms (as the student, as the teacher), or on the sample."""
        pairs = self.stream["pairs"]
        if streamable(metric, spec.params) and not (metric.name == "roc_auc"
                                                    and self.stream["partials"].pos is None):
            return (self._from_tables(spec, metric, pairs["as_student"]),
                    self._from_tables(spec, metric, pairs["versus"]))
        base, versus = self.sample_run._baseline_measurements(spec, metric)
        return self._noted(base), self._noted(versus)

    def _noted(self, ms: tuple[Measurement, ...]) -> tuple[Measurement, ...]:
        note = self.sample_note()
        if not note:
            return ms
        return tuple(dataclasses.replace(m, notes=(*m.notes, note)) for m in ms)

    def _from_tables(self, spec: CheckSpec, metric: Metric,
                     partials: Partials | None = None) -> tuple[Measurement, ...]:
        """The check measured from one pair's tables (the teacher and the student's unless
        ``partials`` says otherwise)."""
        if partials is None:
            partials = self.stream["partials"]
        assert partials is not None
        s = self.suite.settings
        encoding = self.run.encoding
        assert encoding is not None
        k, pos, n = partials.k, partials.pos, partials.rows
        params = dict(spec.params)
        if spec.params.get("average") == "binary" and pos is None:
            raise SuiteError(f"='binary': the models have {k} classes; use macro, micro or "
                             "weighted", file=spec.file, line=spec.line,
                             key=f"checks.{spec.name}.average")
        if metric.engine == "counts":
            empty = np.zeros(0, dtype=np.int64)
            inputs = MetricInput(y=empty, p_teacher=np.zeros((0, k)), p_student=np.zeros((0, k)),
                                 classes=encoding.classes, pos=pos)
            m = measure(metric, params, inputs, _Counted(partials.joint, s.bootstrap, s.seed),
                        s.confidence)
            if metric.needs is not None and partials is self.stream["partials"]:
                # the rows shown beside it (flips): from the sample
                sample = self.sample_run
                m = with_rows(m, {r.kind: sample.probes.build(r) for r in metric.needs(params)})
                note = self.sample_note()
                if note and "flips" in m.extra:
                    m = dataclasses.replace(m, notes=(*m.notes, "the flip table's rows are from "
                                                      "the seeded sample the other checks use"))
            return (m,)
        if metric.name == "roc_auc":
            if pos is None:  # macro one-vs-rest: needs the rows
                ms, _ = self.sample_run._measurements(spec, metric)
                return self._noted(ms)
            auc_t, auc_s, auc_r = auc_from_counts(partials.auc_keys, partials.auc_counts)
            return (normal_measurement(metric, params, s.confidence, n=n, teacher=auc_t,
                                       student=auc_s,
                                       regression=(metric.sign * auc_r[0], auc_r[1])),)
        got = partials.moments[metric.name]
        if metric.pair_rows is not None:
            pair = got["student"]
            return (normal_measurement(metric, params, s.confidence, n=n,
                                       student=(pair.mean, pair.se)),)
        t, st, d = got["teacher"], got["student"], got["diff"]
        return (normal_measurement(metric, params, s.confidence, n=n, teacher=(t.mean, t.se),
                                   student=(st.mean, st.se),
                                   regression=(metric.sign * (t.mean - st.mean), d.se)),)

    @property
    def joint(self) -> np.ndarray:
        """The count table ``J[true, teacher, student]`` of every streamed row."""
        return self.stream["partials"].joint

    def preflight(self) -> None:
        """Load both models and predict the first rows of the first batch."""
        batch = next(iter(iter_batches(self.suite.data, "eval",  # the first rows only
                                       batch_rows=self.run.PREFLIGHT_ROWS)))
        head = batch.table.take(slice(0, self.run.PREFLIGHT_ROWS))
        self._refuse_predictions()
        teacher, student = self.run.model("teacher"), self.run.model("student")
        models = [teacher, student]
        encoding = LabelEncoding.from_models(teacher.classes, student.classes,
                                             self.suite.data.positive)
        if self.suite.baseline is not None:
            models.append(self.run.model("baseline"))
            LabelEncoding.from_models(teacher.classes, models[2].classes,
                                      self.suite.data.positive, names=("teacher", "baseline"))
        encoding.encode(head.labels, display_path(batch.path))
        for model in models:
            model.predict_proba(head)
