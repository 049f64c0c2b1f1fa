"""``distill-audit init``: a starter suite for a teacher, a student and an evaluation table.

:func:`init_suite` reads the table's columns, works out what it safely can about the models
and writes a suite whose every gate carries a comment saying how to choose it. It guesses only
where a wrong guess cannot pass silently, and says so where it guesses:

* **the target**, when not given: the one column that is no input of a model that was read and
  holds nothing but the models' classes (or, when no model could be read, the one column with a
  usual target name); anything else is an error listing the columns;
* **sensitive columns**, from their names (sex, gender, race, colour, age, religion, ...): as a
  commented suggestion only, never in effect until the user uncomments it (or names them with
  ``sensitive=``); the fairness check comes with them;
* **model kinds**, from the file suffixes, as the suite parser reads them.

Models are loaded through the normal loaders (:func:`audit.models.load_model`) only when that
runs no code of theirs: a pickle is never loaded (it is written with a commented ``trust:
true`` to review), and a skops file holding types skops does not trust by default is not loaded
either (its types are listed as a commented ``trusted_types:`` line to review). What the loaded
models say (classes, the columns they read) picks the target and the checks that apply.

The file is written only if nothing is at its path (never overwritten), then read back with
:func:`audit.suite.load_suite`.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.errors import AuditError, display_path
from audit.safe import visible

__all__ = ["InitError", "Draft", "draft_suite", "init_suite", "cmd_init", "SENSITIVE_WORDS",
           "TARGET_NAMES"]

# words that make a column a sensitive-attribute suggestion (matched against its name's parts)
SENSITIVE_WORDS = frozenset({
    "sex", "gender", "race", "racial", "colour", "color", "skin", "ethnicity", "ethnic", "age",
    "religion", "religious", "nationality", "citizen", "citizenship", "disability", "disabled",
    "marital", "pregnant", "pregnancy", "orientation", "caste"})
# names a target column usually has (used only when no model could be read)
TARGET_NAMES = ("target", "label", "labels", "class", "y", "outcome")
DEFAULT_NAME = "distilled"
_PLAIN = re.compile(r"[A-Za-z0-9_./][A-Za-z0-9_./-]*")


class InitError(AuditError, ValueError):
    """``distill-audit init`` cannot write a starter suite from what it was given."""


@dataclass
class _Model:
    """What init knows about one model: how to write it and what it read from it."""

    role: str
    path: Path
    kind: str
    classes: tuple[Any, ...] | None = None
    inputs: tuple[str, ...] = ()  # the columns it reads, when it says
    untrusted: tuple[str, ...] = ()  # a skops file's types beyond skops' defaults
    problem: str = ""  # why it was not loaded, or what loading it said
    gradients: bool = False  # a model attack: auto can differentiate


@dataclass
class Draft:
    """A starter suite before it is written: its text and what the user must know about it."""

    text: str
    name: str
    target: str
    review: list[str] = field(default_factory=list)  # decisions left to the user
    notes: list[str] = field(default_factory=list)  # what init guessed or read


# -- small YAML writers (values from users' files are quoted where they need it) -----------------
def _scalar(value: Any) -> str:
    """``value`` as a YAML scalar: plain when it reads back as the same text, else JSON-quoted
    (a JSON string is a valid YAML double-quoted scalar; non-ASCII and controls escaped)."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    if _PLAIN.fullmatch(text):
        import yaml

        if yaml.safe_load(text) == text:
            return text
    return json.dumps(text, ensure_ascii=True)


def _flow(values: Sequence[Any]) -> str:
    return "[" + ", ".join(_scalar(v) for v in values) + "]"


def _words(text: object) -> str:
    """User text for a comment: one line, controls visible (a comment cannot be ended)."""
    return visible(" ".join(str(text).split()))


def _rel(path: Path, base: Path) -> str:
    return Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()


