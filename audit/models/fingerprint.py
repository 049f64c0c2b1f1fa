"""What a model's predictions depend on, known without loading it: content hashes and the
prediction cache's identity of file-based models."""

from __future__ import annotations

from audit.data import file_sha256
from audit.errors import ModelError
from audit.models.base import cache_identity
from audit.models.folder import folder_sha256, with_tokenizer
from audit.models.skops_content import skops_content_sha256
from audit.spec import ModelSpec

__all__ = ["content_sha256", "content_bytes", "identity_sha256", "model_fingerprint"]


def content_bytes(spec: ModelSpec) -> int | None:
    """Size on disk of a file-based model: its file, or every file of its folder."""
    if spec.path is None:
        return None
    from audit.models.folder import folder_bytes

    label = f"{spec.kind} model {spec.path}"
    if spec.kind in ("transformers", "causal_lm"):
        return folder_bytes(spec.path, label)
    size = spec.path.stat().st_size
    # a text model ships with its tokenizer, as a transformers folder does
    return size if spec.tokenizer is None else with_tokenizer("", size, spec.tokenizer, label)[1]


def content_sha256(spec: ModelSpec) -> str:
    """SHA-256 of everything a file-based model's predictions depend on: the file, plus the
    external-data files an ONNX model names (its weights may live beside it). Those are checked
    first, by the loader's own check (:func:`audit.models.onnx.onnx_external_files`): a location
    outside the model's folder or not a regular file is a ModelError, never read.

    This is the provenance hash the report records (a loaded model's ``sha256``): a skops file's
    is its bytes' SHA-256. The cache keys on :func:`identity_sha256` instead."""
    assert spec.path is not None
    label = f"{spec.kind} model {spec.path}"
    if spec.kind in ("transformers", "causal_lm"):
        sha = folder_sha256(spec.path, label)  # a tokenizer of its own changes its outputs
        return sha if spec.tokenizer is None else with_tokenizer(sha, 0, spec.tokenizer, label)[0]
    if spec.kind != "onnx":
        return file_sha256(spec.path)
    from audit.models.onnx import onnx_sha256

    sha = onnx_sha256(spec.path)
    if spec.tokenizer is None:
        return sha
    return with_tokenizer(sha, 0, spec.tokenizer, label)[0]


def identity_sha256(spec: ModelSpec, sha256: str) -> str:
    """The hash the prediction cache keys a file-based model on, given its
    :func:`content_sha256` ``sha256``.

    For a skops file, :func:`audit.models.skops_content.skops_content_sha256`: the same for
    every ``skops.io.dump`` of one model, so re-exporting an unchanged model still hits the
    cache. A file that cannot be fingerprinted so (not a zip, no schema.json, over the size
    bound, ...) is keyed on ``sha256``, as before: the loader stays the one judge of whether it
    loads, and says why not when the model is first needed. Any other kind: ``sha256``.
    """
    if spec.kind != "skops" or spec.path is None:
        return sha256
    try:
        return skops_content_sha256(spec.path)
    except ModelError:
        return sha256


def model_fingerprint(spec: ModelSpec, role: str = "model") -> tuple[str, str] | None:
    """``(sha256, cache identity)`` of a model, known without loading it.

    ``sha256`` is :func:`content_sha256`, the report's provenance hash. For file-based models
    (skops, onnx, predictions) the identity is the kind, :func:`identity_sha256` (for a skops
    file, a hash of its content that a re-dump of the same model keeps), and the columns and
    classes the suite names, so a prediction-cache hit needs no model load at all (the runner
    still checks a skops file's recorded types against the suite's trust list). Callables
    (whose behaviour may depend on files we cannot see) and pickles (whose loading carries a
    warning) return ``None``: load them.
    """
    if spec.kind in ("callable", "pickle") or spec.path is None:
        return None
    sha256 = content_sha256(spec)
    return sha256, cache_identity(spec, identity_sha256(spec, sha256))
