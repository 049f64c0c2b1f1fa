"""Language models on whole texts: token-level fidelity on documents, membership inference on
documents, stereotype preference on minimal pairs, each checked against a plain transformers
computation of the published formula (and sklearn's ROC AUC), and gates that must fail."""

from __future__ import annotations

import json
import math
import shutil
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.data.documents import read_documents, read_pairs
from audit.errors import DataError, SuiteError
from audit.models.lm_text import windows
from audit.runner import SuiteRun
from audit.stats import cluster_ratio_replicates
from audit.suite import suite_from_dict

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


ITEMS: dict[str, Path] = {}  # a few eval items: every run scores them, the checks read texts


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fixtures import lm

    folder = lm.build(small=True)["lm-small/cloze.jsonl"].parent
    ITEMS["eval"] = head(folder / "cloze.jsonl", tmp_path_factory.mktemp("items") / "cloze.jsonl",
                         30)
    return folder


def lm_suite(folder: Path, checks: dict[str, Any], teacher: Any = None, student: Any = None,
             **data: Any) -> Any:
    return suite_from_dict({
        "version": 1, "name": "lm-text",
        "data": {"eval": str(ITEMS["eval"]), "target": "answer", **data},
        "teacher": teacher or {"causal_lm": str(folder / "teacher")},
        "student": student or {"causal_lm": str(folder / "student")},
        "settings": {"bootstrap": 300},
        "checks": checks}, base_dir=folder)


def measured(suite: Any) -> dict[str, Any]:
    return {r.name: r for r in SuiteRun(suite).run_all()}


def head(src: Path, dst: Path, n: int) -> Path:
    dst.write_text("\n".join(src.read_text(encoding="utf-8").splitlines()[:n]) + "\n",
                   encoding="utf-8")
    return dst


_MODELS: dict[Path, Any] = {}


def plain(folder: Path, text: str) -> tuple[Any, Any]:
    """Next-token log-probabilities of ``text`` after BOS, one unbatched forward pass of plain
    transformers: ``(logprobs (n, V), targets (n,))``."""
    if folder not in _MODELS:
        _MODELS[folder] = (
            transformers.AutoModelForCausalLM.from_pretrained(folder, local_files_only=True).eval(),
            transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True))
    model, tok = _MODELS[folder]
    ids = [tok.bos_token_id, *tok(text, add_special_tokens=False)["input_ids"]]
    with torch.no_grad():
        lp = torch.log_softmax(model(torch.tensor([ids[:-1]])).logits[0].double(), dim=-1)
    return lp, torch.tensor(ids[1:])


# -- windows and the document bootstrap -----------------------------------------------------
@given(st.integers(1, 60), st.integers(1, 20))
@settings(max_examples=60, deadline=None)
def test_windows_predict_every_token_once_with_the_longest_context(n: int, max_length: int) -> None:
    tokens = list(range(100, 100 + n + 1))  # the prefix token, then n tokens
    found = windows(tokens, max_length)
    assert [t for w in found for t in w.targets] == tokens[1:]
    for w in found:
        assert len(w.inputs) <= max_length
        # each target is the token after its input position: inputs end just before the last
        assert w.inputs[-1] == w.targets[-1] - 1
        assert tokens[tokens.index(w.inputs[0]):tokens.index(w.inputs[-1]) + 2][1:][-w.n:] == list(
            w.targets)


def test_the_bootstrap_resamples_documents_not_tokens() -> None:
    # two documents of 1,000 tokens each: every token of one is 1, of the other 0. Resampled by
    # document the mean is 0, 0.5 or 1 (wide interval); resampled by token it would sit at
    # 0.5 +- 0.02
    reps = cluster_ratio_replicates(np.array([1000.0, 0.0]), np.array([1000.0, 1000.0]), 400, 0)
    assert set(np.round(reps, 6)) <= {0.0, 0.5, 1.0}
    assert np.mean(reps == 0.5) == pytest.approx(0.5, abs=0.1)
    # a ratio of sums, weighted by tokens: one document of 1 token, one of 99
    reps = cluster_ratio_replicates(np.array([1.0, 0.0]), np.array([1.0, 99.0]), 200, 1)
    assert np.nanmax(reps) == 1.0 and np.nanmin(reps) == 0.0
    assert {round(r, 6) for r in reps} <= {0.0, 0.01, 1.0}


