"""The ``cnn`` thief: ART's ``CopycatCNN`` training a small torch network on an image model's
answers (needs torch; imported only by a suite whose extraction check names it).

ART's attack queries the victim through an ART classifier; here that classifier replays the
answers the run already has for the query images (each model predicts once per dataset), so
the attack's own sampling, one-hot labels and training loop are ART's, unchanged. ART draws
its query order from numpy's global generator and torch initialises the thief from its own:
both are seeded for the call and both restored after it, so a run is deterministic
with the suite's seed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["copycat", "thief_network", "epochs"]

EPOCHS = 10  # ART's default; more for small budgets (see epochs)
BATCH = 64
STEPS = 400  # the fewest optimiser steps a thief takes, however few its queries


def epochs(n: int) -> int:
    """Epochs for ``n`` queries: ART's 10, or enough for :data:`STEPS` batches of 64 (a thief
    with 100 queries trains as long as it takes to fit them, as an attacker would)."""
    return max(EPOCHS, -(-STEPS // -(-n // BATCH)))


def thief_network(channels: int, k: int) -> Any:
    """A small CNN: two 3x3 convolutions (16, 32 channels), pooling to 4x4, one linear layer."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(channels, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
        nn.Flatten(), nn.Linear(32 * 16, k))


def _replay(x: np.ndarray, labels: np.ndarray, k: int) -> Any:
    """A predict function giving the known answer (one-hot) for each row of ``x``."""
    answers = {row.tobytes(): int(a) for row, a in zip(x.astype(np.float32), labels, strict=True)}

    def predict(batch: np.ndarray) -> np.ndarray:
        rows = np.asarray(batch, np.float32)
        try:
            got = [answers[row.tobytes()] for row in rows]
        except KeyError:
            raise AssertionError("CopycatCNN asked for an image that was not queried") from None
        return np.eye(k, dtype=np.float32)[got]

    return predict


def copycat(x: np.ndarray, labels: np.ndarray, target: np.ndarray, k: int, seed: int
            ) -> np.ndarray:
    """Steal with ART's CopycatCNN on queries ``x`` (N, C, H, W) whose answers are ``labels``
    (encoded classes), and return the thief's classes on ``target``."""
    import torch
    from art.attacks.extraction import CopycatCNN
    from art.estimators.classification import BlackBoxClassifier, PyTorchClassifier

    shape = tuple(x.shape[1:])
    victim = BlackBoxClassifier(_replay(x, labels, k), input_shape=shape, nb_classes=k,
                                clip_values=(0.0, 1.0))
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        with torch.random.fork_rng():  # torch's global generator restored after, as numpy's
            torch.manual_seed(seed)
            net = thief_network(shape[0], k)
            thief = PyTorchClassifier(net, loss=torch.nn.CrossEntropyLoss(),
                                      optimizer=torch.optim.Adam(net.parameters(), lr=1e-3),
                                      input_shape=shape, nb_classes=k, clip_values=(0.0, 1.0))
            attack = CopycatCNN(victim, batch_size_fit=BATCH, batch_size_query=BATCH,
                                nb_epochs=epochs(len(x)), nb_stolen=len(x))
            stolen = attack.extract(x.astype(np.float32), thieved_classifier=thief)
            P = stolen.predict(target.astype(np.float32), batch_size=256)
        return np.asarray(P).argmax(axis=1)
    finally:
        np.random.set_state(state)
