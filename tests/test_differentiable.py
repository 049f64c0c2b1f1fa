"""The torch rebuilds of scikit-learn models used by white-box attacks: equal to the model's own
predict_proba (so the gradients are those of what is scored), for every supported shape, and
refused for everything else."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression, RidgeClassifier, SGDClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, OneHotEncoder, StandardScaler
from sklearn.svm import SVC, LinearSVC

from audit.checks.differentiable import supports, torch_module


def _data(kind: str) -> tuple[pd.DataFrame, np.ndarray]:
    X, y = (load_breast_cancer if kind == "binary" else load_wine)(return_X_y=True, as_frame=True)
    return X, y.to_numpy()


SUPPORTED: dict[str, Any] = {
    "lr": lambda: LogisticRegression(max_iter=5000),
    "scaled lr": lambda: make_pipeline(StandardScaler(), LogisticRegression()),
    "two scalers, lr": lambda: make_pipeline(MinMaxScaler(), MaxAbsScaler(), LogisticRegression()),
    "calibrated linearsvc": lambda: CalibratedClassifierCV(make_pipeline(StandardScaler(),
                                                                         LinearSVC())),
    "scaled calibrated sgd": lambda: make_pipeline(
        StandardScaler(), CalibratedClassifierCV(SGDClassifier(random_state=0), cv=3)),
    "calibrated ridge, one fit": lambda: CalibratedClassifierCV(
        make_pipeline(StandardScaler(), RidgeClassifier()), ensemble=False),
    "calibrated lr": lambda: CalibratedClassifierCV(make_pipeline(StandardScaler(),
                                                                  LogisticRegression())),
}


@pytest.mark.parametrize("kind", ["binary", "multiclass"])
@pytest.mark.parametrize("name", list(SUPPORTED))
def test_the_rebuild_equals_predict_proba(name: str, kind: str) -> None:
    import torch

    X, y = _data(kind)
    model = SUPPORTED[name]().fit(X, y)
    assert supports(model)
    module, output = torch_module(model, X.shape[1])
    x = torch.from_numpy(np.array(X, dtype=np.float64)).requires_grad_(True)
    out = module(x)
    mine = torch.softmax(out, dim=1) if output == "logits" else torch.exp(out)
    assert np.allclose(mine.detach().numpy(), model.predict_proba(X), rtol=0, atol=1e-9)
    torch.log_softmax(out, dim=1)[:, 0].sum().backward()  # and it has gradients
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_a_binary_linear_svc_in_calibration() -> None:
    import torch

    X, y = _data("binary")
    model = CalibratedClassifierCV(make_pipeline(StandardScaler(), SVC(kernel="linear")), cv=3)
    model.fit(X, y)
    module, _ = torch_module(model, X.shape[1])
    with torch.no_grad():
        mine = torch.exp(module(torch.from_numpy(np.array(X, dtype=np.float64)))).numpy()
    # libsvm computes the decision from its support vectors: equal to 1e-8, not to the last bit
    assert np.allclose(mine, model.predict_proba(X), rtol=0, atol=1e-6)


UNSUPPORTED: dict[str, Any] = {
    "forest": lambda: RandomForestClassifier(n_estimators=5, random_state=0),
    "rbf svc": lambda: CalibratedClassifierCV(SVC()),
    "isotonic": lambda: CalibratedClassifierCV(LinearSVC(), method="isotonic"),
    "clipped scaler": lambda: make_pipeline(MinMaxScaler(clip=True), LogisticRegression()),
    "one-hot": lambda: make_pipeline(OneHotEncoder(handle_unknown="ignore"), LogisticRegression()),
    "multiclass linear svc (one-vs-one)": lambda: CalibratedClassifierCV(SVC(kernel="linear")),
}


@pytest.mark.parametrize("name", list(UNSUPPORTED))
def test_everything_else_has_no_gradients(name: str) -> None:
    X, y = _data("multiclass")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = UNSUPPORTED[name]().fit(X, y)
    assert not supports(model)


def test_unfitted_and_foreign_objects() -> None:
    assert not supports(None) and not supports(object())
    assert not supports(LogisticRegression())  # not fitted: no coef_
