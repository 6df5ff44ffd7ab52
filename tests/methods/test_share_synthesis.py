"""Same-math speedup (issue 16): ``eval.share_synthesis`` gives the GZSL classifier the ZSL classifier's synthetic
set (one synthesis instead of two); off by default (it changes the random stream)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.helpers import bound_method


def _count_calls(net: nn.Module) -> list:
    calls = []
    net.register_forward_hook(lambda *_: calls.append(1))
    return calls


@pytest.mark.parametrize("share", [False, True])
def test_share_synthesis_gives_gzsl_the_zsl_set(share, tmp_path, cache_dir):
    m, _ = bound_method(["method=clswgan", "eval.syn_num=4", "eval.classifier.epochs=1",
                         f"eval.share_synthesis={str(share).lower()}"], tmp_path, cache_dir)
    sets, original = {}, m.classifier_training_data

    def spy(split, task):
        sets[task] = original(split, task)
        return sets[task]

    m.classifier_training_data = spy
    calls = _count_calls(m.generator)
    m.run_evaluation(1)
    zsl_x, gzsl_x = sets["zsl"][0], sets["gzsl"][0]
    n_real = len(m.data.train_x)  # eval.gzsl_seen=real: real seen rows first, then the unseen synthetic set
    assert len(calls) == (1 if share else 2)
    assert torch.equal(gzsl_x[n_real:], zsl_x) == share
    assert m._shared_synthesis is None  # nothing held after the evaluation
