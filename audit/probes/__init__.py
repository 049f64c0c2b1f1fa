"""Probes: the only code below the runner that calls a model or reads a table.

The data flow of a check: the runner asks the metric what it needs (``Metric.needs(params)``,
a tuple of :class:`~audit.probes.artifacts.ArtifactRequest`), :class:`~audit.probes.probe.Probes`
builds each artifact once per run (adversarial examples and predictions also once per
fingerprint, through the prediction cache of :mod:`audit.cache` and its integrity rules), and
the metric is called with the artifacts in ``MetricInput.artifacts``: a pure function of them,
its parameters and the resampler.

Modules, one per artifact kind:

* :mod:`audit.probes.artifacts` -- the requests and the typed, frozen artifacts (a leaf: metrics
  import it and nothing else from here);
* :mod:`audit.probes.probe` -- :class:`Probes`, which dispatches a request to its builder;
* :mod:`audit.probes.timings` -- model sizes, parameter counts and interleaved timings;
* :mod:`audit.probes.tables` -- the eval (and train) tables, as plain frames;
* :mod:`audit.probes.attacks` -- the attack machinery (ART's FGSM/PGD, HopSkipJump, noise);
* :mod:`audit.probes.adversarial` -- adversarial examples for the robustness metrics;
* :mod:`audit.probes.membership` -- sampled members and non-members, both models'
  predictions on them and (``decision_boundary``) their boundary distances.

Importing this package imports nothing heavy: the builders load when a request needs them.
"""

from __future__ import annotations

from audit.probes.artifacts import ArtifactRequest

__all__ = ["ArtifactRequest"]