# -- reading the models ---------------------------------------------------------------------
def _kind(path: Path, role: str) -> str:
    from audit.fields import PICKLE_SUFFIXES, SUFFIX_KINDS

    if not path.exists():
        raise InitError(f"{role} {display_path(path)}: not found")
    if path.is_dir():
        raise InitError(f"{role} {display_path(path)}: is a folder; distill-audit init reads model "
                        f"files ({', '.join(SUFFIX_KINDS)}, or a pickle); write a folder model "
                        "(transformers:) into the suite by hand")
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        return "pickle"
    if suffix not in SUFFIX_KINDS:
        raise InitError(f"{role} {display_path(path)}: cannot tell the model kind from the suffix "
                        f"{suffix!r}; use a {', '.join(SUFFIX_KINDS)} file, or a pickle "
                        f"({', '.join(sorted(PICKLE_SUFFIXES))})")
    return SUFFIX_KINDS[suffix]


def _read_model(path: Path, role: str) -> _Model:
    """The model at ``path``, loaded only where that runs none of its code."""
    model = _Model(role, path, _kind(path, role))
    if model.kind == "pickle":
        model.problem = "a pickle: not loaded (loading it would run its code)"
        return model
    if model.kind == "skops":
        from audit.extras import hiding_torch

        with hiding_torch():
            import skops.io as sio
        try:
            model.untrusted = tuple(sio.get_untrusted_types(file=path))
        except Exception as exc:
            raise InitError(f"{role} {display_path(path)}: not a readable skops file "
                            f"({type(exc).__name__}: {exc})") from None
        if model.untrusted:
            model.problem = ("not loaded: it holds types skops does not trust by default "
                             f"({', '.join(model.untrusted)})")
            return model
    from audit.models import load_model
    from audit.spec import ModelSpec

    try:
        loaded = load_model(ModelSpec(kind=model.kind, path=path), role)
    except AuditError as exc:
        model.problem = f"could not be read: {str(exc).splitlines()[0]}"
        return model
    model.classes = tuple(loaded.classes)
    model.gradients = loaded.module is not None or _linear(loaded.native)
    if loaded.native is not None:
        model.inputs = tuple(str(c) for c in getattr(loaded.native, "feature_names_in_", ()))
    elif model.kind == "onnx":
        model.inputs = _onnx_inputs(path)
    return model


def _linear(estimator: Any) -> bool:
    """A scikit-learn model whose last step is a logistic regression (gradients for PGD)."""
    last = estimator[-1] if hasattr(estimator, "steps") else estimator
    return type(last).__name__ == "LogisticRegression"


def _onnx_inputs(path: Path) -> tuple[str, ...]:
    """The input names of an ONNX model with one input per column (a matrix input's columns
    come from its ``features`` metadata, when recorded)."""
    import onnx

    graph_model = onnx.load(str(path), load_external_data=False)
    names = [i.name for i in graph_model.graph.input]
    if len(names) == 1:
        meta = {p.key: p.value for p in graph_model.metadata_props}
        try:
            listed = json.loads(meta.get("features", "null"))
        except ValueError:
            listed = None
        return tuple(str(c) for c in listed) if isinstance(listed, list) else ()
    return tuple(names)


