"""The Hugging Face adapter: a sequence classifier from a local folder, never from the hub.

The folder holds ``config.json``, the weights and the tokenizer files (``save_pretrained`` of
the model and of its tokenizer). Loading is offline (``local_files_only=True``, and the hub's
offline switches set before transformers is imported) and reads safetensors weights only: a
``pytorch_model.bin`` is a pickle, refused unless the suite sets ``trust: true``. A config that
names custom code (``auto_map``) is always refused: its code would run.

Each model has its own tokenizer and ``max_length`` (default: the tokenizer's
``model_max_length``, capped by the config's position embeddings and 512). Texts are scored in
batches of ``batch_size`` (default 64) taken in order of length, each padded to its longest text
(fewer pad tokens, the same outputs up to float rounding), under ``torch.inference_mode`` on the
CPU (``device: cuda`` where present). Classes are the config's ``id2label``, in id order.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from audit.data import Table
from audit.errors import ModelError, display_path
from audit.extras import MissingExtra, require
from audit.models.base import LoadedModel, model_label
from audit.models.folder import folder_bytes, folder_sha256, with_tokenizer
from audit.models.text import (
    DEFAULT_TEXT_BATCH,
    TextBatches,
    import_transformers,
    load_tokenizer,
    max_length_of,
    softmax,
)
from audit.spec import ModelSpec

__all__ = ["load_transformers", "read_config", "safe_weights", "torch_device"]

PICKLED_WEIGHTS = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def safe_weights(folder: Path, label: str, trust: bool) -> bool:
    """Whether the folder's weights are safetensors (``True``) or a trusted pickle."""
    files = [p.name for p in folder.iterdir() if p.is_file()]
    safe = [f for f in files if f.endswith(".safetensors") or f == "model.safetensors.index.json"]
    pickled = [f for f in files if f.endswith(PICKLED_WEIGHTS) and f != "training_args.bin"]
    if safe:
        return True
    if pickled and not trust:
        raise ModelError(f"{label}: the weights are {pickled[0]}, a pickle (loading it can run "
                         "arbitrary code); save them as safetensors (model.save_pretrained(dir), "
                         "the default), or add trust: true to the model only if you trust "
                         "whoever wrote the file")
    if not pickled:
        raise ModelError(f"{label}: no weights in {display_path(folder)} (model.safetensors); "
                         "save the model with model.save_pretrained(dir)")
    return False


def read_config(folder: Path, label: str) -> dict[str, Any]:
    import json

    path = folder / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{label}: {display_path(folder)} has no config.json; name the folder "
                         "model.save_pretrained(dir) wrote") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"{label}: cannot read {display_path(path)} as JSON ({exc})") from None
    if not isinstance(config, dict):
        raise ModelError(f"{label}: {display_path(path)} is not a JSON object")
    if config.get("auto_map"):
        raise ModelError(f"{label}: config.json names custom code (auto_map: "
                         f"{sorted(config['auto_map'])}), which would run on loading; "
                         "distill-audit never runs a model folder's code (trust_remote_code): "
                         "export the model to ONNX or TorchScript")
    if config.get("problem_type") == "multi_label_classification":
        raise ModelError(f"{label}: a multi-label classifier (problem_type: "
                         "multi_label_classification); the audit needs one class per row")
    return config


def _classes(config: dict[str, Any], spec: ModelSpec, label: str) -> tuple[Any, ...]:
    if spec.classes is not None:
        return tuple(spec.classes)
    raw = config.get("id2label")
    if not isinstance(raw, dict) or len(raw) < 2:
        raise ModelError(f"{label}: config.json has no id2label with two or more classes; add "
                         "classes: [...] to the model in the suite, in the order of its outputs")
    try:
        ordered = sorted((int(k), v) for k, v in raw.items())
    except ValueError:
        raise ModelError(f"{label}: config.json's id2label keys {list(raw)[:5]} are not class "
                         "ids 0..k-1; fix the config or add classes: [...] to the suite") from None
    if [i for i, _ in ordered] != list(range(len(ordered))):
        raise ModelError(f"{label}: config.json's id2label ids {[i for i, _ in ordered]} are not "
                         "0..k-1; fix the config or add classes: [...] to the suite")
    names = tuple(v for _, v in ordered)
    if len(set(names)) != len(names):
        raise ModelError(f"{label}: config.json's id2label repeats a label ({list(names)}); "
                         "fix the config or add classes: [...] to the suite")
    return names


