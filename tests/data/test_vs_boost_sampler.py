"""The N-way K-shot episodic batch plan (VS-Boost Sec. 4), usable by any method."""

import pytest
import pytorch_lightning as pl
import torch

from tests.helpers import compose_cfg, shrink, write_xlsa17
from zsl_lightning.data.loaders import DeviceBatchLoader
from zsl_lightning.data.samplers import EpisodicBatches
from zsl_lightning.data.single_label import XLSA17DataModule
from zsl_lightning.errors import ConfigError
from zsl_lightning.pipeline import run


def _labels():
    # uneven classes, non-contiguous global ids, shuffled order: 3, 10, 2, 20, 9 images
    lab = torch.tensor([0] * 3 + [5] * 10 + [7] * 2 + [9] * 20 + [12] * 9)
    return lab[torch.randperm(len(lab), generator=torch.Generator().manual_seed(1))]


def test_episodes_hold_n_distinct_classes_times_k_images():
    labels = _labels()
    plan = EpisodicBatches(n_way=3, k_shot=4, batches_per_step=2).sample(labels, torch.Generator().manual_seed(0))
    assert plan.shape == (EpisodicBatches(3, 4).num_steps(len(labels)), 2, 12)
    assert plan.shape[0] == -(-len(labels) // 12)  # ceil(N / (N_way · K))
    for episode in plan.reshape(-1, 12):
        cls = labels[episode].view(3, 4)  # grouped by class: K consecutive rows each
        assert (cls == cls[:, :1]).all()
        assert len(set(cls[:, 0].tolist())) == 3
        for row, c in zip(episode.view(3, 4), cls[:, 0], strict=True):
            if int((labels == c).sum()) >= 4:  # enough images: K distinct ones
                assert len(set(row.tolist())) == 4


def test_small_classes_are_sampled_with_replacement_and_k_may_exceed_every_class():
    labels = _labels()
    plan = EpisodicBatches(n_way=5, k_shot=25).sample(labels, torch.Generator().manual_seed(0))
    for episode in plan.reshape(-1, 125):
        cls = labels[episode].view(5, 25)
        assert (cls == cls[:, :1]).all()
        assert sorted(cls[:, 0].tolist()) == [0, 5, 7, 9, 12]
    # a 2-image class shows both of its images over a few episodes, and nothing else
    rows = plan.reshape(-1, 5, 25)[labels[plan.reshape(-1, 5, 25)][..., 0] == 7]
    assert set(rows.flatten().tolist()) == set(torch.nonzero(labels == 7).flatten().tolist())


def test_class_frequencies_are_uniform():
    labels = torch.arange(20).repeat_interleave(7)
    plan = EpisodicBatches(n_way=5, k_shot=1, steps_per_epoch=2000).sample(labels, torch.Generator().manual_seed(0))
    counts = torch.bincount(labels[plan.flatten()], minlength=20).float()
    # 2,000 episodes × 5 of 20 classes: 500 expected per class, std ≈ 19; ±100 is a 5-sigma band
    assert ((counts - 500).abs() < 100).all(), counts


def test_deterministic_under_a_seeded_generator():
    labels = _labels()
    s = EpisodicBatches(3, 4, batches_per_step=5)
    a = s.sample(labels, torch.Generator().manual_seed(7))
    b = s.sample(labels, torch.Generator().manual_seed(7))
    c = s.sample(labels, torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("split", ["dev", "test"])
def test_no_unseen_or_validation_class_leaks_into_an_episode(tmp_path, split):
    write_xlsa17(tmp_path, "TINY", n_classes=12, n_unseen=3, n_val=2, per_class=12)
    dm = XLSA17DataModule(root=str(tmp_path), name="TINY").load()
    data = dm.split(split)
    plan = EpisodicBatches(n_way=4, k_shot=3, batches_per_step=5)
    seen = set(data.seen_classes.tolist())
    loader = DeviceBatchLoader(data, plan, seed=0, epoch_fn=lambda: 0)
    batches = list(loader)
    assert len(batches) == len(loader) == plan.num_steps(data.num_train)
    for b in batches:
        assert b["x"].shape == (5, 12, data.feature_dim)
        assert set(b["target"].flatten().tolist()) <= seen
        assert not set(b["target"].flatten().tolist()) & set(data.unseen_classes.tolist())
        assert torch.equal(data.train_y[b["idx"]], b["target"])
    if split == "dev":  # the validation classes are pseudo-unseen: never in a dev episode
        assert not seen & set(dm.split("dev").unseen_classes.tolist())


def test_bad_episode_settings_raise_config_errors():
    labels = _labels()
    with pytest.raises(ConfigError, match="only 5 classes"):
        EpisodicBatches(n_way=6, k_shot=2).sample(labels, torch.Generator())
    for kw in ({"n_way": 0, "k_shot": 2}, {"n_way": 2, "k_shot": 0}, {"n_way": 2, "k_shot": 2, "batches_per_step": 0},
               {"n_way": 2, "k_shot": 2, "steps_per_epoch": 0}):
        with pytest.raises(ConfigError):
            EpisodicBatches(**kw)
    with pytest.raises(ConfigError, match="single-label"):
        EpisodicBatches(2, 2).sample(torch.ones(10, 3, dtype=torch.long), torch.Generator())


class RecordBatches(pl.Callback):
    """Keeps the labels of every training batch a method receives, with its split's class sets."""

    seen: list[dict] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        split = pl_module.data
        RecordBatches.seen.append({"split": split.name, "target": batch["target"].detach().cpu().clone(),
                                   "seen": set(split.seen_classes.tolist()),
                                   "unseen": set(split.unseen_classes.tolist()),
                                   "n_train": int(split.num_train)})


def test_another_method_trains_on_episodes_through_its_config(tmp_path, cache_dir):
    """f-CLSWGAN with ``method.sampler`` swapped for the episodic plan: every generator iteration gets
    n_critic N-way K-shot episodes, drawn from the seen classes of the phase's split only (on the dev split
    the validation classes are unseen, so they never appear either)."""
    n, k, n_critic = 4, 3, 2
    RecordBatches.seen = []
    cfg = shrink(compose_cfg(["method=clswgan", "data=synthetic",
                              "method.sampler._target_=zsl_lightning.data.samplers.EpisodicBatches",
                              "~method.sampler.batch_size", f"+method.sampler.n_way={n}",
                              f"+method.sampler.k_shot={k}", f"method.n_critic={n_critic}", "method.epochs=1",
                              "method.pretrain.epochs=1", "eval.syn_num=5", "eval.classifier.epochs=1",
                              "+callbacks.record._target_=tests.data.test_vs_boost_sampler.RecordBatches"],
                             tmp_path, cache_dir), 16)
    assert cfg.method.sampler.batches_per_step == n_critic  # still ${method.n_critic}
    res = run(cfg)
    assert set(res["headline"]) == {"zsl_t1", "gzsl_u", "gzsl_s", "gzsl_H"}
    batches = RecordBatches.seen
    assert {b["split"] for b in batches} == {"dev", "test"}  # eval.select=val: both phases trained on episodes
    for phase in ("dev", "test"):
        got = [b for b in batches if b["split"] == phase]
        assert len(got) == -(-got[0]["n_train"] // (n * k))  # one epoch = ceil(N / (N_way · K)) iterations
        for b in got:
            assert b["target"].shape == (n_critic, n * k)
            for episode in b["target"]:
                cls = episode.view(n, k)  # K consecutive rows per class
                assert (cls == cls[:, :1]).all()
                assert len(set(cls[:, 0].tolist())) == n
                assert set(cls[:, 0].tolist()) <= b["seen"]
                assert not set(cls[:, 0].tolist()) & b["unseen"]
    # the episodes cover many seen classes, not a fixed few
    assert len({c for b in batches if b["split"] == "test" for c in b["target"].flatten().tolist()}) > 4 * n