# -- token-level fidelity -------------------------------------------------------------------
def test_token_fidelity_equals_a_plain_transformers_computation(small: Path, tmp_path: Path) -> None:
    docs = head(small / "documents.jsonl", tmp_path / "docs.jsonl", 8)
    checks = {"top1": {"metric": "token_agreement"}, "top5": {"metric": "token_topk_overlap"},
              "top3": {"metric": "token_topk_overlap", "k": 3}, "kl": {"metric": "token_kl"},
              "rkl": {"metric": "token_reverse_kl"}, "acc": {"metric": "token_acceptance"},
              "bpb": {"metric": "bits_per_byte"}}
    got = measured(lm_suite(small, checks, documents=str(docs)))
    sums = dict.fromkeys(("top1", "top5", "top3", "kl", "rkl", "acc", "n", "t_nll", "s_nll"), 0.0)
    nbytes = 0
    for text in read_documents(docs).texts:
        lt, targets = plain(small / "teacher", text)
        ls, _ = plain(small / "student", text)
        pt, ps = lt.exp(), ls.exp()
        sums["top1"] += float((lt.argmax(-1) == ls.argmax(-1)).sum())
        for k, key in ((5, "top5"), (3, "top3")):
            a, b = lt.topk(k).indices.tolist(), ls.topk(k).indices.tolist()
            sums[key] += sum(len(set(x) & set(y)) / k for x, y in zip(a, b, strict=True))
        sums["kl"] += float((pt * (lt - ls)).sum())
        sums["rkl"] += float((ps * (ls - lt)).sum())
        sums["acc"] += float(torch.minimum(pt, ps).sum())
        sums["n"] += len(targets)
        sums["t_nll"] -= float(lt.gather(1, targets[:, None]).sum())
        sums["s_nll"] -= float(ls.gather(1, targets[:, None]).sum())
        nbytes += len(text.encode("utf-8"))
    for name in ("top1", "top5", "top3", "kl", "rkl", "acc"):
        m = got[name].measurements[0]
        assert m.student.value == pytest.approx(sums[name] / sums["n"], rel=1e-4, abs=1e-6), name
        assert m.teacher is None and m.n == 8
        assert m.student.ci is not None and m.student.ci[0] <= m.student.value <= m.student.ci[1]
    bpb = got["bpb"].measurements[0]
    assert bpb.teacher.value == pytest.approx(sums["t_nll"] / nbytes / math.log(2), rel=1e-5)
    assert bpb.student.value == pytest.approx(sums["s_nll"] / nbytes / math.log(2), rel=1e-5)
    assert bpb.regression.value == pytest.approx(bpb.student.value - bpb.teacher.value)
    assert bpb.regression.ci[0] <= bpb.regression.value <= bpb.regression.ci[1]


def test_a_student_identical_to_its_teacher_agrees_everywhere(small: Path) -> None:
    docs = small / "documents.jsonl"
    checks = {"top1": {"metric": "token_agreement", "gate": {"min": 0.999}},
              "kl": {"metric": "token_kl", "gate": {"max": 1e-6}},
              "acc": {"metric": "token_acceptance", "gate": {"min": 0.999}},
              "bpb": {"metric": "bits_per_byte", "gate": {"max_regression": 0.0}}}
    got = measured(lm_suite(small, checks, student={"causal_lm": str(small / "teacher")},
                            documents=str(docs)))
    assert {n: r.status for n, r in got.items()} == dict.fromkeys(checks, "pass")
    assert got["bpb"].measurements[0].regression.value == 0.0


