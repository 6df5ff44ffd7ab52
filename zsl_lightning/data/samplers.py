"""Batch plans: which training rows each optimisation step sees.

Feature-level benchmarks are small, so the whole training set lives on the device and a step's batch
is gathered by index (no DataLoader, no host copies). A *batch plan* draws the indices of a whole
epoch at once as a ``steps × k × B`` tensor: ``k`` batches per step, because one step of a WGAN method
is one generator iteration that consumes ``n_critic`` critic batches.

A method names its plan in its config (``method.sampler``), so any method can use any plan
(e.g. the episodic N-way K-shot plan of VS-Boost).
"""

from __future__ import annotations

import math
from typing import Protocol

import torch

from zsl_lightning.errors import ConfigError


def epoch_seed(seed: int, epoch: int, rank: int = 0, stream: int = 0) -> int:
    """A deterministic 63-bit seed for (run seed, epoch, rank, stream)."""
    x = (int(seed) * 1_000_003 + int(epoch) * 9_176 + int(rank) * 131 + int(stream) * 7_919) % (2**63 - 1)
    return x


class BatchPlan(Protocol):
    #: guarantees of every batch: at least this many distinct classes, each with at least this many rows
    classes_per_batch: int
    rows_per_class: int

    def num_steps(self, n_train: int) -> int: ...

    def sample(self, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Indices of one epoch, shape ``(steps, k, B)``, for training labels ``labels`` (CPU)."""
        ...


class RandomBatches:
    """Uniform random batches; every image is used equally often across an epoch.

    ``steps_per_epoch`` defaults to ``ceil(N / batch_size)`` generator iterations, as in the
    reference scripts (``for i in range(0, ntrain, batch_size)``). Indices come from concatenated
    random permutations cut into whole batches, so a batch never repeats an image (the reference draws
    each batch as an independent ``randperm(N)[:B]``; the two differ only in how often an image
    recurs across the batches of an epoch).
    """

    def __init__(self, batch_size: int = 64, batches_per_step: int = 1, steps_per_epoch: int | None = None):
        if batch_size < 1 or batches_per_step < 1:
            raise ConfigError("method.sampler.batch_size and method.sampler.batches_per_step must be >= 1.")
        self.batch_size = int(batch_size)
        self.batches_per_step = int(batches_per_step)
        self.steps_per_epoch = steps_per_epoch

    #: what a batch guarantees (nothing: a batch may hold one class, and a class one row)
    classes_per_batch = 1
    rows_per_class = 1

    def num_steps(self, n_train: int) -> int:
        if self.steps_per_epoch:
            return int(self.steps_per_epoch)
        return max(1, math.ceil(n_train / self.batch_size))

    def sample(self, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n = len(labels)
        if n < self.batch_size:
            raise ConfigError(f"method.sampler.batch_size={self.batch_size} is larger than the training set "
                              f"({n} images): lower it (e.g. method.sampler.batch_size={n}).")
        rows_needed = self.num_steps(n) * self.batches_per_step
        per_perm = n // self.batch_size  # whole batches cut from one permutation: no repeats inside a batch
        perms = [torch.randperm(n, generator=generator)[: per_perm * self.batch_size]
                 for _ in range(math.ceil(rows_needed / per_perm))]
        rows = torch.cat(perms).view(-1, self.batch_size)[:rows_needed]
        return rows.view(-1, self.batches_per_step, self.batch_size)


class EpisodicBatches:
    """N-way K-shot episodes: each batch holds ``n_way`` distinct random classes × ``k_shot`` images of each.

    Classes are drawn from the labels present in the training set only, so unseen (or validation)
    classes can never leak into an episode. Within an episode a class's images are distinct when the
    class has at least ``k_shot`` of them; a smaller class is sampled with replacement. Rows of a batch
    are grouped by class (``k_shot`` consecutive rows per class). ``steps_per_epoch`` defaults to
    ``ceil(N / (n_way * k_shot))``, so an epoch sees about as many images as the training set holds
    (times ``batches_per_step``, as for :class:`RandomBatches`).
    """

    def __init__(self, n_way: int, k_shot: int, batches_per_step: int = 1, steps_per_epoch: int | None = None):
        if n_way < 1 or k_shot < 1 or batches_per_step < 1:
            raise ConfigError("sampler.n_way, sampler.k_shot and sampler.batches_per_step must be >= 1, got "
                              f"n_way={n_way}, k_shot={k_shot}, batches_per_step={batches_per_step}.")
        if steps_per_epoch is not None and int(steps_per_epoch) < 1:
            raise ConfigError(f"sampler.steps_per_epoch must be >= 1 (or null), got {steps_per_epoch}.")
        self.n_way, self.k_shot = int(n_way), int(k_shot)
        self.batches_per_step = int(batches_per_step)
        self.steps_per_epoch = None if steps_per_epoch is None else int(steps_per_epoch)

    @property
    def batch_size(self) -> int:
        return self.n_way * self.k_shot

    @property
    def classes_per_batch(self) -> int:
        return self.n_way

    @property
    def rows_per_class(self) -> int:
        return self.k_shot

    def num_steps(self, n_train: int) -> int:
        if self.steps_per_epoch:
            return int(self.steps_per_epoch)
        return max(1, math.ceil(n_train / self.batch_size))

    def sample(self, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if labels.dim() != 1:
            raise ConfigError("EpisodicBatches needs single-label training data (one class id per image), "
                              f"got labels of shape {tuple(labels.shape)}.")
        classes, inverse, counts = torch.unique(labels, return_inverse=True, return_counts=True)
        if len(classes) < self.n_way:
            raise ConfigError(
                f"sampler.n_way={self.n_way} but the training set has only {len(classes)} classes."
            )
        order = torch.argsort(inverse, stable=True)  # positions grouped by class
        starts = torch.cumsum(counts, 0) - counts
        steps = self.num_steps(len(labels))
        n_batches = steps * self.batches_per_step
        # n_way distinct classes per episode: the first n_way of a random permutation of the classes
        way = torch.rand(n_batches, len(classes), generator=generator).argsort(1)[:, : self.n_way]
        cnt = counts[way].unsqueeze(-1)  # (n_batches, n_way, 1)
        # K distinct ranks inside each class: the K smallest of random keys, positions past the class
        # size pushed to the end. The key table is at least K wide (K may exceed every class size).
        width = max(int(counts.max()), self.k_shot)
        r = torch.rand(n_batches, self.n_way, width, generator=generator)
        r = r.masked_fill(torch.arange(width) >= cnt, 2.0)
        ranks = r.argsort(-1)[..., : self.k_shot]
        small = cnt < self.k_shot
        if bool(small.any()):  # classes smaller than K: K draws with replacement
            repl = (torch.rand(n_batches, self.n_way, self.k_shot, generator=generator) * cnt).long()
            ranks = torch.where(small, repl.clamp_max(cnt - 1), ranks)
        pos = order[starts[way].unsqueeze(-1) + ranks]  # (n_batches, n_way, k_shot)
        return pos.reshape(steps, self.batches_per_step, self.batch_size)
