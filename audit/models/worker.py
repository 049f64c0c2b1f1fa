"""Tables to and from a model that runs in its worker process (``pickle:`` and ``callable:``).

The parent's predict function sends the rows a model reads (role, file, features) and reads
back raw float64 bytes (:class:`audit.models.isolation.ModelWorker`); in the worker, a
predict function of a table answers those requests. Class labels travel as JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from audit.data import Table
from audit.errors import ModelError, display_path
from audit.models.base import PredictFn
from audit.models.isolation import ModelWorker

__all__ = ["worker_predict", "worker_table", "plain_classes"]


def worker_predict(worker: ModelWorker, k: int) -> PredictFn:
    """In the parent: a predict function that asks the worker, expecting ``k`` classes."""
    def predict(table: Table) -> np.ndarray:
        n = len(table.features)
        return worker.predict((table.role, table.path, table.features, table.texts, table.images),
                              display_path(table.path),
                              f"an ({n}, {k}) array of class probabilities")

    return predict


class _Rows:
    """In the worker: what a predict function reads of a table (its features, the texts or
    images of a text or image suite, and its file)."""

    __slots__ = ("role", "path", "features", "texts", "images")

    def __init__(self, role: str, path: Any, features: pd.DataFrame, texts: Any = None,
                 images: Any = None) -> None:
        self.role, self.path, self.features = role, path, features
        self.texts, self.images = texts, images


def worker_table(predict: PredictFn) -> Callable[[Any], Any]:
    """In the worker: a predict function of ``(role, path, features, texts, images)``, as
    requests carry it."""
    def serve(request: tuple[Any, ...]) -> Any:
        return predict(_Rows(*request))  # type: ignore[arg-type]

    return serve


def plain_classes(classes: tuple[Any, ...], label: str) -> list[Any]:
    """Class labels as JSON carries them from the worker (text, numbers or booleans)."""
    for c in classes:
        if not isinstance(c, (str, int, float, bool)):
            raise ModelError(f"{label}: its classes_ hold a {type(c).__name__} ({c!r}); add "
                             "classes: [...] (text or integers) to the model in the suite, in "
                             "the order of the probability columns")
    return list(classes)
