"""Exact torch rebuilds of the scikit-learn models whose class probabilities are smooth
functions of their input, so that white-box attacks (ART's FGSM and PGD) get true gradients.

Rebuilt, in float64, from the fitted attributes alone:

* ``LogisticRegression`` (binary or multinomial): logits ``X @ coef_.T + intercept_``;
* ``CalibratedClassifierCV(method="sigmoid")`` over a linear classifier: ``LinearSVC``, a
  binary ``SVC(kernel="linear")``, ``SGDClassifier``, ``RidgeClassifier`` or
  ``LogisticRegression``. This is how scikit-learn 1.9 gives a linear SVM class probabilities
  (``SVC(probability=True)`` is deprecated there): each calibrated classifier maps the decision
  values ``d`` to ``expit(-(a * d + b))`` per class, normalised, and the ensemble averages;
* either of them as the last step of a ``Pipeline`` whose other steps are per-column affine
  scalers (``StandardScaler``, ``MinMaxScaler`` without ``clip``, ``MaxAbsScaler``).

Anything else (trees, kernels, isotonic calibration, one-hot encoders...) has no gradient here:
:func:`supports` says no and the robustness checks use the black-box attack.

:func:`gradient_module` is the copy an attack differentiates: the scaled perturbed columns of
:mod:`audit.checks.perturbation` -> the model's full input -> its logits, for a torch model or
a rebuilt one; the attack compares it with the model's own probabilities before using it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from audit.extras import require

if TYPE_CHECKING:
    from audit.checks.perturbation import AttackSpace

__all__ = ["supports", "torch_module", "has_gradients", "gradient_module", "GRADIENT_MODELS"]

_AFFINE = ("StandardScaler", "MinMaxScaler", "MaxAbsScaler")
_LINEAR = ("LinearSVC", "SVC", "SGDClassifier", "RidgeClassifier", "LogisticRegression")


def _name(est: Any) -> str:
    return type(est).__name__


def _is_sklearn(est: Any) -> bool:
    return type(est).__module__.startswith("sklearn.")


def _affine_ok(step: Any) -> bool:
    if step in (None, "passthrough"):
        return True
    if not (_is_sklearn(step) and _name(step) in _AFFINE):
        return False
    return not getattr(step, "clip", False)  # MinMaxScaler(clip=True) is not affine


def _linear_ok(est: Any) -> bool:
    if not (_is_sklearn(est) and _name(est) in _LINEAR and hasattr(est, "coef_")):
        return False
    if _name(est) == "SVC":  # a linear kernel, two classes: a multiclass SVC votes one-vs-one
        return est.kernel == "linear" and len(est.classes_) == 2
    return True


def _split(est: Any) -> tuple[list[Any], Any]:
    """(affine steps, final estimator) of a Pipeline, or ([], est)."""
    if _is_sklearn(est) and _name(est) == "Pipeline":
        steps = [s for _, s in est.steps]
        return steps[:-1], steps[-1]
    return [], est


def _calibrated_ok(est: Any) -> bool:
    if not (_is_sklearn(est) and _name(est) == "CalibratedClassifierCV"):
        return False
    if getattr(est, "method", None) != "sigmoid":
        return False
    for cc in getattr(est, "calibrated_classifiers_", []):
        pre, final = _split(cc.estimator)
        if not (all(map(_affine_ok, pre)) and _linear_ok(final)):
            return False
        if not all(_name(c) == "_SigmoidCalibration" for c in cc.calibrators):
            return False
    return bool(getattr(est, "calibrated_classifiers_", None))


def supports(est: Any) -> bool:
    """Whether :func:`torch_module` can rebuild ``est`` exactly."""
    if est is None:
        return False
    pre, final = _split(est)
    if not all(map(_affine_ok, pre)):
        return False
    return (_is_sklearn(final) and _name(final) == "LogisticRegression"
            and hasattr(final, "coef_")) or _calibrated_ok(final)


def _affine(step: Any, d: int) -> tuple[np.ndarray, np.ndarray]:
    """(scale, shift) of a per-column affine scaler: transform(x) = x * scale + shift."""
    if step in (None, "passthrough"):
        return np.ones(d), np.zeros(d)
    names = getattr(step, "feature_names_in_", None)
    probe = np.vstack([np.zeros(d), np.ones(d)])
    if names is not None:
        import pandas as pd

        probe = pd.DataFrame(probe, columns=names)
    zero, one = np.asarray(step.transform(probe), np.float64)
    return one - zero, zero


def _decision_parts(pre: list[Any], final: Any, d: int) -> tuple[np.ndarray, np.ndarray]:
    """(W, c) with final.decision_function(steps(x)) = x @ W.T + c: the affine steps ``pre``
    folded into the linear layer."""
    W = np.atleast_2d(np.asarray(final.coef_, np.float64))
    c = np.asarray(final.intercept_, np.float64).reshape(-1)
    scale, shift = np.ones(d), np.zeros(d)
    for step in pre:  # compose x -> x * s + t, step by step
        s, t = _affine(step, d)
        scale, shift = scale * s, shift * s + t
    return W * scale, c + W @ shift


def torch_module(est: Any, d: int) -> tuple[Any, str]:
    """A float64 torch module from the model's ``d`` input columns to ``"logits"`` or
    ``"log_probabilities"`` (the second element says which), with the model's class order."""
    torch = require("torch", "a gradient attack (fgsm, pgd) on a scikit-learn model")
    from torch import nn

    pre, final = _split(est)
    if _name(final) == "LogisticRegression":
        W, c = _decision_parts(pre, final, d)
        if W.shape[0] == 1:  # binary: logits (0, z)
            W, c = np.vstack([np.zeros_like(W), W]), np.r_[0.0, c]
        layer = nn.Linear(d, W.shape[0]).double()
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(W))
            layer.bias.copy_(torch.from_numpy(c))
        return layer.eval(), "logits"

    classes = list(final.classes_)
    k = len(classes)
    parts = []
    for cc in final.calibrated_classifiers_:
        inner_pre, inner = _split(cc.estimator)
        W, c = _decision_parts([*pre, *inner_pre], inner, d)
        position = [classes.index(v) for v in inner.classes_]
        if k == 2:
            position = [1]  # binary: one decision column, for the second class
        a = np.array([cal.a_ for cal in cc.calibrators], np.float64)
        b = np.array([cal.b_ for cal in cc.calibrators], np.float64)
        parts.append(tuple(torch.from_numpy(np.array(v)) for v in (W, c, a, b, position)))

    class Calibrated(nn.Module):
        """The mean over calibrated classifiers of the normalised per-class sigmoids."""

        def forward(self, x: Any) -> Any:
            total = torch.zeros(x.shape[0], k, dtype=torch.float64)
            for W, c, a, b, position in parts:
                p = torch.sigmoid(-(a * (x @ W.T + c) + b))
                if k == 2:
                    proba = torch.cat([1.0 - p, p], dim=1)
                else:
                    proba = torch.zeros(x.shape[0], k, dtype=torch.float64)
                    proba = proba.index_copy(1, position, p)
                    denominator = proba.sum(dim=1, keepdim=True)
                    proba = torch.where(denominator != 0, proba / denominator.clamp_min(1e-300),
                                        torch.full_like(proba, 1.0 / k))
                total = total + proba
            return torch.log((total / len(parts)).clamp_min(1e-300))

    return Calibrated().eval(), "log_probabilities"