def torch_device(torch: Any, spec: ModelSpec, label: str) -> Any:
    if spec.device == "cuda":
        if not torch.cuda.is_available():
            raise ModelError(f"{label}: device: cuda, but torch sees no CUDA device here; "
                             "remove device: to run on the CPU")
        return torch.device("cuda")
    return torch.device("cpu")


def load_transformers(spec: ModelSpec, role: str) -> LoadedModel:
    """Load a sequence classifier and its tokenizer from the folder ``spec.path``."""
    assert spec.path is not None
    label = model_label(role, spec)
    folder = spec.path
    config = read_config(folder, label)
    safetensors = safe_weights(folder, label, spec.trust)
    classes = _classes(config, spec, label)
    sha256 = folder_sha256(folder, label)  # before anything reads the files
    if spec.tokenizer is not None:  # its own tokenizer: part of what it is
        sha256 = with_tokenizer(sha256, 0, spec.tokenizer, label)[0]
    try:
        torch = require("torch", f"{label}: a transformers model")
    except MissingExtra as exc:
        raise ModelError(str(exc)) from None
    transformers = import_transformers(label)

    logging = transformers.utils.logging
    bar = logging.is_progress_bar_enabled()
    verbosity = logging.get_verbosity()
    try:
        # transformers' progress bars and advice on loading are not the audit's output
        logging.disable_progress_bar()
        logging.set_verbosity_error()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = transformers.AutoModelForSequenceClassification.from_pretrained(
                str(folder), local_files_only=True, use_safetensors=safetensors,
                trust_remote_code=False)
    except Exception as exc:
        raise ModelError(f"{label}: transformers cannot load the folder as a sequence classifier "
                         f"with its tokenizer ({type(exc).__name__}: {str(exc).strip()[:300]})"
                         ) from None
    finally:
        if bar:
            logging.enable_progress_bar()
        logging.set_verbosity(verbosity)
    outputs = int(getattr(model.config, "num_labels", len(classes)))
    if outputs != len(classes):
        raise ModelError(f"{label}: the model has {outputs} outputs but {len(classes)} classes "
                         f"are named ({list(classes)}); name one class per output")
    tokenizer = load_tokenizer(spec.tokenizer or folder, label,
                               getattr(model.config, "vocab_size", None))
    device = torch_device(torch, spec, label)
    model.to(device).eval()
    max_length = max_length_of(tokenizer, spec.max_length,
                               getattr(model.config, "max_position_embeddings", None), label)
    accepted = set(tokenizer.model_input_names)

    def forward(encoded: dict[str, np.ndarray]) -> np.ndarray:
        feed = {k: torch.from_numpy(np.asarray(v)).to(device) for k, v in encoded.items()
                if k in accepted}
        with torch.inference_mode():
            logits = model(**feed).logits
        return logits.detach().to("cpu", torch.float64).numpy()

    batches = TextBatches(tokenizer, forward, max_length, spec.batch_size or DEFAULT_TEXT_BATCH)
    notes: tuple[str, ...] = ()
    if not safetensors:
        notes = (f"{role}: loaded pickled weights from {display_path(folder)} (trust: true)",)

    def predict(table: Table) -> np.ndarray:
        if table.texts is None:
            raise ModelError(f"{label}: a transformers text classifier reads texts; name the "
                             "text column with data.text")
        return softmax(batches(table.texts))

    # module stays None: ART's gradient attacks take tensors of numbers, not texts
    return LoadedModel(role, spec, classes, sha256, folder_bytes(folder, label), predict, notes,
                       n_parameters=int(sum(p.numel() for p in model.parameters())))
