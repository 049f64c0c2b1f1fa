"""MLflow: a run's contents (metrics with interval ends, gate verdicts as tags, provenance hashes
as params, the report files as artifacts) read back through the MLflow client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from audit.tracking import log_report, metric_key


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    return (tmp_path / "mlruns").as_uri()


def test_a_report_logged_reads_back_through_the_client(arrests_report: Any, tmp_path: Path,
                                                       store: str) -> None:
    from mlflow.tracking import MlflowClient

    report = arrests_report.to_dict()
    files = [tmp_path / "r.json"]
    files[0].write_text("{}")
    run_id = log_report(report, files, tracking_uri=store)
    run = MlflowClient(store).get_run(run_id)
    acc = next(c for c in report["checks"] if c["name"] == "accuracy")["measurements"][0]
    key = metric_key("accuracy", "accuracy", "", "student")
    assert run.data.metrics[key] == pytest.approx(acc["student"]["value"])
    assert run.data.metrics[key + "_lo"] == pytest.approx(acc["student"]["ci"][0])
    assert run.data.metrics[metric_key("accuracy", "accuracy", "", "regression")] == \
        pytest.approx(acc["regression"]["value"])
    assert run.data.tags["distill_audit.verdict"] == report["verdict"]
    assert run.data.tags["gate/accuracy/min"] == "pass"
    fair = next(c for c in report["checks"] if c["name"] == "parity_amplification")
    scope = fair["gates"][0]["scope"]
    assert run.data.tags[f"gate/parity_amplification/max_regression/{scope}"] == \
        fair["gates"][0]["status"]
    # the example suite's baseline: its value, and the student's regression from it
    check = next(c for c in report["checks"] if c["name"] == "accuracy")
    assert run.data.metrics[metric_key("accuracy", "accuracy", "", "baseline")] == \
        pytest.approx(check["baseline"][0]["student"]["value"])
    assert run.data.metrics[metric_key("accuracy", "accuracy", "", "baseline_regression_hi")] == \
        pytest.approx(check["versus_baseline"][0]["regression"]["ci"][1])
    assert run.data.tags["gate/accuracy/max_baseline_regression"] == "pass"
    assert run.data.params["baseline.sha256"] == report["provenance"]["baseline"]["sha256"]
    assert run.data.params["teacher.sha256"] == report["provenance"]["teacher"]["sha256"]
    assert run.data.params["data.eval.sha256"] == report["provenance"]["data"]["eval"]["sha256"]
    assert [a.path for a in MlflowClient(store).list_artifacts(run_id)] == ["r.json"]


def test_names_are_made_mlflow_safe() -> None:
    assert metric_key("c<1>", "m", "by a|b", "student") == "c_1_/m/by a_b/student"


def test_run_mlflow_logs_the_files_it_wrote(built: Any, tmp_path: Path, store: str,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from mlflow.tracking import MlflowClient

    from audit.cli import main

    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(tmp_path)
    code = main(["run", str(root / "suites" / "arrests.audit.yaml"), "-k", "accuracy",
                 "--report-dir", str(tmp_path / "r"), "--mlflow", store, "-q"])
    assert code == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "mlflow run " in x)
    run_id = line.rsplit(" ", 1)[-1]
    names = sorted(a.path for a in MlflowClient(store).list_artifacts(run_id))
    assert {"html", "json"} <= {n.rsplit(".", 1)[-1] for n in names}
    assert not any(n.endswith(".flips.csv") for n in names)  # no fidelity check ran