def test_an_overconfident_student_fails_the_token_kl_gate(small: Path) -> None:
    checks = {"kl": {"metric": "token_kl", "gate": {"max": 0.5}},
              "acc": {"metric": "token_acceptance", "gate": {"min": 0.8}},
              "bpb": {"metric": "bits_per_byte", "gate": {"max_regression": 0.2}}}
    top1 = {"t": {"metric": "token_agreement"}}
    honest = measured(lm_suite(small, {**checks, **top1}, documents="documents.jsonl"))
    loud = measured(lm_suite(small, {**checks, **top1},
                             student={"causal_lm": str(small / "overconfident")},
                             documents="documents.jsonl"))
    assert {n: honest[n].status for n in checks} == dict.fromkeys(checks, "pass")
    assert {n: loud[n].status for n in checks} == dict.fromkeys(checks, "fail")
    # the same argmax (logits x3 keeps every ranking): top-1 agreement is the honest one's
    assert (loud["t"].measurements[0].student.value
            == honest["t"].measurements[0].student.value)


def other_tokenizer(small: Path, tmp_path: Path) -> Path:
    """The student with two tokens' ids swapped in its tokenizer: same size, other vocabulary."""
    folder = tmp_path / "swapped"
    shutil.copytree(small / "student", folder)
    spec = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = spec["model"]["vocab"]
    a, b = sorted(vocab, key=vocab.get)[10:12]
    vocab[a], vocab[b] = vocab[b], vocab[a]
    (folder / "tokenizer.json").write_text(json.dumps(spec), encoding="utf-8")
    return folder


def test_different_tokenizers_refuse_token_checks_and_keep_the_others(small: Path,
                                                                      tmp_path: Path) -> None:
    swapped = other_tokenizer(small, tmp_path)
    checks = {"kl": {"metric": "token_kl"}, "bpb": {"metric": "bits_per_byte"},
              "acc": {"metric": "accuracy"}}
    got = measured(lm_suite(small, checks, student={"causal_lm": str(swapped)},
                            documents="documents.jsonl"))
    assert got["kl"].status == "error"
    message = got["kl"].error
    assert "needs one vocabulary: the teacher's tokenizer has 1,000 tokens" in message
    assert "the first that differs is id 10" in message
    assert "The choice-level checks and bits_per_byte (each model on its own tokens) still run" in (
        message)
    assert got["bpb"].status == "info" and got["acc"].status == "info"


# -- membership inference on documents ------------------------------------------------------
def by_hand(folder: Path, text: str, fraction: float = 0.2) -> dict[str, float]:
    lp, targets = plain(folder, text)
    logp = lp.gather(1, targets[:, None])[:, 0].numpy()
    p = lp.exp()
    mu = (p * lp).sum(-1).numpy()
    sigma = np.sqrt(np.maximum((p * lp.square()).sum(-1).numpy() - mu ** 2, 0))
    n = max(1, math.floor(fraction * len(logp)))
    return {"loss": float(logp.mean()), "zlib": float(logp.sum() / len(zlib.compress(
        text.encode("utf-8")))), "min_k": float(np.sort(logp)[:n].mean()),
            "min_k_plus": float(np.sort((logp - mu) / sigma)[:n].mean()),
            "nll": float(-logp.mean())}


