"""Model selection: which epoch's numbers are reported.

``eval.select``:

``val`` (default, honest)
    Train on the dev split (train classes; validation classes as pseudo-unseen), evaluate every
    ``eval.every`` epochs, pick for each task (ZSL, GZSL) the epoch with the best validation monitor;
    then retrain on trainval and report the test numbers at exactly those epochs.
``last``
    Train on trainval and report the test numbers after the last epoch (no selection at all).
``test_best``
    The papers' protocol: evaluate on the *test* set every ``eval.every`` epochs (and after every final
    classifier epoch) and report the best. Optimistic; labelled as such everywhere it is reported.

Metrics are grouped into tasks by name: ``zsl_*`` and ``gzsl_*``, and ``std_*`` for standard multi-label
classification (``data.mode=standard``, Gupta et al. Table 4), whose only task it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

SELECT_MODES = ("val", "last", "test_best")

SELECT_DESCRIPTION = {
    "val": "selected on validation data (dev split: validation classes as pseudo-unseen); "
           "test numbers read once at the selected epochs",
    "last": "last epoch, no selection",
    "test_best": "TEST-SET SELECTION (papers' protocol: best epoch and best classifier epoch on the test set; "
                 "optimistic, not a valid held-out estimate)",
}


def describe_selection(select: str, tasks=("zsl", "gzsl")) -> str:
    """:data:`SELECT_DESCRIPTION`, worded for standard multi-label classification (task ``std``), whose dev
    split holds out training images rather than classes."""
    if select == "val" and tuple(tasks) == ("std",):
        return ("selected on validation data (dev split: the last training images held out; standard multi-label "
                "classification, all labels seen); test numbers read once at the selected epochs")
    return SELECT_DESCRIPTION[select]


def task_of(metric: str) -> str | None:
    for task in ("gzsl", "zsl", "std"):
        if metric.startswith(task + "_"):
            return task
    return None


def task_metrics(metrics: Mapping[str, float], task: str) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if task_of(k) == task}


def best_epochs(history: Sequence[Mapping[str, float]], monitors: Mapping[str, str]) -> dict[str, int]:
    """For each task, the epoch whose entry maximises ``monitors[task]`` (earliest on ties)."""
    out = {}
    for task, key in monitors.items():
        scored = [(h[key], -h["epoch"], h["epoch"]) for h in history if key in h and h[key] == h[key]]
        if scored:
            out[task] = max(scored)[2]
    return out
