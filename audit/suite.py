"""The suite format: YAML parsed into frozen, validated objects, or one located error.

A suite names the data, the teacher, the student and the checks with their gates. Every key is
declared once: in the field tables of :mod:`audit.fields`, or (a check's parameters) next to the
metric that reads it (:class:`audit.checks.registry.Param`); this parser and the published JSON
Schema (:func:`suite_json_schema`) are both generated from them, so they cannot drift apart.
The objects it builds live in :mod:`audit.spec`.

Paths are relative to the file that wrote them (the suite, or a file it includes).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from audit.checks.catalogue import get_metric, metric_names
from audit.checks.registry import Param
from audit.errors import SuiteError, did_you_mean, display_path
from audit.fields import (
    CALLABLE_RE,
    LM_KINDS,
    MAX_NAME,
    MODEL_KEYS,
    MODEL_KINDS,
    NAME_RE,
    PICKLE_SUFFIXES,
    SECTIONS,
    SUFFIX_KINDS,
    SUITE_SUFFIX,
    SUPPORTED_VERSIONS,
    Field,
    param_fields,
    section_fields,
    suite_json_schema,
)
from audit.gates import bound_problem
from audit.spec import (
    DTYPES,
    TABLE_ROWS,
    TABLES,
    TEXTS,
    Binning,
    CheckSpec,
    DataSpec,
    GateSpec,
    ImageSpec,
    Lines,
    ModelSpec,
    Settings,
    Suite,
)
from audit.yamlsrc import (
    KeyPath,
    Located,
    dotted,
    kind_name,
    load_yaml,
    located_from_value,
    resolve_includes,
    show,
)

__all__ = [
    "Suite",
    "DataSpec",
    "ModelSpec",
    "Settings",
    "CheckSpec",
    "GateSpec",
    "load_suite",
    "SuiteParser",
    "suite_from_dict",
    "parse_check",
    "suite_json_schema",
    "SUITE_SUFFIX",
]



def load_suite(path: str | Path) -> Suite:
    """Parse and validate a suite file.

    Parameters
    ----------
    path : str or Path
        A ``*.audit.yaml`` file.

    Raises
    ------
    SuiteError
        With file, line, key path, value and fix.
    """
    path = Path(path)
    located = load_yaml(path)
    text = path.read_text(encoding="utf-8")
    located, includes = resolve_includes(located, path, seen=(path.resolve(),))
    return SuiteParser(located, path).suite(text=text, includes=tuple(includes))


def suite_from_dict(data: Mapping[str, Any], *, base_dir: str | Path = ".") -> Suite:
    """Build a suite in code from the same structure a YAML file holds.

    Relative paths are resolved against ``base_dir``.

    Examples
    --------
    >>> suite_from_dict({"version": 1, "name": "x"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    audit.errors.SuiteError: <suite>: missing required key 'data' ...
    """
    base = Path(base_dir)
    located = located_from_value(dict(data), base / "<suite>")
    if "include" in data:
        raise SuiteError(f"={show(data['include'])}: include is only supported in suite files; "
                         "merge the shared keys into the dict in Python", key="include")
    return SuiteParser(located, None, base_dir=base).suite(text="", includes=())


def _lc(doc: str) -> str:
    """A field's doc as a phrase: first letter lower-cased, no final period."""
    return (doc[:1].lower() + doc[1:]).rstrip(".")


def parse_check(name: str, definition: Mapping[str, Any], *, suite_path: Path | None = None,
                sensitive: tuple[str, ...] = (), has_baseline: bool | None = None) -> CheckSpec:
    """Validate one check written in code like a suite entry (``{"metric": ..., "gate": ...}``)."""
    parser = SuiteParser(located_from_value({}), suite_path, sensitive=sensitive)
    parser.has_baseline = has_baseline
    return parser.check(("checks", name), name, dict(definition))


class SuiteParser:
    """Turns a located tree into a :class:`Suite`, raising on the first problem (the monitor
    file's parser, :mod:`audit.monitor.spec`, reuses it with its own field tables)."""

    def __init__(self, located: Located, path: Path | None, base_dir: Path | None = None,
                 sensitive: tuple[str, ...] = ()) -> None:
        self.sensitive = sensitive  # the suite's data.sensitive, for checks' by:
        self.tables: set[str] | None = None  # the data tables the suite names (None: unknown)
        self.choice_classes: tuple[int, ...] | None = None  # positions of items' choices
        self.modality: str | None = None  # what the suite's models read (None: unknown)
        self.has_baseline: bool | None = None  # whether the suite names a baseline (None: unknown)
        self.located = located
        self.path = path
        self.base_dir = base_dir

    # -- helpers --------------------------------------------------------------------
    def fields(self, section: str) -> dict[str, Field]:
        """The field table of ``section`` (a parser of another file format, such as a monitor
        file, overrides this and keeps the rest: located errors, scalars, gates)."""
        return section_fields(section)

    def bad(self, keypath: KeyPath, value: Any, message: str) -> SuiteError:
        """An error at ``keypath`` showing the offending ``value``."""
        return SuiteError(f"={show(value)}: {message}", **self._where(keypath))

    def _where(self, keypath: KeyPath) -> dict[str, Any]:
        org = self.located.origin(keypath)
        file = org.file if org.file is not None and org.file.name != "<suite>" else self.path
        return {"file": file, "line": org.line, "key": dotted(keypath)}

    def section(self, keypath: KeyPath, value: Any, section: str,
                valid: list[str] | None = None) -> dict[str, Any]:
        """Check a mapping's keys against its field table; ``valid`` narrows the keys offered
        in messages (a check's keys depend on its metric)."""
        fields = self.fields(section)
        shown = valid or list(fields)
        if not isinstance(value, dict):
            if not keypath:
                raise SuiteError(f"the file holds {kind_name(value)}; a suite is a mapping with "
                                 f"keys {', '.join(fields)}", **self._where(keypath))
            raise self.bad(keypath, value, f"must be a mapping with keys {', '.join(shown)}")
        for key in value:
            if key not in fields:
                raise SuiteError(
                    f"unknown key{did_you_mean(key, shown)} (valid: {', '.join(shown)})",
                    **self._where((*keypath, key)))
        for key, f in fields.items():
            if f.required and key not in value:
                where = self._where(keypath) if keypath else {
                    "file": self.path, "line": 1 if self.path else None}
                raise SuiteError(_missing(key, f), **where)
        return value

    def scalar(self, keypath: KeyPath, value: Any, f: Field) -> Any:
        kind = f.kind
        text = self.located.origin(keypath).text
        if isinstance(value, bool) and kind in ("str", "path", "label") and text is not None:
            what = "a class label" if kind == "label" else "text"
            raise SuiteError(f"={text}: YAML reads unquoted {text} as the boolean "
                             f"{str(value).lower()}; quote it (\"{text}\") to use it as {what}",
                             **self._where(keypath))
        quoted = ""
        if kind in ("int", "number") and isinstance(value, str) and _is_number(value):
            quoted = f"; write {value.strip()} without quotes"
        if kind in ("str", "path"):
            if not isinstance(value, str) or not value.strip():
                raise self.bad(keypath, value, "must be a non-empty string")
        elif kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise self.bad(keypath, value, f"must be an integer{quoted}")
        elif kind == "number":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self.bad(keypath, value, f"must be a number{quoted}")
            value = float(value)
            if value != value or value in (float("inf"), float("-inf")):
                raise self.bad(keypath, value, "must be a finite number")
        elif kind == "bool":
            if not isinstance(value, bool):
                raise self.bad(keypath, value, "must be true or false")
        elif kind == "label":
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                raise self.bad(keypath, value, "must be a class label (string or integer)")
        elif kind in ("int_list", "number_list"):
            noun = "integers" if kind == "int_list" else "numbers"
            if not isinstance(value, list) or not value:
                raise self.bad(keypath, value, f"must be a non-empty list of {noun}")
            item = Field("int" if kind == "int_list" else "number", f.doc)
            value = tuple(self.scalar((*keypath, i), v, item) for i, v in enumerate(value))
        elif kind in ("str_list", "label_list"):
            if not isinstance(value, list) or not value:
                raise self.bad(keypath, value, "must be a non-empty list")
            item = Field("str" if kind == "str_list" else "label", f.doc)
            value = tuple(self.scalar((*keypath, i), v, item) for i, v in enumerate(value))
            if len(set(value)) != len(value):
                dup = next(v for v in value if value.count(v) > 1)
                raise self.bad(keypath, list(value), f"lists {dup!r} twice")
        elif kind == "dtype_map":
            return self.dtype_map(keypath, value)
        if f.choices and isinstance(value, tuple):  # a list's items are checked, each
            for i, item in enumerate(value):
                if item not in f.choices:
                    return self.scalar((*keypath, i), item, Field(
                        "str" if kind == "str_list" else "label", f.doc, choices=f.choices))
        elif f.choices and value not in f.choices:
            choices = ", ".join(str(c) for c in f.choices)
            hint = did_you_mean(value, [str(c) for c in f.choices]) if isinstance(value, str) else ""
            raise self.bad(keypath, value, f"must be one of {choices}{hint}")
        return value

    def dtype_map(self, keypath: KeyPath, value: Any) -> tuple[tuple[str, str], ...]:
        """``{column: type}`` as ``((column, type), ...)``; a type is one of ``DTYPES``."""
        example = "{age: integer, grade: string}"
        if not isinstance(value, dict) or not value:
            raise self.bad(keypath, value, f"must be a mapping of column -> type, e.g. {example} "
                                           f"(types: {', '.join(DTYPES)})")
        out = []
        for col, dtype in value.items():
            if not isinstance(col, str) or not col.strip():
                raise self.bad(keypath, value, f"column names must be non-empty text; quote {col!r}")
            if dtype not in DTYPES:
                known = _DTYPE_ALIASES.get(str(dtype).lower())
                hint = (f"; did you mean {known!r}?" if known else
                        did_you_mean(dtype, list(DTYPES)) if isinstance(dtype, str) else "")
                raise self.bad((*keypath, col), dtype, f"unknown column type{hint} (valid: "
                                                       f"{', '.join(DTYPES)})")
            out.append((col, dtype))
        return tuple(out)

    def in_range(self, keypath: KeyPath, value: Any, bounds: dict[str, Any]) -> None:
        """Check a value (or each item of a list) against JSON-Schema-style bounds."""
        if isinstance(value, tuple):
            for i, item in enumerate(value):
                self.in_range((*keypath, i), item, bounds.get("items", {}))
            return
        tests = (("minimum", lambda v, b: v < b, "at least"), ("maximum", lambda v, b: v > b, "at most"),
                 ("exclusiveMinimum", lambda v, b: v <= b, "above"),
                 ("exclusiveMaximum", lambda v, b: v >= b, "below"))
        for name, broken, words in tests:
            if name in bounds and broken(value, bounds[name]):
                raise self.bad(keypath, value, f"must be {words} {bounds[name]}")

    def get(self, keypath: KeyPath, mapping: dict[str, Any], key: str, section: str) -> Any:
        f = self.fields(section)[key]
        if key not in mapping:
            return f.default
        return self.scalar((*keypath, key), mapping[key], f)

    def path_of(self, keypath: KeyPath, raw: str, *, must_exist: bool = True,
                folder: bool = False) -> Path:
        org = self.located.origin(keypath)
        if org.file is not None and org.file.name != "<suite>":
            base = org.file.parent
        elif self.base_dir is not None:
            base = self.base_dir
        else:
            base = Path.cwd()
        resolved = (base / raw).resolve() if not Path(raw).is_absolute() else Path(raw)
        if folder:
            if must_exist and not resolved.is_dir():
                found = "is a file, not a folder" if resolved.is_file() else (
                    f"folder not found ({display_path(resolved)})")
                raise self.bad(keypath, raw, f"{found}; name the model's folder (the one "
                                             "holding config.json, or tokenizer.json); paths "
                                             "are relative to the file that names them")
            return resolved
        if must_exist and resolved.is_dir():
            raise self.bad(keypath, raw, f"is a folder ({display_path(resolved)}), not a file; "
                                         "name the file inside it")
        if must_exist and not resolved.is_file():
            raise self.bad(keypath, raw, f"file not found ({display_path(resolved)}); paths are "
                                         "relative to the file that names them")
        return resolved

    # -- sections -------------------------------------------------------------------
    def suite(self, *, text: str, includes: tuple[tuple[str, str], ...]) -> Suite:
        top = self.section((), self.located.value, "suite")
        raw_version = top["version"]
        if (isinstance(raw_version, int) and not isinstance(raw_version, bool)
                and raw_version not in SUPPORTED_VERSIONS):
            readable = ", ".join(map(str, SUPPORTED_VERSIONS))
            raise self.bad(("version",), raw_version,
                           f"unsupported suite version; this distill-audit reads version {readable} "
                           "(upgrade distill-audit to read newer suites)")
        version = self.get((), top, "version", "suite")
        name = self.get((), top, "name", "suite")
        if not NAME_RE.fullmatch(name):  # fullmatch: "$" alone lets a final newline through
            raise self.bad(("name",), name, "use letters, digits, '_', '.' and '-' only "
                                            "(it names the report files)")
        if len(name) > MAX_NAME:
            raise self.bad(("name",), name, f"is {len(name)} characters long; use at most "
                                            f"{MAX_NAME} (it names the report folder)")
        data = self.data(top["data"])
        self.sensitive = data.sensitive
        self.modality = data.modality
        if data.choices is not None:  # the classes of multiple-choice items: their positions
            from audit.data.items import count_choices

            k = count_choices(data.eval, data.options or data.choices)
            self.choice_classes = None if k is None else tuple(range(k))
        self.tables = {role for role in (*TABLES, *TEXTS) if getattr(data, role) is not None}
        settings = self.settings(top.get("settings", {}))
        if settings.engine != "memory":
            quantiled = [b.column for b in data.bins if b.quantiles is not None]
            if quantiled:
                raise self.bad(("settings", "engine"), settings.engine,
                               f"cannot cut data.sensitive {quantiled[0]!r} at quantiles: a "
                               "streamed run reads no column whole before its first batch; give "
                               "fixed edges (bins: [25, 40, 60]) or use engine: memory")
        teacher = replace(self.model(("teacher",), top["teacher"]), timeout=settings.model_timeout)
        student = replace(self.model(("student",), top["student"]), timeout=settings.model_timeout)
        baseline = None
        if top.get("baseline") is not None:
            baseline = replace(self.model(("baseline",), top["baseline"]),
                               timeout=settings.model_timeout)
        self.has_baseline = baseline is not None
        checks = self.checks(top["checks"])
        return Suite(
            name=name,
            path=self.path.resolve() if self.path else None,
            data=data,
            teacher=teacher,
            student=student,
            checks=checks,
            settings=settings,
            baseline=baseline,
            description=self.get((), top, "description", "suite") or "",
            version=version,
            sha256=hashlib.sha256(text.encode("utf-8")).hexdigest() if text else "",
            text=text,
            includes=includes,
        )

    def table_path(self, kp: KeyPath, raw: str) -> Path:
        """A table's path: a .csv or .parquet file, or a folder of .parquet files (one dataset,
        its files in name order)."""
        resolved = self.path_of(kp, raw, must_exist=False)
        if resolved.is_dir():
            if not any(p.suffix.lower() in (".parquet", ".pq") for p in resolved.iterdir()):
                raise self.bad(kp, raw, "is a folder with no .parquet files; name a .csv or "
                                        ".parquet file, or a folder of .parquet files")
            return resolved
        path = self.path_of(kp, raw)
        _check_table_suffix(self, kp, path)
        return path

    def documents_path(self, kp: KeyPath, raw: str) -> Path:
        """A language-model suite's text file: documents or minimal pairs, a .jsonl file."""
        path = self.path_of(kp, raw)
        if path.suffix.lower() != ".jsonl":
            what = "minimal pairs" if kp[-1] == "pairs" else "documents"
            raise self.bad(kp, str(path.name), f"must be a .jsonl file of {what} (this suite's "
                                               "data.eval is multiple-choice items)")
        return path

    def data(self, value: Any) -> DataSpec:
        kp: KeyPath = ("data",)
        d = self.section(kp, value, "data")
        eval_path = self.table_path((*kp, "eval"), self.get(kp, d, "eval", "data"))
        items = eval_path.suffix.lower() == ".jsonl"
        optional: dict[str, Path | None] = {}
        for role in TABLES[1:]:
            raw = self.get(kp, d, role, "data")
            optional[role] = None if raw is None else (
                self.documents_path((*kp, role), raw) if items else
                self.table_path((*kp, role), raw))
        target = self.get(kp, d, "target", "data")
        features = self.get(kp, d, "features", "data")
        sensitive, bins = self.sensitive_entries((*kp, "sensitive"), d.get("sensitive"))
        if features is not None and target in features:
            raise self.bad((*kp, "features"), list(features),
                           f"lists the target {target!r}; the label must not be a model input")
        if target in sensitive:
            raise self.bad((*kp, "sensitive"), list(sensitive),
                           f"lists the target {target!r}; slice by other columns")
        categorical = tuple(self.get(kp, d, "categorical", "data") or ())
        dtypes = self.get(kp, d, "dtypes", "data") or ()
        for key, cols in (("categorical", categorical), ("dtypes", [c for c, _ in dtypes])):
            if target in cols:
                raise self.bad((*kp, key), target, "is the target; labels are always read as "
                                                   "text and matched to the models' classes; "
                                                   "remove it")
        for col, dtype in dtypes:
            if col in categorical and dtype != "string":
                raise self.bad((*kp, "dtypes", col), dtype, f"but data.categorical lists {col!r} "
                                                            "(read as text); keep one of the two")
        text_columns = {*categorical, *(c for c, t in dtypes if t == "string")}
        for b in bins:
            if b.column in text_columns:
                i = sensitive.index(b.column)
                raise self.bad((*kp, "sensitive", i, "column"), b.column,
                               "is binned by its values, but data.categorical or data.dtypes "
                               "reads it as text; keep one of the two")
        at = []
        for i in range(len(sensitive)):
            org = self.located.origin((*kp, "sensitive", i))
            known = org.file is not None and org.file.name != "<suite>"
            at.append((org.file if known else self.path, org.line))
        text = self.get(kp, d, "text", "data")
        images = None if d.get("images") is None else self.images(
            (*kp, "images"), d["images"], {"eval", *(r for r, p in optional.items() if p)})
        if text is not None and images is not None:
            raise self.bad((*kp, "images"), d["images"], "but data.text names a text column too; "
                                                         "a suite's models read text or images, "
                                                         "keep one")
        column = text if text is not None else images.column if images is not None else None
        key = "text" if text is not None else "images.column"
        for other, cols in (("target", [target]), ("features", features or []),
                            ("sensitive", sensitive)):
            if column is not None and column in cols:
                raise self.bad((*kp, *key.split(".")), column,
                               f"is also data.{other}; the models read this column as "
                               f"{'text' if text else 'image paths'}, so it cannot be "
                               f"{'the label' if other == 'target' else other + ' too'}")
        choices = self.get(kp, d, "choices", "data")
        context = self.get(kp, d, "context", "data")
        texts: dict[str, Path | None] = {}
        for key in TEXTS:
            raw = self.get(kp, d, key, "data")
            if raw is not None and not items:
                raise self.bad((*kp, key), raw, "is for language models, whose data.eval is a "
                                                ".jsonl file of multiple-choice items")
            texts[key] = None if raw is None else self.documents_path((*kp, key), raw)
        options = self.get(kp, d, "options", "data")
        for key, raw in (("choices", choices), ("context", context), ("options", options)):
            if raw is not None and not items:
                raise self.bad((*kp, key), raw, "describes multiple-choice items, but data.eval "
                                                "is a table; name a .jsonl file of items")
        if items:
            if text is not None or images is not None:
                raise self.bad((*kp, "text" if text is not None else "images"),
                               text or d["images"], "but data.eval is a .jsonl file of "
                               "multiple-choice items, whose contexts the models read; remove it")
            if context is not None:
                from audit.data.items import template_fields

                try:
                    names = template_fields(context)
                except ValueError as exc:
                    raise self.bad((*kp, "context"), context, str(exc)) from None
            else:
                names = ["context"]
            if options is not None:
                if choices is not None:
                    raise self.bad((*kp, "options"), options, "and data.choices both name the "
                                   "choices; with options the choices are their letters: "
                                   "remove data.choices")
                if names.count(options) != 1:
                    raise self.bad((*kp, "options"), options, "must be named once in "
                                   f"data.context, as {{{options}}}, where the lettered options "
                                   "go")
        return DataSpec(eval=eval_path, target=target, **optional, features=features,
                        choices=(choices or "choices") if items else None,
                        context=context or "{context}",
                        documents=texts["documents"], pairs=texts["pairs"],
                        options=options if items else None,
                        sensitive=sensitive, bins=bins,
                        positive=self.get(kp, d, "positive", "data"),
                        missing_sensitive=self.get(kp, d, "missing_sensitive", "data"),
                        categorical=categorical, dtypes=dtypes, sensitive_at=Lines(tuple(at)),
                        text=text, images=images,
                        private=tuple(self.get(kp, d, "private", "data") or ()))

    def images(self, kp: KeyPath, value: Any, tables: set[str]) -> ImageSpec:
        """``data.images``: an array file per table the suite names, or a path column."""
        if isinstance(value, str):
            raise self.bad(kp, value, f"write {{eval: {value}}} (and train:, holdout: for the "
                                      "other tables), or {column: <the column of image paths>}")
        m = self.section(kp, value, "images")
        column = self.get(kp, m, "column", "images")
        arrays = tuple((role, self.path_of((*kp, role), m[role])) for role in TABLES
                       if role in m)
        if column is not None and arrays:
            raise self.bad(kp, value, "gives both array files and a path column; keep one")
        if column is None:
            if not arrays:
                raise self.bad(kp, value, "names no images; add eval: <images.npy> (an array "
                                          "file per table) or column: <a column of image paths>")
            for role, path in arrays:
                if path.suffix.lower() not in (".npy", ".npz"):
                    raise self.bad((*kp, role), str(path.name), "must be a .npy or .npz file "
                                                                "(for image files, name the "
                                                                "table's path column: column:)")
            for role in sorted(tables):
                if role not in dict(arrays):
                    raise self.bad(kp, value, f"gives no array for the {role} table "
                                              f"(data.{role}); add {role}: <its images .npy>")
            for role, _ in arrays:
                if role not in tables:
                    raise self.bad((*kp, role), m[role], f"but the suite names no {role} "
                                                         f"table; add data.{role} or remove this")
            for key in ("size", "channels"):
                if key in m:
                    raise self.bad((*kp, key), m[key], "applies to image files read from a "
                                                       "path column; an array keeps its own "
                                                       "shape")
        size = self.get(kp, m, "size", "images")
        if size is not None:
            if len(size) != 2 or min(size) < 1 or max(size) > 4096:
                raise self.bad((*kp, "size"), list(size), "must be [height, width], each 1 to "
                                                          "4096 pixels")
            size = (int(size[0]), int(size[1]))
        return ImageSpec(arrays=arrays, column=column, size=size,
                         channels=self.get(kp, m, "channels", "images"))

    def sensitive_entries(self, kp: KeyPath, value: Any) -> tuple[tuple[str, ...],
                                                                  tuple[Binning, ...]]:
        """``data.sensitive``: the column names, and how the binned ones are binned. An entry
        is a column name (its values are the groups) or ``{column: age, bins: [25, 40, 60]}``
        / ``{column: age, quantiles: 4}``."""
        if value is None:
            return (), ()
        example = "{column: age, bins: [25, 40, 60]}"
        if not isinstance(value, list) or not value:
            fix = f"; write [{value}]" if isinstance(value, str) and value.strip() else ""
            raise self.bad(kp, value, "must be a non-empty list of column names, or of mappings "
                                      f"that bin a numeric column such as {example}{fix}")
        names: list[str] = []
        bins: list[Binning] = []
        for i, item in enumerate(value):
            if isinstance(item, dict):
                binning = self.binning((*kp, i), item)
                names.append(binning.column)
                bins.append(binning)
            else:
                names.append(self.scalar((*kp, i), item, Field("str", "a column name")))
        for name in names:
            if names.count(name) > 1:
                raise self.bad(kp, value, f"lists {name!r} twice")
        return tuple(names), tuple(bins)

    def binning(self, kp: KeyPath, value: dict[str, Any]) -> Binning:
        """One ``{column: ..., bins: [...] | quantiles: n}`` entry of ``data.sensitive``."""
        keys = ["column", "bins", "quantiles"]
        if len(value) == 1 and next(iter(value)) not in keys:  # {age: [25, 40]}
            (key, edges), = value.items()
            raise self.bad(kp, value, f"a binned column is written {{column: {key}, bins: "
                                      f"{show(edges) if isinstance(edges, list) else '[25, 40, 60]'}}}"
                                      f" (or {{column: {key}, quantiles: 4}})")
        for key in value:
            if key not in keys:
                known = _BINNING_ALIASES.get(str(key).lower())
                hint = f"; did you mean {known!r}?" if known else did_you_mean(str(key), keys)
                raise SuiteError(f"unknown key{hint} (valid: {', '.join(keys)})",
                                 **self._where((*kp, key)))
        how = "add bins: [25, 40, 60] (the bin edges) or quantiles: 4 (bins of about equal size)"
        if "column" not in value:
            raise self.bad(kp, value, "names no column; add column: <the numeric column to bin>")
        column = self.scalar((*kp, "column"), value["column"], Field("str", "a column name"))
        if "bins" in value and "quantiles" in value:
            raise self.bad(kp, value, "gives both bins and quantiles; keep one")
        if "quantiles" in value:
            q = self.scalar((*kp, "quantiles"), value["quantiles"], Field("int", "bins"))
            if q < 2:
                raise self.bad((*kp, "quantiles"), q, "must be at least 2 (one bin is no "
                                                      "slicing); e.g. 4 for quartiles")
            return Binning(column, quantiles=q)
        if "bins" not in value:
            raise self.bad(kp, value, f"gives no bins; {how} (a column whose values are its "
                                      f"groups is listed by its name alone: {column})")
        raw = value["bins"]
        if not isinstance(raw, list) or not raw:
            raise self.bad((*kp, "bins"), raw, "must be a non-empty list of numbers (the bin "
                                               "edges), e.g. [25, 40, 60]")
        edges = tuple(self.scalar((*kp, "bins", j), e, Field("number", "an edge"))
                      for j, e in enumerate(raw))
        for a, b in zip(edges, edges[1:]):
            if b <= a:
                fixed = ", ".join(show(e) for e in sorted(set(edges)))
                what = f"{show(a)} twice" if a == b else f"{show(b)} follows {show(a)}"
                raise self.bad((*kp, "bins"), raw, f"edges must be strictly increasing ({what}); "
                                                   f"write [{fixed}]")
        return Binning(column, edges=edges)

    def settings(self, value: Any) -> Settings:
        kp: KeyPath = ("settings",)
        s = self.section(kp, value, "settings")
        seed = self.get(kp, s, "seed", "settings")
        if seed < 0:
            raise self.bad((*kp, "seed"), seed, "must be >= 0")
        confidence = float(self.get(kp, s, "confidence", "settings"))
        if not 0.5 < confidence < 1.0:
            raise self.bad((*kp, "confidence"), confidence,
                           "must be between 0.5 and 1 (exclusive), e.g. 0.95")
        boot = self.get(kp, s, "bootstrap", "settings")
        if not 100 <= boot <= 100_000:
            raise self.bad((*kp, "bootstrap"), boot, "must be between 100 and 100000 replicates")
        timeout = self.get(kp, s, "model_timeout", "settings")
        self.in_range((*kp, "model_timeout"), timeout,
                      dict(SECTIONS["settings"]["model_timeout"].schema))
        for key in ("batch_rows", "sample_rows"):
            self.in_range((*kp, key), self.get(kp, s, key, "settings"),
                          dict(SECTIONS["settings"][key].schema))
        return Settings(seed=seed, confidence=confidence, bootstrap=boot,
                        inconclusive=self.get(kp, s, "inconclusive", "settings"),
                        model_timeout=float(timeout),
                        engine=self.get(kp, s, "engine", "settings"),
                        batch_rows=self.get(kp, s, "batch_rows", "settings"),
                        sample_rows=self.get(kp, s, "sample_rows", "settings"))

    def model(self, kp: KeyPath, value: Any) -> ModelSpec:
        if isinstance(value, str) and (self.path_of(kp, value, must_exist=False)
                                       / "config.json").is_file():
            raise self.bad(kp, value, "is a folder with a config.json; for a Hugging Face model "
                                      f"write {{transformers: {value}}}")
        if isinstance(value, str):
            suffix = Path(value).suffix.lower()
            if suffix in PICKLE_SUFFIXES:
                raise self.bad(kp, value, "loading a pickle runs code; if you trust this file write "
                                          f"{{pickle: {value}, trust: true}}")
            if suffix not in SUFFIX_KINDS:
                seen = f"the suffix {suffix!r}" if suffix else "a path without a suffix"
                raise self.bad(kp, value, f"cannot tell the model kind from {seen}; "
                                          f"use a {_model_suffixes()} file, or write a mapping with "
                                          f"one of {', '.join(MODEL_KINDS)}")
            return ModelSpec(kind=SUFFIX_KINDS[suffix], path=self.path_of(kp, value))
        if not isinstance(value, dict):
            raise self.bad(kp, value, f"must be a model file ({_model_suffixes()}) or a mapping "
                                      f"with one of {', '.join(MODEL_KINDS)}")
        m = self.section(kp, value, "model")
        kinds = [k for k in MODEL_KINDS if k in m]
        if not kinds:
            raise self.bad(kp, value, f"names no model; add exactly one of {', '.join(MODEL_KINDS)}")
        if len(kinds) > 1:
            raise self.bad(kp, value, f"names {len(kinds)} models ({', '.join(kinds)}); keep exactly "
                                      "one")
        kind = kinds[0]
        allowed = MODEL_KEYS[kind]
        for key in m:
            if key != kind and key not in allowed:
                article = "an" if kind[0] in "aeiou" else "a"
                raise self.bad((*kp, key), m[key], f"does not apply to {article} {kind} model "
                                                   f"(it takes {', '.join(allowed)}); "
                                                   "remove it")
        raw = self.get(kp, m, kind, "model")
        classes = self.get(kp, m, "classes", "model")
        spec: dict[str, Any] = {"kind": kind, "classes": classes}
        if "output" in allowed:  # torch modules (also behind a callable)
            spec["output"] = self.get(kp, m, "output", "model")
        if kind == "callable":
            if not CALLABLE_RE.match(raw):
                raise self.bad((*kp, kind), raw, "must be 'module:function' (e.g. mypkg.models:predict)")
            org = self.located.origin((*kp, kind))
            base = org.file.parent if org.file is not None else self.base_dir
            return ModelSpec(kind=kind, target=raw, classes=classes, base_dir=base,
                             output=spec.get("output"))
        if (kind in LM_KINDS) != (self.modality == "choices") and self.modality is not None:
            if kind in LM_KINDS:
                raise self.bad((*kp, kind), raw, "scores multiple-choice items, but data.eval is "
                                                 "a table; name a .jsonl file of items as "
                                                 "data.eval")
            raise self.bad((*kp, kind), raw, "is not a language model, and data.eval is a .jsonl "
                                             "file of multiple-choice items; audit them with "
                                             "causal_lm or lm_eval models")
        spec["path"] = self.path_of((*kp, kind), raw, folder=kind in ("transformers", "causal_lm"))
        if kind in LM_KINDS:
            spec["scoring"] = self.get(kp, m, "scoring", "model") or "sum"
            spec["classes"] = classes if classes is not None else self.choice_classes
        for key in ("max_length", "batch_size", "device"):
            if key in allowed:
                if key == "device" and str(m.get(key)).lower() == "gpu":  # difflib offers cpu
                    raise self.bad((*kp, key), m[key], "must be one of cpu, cuda; did you mean "
                                                       "'cuda'? (a GPU is device: cuda)")
                spec[key] = self.get(kp, m, key, "model")
                if key != "device" and spec[key] is not None:
                    self.in_range((*kp, key), spec[key], dict(SECTIONS["model"][key].schema))
        if "mean" in allowed and ("mean" in m or "std" in m):
            mean, std = self.get(kp, m, "mean", "model"), self.get(kp, m, "std", "model")
            if mean is None or std is None:
                given = "mean" if mean is not None else "std"
                other = "std" if given == "mean" else "mean"
                raise self.bad((*kp, given), list(mean or std), f"needs {other} too: pixels are "
                                                                f"normalised as (x - mean) / std")
            if len(mean) != len(std):
                raise self.bad((*kp, "std"), list(std), f"has {len(std)} values but mean has "
                                                        f"{len(mean)}; give one per channel")
            for i, v in enumerate(std):
                if v <= 0:
                    raise self.bad((*kp, "std", i), v, "must be > 0 (pixels are divided by it)")
            spec["mean"], spec["std"] = tuple(mean), tuple(std)
        if "tokenizer" in allowed and m.get("tokenizer") is not None:
            spec["tokenizer"] = self.path_of((*kp, "tokenizer"),
                                             self.get(kp, m, "tokenizer", "model"), folder=True)
        if kind == "transformers":
            spec["trust"] = self.get(kp, m, "trust", "model") is True
        if kind == "pickle" and m.get("trust") is not True:
            raise self.bad((*kp, kind), raw, "loading a pickle runs code; add trust: true only if "
                                             "you trust whoever wrote this file (prefer skops or onnx)")
        if kind == "predictions":
            columns = self.get(kp, m, "columns", "model")
            if columns is None or classes is None:
                missing = " and ".join(f"{k}: [...]" for k, v in (("columns", columns),
                                                                   ("classes", classes)) if v is None)
                raise self.bad((*kp, kind), raw, "a predictions model needs columns (the "
                                                 "probability columns) and classes (their labels, "
                                                 f"in the same order); add {missing}")
            if len(columns) != len(classes):
                raise self.bad((*kp, "columns"), list(columns),
                               f"has {len(columns)} columns but classes has {len(classes)}; give "
                               "one probability column per class, in the same order")
            spec["columns"] = columns
            _check_table_suffix(self, (*kp, kind), spec["path"])
        if kind == "skops":
            spec["trusted_types"] = self.get(kp, m, "trusted_types", "model") or ()
        if kind == "pickle":
            spec["trust"] = True
        if kind == "torch":
            spec["trust"] = self.get(kp, m, "trust", "model") is True
        return ModelSpec(**spec)

    def checks(self, value: Any) -> tuple[CheckSpec, ...]:
        kp: KeyPath = ("checks",)
        if not isinstance(value, dict) or not value:
            raise self.bad(kp, value, "must be a non-empty mapping of check name -> "
                                      "{metric: ..., gate: {...}}")
        return tuple(self.check((*kp, name), name, spec) for name, spec in value.items())

    def check(self, kp: KeyPath, name: str, value: Any) -> CheckSpec:
        if not NAME_RE.fullmatch(name):
            fixed = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_.-") or "check"
            raise self.bad(kp, name, "check names use letters, digits, '_', '.' and '-' only "
                                     f"(they name test items), e.g. {fixed!r}")
        keys = param_fields()  # every metric's parameters, in catalogue order
        valid = None
        if isinstance(value, dict) and value.get("metric") in metric_names():
            takes = get_metric(value["metric"]).params
            valid = ["metric", *(k for k in keys if k in takes), "description", "baseline", "gate"]
        c = self.section(kp, value, "check", valid)
        metric_name = self.get(kp, c, "metric", "check")
        names = metric_names()
        if metric_name not in names:
            raise self.bad((*kp, "metric"), metric_name,
                           f"unknown metric{did_you_mean(metric_name, names)} (valid: {', '.join(names)})")
        metric = get_metric(metric_name)
        params: dict[str, Any] = {}
        for key, f in keys.items():
            if key in c and key not in metric.params:
                users = [n for n in names if key in get_metric(n).params]
                raise self.bad((*kp, key), c[key], f"{metric_name} takes no {key} (only "
                                                   f"{', '.join(users)} do); remove it")
            if key in metric.params and key in c:  # metrics apply their own defaults
                value = self.scalar((*kp, key), c[key], f)  # its kind, and every metric's choices
                declared = metric.params[key]
                self.in_range((*kp, key), value, _item_range(declared))
                allowed = declared.choices_for(self.modality)
                items = value if isinstance(value, tuple) else (value,)
                for i, item in enumerate(items):
                    if allowed and item is not None and item not in allowed:
                        where = (*kp, key, i) if isinstance(value, tuple) else (*kp, key)
                        hint = did_you_mean(item, list(allowed)) if isinstance(item, str) else ""
                        raise self.bad(where, item, f"{metric_name} takes {key}: "
                                                    f"{', '.join(map(str, allowed))}{hint}")
                if value is not None:
                    params[key] = list(value) if isinstance(value, tuple) else value
        modality = self.modality
        if modality is not None and modality not in metric.modalities:
            reads = {"text": "texts (data.text)", "images": "images (data.images)",
                     "tabular": "feature columns",
                     "choices": "multiple-choice items (a .jsonl data.eval)"}[modality]
            fix = {"edit_accuracy": "it edits texts: use robust_accuracy or corruption_accuracy "
                                    "on an image suite",
                   "corruption_accuracy": "it corrupts images: use edit_accuracy on a text "
                                          "suite, robust_accuracy on a table",
                   "attribute_inference_advantage": "the attacker reads the other feature "
                                                    "columns: audit a tabular suite",
                   "attribute_inference_accuracy": "the attacker reads the other feature "
                                                   "columns: audit a tabular suite",
                   "extraction_agreement": "its thieves read feature columns or images",
                   "extraction_accuracy": "its thieves read feature columns or images"}.get(
                metric_name, "it audits language models: name a .jsonl file of multiple-choice "
                "items as data.eval and causal_lm models" if metric.modalities == ("choices",)
                else "on a text suite use edit_accuracy (text edits)"
                if modality != "choices" else "a choice-level check reads the models' "
                "probabilities over the choices (accuracy, agreement, flips, KL, ECE, fairness, "
                "slices)")
            raise self.bad((*kp, "metric"), metric_name, f"does not apply here: this suite's "
                                                         f"models read {reads}; {fix}")
        if modality == "images" and metric.family == "robustness":
            for i, eps in enumerate(params.get("eps") or ()):
                if params.get("norm", "inf") == "inf" and eps > 1:
                    raise self.bad((*kp, "eps", i), eps, "allows every image: pixels lie in [0, "
                                                         "1], so eps is in those units (8/255 = "
                                                         "0.0314 is eight grey levels)")
        if "by" in params:
            for i, col in enumerate(params["by"]):
                if col not in self.sensitive:
                    raise self.bad((*kp, "by", i), col, "is not a sensitive column"
                                   f"{did_you_mean(col, list(self.sensitive))}; list it in "
                                   "data.sensitive" + (f" (now: {', '.join(self.sensitive)})"
                                                       if self.sensitive else ""))
        elif metric.family == "fairness" and not self.sensitive:
            raise self.bad((*kp, "metric"), metric_name, "slices by sensitive columns, but "
                                                         "data.sensitive names none; add "
                                                         "data.sensitive: [...]")
        if metric.tables is not None and self.tables is not None:
            for role, key in metric.tables(params):
                if role not in self.tables:
                    raise self.bad((*kp, key), c.get(key, metric_name),
                                   f"{metric_name} reads data.{role} ({TABLE_ROWS[role]}), which "
                                   "the suite's "
                                   f"data section does not name; add data.{role}: "
                                   f"{_file_kind(role, self.modality)}")
        with_baseline = self.get(kp, c, "baseline", "check")
        gate = None
        if "gate" in c:
            gate = self.gate((*kp, "gate"), c["gate"], metric)
            if gate.max_baseline_regression is not None:
                at: KeyPath = (*kp, "gate", "max_baseline_regression")
                if self.has_baseline is False:
                    raise self.bad(at, gate.max_baseline_regression,
                                   "bounds the student against the suite's baseline model, but "
                                   "the suite names none; add baseline: <the model in "
                                   "production today> at the top level, or remove this bound")
                if with_baseline is False:
                    raise self.bad(at, gate.max_baseline_regression,
                                   "needs the baseline measured, but this check sets baseline: "
                                   "false; remove one of the two")
        org = self.located.origin(kp)
        return CheckSpec(name=name, metric=metric_name, params=params, gate=gate,
                         baseline=with_baseline is not False,
                         description=self.get(kp, c, "description", "check") or "",
                         file=(org.file if org.file is not None and org.file.name != "<suite>"
                               else self.path),
                         line=org.line)

    def gate(self, kp: KeyPath, value: Any, metric: Any) -> GateSpec:
        g = self.section(kp, value, "gate")
        vals = {k: self.get(kp, g, k, "gate") for k in self.fields("gate")}
        problem = bound_problem(metric, vals)
        if problem is not None:
            key, message = problem
            raise self.bad(kp if key is None else (*kp, key), value if key is None else vals[key],
                           message)
        return GateSpec(min=vals["min"], max=vals["max"], max_regression=vals["max_regression"],
                        max_relative_regression=vals["max_relative_regression"],
                        max_baseline_regression=vals["max_baseline_regression"],
                        severity=vals["severity"])


def _item_range(p: Param) -> dict[str, Any]:
    """A parameter's range in the form :meth:`SuiteParser.in_range` reads (lists: per item)."""
    return {"items": p.range} if p.kind.endswith("_list") else p.range


def _file_kind(role: str, modality: str | None) -> str:
    """What ``data.<role>`` is, as a suite's message asks for it."""
    if role == "pairs":
        return "<a .jsonl file of minimal pairs>"
    if role == "documents" or modality == "choices":
        return "<a .jsonl file of documents>"
    return "<a .csv or .parquet file>"


def _check_table_suffix(parser: SuiteParser, kp: KeyPath, path: Path) -> None:
    if path.suffix.lower() in (".jsonl",) and kp[:2] == ("data", "eval"):
        return  # multiple-choice items (audit.data.items)
    if path.suffix.lower() not in (".csv", ".parquet", ".pq"):
        items = " (or, for a language model's items, a .jsonl file)" if kp[:2] == (
            "data", "eval") else ""
        raise parser.bad(kp, str(path.name), f"must be a .csv or .parquet file{items}")


# what other tools call our column types, for the did-you-mean of data.dtypes
_DTYPE_ALIASES = {"str": "string", "text": "string", "object": "string", "category": "string",
                  "categorical": "string", "int": "integer", "int64": "integer", "double": "float",
                  "number": "float", "float64": "float", "bool": "boolean"}


# what other tools call the keys of a binned sensitive column, for its did-you-mean
_BINNING_ALIASES = {"edges": "bins", "breaks": "bins", "cuts": "bins", "bin": "bins",
                    "quantile": "quantiles", "q": "quantiles", "name": "column", "col": "column"}


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _model_suffixes() -> str:
    """The model file suffixes that name their kind, as a phrase: ``.skops, .onnx, ... or .pth``."""
    *first, last = SUFFIX_KINDS
    return f"{', '.join(first)} or {last}"


def _missing(key: str, f: Field) -> str:
    """The message for a required key that is absent, with what to add."""
    if f.kind.startswith("section:") or f.kind == "checks":
        return f"missing required key {key!r} ({_lc(f.doc)}); add a {key}: mapping"
    if f.kind == "model":
        return (f"missing required key {key!r} ({_lc(f.doc)}); add {key}: <a {_model_suffixes()} "
                "file, or a mapping such as {predictions: ..., columns: [...], classes: [...]}>")
    if len(f.choices) == 1:
        return f"missing required key {key!r}; add {key}: {f.choices[0]}"
    if key == "metric":
        return f"missing required key 'metric'; add metric: <one of {', '.join(metric_names())}>"
    return f"missing required key {key!r}; add {key}: <{_lc(f.doc)}>"


