"""A causal language model over whole texts: tokens, windows and next-token log-probabilities.

What the token-level probes (:mod:`audit.probes.tokens`) read from a ``causal_lm`` model. A
text is scored as lm-evaluation-harness scores a document (``loglikelihood_rolling``): its
tokens without special tokens, after the tokenizer's BOS token (else EOS), every token
predicted once. A text longer than ``max_length`` tokens is cut into disjoint windows of at
most ``max_length`` predicted tokens, each window read after as many of the tokens before it
as fit (the harness's rolling windows with the longest context), so nothing is left out.

Windows are batched longest first and right-padded (a causal model's outputs at a position do
not see the padding after it); :func:`batches` yields the same padded batches for any number
of models, so a teacher and a student with one vocabulary read the very same inputs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from audit.errors import ModelError

__all__ = ["LanguageModel", "Window", "windows", "batches", "vocabulary_difference"]


@dataclass(frozen=True)
class Window:
    """``text``'s tokens ``inputs`` (fed to the model) whose last ``n`` positions predict
    ``targets`` (``n`` tokens)."""

    text: int
    inputs: tuple[int, ...]
    targets: tuple[int, ...]

    @property
    def n(self) -> int:
        return len(self.targets)


def windows(tokens: Sequence[int], max_length: int, text: int = 0) -> list[Window]:
    """The windows that predict ``tokens[1:]`` (``tokens[0]`` is the prefix token) once each,
    at most ``max_length`` inputs per window.

    >>> [(w.inputs, w.targets) for w in windows([0, 1, 2, 3, 4], 2)]
    [((0, 1), (1, 2)), ((2, 3), (3, 4))]
    """
    out, start, total = [], 1, len(tokens)
    while start < total:
        end = min(total, start + max_length)
        first = max(0, end - 1 - max_length)
        out.append(Window(text, tuple(tokens[first:end - 1]), tuple(tokens[start:end])))
        start = end
    return out


def batches(all_windows: Sequence[Window], batch_size: int, pad: int,
            torch: Any) -> Iterator[tuple[Any, list[Window]]]:
    """``(ids, windows)`` batches: longest windows first, right-padded with ``pad``."""
    order = sorted(range(len(all_windows)), key=lambda i: (-len(all_windows[i].inputs), i))
    for start in range(0, len(order), batch_size):
        chunk = [all_windows[i] for i in order[start:start + batch_size]]
        width = max(len(w.inputs) for w in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        for row, w in enumerate(chunk):
            ids[row, :len(w.inputs)] = torch.tensor(w.inputs, dtype=torch.long)
        yield ids, chunk


class LanguageModel:
    """A loaded causal LM, its tokenizer and its limits (built by :mod:`audit.models.causal_lm`)."""

    def __init__(self, torch: Any, model: Any, tokenizer: Any, device: Any, max_length: int,
                 batch_size: int, label: str) -> None:
        self.torch, self.model, self.tokenizer = torch, model, tokenizer
        self.device, self.max_length, self.batch_size, self.label = (device, max_length,
                                                                     batch_size, label)
        self.prefix = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else (
            tokenizer.eos_token_id)
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (
            self.prefix if self.prefix is not None else 0)

    def tokens(self, text: str) -> list[int]:
        """The prefix token and ``text``'s tokens (no special tokens of its own)."""
        if self.prefix is None:
            raise ModelError(f"{self.label}: the tokenizer has no BOS or EOS token to start a "
                             "text with")
        return [self.prefix, *self.tokenizer(text, add_special_tokens=False)["input_ids"]]

    def windows(self, texts: Sequence[str], max_length: int | None = None) -> list[Window]:
        """Every text's windows (texts in order), ``max_length`` inputs at most (default the
        model's own)."""
        length = max_length or self.max_length
        out: list[Window] = []
        for i, text in enumerate(texts):
            found = windows(self.tokens(text), length, i)
            if not found:
                raise ModelError(f"{self.label}: text {i + 1} ({text[:40]!r}) has no tokens to "
                                 "score")
            out.extend(found)
        return out

    def logprobs(self, ids: Any) -> Any:
        """The next-token log-probabilities (float32, ``(batch, width, vocabulary)``) of a
        padded batch of token ids."""
        torch = self.torch
        with torch.inference_mode():
            logits = self.model(ids.to(self.device)).logits
            return torch.log_softmax(logits.float(), dim=-1)

    @property
    def vocabulary_size(self) -> int:
        return len(self.tokenizer)

    def batches(self, all_windows: Sequence[Window]) -> Iterator[tuple[Any, list[Window]]]:
        """:func:`batches` of ``all_windows`` with this model's batch size and padding."""
        return batches(all_windows, self.batch_size, self.pad, self.torch)

    def differs_from(self, other: LanguageModel) -> str | None:
        """:func:`vocabulary_difference` of this (the teacher) and ``other`` (the student)."""
        return vocabulary_difference(self, other)


def vocabulary_difference(a: LanguageModel, b: LanguageModel) -> str | None:
    """Why ``a``'s and ``b``'s next-token distributions cannot be compared token by token
    (their tokenizers' sizes and the first token id that differs), or ``None`` when the two
    vocabularies are one."""
    va, vb = a.tokenizer.get_vocab(), b.tokenizer.get_vocab()
    ids_a = {i: t for t, i in va.items()}
    ids_b = {i: t for t, i in vb.items()}
    if ids_a == ids_b and a.model.config.vocab_size == b.model.config.vocab_size:
        return None
    size = (f"the teacher's tokenizer has {len(va):,} tokens (model vocabulary "
            f"{a.model.config.vocab_size:,}), the student's {len(vb):,} "
            f"({b.model.config.vocab_size:,})")
    for i in range(max(len(ids_a), len(ids_b)) + 1):
        if ids_a.get(i) != ids_b.get(i):
            return (f"{size}; the first that differs is id {i}: {ids_a.get(i)!r} for the teacher, "
                    f"{ids_b.get(i)!r} for the student")
    return f"{size}; the models' output layers differ in size"
