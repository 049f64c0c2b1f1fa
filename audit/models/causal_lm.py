"""The causal language model adapter: a local transformers folder that scores the choices of
multiple-choice items (:mod:`audit.data.items`) by their log-likelihood.

The folder holds ``config.json``, safetensors weights (a pickled ``pytorch_model.bin`` is always
refused: there is no trust flag here) and the tokenizer; it is read offline, and a config that
names custom code (``auto_map``) is refused. Each choice's continuation is scored as
lm-evaluation-harness 0.4.13 scores it (``api/model.py`` ``_encode_pair``, ``huggingface.py``
``_loglikelihood_tokens``), so the numbers are its numbers on the same model:

* the context's trailing whitespace moves to the front of the continuation;
* the context and the whole string are tokenized with the tokenizer's own special tokens
  (a Llama-style tokenizer adds BOS), and the continuation's tokens are the whole string's
  after the context's; an empty context is the BOS (else EOS) token;
* the input is the last ``max_length + 1`` tokens but the final one; the log-likelihood is the
  sum of the continuation tokens' log-softmax (float32, as the model computes).

An item's probabilities are the softmax of its choices' log-likelihoods (``scoring: sum``, the
harness's ``acc``: the model's preference among the choices), or of the log-likelihoods per
character of the bare choice (``scoring: per_char``, its ``acc_norm``). Sequences are scored in
batches of ``batch_size`` (default 16), longest first, right-padded: a causal model's scores of
a sequence do not see the padding after it.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from audit.data import Table
from audit.errors import ModelError, display_path
from audit.extras import MissingExtra, require
from audit.models.base import LoadedModel, model_label
from audit.models.folder import folder_bytes, folder_sha256, with_tokenizer
from audit.models.lm_text import LanguageModel
from audit.models.text import import_transformers, load_tokenizer, softmax
from audit.models.transformers import read_config, safe_weights, torch_device
from audit.spec import ModelSpec

__all__ = ["load_causal_lm", "ChoiceScorer", "choice_probabilities"]

DEFAULT_LM_BATCH = 16
DELIMITER = " "


def choice_probabilities(ll: np.ndarray, continuations: np.ndarray, scoring: str) -> np.ndarray:
    """Each item's probabilities over its choices from their log-likelihoods ``ll`` (N, k):
    softmax of ``ll`` (``sum``) or of ``ll`` per character of the bare choice (``per_char``)."""
    if scoring == "per_char":
        lengths = np.array([[max(len(c[len(DELIMITER):] if c.startswith(DELIMITER) else c), 1)
                             for c in row] for row in continuations], dtype=np.float64)
        ll = ll / lengths
    return softmax(np.asarray(ll, dtype=np.float64))


class ChoiceScorer:
    """A causal LM and its tokenizer as one function: ``(contexts, continuations) -> ll``, the
    summed log-likelihood of each continuation after its context (lm-evaluation-harness's)."""

    def __init__(self, torch: Any, model: Any, tokenizer: Any, device: Any, max_length: int,
                 batch_size: int) -> None:
        self.torch, self.model, self.tokenizer = torch, model, tokenizer
        self.device, self.max_length, self.batch_size = device, max_length, batch_size
        self.prefix = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else (
            tokenizer.eos_token_id)
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (
            self.prefix if self.prefix is not None else 0)

    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """The context's and the continuation's tokens, as the harness splits them."""
        spaces = len(context) - len(context.rstrip())
        if spaces:
            context, continuation = context[:-spaces], context[-spaces:] + continuation
        if not context:
            cont = self.tokenizer(continuation, add_special_tokens=False)["input_ids"]
            if self.prefix is None:
                raise ModelError("the tokenizer has no BOS or EOS token to stand for an empty "
                                 "context")
            if cont and cont[0] == self.prefix:
                return cont[:1], cont[1:]
            return [self.prefix], cont
        # a string that already starts with the BOS text gets no second one (the harness's
        # has_bos_prefix)
        bos = self.tokenizer.bos_token
        special = not (bos and context.startswith(bos))
        whole = self.tokenizer(context + continuation, add_special_tokens=special)["input_ids"]
        ctx = self.tokenizer(context, add_special_tokens=special)["input_ids"]
        return ctx, whole[len(ctx):]

    def __call__(self, contexts: Any, continuations: Any) -> np.ndarray:
        torch = self.torch
        k = len(continuations[0]) if len(continuations) else 0
        requests = []  # (item, choice, input tokens, continuation length)
        for i, (context, conts) in enumerate(zip(contexts, continuations, strict=True)):
            for j, cont in enumerate(conts):
                ctx, tokens = self.encode_pair(str(context), str(cont))
                if not tokens:
                    raise ModelError(f"item {i + 1}, choice {j + 1}: the continuation {cont!r} "
                                     "has no tokens to score")
                if len(tokens) > self.max_length:
                    raise ModelError(f"item {i + 1}, choice {j + 1}: the continuation is "
                                     f"{len(tokens)} tokens, more than max_length "
                                     f"{self.max_length}; raise the model's max_length or "
                                     "shorten the choice")
                whole = (ctx + tokens)[-(self.max_length + 1):][:-1]
                requests.append((i, j, whole, len(tokens), tokens))
        out = np.zeros((len(contexts), k), dtype=np.float64)
        order = sorted(range(len(requests)), key=lambda r: -len(requests[r][2]))
        for start in range(0, len(order), self.batch_size):
            batch = [requests[r] for r in order[start:start + self.batch_size]]
            width = max(len(b[2]) for b in batch)
            ids = torch.full((len(batch), width), self.pad, dtype=torch.long)
            for row, b in enumerate(batch):
                ids[row, :len(b[2])] = torch.tensor(b[2], dtype=torch.long)
            with torch.inference_mode():
                logits = self.model(ids.to(self.device)).logits
                logprobs = torch.log_softmax(logits, dim=-1)
            for row, (i, j, whole, n, tokens) in enumerate(batch):
                span = logprobs[row, len(whole) - n:len(whole)]
                target = torch.tensor(tokens, dtype=torch.long, device=span.device)
                out[i, j] = float(span.gather(1, target[:, None]).sum())
        return out


def load_causal_lm(spec: ModelSpec, role: str) -> LoadedModel:
    """Load a causal LM and its tokenizer from the folder ``spec.path`` (safetensors only)."""
    assert spec.path is not None
    label = model_label(role, spec)
    folder = spec.path
    read_config(folder, label)
    safe_weights(folder, label, trust=False)
    if spec.classes is None:
        raise ModelError(f"{label}: the number of choices is unknown (the items file could not be "
                         "read when the suite was); check data.eval")
    sha256 = folder_sha256(folder, label)
    if spec.tokenizer is not None:  # its own tokenizer: part of what it is
        sha256 = with_tokenizer(sha256, 0, spec.tokenizer, label)[0]
    try:
        torch = require("torch", f"{label}: a causal language model")
    except MissingExtra as exc:
        raise ModelError(str(exc)) from None
    transformers = import_transformers(label)
    logging = transformers.utils.logging
    verbosity, bar = logging.get_verbosity(), logging.is_progress_bar_enabled()
    try:
        logging.disable_progress_bar()  # transformers' loading output is not the audit's
        logging.set_verbosity_error()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = transformers.AutoModelForCausalLM.from_pretrained(
                str(folder), local_files_only=True, use_safetensors=True, trust_remote_code=False)
    except Exception as exc:
        raise ModelError(f"{label}: transformers cannot load the folder as a causal language model "
                         f"({type(exc).__name__}: {str(exc).strip()[:300]})") from None
    finally:
        if bar:
            logging.enable_progress_bar()
        logging.set_verbosity(verbosity)
    tokenizer = load_tokenizer(spec.tokenizer or folder, label,
                               getattr(model.config, "vocab_size", None))
    device = torch_device(torch, spec, label)
    model.to(device).eval()
    positions = getattr(model.config, "max_position_embeddings", None) or 2048
    max_length, batch_size = int(spec.max_length or positions), spec.batch_size or DEFAULT_LM_BATCH
    scorer = ChoiceScorer(torch, model, tokenizer, device, max_length, batch_size)
    scoring = spec.scoring

    def predict(table: Table) -> np.ndarray:
        if table.choices is None or table.texts is None:
            raise ModelError(f"{label}: a causal language model scores multiple-choice items; "
                             f"{display_path(table.path)} is not a .jsonl file of items")
        return choice_probabilities(scorer(table.texts, table.choices), table.choices, scoring)

    return LoadedModel(role, spec, tuple(spec.classes), sha256, folder_bytes(folder, label),
                       predict, n_parameters=int(sum(p.numel() for p in model.parameters())),
                       language_model=LanguageModel(torch, model, tokenizer, device, max_length,
                                                    batch_size, label))
