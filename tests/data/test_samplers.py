"""Batch plans: shapes, no repeated image inside a batch, determinism."""

import pytest
import torch

from zsl_lightning.data.samplers import RandomBatches
from zsl_lightning.errors import ConfigError


def test_random_batches_shape_and_uniqueness():
    labels = torch.arange(103) % 7
    plan = RandomBatches(batch_size=16, batches_per_step=5)
    idx = plan.sample(labels, torch.Generator().manual_seed(0))
    assert idx.shape == (plan.num_steps(103), 5, 16) == (7, 5, 16)
    for row in idx.reshape(-1, 16):
        assert len(set(row.tolist())) == 16
    assert idx.min() >= 0 and idx.max() < 103


def test_random_batches_cover_the_data_evenly():
    labels = torch.zeros(64, dtype=torch.long)
    idx = RandomBatches(batch_size=8).sample(labels, torch.Generator().manual_seed(1))
    assert sorted(idx.flatten().tolist()) == list(range(64))  # one epoch = each image once


def test_random_batches_are_deterministic_per_generator_seed():
    labels = torch.zeros(50, dtype=torch.long)
    plan = RandomBatches(batch_size=10, batches_per_step=2)
    a = plan.sample(labels, torch.Generator().manual_seed(3))
    b = plan.sample(labels, torch.Generator().manual_seed(3))
    c = plan.sample(labels, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_a_batch_larger_than_the_training_set_names_the_config_key():
    with pytest.raises(ConfigError, match=r"method\.sampler\.batch_size=64 is larger than the training set \(35 images\)"):
        RandomBatches(batch_size=64).sample(torch.zeros(35, dtype=torch.long), torch.Generator().manual_seed(0))
