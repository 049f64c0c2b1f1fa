"""What a metric may ask for, and the typed, frozen artifacts the probes build.

A leaf module (numpy and pandas only): metrics import it, and nothing else from
:mod:`audit.probes`. A metric declares its needs as :class:`ArtifactRequest` values
(``Metric.needs(params)``); the runner has :class:`~audit.probes.probe.Probes` build each one
once per run and hands them to the metric in ``MetricInput.artifacts``, keyed by kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["ArtifactRequest", "ModelSizes", "Timings", "DataTables", "AttackOutcome",
           "Adversarial", "Corrupted", "TextEdits", "Examples", "BoundaryDistances", "MembershipSample",
           "AttributeSample", "Extraction", "Triggered", "FlipTable", "TokenScores", "TokenAgreement",
           "PairScores", "DocumentMembership", "ChoiceEdits", "ChoiceOrders"]


def _frozen(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


@dataclass(frozen=True)
class ArtifactRequest:
    """One artifact a metric needs: its ``kind`` and the (resolved) parameters that shape it.

    Hashable: equal requests are one artifact, built once per run.

    >>> ArtifactRequest.of("timings", repeats=30).get("repeats")
    30
    """

    kind: str
    params: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, kind: str, **params: Any) -> ArtifactRequest:
        return cls(kind, tuple(sorted((k, _frozen(v)) for k, v in params.items())))

    def get(self, name: str, default: Any = None) -> Any:
        return dict(self.params).get(name, default)


@dataclass(frozen=True)
class ModelSizes:
    """Per model (``teacher``, ``student``): ``kind``, ``bytes`` on disk (``None`` without a
    file) and ``parameters`` (``None`` when it cannot be told)."""

    sizes: Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class Timings:
    """Interleaved timed calls: ``runs[batch][who]`` the wall time of each call in
    milliseconds, ``cpu[batch][who]`` its CPU time (this process's, all threads; ``NaN`` for a
    model run in a worker process, whose CPU is not seen from here), call ``i`` of the teacher
    and of the student one pair, adjacent in time; ``memory[who]`` the peak Python-heap bytes
    of one call on the largest batch, ``models[who]`` as in :class:`ModelSizes`; ``settings``
    what the calls ran with, as plain data: the thread settings
    (:func:`audit.probes.timings.pinned_threads`) and ``gc``, whether Python's garbage
    collector was on."""

    runs: Mapping[int, Mapping[str, np.ndarray]]
    memory: Mapping[str, int]
    models: Mapping[str, Mapping[str, Any]]
    warmup: int  # untimed calls per model and batch size before the timed ones
    cpu: Mapping[int, Mapping[str, np.ndarray]] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DataTables:
    """The eval table (and the training table, when asked for and named) as plain frames.

    ``train_named`` says whether the suite names ``data.train``; ``train_features`` and
    ``train_labels`` are ``None`` unless it does and the request asked for it."""

    target: str
    eval_features: pd.DataFrame
    eval_labels: pd.Series
    train_named: bool
    train_features: pd.DataFrame | None = None
    train_labels: pd.Series | None = None

    @property
    def n_eval(self) -> int:
        return int(len(self.eval_features))


@dataclass(frozen=True)
class AttackOutcome:
    """One model attacked at one eps: ``x`` the attacked rows (scaled; rows not attacked
    unchanged), ``clean`` and ``adv`` correctness per row, ``seconds`` the attack took and, for
    HopSkipJump, ``no_start`` (a row mask of the rows it found no start for)."""

    x: np.ndarray
    clean: np.ndarray
    adv: np.ndarray
    seconds: float
    no_start: np.ndarray | None = None


@dataclass(frozen=True)
class Adversarial:
    """Adversarial examples for the robustness metrics, per eps and model.

    ``attacks[who]`` is the attack each model faced; ``columns`` the perturbed columns,
    ``categorical`` and ``fixed`` the ones kept fixed; ``rows`` the number of attacked rows;
    ``outcomes[eps][who]`` an :class:`AttackOutcome`; ``transfer[eps]`` (when asked for) the
    student's correctness on the teacher's adversarial examples (``adv``) and on the clean
    rows (``clean``); ``corners`` whether HopSkipJump's start search tried the box's corners
    (up to ``MAX_CORNER_DIMS`` perturbed columns)."""

    attacks: Mapping[str, str]
    columns: tuple[str, ...]
    categorical: tuple[str, ...]
    fixed: tuple[str, ...]
    rows: int
    outcomes: Mapping[float, Mapping[str, AttackOutcome]]
    transfer: Mapping[float, Mapping[str, np.ndarray]]
    corners: bool = False  # HopSkipJump's start search also tried the box's corners
    space: str = ""  # what was perturbed, when not table columns (an image suite's pixels)
    positions: tuple[int, ...] = ()  # the attacked eval rows (0-based), when they are shown


@dataclass(frozen=True)
class Corrupted:
    """Both models on ``rows`` sampled eval images, clean (``clean[who]``, correctness per
    row) and under each corruption: ``correct[(kind, severity)][who]``; ``examples`` the first
    sampled image under each, for the report."""

    rows: int
    clean: Mapping[str, np.ndarray]
    correct: Mapping[tuple[str, int], Mapping[str, np.ndarray]]
    examples: Mapping[tuple[str, int], np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Examples:
    """Eval rows to show beside a number (plain data: a text snippet or a PNG data URI, the
    label and each model's answer per row); empty for a tabular suite."""

    rows: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class TextEdits:
    """Both models attacked by black-box text edits (:mod:`audit.probes.text_attack`) on the
    same ``rows`` sampled eval texts: ``results[who]`` a ``TextAttackResult`` (flips per
    budget, queries, edits), ``seconds[who]`` the attack's wall time."""

    rows: int
    results: Mapping[str, Any]
    seconds: Mapping[str, float]


@dataclass(frozen=True)
class BoundaryDistances:
    """Per model, the decision-boundary distance of each sampled row (members first):
    ``found[who]`` holds ``distance``, ``no_start`` (row mask), ``seconds`` and ``attacked``;
    ``columns`` / ``fixed`` what was perturbed and ``hsj`` HopSkipJump's budget."""

    found: Mapping[str, Mapping[str, Any]]
    columns: tuple[str, ...]
    fixed: tuple[str, ...]
    hsj: Mapping[str, int]


@dataclass(frozen=True)
class MembershipSample:
    """``m`` sampled members (rows of ``data.<members>``) and ``m`` non-members, their encoded
    labels and both models' probabilities on them (``probs[who] = (P_members, P_non)``).

    ``overlap`` counts sampled non-members identical (features and label) to a member row;
    ``notes`` say what the sampling changed; ``rng_state`` is the state of the seeded
    generator after sampling (the black-box attack splits the rows with it); ``boundary`` the
    distances when the request asked for the decision-boundary attack."""

    members: str
    non_members: str
    m: int
    notes: tuple[str, ...]
    y_in: np.ndarray
    y_out: np.ndarray
    probs: Mapping[str, tuple[np.ndarray, np.ndarray]]
    overlap: int
    rng_state: Mapping[str, Any]
    boundary: BoundaryDistances | None = None


@dataclass(frozen=True)
class AttributeSample:
    """Rows attacked for a sensitive attribute: ``codes`` the attribute's value per row (an
    index into ``values``), ``x`` the other inputs an attacker is assumed to know (numeric,
    categorical columns one-hot, named by ``columns``), ``probs[who]`` each model's
    probabilities on the rows (encoded class order), ``fit`` and ``test`` the disjoint
    positions the attack is trained and scored on; ``is_input`` whether the attribute is one
    of the models' inputs; ``edges`` the bin edges of a binned numeric attribute."""

    table: str
    attribute: str
    values: tuple[str, ...]
    codes: np.ndarray
    x: np.ndarray
    columns: tuple[str, ...]
    probs: Mapping[str, np.ndarray]
    fit: np.ndarray
    test: np.ndarray
    is_input: bool
    notes: tuple[str, ...] = ()
    edges: tuple[float, ...] = ()


@dataclass(frozen=True)
class Extraction:
    """Thieves trained on queries to each model, per budget: ``thieves[n][who]`` the encoded
    classes the thief fitted on ``n`` queries to ``who`` predicts on the ``scored`` eval rows,
    ``victim[who]`` the model's own classes there, ``y`` their labels; ``seconds[n][who]``
    the fit's wall time; ``source`` where the queries came from, ``thief`` the family."""

    budgets: tuple[int, ...]
    source: str
    thief: str
    scored: int
    y: np.ndarray
    victim: Mapping[str, np.ndarray]
    thieves: Mapping[int, Mapping[str, np.ndarray]]
    seconds: Mapping[int, Mapping[str, float]]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Triggered:
    """Both models on ``rows`` sampled eval rows whose label ``y`` is not the ``target``
    class (an index), clean (``clean[who]``, encoded classes) and with the ``trigger``
    written in (``triggered[who]``); ``example`` one triggered input for the report."""

    rows: int
    y: np.ndarray
    target: int
    trigger: str
    clean: Mapping[str, np.ndarray]
    triggered: Mapping[str, np.ndarray]
    example: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class FlipTable:
    """The eval rows where the models' top classes differ, worst first (teacher right and
    student wrong, then student right and teacher wrong, then both wrong), at most ``cap``:
    ``rows`` plain dicts over ``columns`` (the eval row, its features but the private ones,
    the slice, the label, each model's answer and probabilities); ``counts`` how many of each
    kind the whole table has; ``left_out`` the private columns dropped."""

    columns: tuple[str, ...]
    rows: tuple[Mapping[str, Any], ...]
    counts: Mapping[str, int]
    cap: int
    left_out: tuple[str, ...] = ()


@dataclass(frozen=True)
class TokenScores:
    """One language model on the documents of ``data.<table>``, every token predicted once.

    Per document: ``tokens`` (the tokens predicted), ``bytes`` (its UTF-8 bytes), ``nll`` (the
    summed negative log-likelihood, nats) and ``zlib`` (the bytes of its zlib compression).
    Per token, documents one after another (document ``i`` is ``offsets[i]:offsets[i + 1]``):
    ``logp`` the log-probability of the token, ``mu`` and ``sigma`` the mean and standard
    deviation of ``log p`` under the model's own next-token distribution at that position
    (what min-k%++ standardises by)."""

    table: str
    ids: tuple[str, ...]
    tokens: np.ndarray
    bytes: np.ndarray
    nll: np.ndarray
    zlib: np.ndarray
    offsets: np.ndarray
    logp: np.ndarray
    mu: np.ndarray
    sigma: np.ndarray
    seconds: float = 0.0

    @property
    def n(self) -> int:
        return int(len(self.tokens))

    def document(self, i: int, values: np.ndarray) -> np.ndarray:
        """``values`` (``logp``, ``mu`` or ``sigma``) of document ``i``'s tokens."""
        return values[self.offsets[i]:self.offsets[i + 1]]


@dataclass(frozen=True)
class TokenAgreement:
    """Teacher and student on the very same tokens of ``data.<table>``: per document, sums
    over its ``tokens`` of top-1 agreement (``top1``), forward and reverse KL (nats), total
    variation (``tv``) and, for each ``k`` in ``1..max_k``, the top-k overlap
    (``topk[:, k - 1]``, the share of the teacher's k likeliest tokens among the student's);
    ``scores[who]`` each model's own :class:`TokenScores` from the same pass."""

    table: str
    tokens: np.ndarray
    top1: np.ndarray
    kl_forward: np.ndarray
    kl_reverse: np.ndarray
    tv: np.ndarray
    topk: np.ndarray
    scores: Mapping[str, TokenScores]
    seconds: float = 0.0


@dataclass(frozen=True)
class PairScores:
    """Both models on the minimal pairs of ``data.pairs``: ``more[who]`` and ``less[who]`` the
    whole-sentence log-likelihood (after the BOS token) of each pair's more and less
    stereotypical sentence, ``bias_types`` each pair's bias type."""

    ids: tuple[str, ...]
    bias_types: tuple[str, ...]
    more: Mapping[str, np.ndarray]
    less: Mapping[str, np.ndarray]


@dataclass(frozen=True)
class DocumentMembership:
    """``m`` sampled member documents (of ``data.<members>``) and ``m`` non-member documents,
    each model's :class:`TokenScores` on them: ``scores[who] = (members, non_members)``."""

    members: str
    non_members: str
    m: int
    notes: tuple[str, ...]
    scores: Mapping[str, tuple[TokenScores, TokenScores]]
    overlap: int = 0  # sampled non-members whose text is a member's


@dataclass(frozen=True)
class ChoiceEdits:
    """Both models on ``rows`` sampled multiple-choice items: ``y`` the answers, ``clean[who]``
    each model's pick (a choice index) on the items as written and ``edited[who]`` with typos
    in their contexts (``edits_made`` per item); ``examples`` a few items to show."""

    rows: int
    y: np.ndarray
    clean: Mapping[str, np.ndarray]
    edited: Mapping[str, np.ndarray]
    edits_made: np.ndarray
    examples: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class ChoiceOrders:
    """Both models on ``rows`` sampled items whose context lists ``k`` options, under each
    rotation of the options: ``picks[who][i, r]`` the option (its index as written) the model
    picked for item ``i`` with the options rotated by ``r`` (``r = 0``: as written); ``y`` the
    answers; ``example`` the first item's context rotated once."""

    rows: int
    k: int
    y: np.ndarray
    picks: Mapping[str, np.ndarray]
    example: str = ""
