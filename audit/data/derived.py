"""Properties derived from what text and image models read, to slice results by.

Compressed models are known to lose the long tail first: long or unusual texts, dark or
low-contrast images. Slice discovery (``slice_regression``) searches these columns next to the
table's metadata columns:

* texts: ``text_words`` (whitespace-separated words), ``text_characters``, and, when a training
  table is named, ``oov_share``: the share of a text's words (lower-cased, stripped of
  surrounding punctuation) that never occur in the training texts;
* images: ``brightness`` (the mean pixel value, 0 black to 1 white) and ``contrast`` (the
  standard deviation of the pixel values, RMS contrast).

Pure functions of the inputs (numpy and pandas).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
import pandas as pd

__all__ = ["text_properties", "image_properties", "vocabulary", "words"]

_EDGE = re.compile(r"^\W+|\W+$")


def words(text: str) -> list[str]:
    """A text's words as the vocabulary counts them: split on whitespace, lower-cased,
    surrounding punctuation stripped, empty ones dropped.

    >>> words("It's GOOD -- really.")
    ["it's", 'good', 'really']
    """
    out = []
    for raw in text.split():
        w = _EDGE.sub("", raw.lower())
        if w:
            out.append(w)
    return out


def vocabulary(texts: Iterable[str]) -> frozenset[str]:
    """Every word of ``texts`` (see :func:`words`)."""
    return frozenset(w for t in texts for w in words(str(t)))


def text_properties(texts: np.ndarray, known: frozenset[str] | None = None) -> pd.DataFrame:
    """``text_words``, ``text_characters`` and (with the training ``known`` words)
    ``oov_share`` per text.

    >>> text_properties(np.array(["a good film", "bad"], dtype=object), frozenset({"good"}))
       text_words  text_characters  oov_share
    0           3               11   0.666667
    1           1                3   1.000000
    """
    split = [words(str(t)) for t in texts]
    out = pd.DataFrame({"text_words": np.array([len(str(t).split()) for t in texts], np.int64),
                        "text_characters": np.array([len(str(t)) for t in texts], np.int64)})
    if known is not None:
        out["oov_share"] = np.array([sum(w not in known for w in ws) / len(ws) if ws else 0.0
                                     for ws in split], np.float64)
    return out


def image_properties(images: np.ndarray) -> pd.DataFrame:
    """``brightness`` (mean pixel) and ``contrast`` (pixel standard deviation) per image of a
    float ``(N, C, H, W)`` batch in [0, 1].

    >>> image_properties(np.array([[[[0.0, 1.0]]], [[[0.5, 0.5]]]]))
       brightness  contrast
    0         0.5       0.5
    1         0.5       0.0
    """
    flat = np.asarray(images, np.float64).reshape(len(images), -1)
    return pd.DataFrame({"brightness": flat.mean(axis=1), "contrast": flat.std(axis=1)})
