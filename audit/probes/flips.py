"""The flip table: every eval row where the student's top class is not the teacher's.

Worst first: rows the teacher gets right and the student wrong (negative flips), then rows the
student gets right and the teacher wrong, then rows both get wrong differently; within each,
the largest gap between the two models' probabilities of the true label first. Each row holds
its position in the eval table (1-based), the feature columns (a text suite's text, cut to 300
characters; an image suite's image is named by its row), the slice it falls in (its
data.sensitive values), the label, each model's answer and its probability of every class.
Columns the suite lists in ``data.private`` are never included. At most ``cap`` rows are kept
(the counts are of the whole table).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from audit.probes.artifacts import ArtifactRequest, FlipTable

__all__ = ["flip_table", "KINDS"]

KINDS = ("teacher right, student wrong", "student right, teacher wrong", "both wrong")


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def flip_table(probes: Any, request: ArtifactRequest) -> FlipTable:
    """The :class:`~audit.probes.artifacts.FlipTable` of at most ``cap`` rows."""
    run = probes.run
    cap = int(request.get("cap"))
    inputs, table = run.inputs, run.eval_table
    private = set(run.suite.data.private)
    y, P_t, P_s = inputs.y, inputs.p_teacher, inputs.p_student
    t, s = P_t.argmax(axis=1), P_s.argmax(axis=1)
    kind = np.full(len(y), -1)
    kind[(t == y) & (s != y)] = 0
    kind[(s == y) & (t != y)] = 1
    kind[(t != s) & (t != y) & (s != y)] = 2
    counts = {k: int((kind == i).sum()) for i, k in enumerate(KINDS)}
    gap = np.abs(P_t[np.arange(len(y)), y] - P_s[np.arange(len(y)), y])
    flipped = np.flatnonzero(kind >= 0)
    order = flipped[np.lexsort((flipped, -gap[flipped], kind[flipped]))][:cap]
    classes = [str(c) for c in inputs.classes]
    features = [c for c in table.features.columns if str(c) not in private]
    sensitive = [c for c in table.sensitive.columns if str(c) not in private]
    columns = ["eval_row", "kind", *map(str, features)]
    if table.texts is not None and run.suite.data.text not in private:
        columns.append("text")
    columns += ["slice", "label", "teacher", "student",
                *(f"teacher_p_{c}" for c in classes), *(f"student_p_{c}" for c in classes)]
    rows = []
    for i in order:
        row: dict[str, Any] = {"eval_row": int(i) + 1, "kind": KINDS[kind[i]]}
        for c in features:
            row[str(c)] = _plain(table.features[c].iloc[i])
        if "text" in columns:
            row["text"] = str(table.texts[i])[:300]
        row["slice"] = ", ".join(f"{c}={table.sensitive[c].iloc[i]}" for c in sensitive)
        row.update(label=classes[y[i]], teacher=classes[t[i]], student=classes[s[i]])
        for j, c in enumerate(classes):
            row[f"teacher_p_{c}"] = float(P_t[i, j])
            row[f"student_p_{c}"] = float(P_s[i, j])
        rows.append(row)
    left_out = tuple(sorted(private & {str(c) for c in (*table.features.columns,
                                                        *table.sensitive.columns)}))
    return FlipTable(columns=tuple(columns), rows=tuple(rows), counts=counts, cap=cap,
                     left_out=left_out)
