"""The probes of one suite run: each artifact a metric asks for, built once.

:class:`Probes` takes an :class:`~audit.probes.artifacts.ArtifactRequest` and returns its
artifact, memoised per run by request. It reads tables and calls models through the suite run
that owns it (``run.table(role)``, ``run.model(role)``, ``run.predictions(role, table)``: the
one predict path, through the prediction cache); builders that attack models keep their
intermediate results (clean predictions, HopSkipJump's examples, start pools) in
:meth:`Probes.memo`, so checks that share them compute them once.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any

from audit.probes.artifacts import ArtifactRequest

__all__ = ["Probes", "BUILDERS"]

# kind -> "module:function" of its builder, imported when a request needs it; a builder is
# f(probes, request) -> artifact
BUILDERS: dict[str, str] = {
    "model_sizes": "audit.probes.timings:model_sizes",
    "timings": "audit.probes.timings:timings",
    "lm_timings": "audit.probes.lm_timings:lm_timings",
    "tables": "audit.probes.tables:data_tables",
    "adversarial": "audit.probes.adversarial:adversarial_examples",
    "membership": "audit.probes.membership:membership_sample",
    "corrupted": "audit.probes.image_attacks:corrupted_images",
    "text_edits": "audit.probes.text_edits:edited_texts",
    "examples": "audit.probes.examples:flip_examples",
    "attribute": "audit.probes.attribute:attribute_sample",
    "extraction": "audit.probes.extraction:extraction",
    "triggered": "audit.probes.triggers:triggered",
    "flips": "audit.probes.flips:flip_table",
    "token_agreement": "audit.probes.tokens:token_agreement",
    "token_scores": "audit.probes.tokens:token_scores",
    "pair_scores": "audit.probes.tokens:pair_scores",
    "choice_edits": "audit.probes.choice_edits:edited_items",
    "choice_orders": "audit.probes.choice_edits:rotated_items",
}


class Probes:
    """Artifact builders bound to one suite run (``run``: a :class:`~audit.runner.SuiteRun`)."""

    def __init__(self, run: Any) -> None:
        self.run = run
        self._memo: dict[Any, Any] = {}

    @property
    def seed(self) -> int:
        return int(self.run.suite.settings.seed)

    @property
    def progress(self) -> Callable[[str], None] | None:
        """Where long computations (black-box attacks) report progress, if anywhere."""
        return getattr(self.run.session, "progress", None)

    def sample(self, samples: int) -> Any:
        """``samples`` eval row positions (all rows when fewer), drawn with the suite's seed, in
        table order: the rows the image and text robustness checks attack or corrupt, the same
        for both models and for every check that asks for as many."""
        import numpy as np

        def draw() -> Any:
            n = self.run.eval_table.n_rows
            if samples >= n:
                return np.arange(n)
            rng = np.random.default_rng(self.seed)
            return np.sort(rng.choice(n, size=samples, replace=False))

        return self.memo(("eval-sample", samples), draw)

    def memo(self, key: Any, build: Callable[[], Any]) -> Any:
        """``build()`` once per run for ``key`` (an exception is not remembered)."""
        if key not in self._memo:
            self._memo[key] = build()
        return self._memo[key]

    def build(self, request: ArtifactRequest) -> Any:
        """The artifact ``request`` asks for (built on first use)."""
        if request.kind not in BUILDERS:
            raise KeyError(f"no probe builds artifacts of kind {request.kind!r}; known: "
                           f"{', '.join(sorted(BUILDERS))}")
        module, _, name = BUILDERS[request.kind].partition(":")
        builder = getattr(import_module(module), name)
        return self.memo(("artifact", request), lambda: builder(self, request))
