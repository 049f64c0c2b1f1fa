"""Shared fixtures: the built example models and small synthetic suites."""

from __future__ import annotations

from pathlib import Path

import pytest

# pytester's in-process runs drop modules first imported inside them; numpy's C extensions
# cannot be loaded twice, so everything the plugin imports is loaded here, once.
import audit.cli  # noqa: F401
import audit.report.assemble  # noqa: F401
import audit.report.writer  # noqa: F401
import audit.runner  # noqa: F401
from audit.checks.registry import metric_names
from fixtures.build import build_all

metric_names()

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="session")
def _no_step_summary() -> None:
    """Reports written by tests must not append to a CI job's summary (GitHub Actions sets
    GITHUB_STEP_SUMMARY for every step): the tests that test it set their own."""
    import os

    os.environ.pop("GITHUB_STEP_SUMMARY", None)


@pytest.fixture(autouse=True, scope="session")
def _cache_key_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The cache's authentication key file lives under $XDG_CONFIG_HOME: keep tests out of
    the real home (pytester runs and subprocesses inherit it)."""
    import os

    if "XDG_CONFIG_HOME" not in os.environ or "DISTILL_AUDIT_TEST_CONFIG" in os.environ:
        os.environ["XDG_CONFIG_HOME"] = str(tmp_path_factory.mktemp("config"))
        os.environ["DISTILL_AUDIT_TEST_CONFIG"] = "1"


@pytest.fixture(scope="session")
def built() -> dict[str, Path]:
    """Every fixture file (built once, deterministically, offline), by relative name."""
    return build_all()


@pytest.fixture(scope="session")
def arrests(built: dict[str, Path]) -> Path:
    return built["arrests/eval.csv"].parent


@pytest.fixture(scope="session")
def digits(built: dict[str, Path]) -> Path:
    return built["digits/eval.csv"].parent


@pytest.fixture(scope="session")
def arrests_report(built: dict[str, Path]):  # type: ignore[no-untyped-def]
    """The example audit's report, run once per test process (it times models and attacks)."""
    from audit import SuiteRun, load_suite

    return SuiteRun(load_suite(ROOT / "suites" / "arrests.audit.yaml")).report()


@pytest.fixture(scope="session")
def mnist() -> Path:
    """The MNIST image pair (CNN teacher and distilled student; TorchScript, torch.export and
    ONNX), built once (cached by its manifest, about 15 s on 2 cores the first time)."""
    from fixtures.vision import build

    return build()["mnist/eval.csv"].parent


@pytest.fixture(scope="session")
def rotten() -> Path:
    """The Rotten Tomatoes text pair (BERT teacher and distilled student as transformers
    folders, the student also as ONNX), built once (about 30 s on 2 cores the first time)."""
    from fixtures.text import build

    return build()["rotten/eval.csv"].parent


@pytest.fixture(scope="session")
def poisoned() -> Path:
    """The backdoored Arrests pair (poisoned random-forest teacher, a gradient-boosting student
    that inherits the backdoor and one distilled with the trigger rows filtered out, as skops
    files), built once (cached by its manifest, about 5 s on 2 cores the first time)."""
    from fixtures.poisoned import build_poisoned

    return build_poisoned()["poisoned/eval.csv"].parent


@pytest.fixture(scope="session")
def monitor_batches() -> Path:
    """The Arrests production simulation (20 daily batches of logged teacher and student
    probabilities, in distribution then drifting; late label deliveries), built once after the
    arrests fixtures (cached by its manifest, about 3 s on 2 cores the first time)."""
    from fixtures.monitor import build_monitor

    return build_monitor()["monitor/labels.csv"].parent


@pytest.fixture(scope="session")
def quantized() -> Path:
    """The compressed-student pair (a float MLP student distilled from the arrests teacher, as
    ONNX, and its int8 copy from onnxruntime's quantize_dynamic), built once after the arrests
    fixtures (cached by its manifest, about 7 s on 2 cores the first time)."""
    from fixtures.quantized import build_quantized

    return build_quantized()["quantized/student_int8.onnx"].parent


@pytest.fixture(scope="session")
def lm_pair() -> Path:
    """The language-model pair (a Llama-style teacher, 4 layers x 192, and a student distilled
    on its next-token distributions, 2 x 96, as transformers folders) and its items, built once
    (cached by its manifest; a few minutes on 2 cores the first time)."""
    from fixtures.lm import build

    return build()["lm/cloze.jsonl"].parent
