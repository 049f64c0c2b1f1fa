"""The skops adapter: scikit-learn estimators saved with skops, loaded without running code.

Types outside skops' default trusted set are refused unless the suite lists them under
``trusted_types``; the types a file holds beyond skops' defaults are recorded with its cached
predictions, so a cache hit is checked against the suite's trust list without a parse.
"""

from __future__ import annotations

from audit.data import file_sha256
from audit.errors import ModelError
from audit.extras import hiding_torch
from audit.models.base import LoadedModel, model_label
from audit.models.estimator import classes_of, estimator_predict
from audit.spec import ModelSpec

__all__ = ["load_skops", "check_skops_trust"]


def check_skops_trust(spec: ModelSpec, role: str, untrusted: list[str] | None = None) -> list[str]:
    """Refuse a skops file holding types neither skops nor the suite trusts; return the types
    skops does not trust by default. The runner also calls this on a prediction-cache hit, with
    the list recorded when the file was first loaded only when that record is authenticated or
    was verified against the loaded model (it depends only on the file's content), else with
    ``None`` (the file is scanned), so the verdict never depends on the cache's state."""
    assert spec.path is not None
    if untrusted is None:
        with hiding_torch():  # skops.io imports torch whenever it is installed; we never use it
            import skops.io as sio

        try:
            untrusted = list(sio.get_untrusted_types(file=spec.path))
        except Exception as exc:
            raise ModelError(f"{model_label(role, spec)}: not a readable skops file "
                             f"({type(exc).__name__}: {exc})") from None
    refused = [t for t in untrusted if t not in spec.trusted_types]
    if refused:
        listing = "\n".join(f"      - {t}" for t in refused)
        raise ModelError(f"{model_label(role, spec)}: the file holds types skops does not trust by "
                         f"default:\n{listing}\n  Review them; if you trust them, list them in "
                         f"the suite under {role}.trusted_types (use the mapping form: {role}: "
                         f"{{skops: {spec.path.name}, trusted_types: [...]}}).")
    return untrusted


def load_skops(spec: ModelSpec, role: str) -> LoadedModel:
    """Load a skops file with the suite's trusted types (refusing any other untrusted type)."""
    with hiding_torch():
        import skops.io as sio

    assert spec.path is not None
    label = model_label(role, spec)
    from skops.io.exceptions import UntrustedTypesFoundException

    try:  # one parse in the common case; the type scan runs only to explain a refusal
        model = sio.load(spec.path, trusted=list(spec.trusted_types) or None)
    except UntrustedTypesFoundException:
        check_skops_trust(spec, role)
        raise  # pragma: no cover - the check above raises for the same types
    except Exception as exc:
        raise ModelError(f"{label}: not a readable skops file ({type(exc).__name__}: {exc})") from None
    # recorded with the cached predictions, so a cache hit can be checked without a parse
    untrusted = tuple(sio.get_untrusted_types(file=spec.path))
    return LoadedModel(role, spec, classes_of(model, spec, label), file_sha256(spec.path),
                       spec.path.stat().st_size, estimator_predict(model, label), native=model,
                       untrusted_types=untrusted)
