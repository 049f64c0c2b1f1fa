"""The lm-evaluation-harness adapter: a model's ``--log_samples`` output, no model run.

``lm_eval --log_samples`` writes one line per item (``samples_<task>_<time>.jsonl``) with the
log-likelihood of each choice (``filtered_resps``: ``[["-12.3", "False"], ...]``, strings that
read back exactly). The suite's items are one such file (``data.eval``; either model's); each
model's file is joined to them item by item by ``doc_id``, and the item must be the same
(``doc_hash``, else the arguments scored) or it is an error naming the item. Its probabilities
are the choices' log-likelihoods through :func:`~audit.models.causal_lm.choice_probabilities`,
so ``scoring: sum`` gives the harness's ``acc`` and ``per_char`` its ``acc_norm``.
"""

from __future__ import annotations

import json
import math

import numpy as np

from audit.data import Table, file_sha256
from audit.data.items import is_lm_eval, lm_eval_arguments
from audit.errors import ModelError, display_path
from audit.models.base import LoadedModel, model_label
from audit.spec import ModelSpec

__all__ = ["load_lm_eval", "read_log_samples"]


def read_log_samples(path: str, label: str) -> dict[int, tuple[str, tuple[str, ...], list[float]]]:
    """``doc_id -> (doc_hash, continuations, log-likelihoods)`` of a ``--log_samples`` file."""
    from pathlib import Path

    file = Path(path)
    where = display_path(file)
    out: dict[int, tuple[str, tuple[str, ...], list[float]]] = {}
    try:
        lines = file.read_bytes().splitlines()
    except FileNotFoundError:
        raise ModelError(f"{label}: {where}: file not found") from None
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        at = f"{where}:{number}"
        try:
            item = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ModelError(f"{label}: {at}: not a JSON object ({exc})") from None
        if not isinstance(item, dict) or not is_lm_eval(item):
            raise ModelError(f"{label}: {at}: not a line of lm-evaluation-harness --log_samples "
                             "output (doc_id, doc, arguments, filtered_resps)")
        try:
            _, conts = lm_eval_arguments(item, at)
        except Exception as exc:
            raise ModelError(f"{label}: {exc}") from None
        resps = item["filtered_resps"]
        if not isinstance(resps, list) or len(resps) < len(conts):
            held = len(resps) if isinstance(resps, list) else 0
            raise ModelError(f"{label}: {at}: filtered_resps holds {held} responses for "
                             f"{len(conts)} choices")
        ll = []
        for j, r in enumerate(resps[:len(conts)]):
            value = r[0] if isinstance(r, list) and r else r
            try:
                x = float(value)
            except (TypeError, ValueError):
                raise ModelError(f"{label}: {at}: filtered_resps[{j}] is {value!r}, not a "
                                 "log-likelihood") from None
            if math.isnan(x) or x > 0:
                raise ModelError(f"{label}: {at}: filtered_resps[{j}] is {x!r}; a "
                                 "log-likelihood is a number <= 0")
            ll.append(x)
        doc_id = item["doc_id"]
        if not isinstance(doc_id, int) or doc_id in out:
            raise ModelError(f"{label}: {at}: doc_id {doc_id!r} is "
                             f"{'repeated' if doc_id in out else 'not an integer'}; audit one "
                             "task's samples file per model")
        out[doc_id] = (str(item.get("doc_hash", "")) + "\0" + str(item.get("prompt_hash", "")),
                       tuple(conts), ll)
    if not out:
        raise ModelError(f"{label}: {where}: no samples")
    return out


def load_lm_eval(spec: ModelSpec, role: str) -> LoadedModel:
    """Read a model's ``--log_samples`` file; it predicts the suite's items (joined by id)."""
    assert spec.path is not None
    label = model_label(role, spec)
    samples = read_log_samples(str(spec.path), label)
    scoring = spec.scoring

    def predict(table: Table) -> np.ndarray:
        from audit.models.causal_lm import choice_probabilities

        ids = table.ids
        if table.choices is None or ids is None or "doc_id" not in ids.columns:
            raise ModelError(f"{label}: lm-evaluation-harness samples answer the items of an "
                             f"lm-evaluation-harness samples file; name one as data.eval")
        ll = np.zeros((table.n_rows, len(table.choices[0])))
        hashes = (ids["doc_hash"].astype(str) + "\0" + ids["prompt_hash"].astype(str)
                  ) if "doc_hash" in ids and "prompt_hash" in ids else None
        for i, doc_id in enumerate(ids["doc_id"].tolist()):
            got = samples.get(int(doc_id))
            if got is None:
                raise ModelError(f"{label}: has no sample of doc_id {doc_id} (item {i + 1} of "
                                 f"{display_path(table.path)}); run both models on the same task "
                                 "and limit")
            doc_hash, conts, values = got
            same = (doc_hash == str(hashes.iloc[i])) if hashes is not None and doc_hash else (
                conts == tuple(table.choices[i]))
            if not same or conts != tuple(table.choices[i]):
                raise ModelError(f"{label}: doc_id {doc_id} is another item than in "
                                 f"{display_path(table.path)} (its doc_hash, prompt_hash or "
                                 "choices differ: another task version, or other few-shot "
                                 "examples); run both models on the same task and prompt")
            ll[i] = values
        return choice_probabilities(ll, table.choices, scoring)

    return LoadedModel(role, spec, tuple(spec.classes or range(len(next(iter(samples.values()))[1]))),
                       file_sha256(spec.path), spec.path.stat().st_size, predict)
