"""What a model's predictions depend on, known without loading it: content hashes and the
prediction cache's identity of file-based models."""

from __future__ import annotations

from audit.data import file_sha256
from audit.models.base import cache_identity
from audit.spec import ModelSpec

__all__ = ["content_sha256", "model_fingerprint"]


def content_sha256(spec: ModelSpec) -> str:
    """SHA-256 of everything a file-based model's predictions depend on: the file, plus the
    external-data files an ONNX model names (its weights may live beside it). Those are checked
    first, by the loader's own check (:func:`audit.models.onnx.onnx_external_files`): a location
    outside the model's folder or not a regular file is a ModelError, never read."""
    assert spec.path is not None
    if spec.kind != "onnx":
        return file_sha256(spec.path)
    from audit.models.onnx import onnx_sha256

    return onnx_sha256(spec.path)


def model_fingerprint(spec: ModelSpec, role: str = "model") -> tuple[str, str] | None:
    """``(sha256, cache identity)`` of a model, known without loading it.

    For file-based models (skops, onnx, predictions) the identity is the kind, the content's
    SHA-256 (:func:`content_sha256`), and the columns and classes the suite names, so a
    prediction-cache hit needs no model load at all (the runner still checks a skops file's
    recorded types against the suite's trust list). Callables (whose behaviour may depend on files we cannot
    see) and pickles (whose loading carries a warning) return ``None``: load them.
    """
    if spec.kind in ("callable", "pickle") or spec.path is None:
        return None
    sha256 = content_sha256(spec)
    return sha256, cache_identity(spec, sha256)