# -- the data ---------------------------------------------------------------------------------
def _text(value: Any) -> str:
    """A label as text, so that ``1``, ``1.0`` and ``"1"`` compare equal."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _guess_target(columns: list[str], frame: Any, models: list[_Model], where: str) -> tuple[str, str]:
    """The target column and why it was chosen; :class:`InitError` listing the columns when
    more than one (or none) fits."""
    inputs = {c for m in models for c in m.inputs}
    classes = {_text(c) for m in models for c in (m.classes or ())}
    candidates = [c for c in columns if c not in inputs]
    reasons = []
    if inputs:
        reasons.append("is no input of the models")
    if classes:
        candidates = [c for c in candidates
                      if {_text(v) for v in frame[c].dropna().unique()} <= classes]
        reasons.append(f"holds only the models' classes ({', '.join(sorted(classes))})")
    if not inputs and not classes:
        candidates = [c for c in candidates if c.lower() in TARGET_NAMES]
        reasons.append(f"has a usual target name ({', '.join(TARGET_NAMES)})")
    why = " and ".join(reasons)
    if len(candidates) == 1:
        return candidates[0], f"guessed: the only column that {why}"
    unread = "" if inputs or classes else "no model could be read to tell; "
    found = (f"{len(candidates)} columns could be it ({', '.join(candidates)})" if candidates
             else f"no column {why}")
    raise InitError(f"{where}: cannot tell which column is the target: {unread}{found}; name it "
                    f"with --target (the columns: {', '.join(columns)})")


def _is_numeric(series: Any) -> bool:
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series))


def _sensitive_entry(column: str, frame: Any) -> str:
    """``colour``, or ``{column: age, quantiles: 4}`` for a numeric column of many values
    (each value a group would make groups of a few rows; the parser refuses it)."""
    from audit.data.tables import MAX_GROUPS

    series = frame[column]
    if _is_numeric(series) and series.nunique() > MAX_GROUPS:
        return f"{{column: {_scalar(column)}, quantiles: 4}}"
    return _scalar(column)


def _suggested_sensitive(features: list[str]) -> list[str]:
    return [c for c in features
            if set(re.split(r"[^a-z]+", c.lower())) & SENSITIVE_WORDS]


# -- the suite text -----------------------------------------------------------------------------
_GATE_ADVICE = {
    "baseline": "max_baseline_regression: how much accuracy the student may lose against the "
                "baseline (0.01 = one point; judged on the interval, so 0 would demand proof that "
                "the student is no worse at all); the report's Against the baseline table shows "
                "every check's comparison.",
    "accuracy": "max_regression: how much accuracy the student may lose against its teacher "
                "(0.02 = two points). A gate passes only when its whole interval is on the right "
                "side, so with few eval rows a tight value comes out INCONCLUSIVE: distill-audit "
                "plan says what this data can decide. Add min: <accuracy> for a floor your use "
                "case needs whatever the teacher does.",
    "agreement": "min: the share of rows on which the student must decide as its teacher does. "
                 "Choose it from what one changed decision costs: 0.9 lets one in ten differ.",
    "calibration": "max_regression: how much worse calibrated (ECE, on 0-1) the student may be "
                   "than its teacher; distilled students are often over-confident. Where "
                   "probabilities are read as risks, also set max: <ECE> (0.05 is strict).",
    "parity": "max_regression: how much the student may widen the teacher's gap in "
              "positive-prediction rates between the groups (0.02 = two points). Add max: <gap> "
              "for an absolute bound your policy sets; severity: warn reports it without "
              "blocking the release.",
    "worst_group": "max_regression: how much lower the student's accuracy in its worst group "
                   "may be than the teacher's in its worst (0.02 = two points). Add min: "
                   "<accuracy> for a floor every group must reach; severity: warn reports it "
                   "without blocking the release.",
    "slices": "max: the largest accuracy loss against the teacher allowed in any region of the "
              "data (one or two conditions, 50 rows or more) where the student is significantly "
              "worse (0.05 = five points). Lower it where subgroups matter.",
    "speedup": "min: how many times faster (CPU time per call, at each batch size) the student "
               "must be. Set it from your latency budget, and judge it on the kind of machine "
               "that serves: timings are of the machine the audit runs on.",
    "size": "max: the student's size on disk over the teacher's (0.5 = at most half). Set it "
            "from your memory or download budget; remove the check if size does not matter.",
    "drift": "max: how many feature columns may differ between the training and evaluation "
             "tables (significant, and PSI >= 0.1). 0: the eval data must look like the data the "
             "student learned from, or no number of this audit may hold in production.",
    "robustness": "max_regression: how much more accuracy the student may lose than its teacher "
                  "under the same attack and budget (eps: a share of each numeric column's "
                  "range); 0.1 = ten points. Raise eps for a stronger adversary.",
    "membership": "max: the attack's ROC AUC at telling training rows from others (0.5: it "
                  "cannot); 0.6 is a weak signal. max_regression: how much easier than its "
                  "teacher the student may make that (0.05 = five AUC points).",
}


def _check(lines: list[str], name: str, metric: str, gate: str, advice: str, *,
           params: Sequence[str] = (), commented: bool = False) -> None:
    """A check's lines: its metric and parameters, then its gate under the advice on how to
    choose it (all commented out with ``commented``: a check the user turns on)."""
    import textwrap

    body = [f"{name}:", f"  metric: {metric}", *(f"  {p}" for p in params),
            *(f"  # {line}" for line in textwrap.wrap(advice, width=84, break_on_hyphens=False)),
            f"  gate: {gate}"]
    lines += [("  # " if commented else "  ") + line for line in body]


def draft_suite(teacher: Path, student: Path, data: Path, *, target: str | None, out: Path,
                train: Path | None = None, sensitive: Sequence[str] | None = None,
                baseline: Path | None = None) -> Draft:
    """The starter suite :func:`init_suite` writes, as text, with what the user must review.

    Reads the tables and the models (loading a model only where that runs none of its code);
    writes nothing. Parameters as :func:`init_suite`.
    """
    from audit.data.tables import read_table
    from audit.extras import missing_extra

    teacher, student, data, out = Path(teacher), Path(student), Path(data), Path(out)
    base = out.parent
    frame = read_table(data)
    columns = [str(c) for c in frame.columns]
    where = display_path(data)
    models = [_read_model(teacher, "teacher"), _read_model(student, "student")]
    if baseline is not None:
        models.append(_read_model(Path(baseline), "baseline"))
    review: list[str] = []
    notes: list[str] = []
    if target is None:
        target, why = _guess_target(columns, frame, models, where)
        notes.append(f"target: {target} ({why})")
    elif target not in columns:
        raise InitError(f"{where}: no column {target!r} (--target); the columns: "
                        f"{', '.join(columns)}")
    else:
        why = "given"
    features = [c for c in columns if c != target]
    if train is not None:
        train = Path(train)
        train_columns = [str(c) for c in read_table(train).columns]
        absent = [c for c in columns if c not in train_columns]
        if absent:
            raise InitError(f"{display_path(train)}: the training table lacks {', '.join(absent)} "
                            f"of the evaluation table's columns; give the table the student was "
                            "trained on")
    labels = sorted({_text(v) for v in frame[target].dropna().unique()})
    known = [m.classes for m in models if m.classes is not None]
    k = len(known[0]) if known else len(labels)
    for m in models[1:]:
        if models[0].classes is not None and m.classes is not None and \
                {_text(c) for c in models[0].classes} != {_text(c) for c in m.classes}:
            review.append(f"the teacher's classes ({', '.join(map(_text, models[0].classes))}) "
                          f"differ from the {m.role}'s ({', '.join(map(_text, m.classes))}): the "
                          "run will refuse them")
    unknown = [v for v in labels if known and v not in {_text(c) for c in known[0]}]
    if unknown:
        review.append(f"labels in {target} that the models do not know: {', '.join(unknown)}")

    chosen = list(sensitive or [])
    missing = [c for c in chosen if c not in features]
    if missing:
        raise InitError(f"{where}: sensitive column(s) {', '.join(missing)} not among the feature "
                        f"columns ({', '.join(features)})")
    suggested = [c for c in _suggested_sensitive(features) if c not in chosen]

    name = _suite_name(out)
    description = (f"{student.name} against its teacher {teacher.name} on {data.name} "
                   "(written by distill-audit init)")
    lines = [
        "# A starter suite written by distill-audit init. Every gate is a default: read its",
        "# comment and set it for your release. Lines marked REVIEW need your decision.",
        f"#   distill-audit validate --deep {_words(out.name)}   # read the data, load the models",
        f"#   distill-audit plan {_words(out.name)}              # the rows each gate needs",
        f"#   distill-audit run {_words(out.name)}",
        "version: 1",
        f"name: {_scalar(name)}",
        f"description: {_scalar(description)}",
        "data:",
        f"  eval: {_scalar(_rel(data, base))}",
    ]
    if train is not None:
        lines.append(f"  train: {_scalar(_rel(train, base))}   # what the student was trained on "
                     "(drift, membership)")
    lines.append(f"  target: {_scalar(target)}   # {_words(why)}")
    if chosen:
        lines.append(f"  sensitive: [{', '.join(_sensitive_entry(c, frame) for c in chosen)}]"
                     "   # chosen: the groups the fairness check compares")
    if suggested:
        lines += (["  # REVIEW sensitive columns, guessed from their names and not in effect: "
                   "uncomment them", "  # (and the fairness check below) for the groups the "
                   "release must treat alike."] if not chosen else
                  ["  # REVIEW more sensitive columns, guessed from their names and not in "
                   "effect: to slice", "  # by them too, put this line in place of the one above."])
        entries = ", ".join(_sensitive_entry(c, frame) for c in chosen + suggested)
        lines.append(f"  # sensitive: [{entries}]")
        review.append(f"sensitive columns guessed from their names, not in effect: "
                      f"{', '.join(suggested)} (data.sensitive, commented)")
    if k == 2 and labels:
        lines.append(f"  # positive: {_scalar(labels[-1])}   # the class selection rates, precision "
                     "and recall are of (default: inferred, and stated in the report)")
    for model in models:
        if model.role == "baseline":
            lines.append("# the model in production today (or the student trained without "
                         "distillation): every check measures it too")
        lines += _model_lines(model, base, review, notes)
    lines += [
        "settings:",
        "  seed: 0              # every sample and bootstrap draws from it: a rerun gives the same numbers",
        "  confidence: 0.95     # of every interval; a gate passes when its interval is on the right side",
        "  bootstrap: 1000      # replicates per interval",
        "  inconclusive: fail   # an undecided gate blocks the release (warn: it passes with a warning)",
        "checks:",
    ]
    if baseline is not None:
        _check(lines, "accuracy", "accuracy", "{max_regression: 0.02, max_baseline_regression: 0.01}",
               _GATE_ADVICE["accuracy"] + " " + _GATE_ADVICE["baseline"])
    else:
        _check(lines, "accuracy", "accuracy", "{max_regression: 0.02}", _GATE_ADVICE["accuracy"])
    _check(lines, "agreement", "agreement", "{min: 0.9}", _GATE_ADVICE["agreement"])
    _check(lines, "calibration", "ece", "{max_regression: 0.02}", _GATE_ADVICE["calibration"])
    # demographic parity needs a positive class; with more classes, the worst group's accuracy
    parity = ("demographic_parity_difference", "parity") if k == 2 else (
        "worst_group_accuracy", "worst_group")
    _check(lines, "fairness", parity[0], "{max_regression: 0.02}", _GATE_ADVICE[parity[1]],
           params=["min_group_size: 30   # smaller groups are listed, not counted"],
           commented=not chosen)
    _check(lines, "slices", "slice_regression", "{max: 0.05}", _GATE_ADVICE["slices"])
    _check(lines, "speedup", "speedup", "{min: 1.5}", _GATE_ADVICE["speedup"],
           params=["max_seconds: 30   # a wall-clock cap on the timing"])
    _check(lines, "size", "size_ratio", "{max: 0.5}", _GATE_ADVICE["size"])
    if train is not None:
        _check(lines, "drift", "drifted_columns", "{max: 0}", _GATE_ADVICE["drift"])
    numeric = [c for c in features if _is_numeric(frame[c])]
    if numeric:
        gradients = all(m.gradients for m in models)
        attack = "auto" if gradients and missing_extra("torch", "") is None else "hopskipjump"
        why_attack = ("PGD when both models give gradients, else HopSkipJump" if attack == "auto"
                      else "black-box: gradients are not known to exist for both models")
        _check(lines, "robustness", "robust_accuracy", "{max_regression: 0.1}",
               _GATE_ADVICE["robustness"],
               params=[f"attack: {attack}   # {why_attack}", "eps: [0.1]",
                       "samples: 200        # eval rows attacked, drawn with the seed",
                       "max_seconds: 120    # a safety stop: reaching it is an error, never a score"])
    else:
        notes.append("no numeric feature column: no robustness check (only numbers are perturbed)")
    if train is not None:
        _check(lines, "membership", "mia_auc", "{max: 0.6, max_regression: 0.05}",
               _GATE_ADVICE["membership"])
    else:
        notes.append("no training table (--train): no drift and no membership check")
    return Draft("\n".join(lines) + "\n", name, target, review, notes)


def _model_lines(model: _Model, base: Path, review: list[str], notes: list[str]) -> list[str]:
    where = _scalar(_rel(model.path, base))
    if model.kind == "pickle":
        review.append(f"{model.role}: a pickle, not loaded; uncomment trust: true only if you "
                      "trust whoever wrote it")
        return [f"{model.role}:", f"  pickle: {where}",
                "  # REVIEW: loading a pickle runs whatever code it holds; distill-audit init did",
                "  # not load it. Uncomment the next line only if you trust whoever wrote the file",
                "  # (better: save the model with skops, or export it to ONNX).",
                "  # trust: true"]
    if model.untrusted:
        review.append(f"{model.role}: skops types to review before it can load: "
                      f"{', '.join(model.untrusted)}")
        return [f"{model.role}:", f"  skops: {where}",
                "  # REVIEW: the file holds types skops does not trust by default; distill-audit",
                "  # init did not load it. Loading it builds them: uncomment the next line only if",
                "  # you trust where the file came from (until then the run refuses the model).",
                f"  # trusted_types: {_flow(model.untrusted)}"]
    if model.problem:
        review.append(f"{model.role}: {model.problem}")
        return [f"{model.role}: {where}", f"# REVIEW {model.role}: {_words(model.problem)}"]
    classes = ", ".join(_text(c) for c in model.classes or ())
    notes.append(f"{model.role}: {model.kind}, classes {classes}")
    return [f"{model.role}: {where}   # {model.kind}; classes {_words(classes)} (read from the model)"]


def _suite_name(out: Path) -> str:
    stem = out.name[: -len(".audit.yaml")] if out.name.endswith(".audit.yaml") else out.stem
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-._")[:100]
    return name or DEFAULT_NAME


# -- writing ----------------------------------------------------------------------------------
def _reviewed(text: str) -> str:
    """``text`` with a pickle's commented ``trust: true`` in effect: the file as it will be once
    reviewed (a suite that loads a pickle without it is refused by design)."""
    return re.sub(r"(?m)^(\s*)# (trust: true)$", r"\1\2", text)


def _write_new(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` only if nothing is there (a hard link of a finished temporary
    file: no reader ever sees half a file, and an existing file is never replaced)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.link(tmp, path)
    except FileExistsError:
        raise InitError(f"{display_path(path)}: already exists; distill-audit init never "
                        "overwrites a file: choose another path with -o") from None
    finally:
        Path(tmp).unlink(missing_ok=True)


def _validate(path: Path, text: str) -> None:
    """Read the written suite back with the suite parser (a pickle's review line in effect)."""
    from audit.suite import load_suite

    reviewed = _reviewed(text)
    if reviewed == text:
        load_suite(path)
        return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".init-", suffix=".audit.yaml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(reviewed)
        load_suite(tmp)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _check_out(out: Path) -> None:
    from audit.fields import SUITE_SUFFIX

    if not out.name.endswith(SUITE_SUFFIX):
        raise InitError(f"{display_path(out)}: a suite file's name ends in {SUITE_SUFFIX} (pytest "
                        f"and distill-audit run collect only those); e.g. -o {out.stem}{SUITE_SUFFIX}")
    if out.exists() or out.is_symlink():
        raise InitError(f"{display_path(out)}: already exists; distill-audit init never overwrites "
                        "a file: choose another path with -o")
    if not out.parent.is_dir():
        raise InitError(f"{display_path(out)}: the folder {display_path(out.parent)} does not exist")


def _write(draft: Draft, out: Path) -> Path:
    from audit.errors import SuiteError

    _write_new(out, draft.text.encode("utf-8"))
    try:
        _validate(out, draft.text)
    except SuiteError as exc:  # a starter suite the parser refuses is init's bug: say so
        out.unlink(missing_ok=True)
        raise InitError(f"the suite init wrote does not validate, so it was removed: {exc}") from None
    return out


def init_suite(teacher: Path, student: Path, data: Path, *, target: str | None, out: Path,
               train: Path | None = None, sensitive: Sequence[str] | None = None,
               baseline: Path | None = None) -> Path:
    """Write a starter suite for ``teacher`` and ``student`` on the table ``data``.

    Parameters
    ----------
    teacher, student : Path
        Model files (``.skops``, ``.onnx``, ``.pt``/``.pth``/``.pt2``, or a pickle, never
        loaded); the kinds come from the suffixes, as the suite parser reads them.
    data : Path
        The evaluation table (CSV or Parquet).
    target : str or None
        The label column; ``None`` guesses it (an error lists the columns when it cannot).
    out : Path
        The suite file to write (``*.audit.yaml``); it must not exist.
    train : Path or None, default None
        The table the student was trained on: adds the drift and membership checks.
    sensitive : sequence of str or None, default None
        Sensitive columns to slice the fairness check by. Without them, columns whose names
        suggest one are written as a commented suggestion, and the fairness check commented.
    baseline : Path or None, default None
        A third model file (the model in production today): the suite's ``baseline:``, and a
        bound on the accuracy regression from it.

    Returns
    -------
    Path
        ``out``, written and read back with :func:`audit.suite.load_suite`.

    Raises
    ------
    InitError
        When ``out`` exists, a model's kind cannot be told, or the target cannot be guessed
        (the message lists the columns); :class:`audit.errors.DataError` for an unreadable
        table.
    """
    out = Path(out)
    _check_out(out)
    draft = draft_suite(teacher, student, data, target=target, out=out, train=train,
                        sensitive=sensitive, baseline=baseline)
    return _write(draft, out)


def cmd_init(teacher: Path, student: Path, data: Path, target: str | None, out: Path | None,
             train: Path | None, baseline: Path | None = None) -> int:
    """``distill-audit init TEACHER STUDENT DATA [--target COL] [--train TABLE] [-o PATH]``.

    Writes the starter suite (default ``distilled.audit.yaml`` here), prints what it guessed,
    what needs review and the next commands; 0, or 2 with ``error: ...`` on stderr.
    """
    out = Path(out) if out is not None else Path(f"{DEFAULT_NAME}.audit.yaml")
    try:
        _check_out(out)
        draft = draft_suite(Path(teacher), Path(student), Path(data), target=target, out=out,
                            train=None if train is None else Path(train),
                            baseline=None if baseline is None else Path(baseline))
        _write(draft, out)
    except AuditError as exc:
        print(visible(f"error: {exc}", newlines=True), file=sys.stderr)
        return 2
    except OSError as exc:
        print(visible(f"error: {display_path(out)}: cannot write the suite "
                      f"({exc.strerror or exc}); choose another path with -o"), file=sys.stderr)
        return 2
    where = display_path(out)
    print(visible(f"wrote {where}: suite {draft.name!r}"))
    for note in draft.notes:
        print(visible(f"  {note}"))
    for item in draft.review:
        print(visible(f"  REVIEW {item}"))
    print(visible(f"next: distill-audit validate --deep {where}, then distill-audit run {where}"))
    return 0
