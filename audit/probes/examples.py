"""Rows a reviewer wants to see: the eval texts or images where the models disagree.

For a text or image suite, the fidelity metrics show the first rows (in table order) the
teacher gets right and the student gets wrong: the text (cut to 300 characters) or the image as
a small PNG thumbnail, the label, and each model's answer with its probability. A tabular
suite's rows are its feature values, which the report's tables already cover: none are shown.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from audit.probes.artifacts import ArtifactRequest, Examples

__all__ = ["flip_examples", "SHOWN"]

SHOWN = 6  # rows per measurement


def flip_examples(probes: Any, request: ArtifactRequest) -> Examples:
    """The first :data:`SHOWN` eval rows the teacher gets right and the student wrong."""
    from audit.thumbnails import data_uri

    run = probes.run
    table = run.eval_table
    if table.modality == "tabular":
        return Examples()
    inputs = run.inputs
    t, s = inputs.p_teacher.argmax(axis=1), inputs.p_student.argmax(axis=1)
    rows = np.flatnonzero((t == inputs.y) & (s != inputs.y))[:int(request.get("shown", SHOWN))]
    classes = inputs.classes
    out = []
    for i in rows:
        row: dict[str, Any] = {
            "caption": f"eval row {int(i) + 1}: teacher right, student wrong",
            "label": str(classes[inputs.y[i]]),
            "teacher": f"{classes[t[i]]} ({inputs.p_teacher[i, t[i]]:.2f})",
            "student": f"{classes[s[i]]} ({inputs.p_student[i, s[i]]:.2f})"}
        if table.texts is not None:
            row["text"] = str(table.texts[i])[:300]
        else:
            row["image"] = data_uri(table.images[i])
        out.append(row)
    return Examples(tuple(out))
