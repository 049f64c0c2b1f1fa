"""Multiple-choice items for language models: a JSONL file, one item per line.

An item is a context and a list of choices; a language model scores each choice by its
log-likelihood given the context, which turns the item into a probability vector over its
choices, so every metric of a classifier (accuracy, agreement, flips, KL, ECE, fairness by
group, slices) runs on it unchanged. Two forms are read:

* the suite's own items: ``{"question": ..., "choices": [...], "answer": 2, "subject": ...}``.
  The context is ``data.context`` (default ``"{context}"``) filled from the item's fields with
  ``str.format`` names only (``{question}``; never an attribute, an index or code), the
  choices are the ``data.choices`` field (default ``choices``), the answer is the
  ``data.target`` field: a choice's index or the choice itself. Scalar fields are columns to
  slice by (``data.sensitive``);
* lm-evaluation-harness ``--log_samples`` output (``samples_<task>_<time>.jsonl``): each line's
  ``arguments`` hold the context and the continuations it scored, ``target`` the answer and
  ``doc`` the item's fields; ``doc_id`` and ``doc_hash`` are kept, to join the other model's
  file item by item.

A choice is scored as lm-evaluation-harness scores it: the continuation is ``" " + choice``
(its ``target_delimiter``) after the context. Every item of a suite has the same number of
choices (the classes are the positions ``0..k-1``). A problem is named by its file and line.
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audit.errors import DataError, display_path

__all__ = ["ITEM_FIELDS", "ID_FIELDS", "LM_EVAL_FIELDS", "is_lm_eval", "template_fields", "read_items",
           "count_choices", "json_lines", "option_layouts", "read_item_file", "with_options",
           "render_options", "LETTERS"]

ITEM_FIELDS = ("context", "choices")  # what a rendered item holds beside its fields
ID_FIELDS = ("id", "doc_id", "doc_hash", "prompt_hash")  # identify an item; never features
LM_EVAL_FIELDS = ("doc_id", "doc", "arguments", "filtered_resps")  # a --log_samples line
DELIMITER = " "  # lm-evaluation-harness's default target_delimiter
MAX_LINE = 1 << 20  # bytes per item: a longer line is refused unread


def template_fields(template: str) -> list[str]:
    """The field names of a context template, or a ``ValueError`` saying what is not allowed:
    only plain ``{name}`` fields (no attribute, index, conversion or format spec)."""
    names = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"is not a valid template ({exc}); write fields as {{name}} and a "
                         "literal brace as {{ or }}") from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise ValueError(f"has the field {{{name}{'!' + conversion if conversion else ''}"
                             f"{':' + spec if spec else ''}}}; a template names item fields "
                             "only, as {name} (no attribute, index, conversion or format)")
        names.append(name)
    if not names:
        raise ValueError("names no item field; write e.g. \"Question: {question}\\nAnswer:\"")
    return names


def json_lines(path: Path, what: str = "items") -> list[tuple[int, dict[str, Any]]]:
    """The JSON objects of a JSONL file with their line numbers (blank lines skipped); a
    line that is not an object, holds a lone surrogate or passes :data:`MAX_LINE` bytes is a
    :class:`DataError` naming the file and line."""
    where = display_path(path)
    out = []
    try:
        with path.open("rb") as fh:
            for number, raw in enumerate(fh, start=1):
                if len(raw) > MAX_LINE:
                    raise DataError(f"{where}:{number}: a line of {len(raw):,} bytes, more than "
                                    f"the {MAX_LINE:,} a line may hold")
                if not raw.strip():
                    continue
                try:
                    item = json.loads(raw)
                except (ValueError, UnicodeDecodeError) as exc:
                    raise DataError(f"{where}:{number}: not a JSON object ({exc}); write one "
                                    f"{what[:-1]} per line as a JSON object") from None
                if not isinstance(item, dict):
                    raise DataError(f"{where}:{number}: a JSON {type(item).__name__}, not an "
                                    f"object; write one {what[:-1]} per line as a JSON object")
                try:  # a lone surrogate (\\ud83d) is valid JSON but no text a tokenizer reads
                    json.dumps(item, ensure_ascii=False).encode("utf-8")
                except UnicodeEncodeError as exc:
                    raise DataError(f"{where}:{number}: holds a character that is not text "
                                    f"({exc.reason}: {exc.object[exc.start:exc.end]!r}); write "
                                    "whole characters (a truncated emoji?)") from None
                out.append((number, item))
    except FileNotFoundError:
        raise DataError(f"{where}: file not found") from None
    if not out:
        raise DataError(f"{where}: no {what}; write one JSON object per line")
    return out


def is_lm_eval(item: dict[str, Any]) -> bool:
    """Whether ``item`` is a line of lm-evaluation-harness ``--log_samples`` output."""
    return all(k in item for k in LM_EVAL_FIELDS)


def lm_eval_arguments(item: dict[str, Any], where: str) -> tuple[str, list[str]]:
    """The context and continuations a ``--log_samples`` line scored (without the empty-context
    half ``acc_mutual_info`` adds)."""
    args = item.get("arguments")
    if not isinstance(args, dict) or not args:
        raise DataError(f"{where}: 'arguments' is not the object of gen_args_<i> lm-evaluation-"
                        "harness writes for a multiple_choice task")
    pairs = []
    for i in range(len(args)):
        one = args.get(f"gen_args_{i}")
        if not isinstance(one, dict) or not isinstance(one.get("arg_0"), str) or not isinstance(
                one.get("arg_1"), str):
            raise DataError(f"{where}: arguments.gen_args_{i} is not a (context, continuation) "
                            "pair of strings; audit a multiple_choice task's samples")
        pairs.append((one["arg_0"], one["arg_1"]))
    half = len(pairs) // 2
    if len(pairs) % 2 == 0 and half and all(c == "" for c, _ in pairs[half:]) and pairs[0][0]:
        pairs = pairs[:half]  # acc_mutual_info's unconditional scores
    contexts = {c for c, _ in pairs}
    if len(contexts) != 1:
        raise DataError(f"{where}: its choices are scored after different contexts; audit a "
                        "multiple_choice task's samples")
    return pairs[0][0], [c for _, c in pairs]


LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_SLOT = "\0options\0"  # where the lettered options go in a rendered context


def render_options(options: Any) -> str:
    """Lettered options, one per line, as lm-evaluation-harness's MMLU prompt writes them.

    >>> render_options(["Paris", "Rome"])
    'A. Paris\\nB. Rome'
    """
    return "\n".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(options))


def with_options(layout: tuple[str, str, tuple[str, ...]], order: Any) -> str:
    """An item's context with its options (``layout``: the text before them, after them, and
    the options) listed in ``order`` (positions into the options)."""
    before, after, options = layout
    return before + render_options([options[i] for i in order]) + after


def read_items(path: Path, *, template: str = "{context}", choices: str = "choices",
               target: str = "answer", options: str | None = None
               ) -> tuple[pd.DataFrame, pd.Series, np.ndarray, np.ndarray]:
    """The items of ``path``: their fields (a frame of scalar columns), the answers (choice
    indices), the contexts and the continuations (an object array of tuples of strings).

    With ``options`` (the field of a list the context shows, lettered, where the template names
    it), the choices are the letters and the answer an index, a letter or an option; the
    layouts are :func:`option_layouts`."""
    return read_item_file(path, template, choices, target, options)[:4]


def option_layouts(path: Path, *, template: str, options: str, choices: str = "choices",
                   target: str = "answer") -> np.ndarray:
    """Each item's context as ``(text before the options, text after, the options)``, for
    re-rendering them in another order (:func:`with_options`)."""
    return read_item_file(path, template, choices, target, options)[4]


def read_item_file(path: Path, template: str, choices: str, target: str, options: str | None
                   ) -> tuple[pd.DataFrame, pd.Series, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`read_items` and :func:`option_layouts` in one read (the layouts are empty
    without ``options``)."""
    where = display_path(path)
    lines = json_lines(path)
    lm_eval = is_lm_eval(lines[0][1])
    fields = template_fields(template) if not lm_eval else []
    if options is not None and (lm_eval or template_fields(template).count(options) != 1):
        raise DataError(f"{where}: data.options {options!r} is a field the context template "
                        "names once ({" + options + "}), in a suite's own items (lm-evaluation-"
                        "harness samples were scored as they were)")
    rows, answers, contexts, continuations, layouts = [], [], [], [], []
    k = None
    for number, item in lines:
        at = f"{where}:{number}"
        if lm_eval:
            if not is_lm_eval(item):
                raise DataError(f"{at}: lacks {[f for f in LM_EVAL_FIELDS if f not in item]}; "
                                "every line must be lm-evaluation-harness --log_samples output")
            context, conts = lm_eval_arguments(item, at)
            bare = [c[len(DELIMITER):] if c.startswith(DELIMITER) else c for c in conts]
            answer: Any = item.get("target")
            doc = item["doc"] if isinstance(item["doc"], dict) else {}
            row = {**{f: v for f, v in doc.items() if _scalar(v) and f not in ID_FIELDS},
                   "doc_id": item["doc_id"], "doc_hash": str(item.get("doc_hash", "")),
                   "prompt_hash": str(item.get("prompt_hash", ""))}
        else:
            missing = [f for f in (*fields, options or choices, target) if f not in item]
            if missing:
                key = ("context" if missing[0] in fields else
                       "target" if missing[0] == target else "options" if options else "choices")
                raise DataError(f"{at}: the item has no field {missing[0]!r} (fields: "
                                f"{', '.join(map(str, item))}); add it, or name another with "
                                f"data.{key}")
            answer = item[target]
            if options is not None:
                listed = item[options]
                if not isinstance(listed, list) or not all(isinstance(c, str) and c
                                                           for c in listed):
                    raise DataError(f"{at}: field {options!r} (data.options) is not a list of "
                                    "non-empty strings")
                if len(listed) > len(LETTERS):
                    raise DataError(f"{at}: {len(listed)} options; letters name at most "
                                    f"{len(LETTERS)}")
                if isinstance(answer, str) and answer in listed:
                    answer = listed.index(answer)
                parts = template.format_map({f: _SLOT if f == options else _text(item[f])
                                             for f in fields}).split(_SLOT)
                layouts.append((parts[0], parts[1], tuple(listed)))
                context = parts[0] + render_options(listed) + parts[1]
                bare = list(LETTERS[:len(listed)])
            else:
                context = template.format_map({f: _text(item[f]) for f in fields})
                bare = item[choices]
                if not isinstance(bare, list) or not all(isinstance(c, str) and c for c in bare):
                    raise DataError(f"{at}: field {choices!r} is not a list of non-empty strings")
            conts = [DELIMITER + c for c in bare]
            row = {f: v for f, v in item.items() if _scalar(v) and f not in (choices, target)}
        if len(bare) < 2:
            raise DataError(f"{at}: {len(bare)} choice(s); an item needs two or more")
        if k is None:
            k = len(bare)
        elif len(bare) != k:
            raise DataError(f"{at}: {len(bare)} choices but the first item has {k}; every item of "
                            "a suite has the same number of choices (split the file by it)")
        answers.append(_answer(answer, bare, at))
        rows.append(row)
        contexts.append(context)
        continuations.append(tuple(conts))
    frame = pd.DataFrame(rows)
    out = np.empty(len(continuations), dtype=object)
    out[:] = continuations
    shapes = np.empty(len(layouts), dtype=object)
    shapes[:] = layouts
    return (frame, pd.Series(answers, name=target, dtype=np.int64),
            np.array(contexts, dtype=object), out, shapes)


def count_choices(path: Path, choices: str = "choices") -> int | None:
    """The number of choices of the first item of ``path`` (``None`` if it cannot be read)."""
    try:
        with path.open("rb") as fh:
            for raw in fh:
                if raw.strip():
                    item = json.loads(raw)
                    break
            else:
                return None
    except (OSError, ValueError):
        return None
    if not isinstance(item, dict):
        return None
    if is_lm_eval(item):
        try:
            return len(lm_eval_arguments(item, "")[1])
        except DataError:
            return None
    value = item.get(choices)
    return len(value) if isinstance(value, list) else None


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _answer(value: Any, choices: list[str], at: str) -> int:
    """A choice's index from an index, its digits or the choice itself."""
    if isinstance(value, bool):
        value = None
    if isinstance(value, str) and value in choices:  # the choice itself, even "2" (as the harness)
        return choices.index(value)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int) and 0 <= value < len(choices):
        return value
    if isinstance(value, str) and value in choices:
        return choices.index(value)
    raise DataError(f"{at}: the answer {value!r} is neither a choice's index (0 to "
                    f"{len(choices) - 1}) nor one of the choices")
