"""The recalibration advice's temperature, fitted natively, against netcal's TemperatureScaling.

netcal is the reference: it is fitted here on the same rows, and its temperature and the ECE
after its scaling are compared with ``temperature_advice``'s. netcal stops its L-BFGS-B once
the gradient is below 1e-5, so as shipped it agrees with the exact optimum to about 1e-4
relative (measured at most 6e-5 on these cases, ECE after within 1e-6); with that optimizer run
to convergence (same objective, same code, tighter stopping rule) the temperatures agree to
better than 1e-7 relative (measured at most 7e-8, the floor of netcal's finite-difference
gradient) and the ECE after to 1e-8. Two cases can be solved by hand.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import scipy.optimize

from audit.checks.calibration import ADVICE_ROWS, temperature_advice

BINS = 15
# relative tolerance on T, and absolute on the ECE after scaling, against netcal as shipped
# (its gradient tolerance 1e-5 over the NLL's curvature, with room) and run to convergence
AS_SHIPPED, AS_SHIPPED_ECE = 5e-4, 1e-5  # measured: 6e-5, 1e-6
CONVERGED, CONVERGED_ECE = 2e-7, 5e-8  # measured: 7e-8, 6e-9


def _student(n: int, k: int, sharpen: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from a known logit model, and a student whose logits are the true ones
    times ``sharpen`` (over-confident above 1, under-confident below): T = sharpen fixes it."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, 4)) @ (1.5 * rng.normal(size=(4, k)))
    true = np.exp(logits - logits.max(axis=1, keepdims=True))
    true /= true.sum(axis=1, keepdims=True)
    y = (true.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1)
    z = sharpen * logits
    P = np.exp(z - z.max(axis=1, keepdims=True))
    return y, P / P.sum(axis=1, keepdims=True)


CASES = {
    "binary-over-confident-n600": (600, 2, 2.5, 1),
    "binary-over-confident-n4000": (4000, 2, 1.6, 2),
    "binary-under-confident-n600": (600, 2, 0.5, 3),
    "binary-under-confident-n4000": (4000, 2, 0.8, 4),
    "binary-calibrated-n2000": (2000, 2, 1.0, 5),
    # logits in the hundreds: most probabilities lie outside [eps, 1 - eps], so the clipping decides
    "binary-saturated-n2000": (2000, 2, 12.0, 6),
    "3class-over-confident-n600": (600, 3, 3.0, 7),
    "3class-over-confident-n4000": (4000, 3, 1.5, 8),
    "3class-under-confident-n600": (600, 3, 0.4, 9),
    "3class-under-confident-n4000": (4000, 3, 0.7, 10),
    "3class-saturated-n2000": (2000, 3, 15.0, 11),
}


def _split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows temperature_advice fits on and the rows it evaluates on."""
    order = np.random.default_rng(seed).permutation(n)
    half = min(n // 2, ADVICE_ROWS)
    return order[:half], order[n // 2:n // 2 + half]


def _converged(fun: Callable[..., float], x0: np.ndarray, args: tuple[Any, ...] = (),
               bounds: Any = None, **kw: Any) -> Any:
    """scipy's minimize as netcal calls it (L-BFGS-B, since it passes bounds), run until the
    gradient vanishes instead of stopping at 1e-5."""
    return scipy.optimize.minimize(fun, x0, args=args, bounds=bounds, method="L-BFGS-B",
                                   options={"gtol": 1e-13, "ftol": 1e-15, "maxls": 50})


def _netcal(P: np.ndarray, y: np.ndarray, fit: np.ndarray, held: np.ndarray,
            monkeypatch: pytest.MonkeyPatch, converged: bool) -> tuple[float, float]:
    """netcal's temperature (1 / its logit multiplier) fitted on ``fit``, and netcal's top-label
    ECE of its scaled probabilities on ``held``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyro's DeprecationWarning inside netcal
        pytest.importorskip("netcal")
        from netcal.metrics import ECE
        from netcal.scaling import TemperatureScaling

        with monkeypatch.context() as m:
            if converged:
                module = importlib.import_module("netcal.scaling.AbstractLogisticRegression")
                m.setattr(module, "minimize", _converged)
            binary = P.shape[1] == 2
            ts = TemperatureScaling()
            ts.fit(P[fit, 1] if binary else P[fit], y[fit])
            scaled = np.asarray(ts.transform(P[held, 1] if binary else P[held]), dtype=np.float64)
    if binary:
        scaled = np.column_stack([1.0 - scaled, scaled])
    hit = (scaled.argmax(axis=1) == y[held]).astype(np.int64)
    ece = float(ECE(bins=BINS).measure(scaled.max(axis=1), hit))
    return 1.0 / float(np.asarray(ts.temperature).reshape(-1)[0]), ece


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_temperature_equals_netcals(case: tuple[int, int, float, int],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    n, k, sharpen, seed = case
    y, P = _student(n, k, sharpen, seed)
    fit, held = _split(n, seed)
    ours = temperature_advice(y, P, seed, BINS)
    assert ours["available"] and (ours["fit_rows"], ours["eval_rows"]) == (fit.size, held.size)
    t_shipped, ece_shipped = _netcal(P, y, fit, held, monkeypatch, converged=False)
    t_converged, ece_converged = _netcal(P, y, fit, held, monkeypatch, converged=True)
    assert ours["temperature"] == pytest.approx(t_shipped, rel=AS_SHIPPED)
    assert ours["temperature"] == pytest.approx(t_converged, rel=CONVERGED)
    assert ours["ece_after"] == pytest.approx(ece_shipped, abs=AS_SHIPPED_ECE)
    assert ours["ece_after"] == pytest.approx(ece_converged, abs=CONVERGED_ECE)


@pytest.mark.parametrize("k", [2, 3])
def test_a_known_temperature_is_recovered_on_many_rows(k: int) -> None:
    # 40,000 rows: the fit sees 20,000, which pin T to a few per cent (measured: within 2.7%)
    for sharpen in (0.5, 2.0):
        y, P = _student(40_000, k, sharpen, seed=k)
        advice = temperature_advice(y, P, seed=0, bins=BINS)
        assert advice["temperature"] == pytest.approx(sharpen, rel=0.05)
        if sharpen > 1:
            assert advice["ece_after"] < advice["ece_before"]


def _by_hand(row: list[float], pattern: list[int]) -> dict[str, Any]:
    """Every one of 1,000 rows has probabilities ``row``; the fit rows' labels, and the
    evaluation rows', repeat ``pattern``."""
    n = 1000
    fit, held = _split(n, 0)
    y = np.zeros(n, dtype=np.int64)
    y[fit] = np.resize(pattern, fit.size)
    y[held] = np.resize(pattern, held.size)
    return temperature_advice(y, np.tile(row, (n, 1)), seed=0, bins=BINS)


def test_binary_by_hand() -> None:
    # every row says 0.9 for class 1 and is right 3 times in 4: the fit makes
    # sigmoid(logit(0.9) / T) = 0.75, and logit(0.75) = ln 3 = ln 9 / 2 = logit(0.9) / 2: T = 2
    advice = _by_hand([0.1, 0.9], [1, 1, 1, 0])
    assert advice["temperature"] == pytest.approx(2.0, rel=1e-12)
    assert advice["ece_before"] == pytest.approx(0.15, abs=1e-12)  # 0.9 said, 0.75 right
    assert advice["ece_after"] == pytest.approx(0.0, abs=1e-12)


def test_multiclass_by_hand() -> None:
    # every row says (0.8, 0.1, 0.1) and is right half the time: the fit makes the top class
    # 1 / (1 + 2 (1/8)^(1/T)) = 1/2, so (1/8)^(1/T) = 1/2 and T = 3
    advice = _by_hand([0.8, 0.1, 0.1], [0, 1, 0, 2])
    assert advice["temperature"] == pytest.approx(3.0, rel=1e-12)
    assert advice["ece_before"] == pytest.approx(0.3, abs=1e-12)
    assert advice["ece_after"] == pytest.approx(0.0, abs=1e-12)


def test_no_temperature_when_every_fit_row_is_ranked_right() -> None:
    # a student that is right on every row with room to spare: the likelihood rises as T -> 0
    y = np.array([0, 1, 2, 1] * 50)
    P = np.full((200, 3), 0.2)
    P[np.arange(200), y] = 0.6
    advice = temperature_advice(y, P, seed=0, bins=BINS)
    assert not advice["available"] and "without bound" in advice["reason"]


def test_uninformative_probabilities_keep_t_at_one() -> None:
    # the gradient is zero at every T: netcal stays at its start, and so do we
    y = np.array([0, 1] * 100)
    advice = temperature_advice(y, np.full((200, 2), 0.5), seed=0, bins=BINS)
    assert advice["temperature"] == 1.0
