"""Attack settings and caps that must be refused, one small case each, asserting the exact
message: when the suite is read (file, line, key path, value, what was expected), or when the
check runs (the check errors with a one-line reason and the fix, and nothing is measured).

Every case is one check ``r`` in a small suite of two trusted pickles (a logistic regression
teacher, a decision-tree student) on 300 train and 300 eval rows of two float columns x1, x2
(``tests/test_privacy._synthetic``). The working directory is the case's ``tmp_path``, so
paths in messages are relative.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from audit import SuiteRun, load_suite
from audit.errors import SuiteError
from tests.test_privacy import _synthetic

# The suite as written by yaml.safe_dump(sort_keys=True): line 1 "checks:", 2 "  r:", then the
# check's keys in alphabetical order from line 3.
HSJ = {"metric": "robust_accuracy", "attack": "hopskipjump"}
DB = {"metric": "mia_auc", "attack": "decision_boundary"}
ROWS_CAPPED = ("the wall-clock cap (max_seconds 1e-09) stopped {what} on the teacher "
               "(teacher.pkl) after 0 of the {todo} rows it had to attack (the ones it "
               "classifies correctly among {among}); a result must cover the whole sample, so "
               "none is reported: raise max_seconds or lower samples")
EVAL_20 = "the 20 sampled eval rows, samples: 20"


def refused(check: dict[str, Any], expected: str, *, id: str) -> Any:  # noqa: A002
    return pytest.param(check, expected, id=id)


READ = [
    refused({**HSJ, "samples": 5}, "x.audit.yaml:5 checks.r.samples=5: must be at least 10",
            id="robustness-samples-below-10"),
    refused({**DB, "samples": 5}, "x.audit.yaml:5 checks.r.samples=5: must be at least 10",
            id="decision-boundary-samples-below-10"),
    refused({**HSJ, "samples": 10.5}, "x.audit.yaml:5 checks.r.samples=10.5: must be an integer",
            id="samples-not-an-integer"),
    refused({**HSJ, "max_seconds": 0}, "x.audit.yaml:4 checks.r.max_seconds=0: must be above 0",
            id="cap-zero"),
    refused({**DB, "max_seconds": -5}, "x.audit.yaml:4 checks.r.max_seconds=-5: must be above 0",
            id="decision-boundary-cap-negative"),
    refused({**HSJ, "max_seconds": "fast"},
            "x.audit.yaml:4 checks.r.max_seconds='fast': must be a number", id="cap-not-a-number"),
    refused({**HSJ, "eps": [0]}, "x.audit.yaml:5 checks.r.eps[0]=0: must be above 0",
            id="eps-zero"),
    refused({**HSJ, "eps": [0.1, -0.1]}, "x.audit.yaml:6 checks.r.eps[1]=-0.1: must be above 0",
            id="eps-negative"),
    refused({**HSJ, "eps": 0.1}, "x.audit.yaml:4 checks.r.eps=0.1: must be a non-empty list of "
                                 "numbers", id="eps-not-a-list"),
    refused({**HSJ, "norm": "1"}, "x.audit.yaml:5 checks.r.norm='1': must be one of inf, 2",
            id="norm-unknown"),
    refused({"metric": "robust_accuracy", "attack": "hopskipjmp"},
            "x.audit.yaml:3 checks.r.attack='hopskipjmp': must be one of auto, strongest, fgsm, "
            "pgd, hopskipjump, noise, loss_threshold, blackbox, label_only, decision_boundary, "
            "loss, zlib, min_k, min_k_plus, reference; did you mean 'hopskipjump'?",
            id="attack-misspelt"),
    refused({"metric": "robust_accuracy", "attack": "decision_boundary"},
            "x.audit.yaml:3 checks.r.attack='decision_boundary': robust_accuracy takes attack: "
            "auto, strongest, fgsm, pgd, hopskipjump, noise", id="membership-attack-on-robustness"),
    refused({"metric": "mia_auc", "attack": "hopskipjump"},
            "x.audit.yaml:3 checks.r.attack='hopskipjump': mia_auc takes attack: loss_threshold, "
            "blackbox, label_only, decision_boundary", id="evasion-attack-on-membership"),
]

RUN = [
    refused({**HSJ, "samples": 20, "max_seconds": 1e-9},
            ROWS_CAPPED.format(what="hopskipjump", todo=15, among=EVAL_20),
            id="robustness-cap-reached"),
    refused({"metric": "transfer_accuracy", "attack": "hopskipjump", "samples": 20,
             "max_seconds": 1e-9},
            ROWS_CAPPED.format(what="hopskipjump", todo=15, among=EVAL_20),
            id="transfer-cap-reached"),
    refused({**DB, "samples": 20, "max_seconds": 1e-9},
            ROWS_CAPPED.format(what="the decision-boundary attack", todo=29,
                               among="the 20 sampled members and 20 non-members, samples: 20"),
            id="decision-boundary-cap-reached"),
    refused({**HSJ, "eps": [10]},
            "robust_accuracy: eps 10 (inf-norm) is larger than 1, a whole column range, so it "
            "allows every point of the box; eps is a fraction of each numeric column's [min, max] "
            "range: write 0.1 for a tenth of the range", id="eps-in-column-units"),
    refused({"metric": "robust_accuracy", "attack": "noise", "norm": "2", "eps": [0.5, 3]},
            "robust_accuracy: eps 3 (2-norm) is larger than sqrt(2) = 1.41, the diagonal of the 2 "
            "scaled columns, so it allows every point of the box; eps is a fraction of each "
            "numeric column's [min, max] range: write 0.1 for a tenth of the range",
            id="l2-eps-beyond-the-diagonal"),
]


def _suite(folder: Path, check: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Path:
    path, _ = _synthetic(folder, {"r": check})
    monkeypatch.chdir(folder)
    target = folder / "x.audit.yaml"
    path.rename(target)
    return Path(target.name)


@pytest.mark.parametrize(("check", "expected"), READ)
def test_refused_when_the_suite_is_read(check: dict[str, Any], expected: str, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    path = _suite(tmp_path, check, monkeypatch)
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    assert str(info.value) == expected


@pytest.mark.parametrize(("check", "expected"), RUN)
def test_refused_when_the_check_runs(check: dict[str, Any], expected: str, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = _suite(tmp_path, check, monkeypatch)
    result = SuiteRun(load_suite(path)).run_check("r")
    assert result.status == "error" and not result.measurements and not result.gates
    assert result.error == expected
    assert "\n" not in result.error and "Traceback" not in result.error


@pytest.mark.parametrize(("check", "note"), [
    pytest.param({"metric": "robust_accuracy", "attack": "noise", "eps": [0.1],
                  "max_seconds": 5},
                 "max_seconds 5 did not apply: only hopskipjump is capped, and noise makes one "
                 "quick pass over the rows", id="robustness-noise"),
    pytest.param({"metric": "mia_auc", "max_seconds": 5},
                 "max_seconds 5 did not apply: only the decision_boundary attack is capped, and "
                 "loss_threshold makes no model calls of its own", id="membership-loss-threshold"),
])
def test_a_cap_on_an_attack_it_never_stops_is_stated(check: dict[str, Any], note: str,
                                                     tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Not refused (a suite may set one cap for attacks chosen by the models), but never
    silent: the check says the cap did not apply."""
    result = SuiteRun(load_suite(_suite(tmp_path, check, monkeypatch))).run_check("r")
    (m,) = result.measurements
    assert note in m.notes


def test_samples_beyond_the_table_attack_every_row_and_say_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not refused: fewer rows than asked is stated, never silent."""
    path = _suite(tmp_path, {"metric": "robust_accuracy", "attack": "noise", "eps": [0.1],
                             "samples": 5000}, monkeypatch)
    result = SuiteRun(load_suite(path)).run_check("r")
    (m,) = result.measurements
    assert m.n == 300
    assert "samples 5000 asked for, but the eval table has 300 rows: every row was attacked" \
        in m.notes
