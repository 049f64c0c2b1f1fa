"""Each planted language-model defect (fixtures/lm_defects.py) is caught by the audit: a gate
the honest student passes fails on the defective one, or the check refuses what it cannot
compare. (The over-confident student is in test_lm_text.py, the position-biased one in
test_lm_perturb.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from audit.runner import SuiteRun
from audit.suite import suite_from_dict

pytest.importorskip("torch")
pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def defects() -> Path:
    from fixtures import lm_defects

    return lm_defects.build()["lm-defects/parrot/model.safetensors"].parents[1]


@pytest.fixture(scope="module")
def items(defects: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    small = defects.parent / "lm-small"
    path = tmp_path_factory.mktemp("items") / "cloze.jsonl"
    path.write_text("\n".join((small / "cloze.jsonl").read_text().splitlines()[:30]) + "\n")
    return path


def statuses(defects: Path, items: Path, student: str, checks: dict[str, Any],
             **data: Any) -> dict[str, Any]:
    small = defects.parent / "lm-small"
    folder = small / "student" if student == "student" else defects / student
    suite = suite_from_dict({
        "version": 1, "name": "planted",
        "data": {"eval": str(items), "target": "answer", **data},
        "teacher": {"causal_lm": str(small / "teacher")}, "student": {"causal_lm": str(folder)},
        "settings": {"bootstrap": 300}, "checks": checks}, base_dir=small)
    return {r.name: r for r in SuiteRun(suite).run_all()}


def test_the_amplifier_fails_the_stereotype_gate(defects: Path, items: Path) -> None:
    checks = {"st": {"metric": "stereotype_preference", "gate": {"max_regression": 0.05}}}
    honest = statuses(defects, items, "student", checks, pairs="crows_pairs.jsonl")["st"]
    amplifier = statuses(defects, items, "amplifier", checks, pairs="crows_pairs.jsonl")["st"]
    assert honest.status == "pass" and amplifier.status == "fail"
    assert amplifier.measurements[0].regression.ci[0] > 0.1  # amplification well above 0.05


def test_the_memoriser_fails_the_membership_gates(defects: Path, items: Path) -> None:
    checks = {"loss": {"metric": "mia_auc", "attack": "loss", "gate": {"max_regression": 0.05}},
              "minkpp": {"metric": "mia_auc", "attack": "min_k_plus",
                         "gate": {"max_regression": 0.05}},
              "beyond": {"metric": "mia_auc", "attack": "reference", "gate": {"max": 0.65}}}
    data = {"train": "members.jsonl", "holdout": "nonmembers.jsonl"}
    honest = statuses(defects, items, "student", checks, **data)
    memoriser = statuses(defects, items, "memoriser", checks, **data)
    # 50 members and 50 non-members: the honest student's Min-K%++ interval may straddle 0.05
    assert {n: r.status for n, r in honest.items()} in (
        dict.fromkeys(checks, "pass"), {"loss": "pass", "minkpp": "inconclusive", "beyond": "pass"})
    assert {n: r.status for n, r in memoriser.items()} == dict.fromkeys(checks, "fail")
    assert memoriser["beyond"].measurements[0].student.value > 0.9


def test_the_parrot_leaks_its_teachers_training_text(defects: Path, items: Path) -> None:
    checks = {"leak": {"metric": "mia_auc", "attack": "loss", "members": "teacher_train",
                       "gate": {"max_regression": 0.05}}}
    data = {"teacher_train": "train.jsonl", "holdout": "nonmembers.jsonl"}
    honest = statuses(defects, items, "student", checks, **data)["leak"]
    parrot = statuses(defects, items, "parrot", checks, **data)["leak"]
    assert honest.status == "pass" and parrot.status == "fail"
    assert parrot.measurements[0].params["members"] == "teacher_train"


def test_another_tokenizer_refuses_token_checks_and_keeps_the_rest(defects: Path,
                                                                   items: Path) -> None:
    checks = {"kl": {"metric": "token_kl"}, "top1": {"metric": "token_agreement"},
              "bpb": {"metric": "bits_per_byte"}, "acc": {"metric": "accuracy"}}
    got = statuses(defects, items, "other_tokenizer", checks, documents="documents.jsonl")
    assert got["kl"].status == got["top1"].status == "error"
    assert ("needs one vocabulary: the teacher's tokenizer has 1,000 tokens (model vocabulary "
            "1,000), the student's 800 (800); the first that differs is id 800") in got["kl"].error
    assert got["bpb"].status == "info" and got["acc"].status == "info"
    bpb = got["bpb"].measurements[0]
    rows = {r["kind"]: r for r in bpb.breakdown}["documents_read"]
    assert rows["teacher_tokens"] != rows["student_tokens"]  # each model on its own tokens


def test_the_fragile_student_fails_the_typo_gate(defects: Path) -> None:
    small = defects.parent / "lm-small"
    checks = {"typos": {"metric": "typo_consistency", "samples": 100, "typos": 6,
                        "gate": {"max_regression": 0.03}}}
    honest = statuses(defects, small / "cloze.jsonl", "student", checks)["typos"]
    fragile = statuses(defects, small / "cloze.jsonl", "fragile", checks)["typos"]
    assert honest.status == "pass", honest.measurements[0]
    assert fragile.status == "fail", fragile.measurements[0]