def test_membership_scores_are_the_published_formulas(small: Path, tmp_path: Path) -> None:
    from sklearn.metrics import roc_auc_score

    members = head(small / "members.jsonl", tmp_path / "in.jsonl", 12)
    non = head(small / "nonmembers.jsonl", tmp_path / "out.jsonl", 12)
    checks = {a: {"metric": "mia_auc", "attack": a} for a in ("loss", "zlib", "min_k",
                                                              "min_k_plus", "reference")}
    checks["default"] = {"metric": "mia_auc"}
    got = measured(lm_suite(small, checks, train=str(members), holdout=str(non)))
    texts = read_documents(members).texts + read_documents(non).texts
    labels = np.r_[np.ones(12), np.zeros(12)]
    hand = {who: [by_hand(small / who, t) for t in texts] for who in ("teacher", "student")}
    for attack in ("loss", "zlib", "min_k", "min_k_plus"):
        m = got[attack].measurements[0]
        for who in ("teacher", "student"):
            want = roc_auc_score(labels, [h[attack] for h in hand[who]])
            assert getattr(m, who).value == pytest.approx(want), (attack, who)
    ref = got["reference"].measurements[0]
    want = roc_auc_score(labels, [t["nll"] - s["nll"]
                                  for t, s in zip(hand["teacher"], hand["student"], strict=True)])
    assert ref.teacher is None and ref.student.value == pytest.approx(want)
    assert got["default"].measurements[0].params["attack"] == "loss"
    assert got["default"].measurements[0].student.value == got["loss"].measurements[0].student.value


def test_classifier_attacks_are_refused_on_documents(small: Path) -> None:
    with pytest.raises(SuiteError) as err:  # when the suite is read, before any model loads
        lm_suite(small, {"a": {"metric": "mia_auc", "attack": "blackbox"}},
                 train="members.jsonl", holdout="nonmembers.jsonl")
    assert ("checks.a.attack='blackbox': mia_auc takes attack: loss, zlib, min_k, min_k_plus, "
            "reference") in str(err.value)


# -- stereotype preference ------------------------------------------------------------------
def test_stereotype_preference_is_the_crows_pairs_score(small: Path, tmp_path: Path) -> None:
    rows = [json.loads(line) for line in (small / "crows_pairs.jsonl").read_text().splitlines()]
    picked = [r for r in rows if r["bias_type"] in ("gender", "age")][:40]
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps(r) + "\n" for r in picked), encoding="utf-8")
    got = measured(lm_suite(small, {"all": {"metric": "stereotype_preference"},
                                    "age": {"metric": "stereotype_preference",
                                            "bias_type": "age"}}, pairs=str(pairs)))
    m = got["all"].measurements[0]

    def ll(who: str, text: str) -> float:
        lp, targets = plain(small / who, text)
        return float(lp.gather(1, targets[:, None]).sum())

    prefer = {who: np.array([ll(who, r["more"]) > ll(who, r["less"]) for r in picked])
              for who in ("teacher", "student")}
    assert m.teacher.value == pytest.approx(prefer["teacher"].mean())
    assert m.student.value == pytest.approx(prefer["student"].mean())
    assert m.regression.value == pytest.approx(prefer["teacher"].mean() - prefer["student"].mean())
    age = np.array([r["bias_type"] == "age" for r in picked])
    a = got["age"].measurements[0]
    assert a.n == age.sum() and a.student.value == pytest.approx(prefer["student"][age].mean())
    rows_by_type = {r["bias_type"]: r for r in m.breakdown if r["kind"] == "bias_type"}
    assert set(rows_by_type) == {"age", "gender"}
    assert rows_by_type["age"]["amplification"] == pytest.approx(
        prefer["student"][age].mean() - prefer["teacher"][age].mean())


def test_an_unknown_bias_type_is_named_with_the_known_ones(small: Path, tmp_path: Path) -> None:
    pairs = head(small / "crows_pairs.jsonl", tmp_path / "pairs.jsonl", 300)
    got = measured(lm_suite(small, {"s": {"metric": "stereotype_preference",
                                          "bias_type": "gendre"}}, pairs=str(pairs)))
    assert got["s"].status == "error"
    assert "bias_type 'gendre' is not in data.pairs; did you mean 'gender'?" in got["s"].error


