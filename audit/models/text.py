"""What text models share: the tokenizer, offline, and batching texts of similar length.

:func:`import_transformers` imports transformers with the hub's offline switches set (nothing
is ever downloaded); :func:`load_tokenizer` reads a tokenizer folder with ``local_files_only``;
:class:`TextBatches` runs a tokenizer and a network over texts in batches taken in order of
length, each padded to its longest text. Used by the transformers and the ONNX adapters.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from audit.errors import ModelError, display_path
from audit.extras import MissingExtra, require

__all__ = ["import_transformers", "load_tokenizer", "TOKENIZER_FILES", "max_length_of",
           "TextBatches", "softmax", "DEFAULT_TEXT_BATCH", "DEFAULT_MAX_LENGTH"]

DEFAULT_TEXT_BATCH = 64
DEFAULT_MAX_LENGTH = 512


def import_transformers(label: str) -> Any:
    """transformers, imported offline (the hub is never asked for anything)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    try:
        return require("transformers", f"{label}: a text model")
    except MissingExtra as exc:
        raise ModelError(str(exc)) from None


TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model",
                   "sentencepiece.bpe.model", "tokenizer.model")


def load_tokenizer(folder: Path, label: str, vocab_size: int | None = None) -> Any:
    """The tokenizer saved in ``folder`` (``tokenizer.save_pretrained``), read offline and
    without running code from the folder. A folder without a vocabulary file is an error (the
    library would build an empty tokenizer that maps every word to its unknown token), and so
    is a vocabulary larger than the model's ``vocab_size`` embeddings."""
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise ModelError(f"{label}: {display_path(folder)} holds no tokenizer (none of "
                         f"{', '.join(TOKENIZER_FILES)}); save it beside the model with "
                         "tokenizer.save_pretrained(dir), or name its folder with tokenizer:")
    transformers = import_transformers(label)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tokenizer = transformers.AutoTokenizer.from_pretrained(
                str(folder), local_files_only=True, trust_remote_code=False)
    except Exception as exc:
        first = next((line for line in str(exc).strip().splitlines() if line.strip()), "")
        raise ModelError(f"{label}: cannot load a tokenizer from {display_path(folder)} "
                         f"({type(exc).__name__}: {first[:200]}); name the folder "
                         "tokenizer.save_pretrained(dir) wrote") from None
    size = len(tokenizer)
    if vocab_size is not None and size > vocab_size:
        raise ModelError(f"{label}: the tokenizer in {display_path(folder)} has {size} tokens but "
                         f"the model embeds {vocab_size} (config.json vocab_size); it is not "
                         "this model's tokenizer")
    return tokenizer


def max_length_of(tokenizer: Any, asked: int | None, positions: int | None, label: str) -> int:
    """Tokens per text: ``asked``, else the tokenizer's ``model_max_length``, capped by the
    model's ``positions`` and :data:`DEFAULT_MAX_LENGTH`."""
    limit = getattr(tokenizer, "model_max_length", DEFAULT_MAX_LENGTH)
    limit = DEFAULT_MAX_LENGTH if not isinstance(limit, int) or limit > 10**6 else limit
    cap = positions or DEFAULT_MAX_LENGTH
    length = asked or min(limit, cap, DEFAULT_MAX_LENGTH)
    if positions is not None and length > positions:
        raise ModelError(f"{label}: max_length {length} is longer than the model's {positions} "
                         f"position embeddings; use max_length <= {positions}")
    return length


class TextBatches:
    """A tokenizer and a network as one function of texts: ``texts -> logits`` in batches of
    similar length, in the texts' order."""

    def __init__(self, tokenizer: Any, forward: Any, max_length: int, batch_size: int) -> None:
        self.tokenizer, self.forward = tokenizer, forward
        self.max_length, self.batch_size = max_length, batch_size

    def encode(self, texts: list[str]) -> dict[str, Any]:
        """The tokenizer's tensors for ``texts``, truncated to ``max_length``, padded to the
        longest."""
        return dict(self.tokenizer(texts, padding=True, truncation=True,
                                   max_length=self.max_length, return_tensors="np"))

    def __call__(self, texts: Any) -> np.ndarray:
        texts = [str(t) for t in texts]
        if not texts:
            return np.empty((0, 0))
        # in order of length (characters: a close proxy of tokens that needs no tokenizing
        # pass of its own), so each batch pads little
        order = np.argsort(np.array([len(t) for t in texts]), kind="stable")
        out: list[np.ndarray | None] = [None] * len(texts)
        for start in range(0, len(texts), self.batch_size):
            rows = order[start:start + self.batch_size]
            logits = self.forward(self.encode([texts[i] for i in rows]))
            for i, row in zip(rows, logits):
                out[i] = row
        return np.stack(out)  # type: ignore[arg-type]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of float64 logits."""
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)