# --------------------------------------------------------------------------- the attacked copy
def has_gradients(model: Any) -> bool:
    """Whether ART can take gradients of ``model``: a torch module, or a scikit-learn model
    :mod:`audit.checks.differentiable` rebuilds exactly."""
    return model.module is not None or supports(getattr(model, "native", None))


GRADIENT_MODELS = ("torch models and scikit-learn linear models (LogisticRegression, or a linear "
                   "SVM or other linear classifier in CalibratedClassifierCV(method='sigmoid'), "
                   "optionally after StandardScaler/MinMaxScaler/MaxAbsScaler in a Pipeline)")


def gradient_module(model: Any, space: AttackSpace, columns: list[str]) -> Any:
    """A torch module from scaled perturbed columns (n, d) to the model's logits.

    ``columns`` are all the model's feature columns, in order; the columns not attacked are
    constant over the table (anything else would need a categorical, which torch models and
    the rebuilt scikit-learn models cannot take), so they are filled in from the first row.
    """
    torch = require("torch", "a gradient attack (fgsm, pgd)")
    from torch import nn

    first = {str(c): v[0] for c, v in reversed(space._arrays.items())}  # the first row
    base = torch.from_numpy(np.array([[first[c] for c in columns]], dtype=np.float64))
    index = torch.tensor([columns.index(c) for c in space.columns])
    low, span = torch.from_numpy(space.low), torch.from_numpy(space.span)
    if model.module is not None:
        inner, dtype = model.module, torch.from_numpy(np.zeros(0, model.input_dtype)).dtype
        probabilities = (model.spec.output or "logits") == "probabilities"
    else:
        inner, _ = torch_module(model.native, len(columns))
        dtype, probabilities = torch.float64, False  # logits or log-probabilities: both fit
        # the cross-entropy loss as they are

    class Unscaled(nn.Module):
        """Scaled perturbed columns -> the model's full input -> logits."""

        def __init__(self) -> None:
            super().__init__()
            # not registered as a submodule: eval()/train() must not reach it (an exported
            # program refuses them; the model was put in eval mode when it was loaded)
            object.__setattr__(self, "inner", inner)
            self.inner: Any

        def forward(self, x: Any) -> Any:
            full = base.expand(x.shape[0], -1).clone()
            full = full.index_copy(1, index, low + x.to(torch.float64) * span)
            out = self.inner(full.to(dtype))
            return torch.log(out.clamp_min(1e-12)) if probabilities else out

    return Unscaled().eval()


def art_torch(module: Any, d: int, k: int) -> Any:
    import torch
    from art.estimators.classification import PyTorchClassifier

    return PyTorchClassifier(model=module, loss=torch.nn.CrossEntropyLoss(), input_shape=(d,),
                             nb_classes=k, clip_values=(0.0, 1.0), device_type="cpu")