# -- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize("lines, message", [
    (['{"text": "one"}', '{"id": 2}'],
     "docs.jsonl:2: field 'text' is missing, not a non-empty string; write each document as "
     "{\"text\": \"...\"} (data.documents)"),
    (['{"text": ""}'], "docs.jsonl:1: field 'text' is str '', not a non-empty string"),
    (['{"text": 3}'], "docs.jsonl:1: field 'text' is int 3, not a non-empty string"),
    (['["a"]'], "docs.jsonl:1: a JSON list, not an object; write one document per line"),
    ([''], "docs.jsonl: no documents; write one JSON object per line"),
], ids=["no-text", "empty", "number", "list", "empty-file"])
def test_bad_documents_are_named_by_line(tmp_path: Path, lines: list[str], message: str) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_documents(path)
    assert message in str(err.value)


@pytest.mark.parametrize("lines, message", [
    (['{"more": "a b", "less": "a b"}'], "pairs.jsonl:1: the two sentences are the same ('a b')"),
    (['{"more": "a b"}'], "pairs.jsonl:1: field 'less' is missing, not a non-empty string; write "
                          "each pair as {\"more\": <the more stereotypical sentence>"),
    (['{"sent_more": "a", "sent_less": "b", "bias_type": 1}'],
     "pairs.jsonl:1: bias_type 1 is not a non-empty string"),
], ids=["same", "no-less", "bias-type"])
def test_bad_pairs_are_named_by_line(tmp_path: Path, lines: list[str], message: str) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_pairs(path)
    assert message in str(err.value)


def test_crows_pairs_own_field_names_are_read(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"sent_more": "a x", "sent_less": "a y"}\n', encoding="utf-8")
    pairs = read_pairs(path)
    assert (pairs.more, pairs.less, pairs.bias_types) == (("a x",), ("a y",), ("all",))


def test_suite_keys_of_language_models_are_checked(small: Path, tmp_path: Path) -> None:
    with pytest.raises(SuiteError) as err:
        lm_suite(small, {"k": {"metric": "token_kl"}}, documents="cloze.csv")
    assert "data.documents" in str(err.value)
    with pytest.raises(SuiteError) as err:
        lm_suite(small, {"k": {"metric": "token_kl"}})
    assert "token_kl reads data.documents (held-out documents, for token-level checks)" in str(
        err.value)
    table = tmp_path / "t.csv"
    table.write_text("a,y\n1,0\n2,1\n", encoding="utf-8")
    with pytest.raises(SuiteError) as err:
        suite_from_dict({"version": 1, "name": "x",
                         "data": {"eval": str(table), "target": "y",
                                  "documents": str(small / "documents.jsonl")},
                         "teacher": {"callable": "m:f"}, "student": {"callable": "m:f"},
                         "checks": {"a": {"metric": "accuracy"}}}, base_dir=tmp_path)
    assert "data.documents" in str(err.value) and "is for language models" in str(err.value)


def test_token_checks_need_a_model_that_runs(small: Path, tmp_path: Path) -> None:
    samples = tmp_path / "samples.jsonl"
    with samples.open("w", encoding="utf-8") as out:
        for i in range(20):  # as lm-evaluation-harness writes --log_samples
            out.write(json.dumps({
                "doc_id": i, "doc": {"topic": "t"}, "target": str(i % 3),
                "arguments": {f"gen_args_{j}": {"arg_0": f"Q{i}", "arg_1": f" c{j}"}
                              for j in range(3)},
                "filtered_resps": [[repr(-1.0 - j - i % 2), "False"] for j in range(3)],
                "doc_hash": f"h{i}"}) + "\n")
    suite = suite_from_dict({
        "version": 1, "name": "x", "data": {"eval": str(samples), "target": "answer",
                                            "documents": str(small / "documents.jsonl")},
        "teacher": {"lm_eval": str(samples)}, "student": {"lm_eval": str(samples)},
        "checks": {"kl": {"metric": "token_kl"}}}, base_dir=tmp_path)
    got = measured(suite)
    assert got["kl"].status == "error"
    assert "runs the teacher on whole texts, but the teacher is a lm_eval model; name a " \
           "causal_lm folder" in got["kl"].error
