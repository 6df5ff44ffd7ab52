"""ZeroNAS search (Yan et al. 2021, Algorithm 1): step isolation, no test data in the search, the run's files,
retraining from the genotype files."""

from __future__ import annotations

import json

import pytest
import pytorch_lightning as pl
import torch
from omegaconf import open_dict

from tests.helpers import compose_cfg
from zsl_lightning.context import PhaseContext
from zsl_lightning.data.synthetic import SyntheticDataModule
from zsl_lightning.methods.zeronas import arch_parameters, search_cells, weight_parameters
from zsl_lightning.nas_phases import derive_phase, search_config, search_phase
from zsl_lightning.nn.genotype import Genotype
from zsl_lightning.nn.nas import SearchedNetwork
from zsl_lightning.pipeline import build_datamodule, build_method, run, start_run

TINY = ["zeronas.widths_g=[8,8,8,16]", "zeronas.widths_d=[16,8,8,8]", "zeronas.epochs=1", "zeronas.eval_every=1",
        "zeronas.steps_per_epoch=2", "method.epochs=1", "eval.every=1", "eval.syn_num=8",
        "eval.classifier.epochs=1", "method.generator.hidden=[16]", "method.discriminator.hidden=[16]"]


class NoTestSplit(SyntheticDataModule):
    """The embedded benchmark whose test split cannot be built: the search must never need it."""

    def _build_split(self, name: str):
        if name == "test":
            raise AssertionError("the test split was read")
        return super()._build_split(name)


def _bound_search(tmp_path, cache_dir, overrides=()):
    cfg = compose_cfg(["method=zeronas", *TINY, *overrides], tmp_path, cache_dir)
    dm = build_datamodule(cfg)
    with open_dict(cfg):
        cfg.data_info = dm.info
    m = build_method(search_config(cfg, tmp_path / "genotypes"),
                     PhaseContext(phase="search", split=dm.split("dev"), on_device=dm.device_split))
    dm.use("dev", m.batch_plan)
    pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False, limit_train_batches=0, limit_val_batches=0,
               accelerator="cpu").fit(m, datamodule=dm)
    return m


def _changed(m, step) -> set[int]:
    before = {id(p): p.detach().clone() for p in m.parameters()}
    step()
    return {id(p) for p in m.parameters() if not torch.equal(before[id(p)], p.detach())}


@pytest.mark.parametrize("base", ["clswgan", "vaegan", "vs_boost"])
def test_each_search_step_changes_only_its_own_tensors(base, tmp_path, cache_dir):
    m = _bound_search(tmp_path, cache_dir, [f"zeronas={base}"])
    assert [type(c).__name__ for c in search_cells(m.generator) + search_cells(m.discriminator)] == \
        ["SearchNetwork", "SearchNetwork"]
    assert m.optimizer_roles == (*type(m).__mro__[2].optimizer_roles, "arch_d", "arch_g")
    g_roles, _ = m.generator_objective(*m.search_batch("weight", 4))
    others = {id(p) for r in g_roles if r != "g" for g in m.optimizer(r).param_groups for p in g["params"]}
    own = {
        "arch_d": {id(p) for p in arch_parameters(m.discriminator)},
        "d": {id(p) for p in weight_parameters(m.discriminator)},
        "arch_g": {id(p) for p in arch_parameters(m.generator)},
        "g": {id(p) for p in weight_parameters(m.generator)} | others,  # f-VAEGAN: E too; VS-Boost: E, R, F
    }

    def critic(role, half):
        return lambda: m.critic_update(role, half, 16, {})

    def generator(role, half):
        def go():
            roles, fn = m.generator_objective(*m.search_batch(half, 16))
            m.step_collecting(role or roles, fn, {})
        return go

    for role, step in (("arch_d", critic("arch_d", "arch")), ("d", critic("d", "weight")),
                       ("arch_g", generator("arch_g", "arch")), ("g", generator(None, "weight"))):
        changed = _changed(m, step)
        # Adam moves every parameter with a gradient; a few may get an exactly-zero gradient (e.g. dead ReLUs)
        assert changed and changed <= own[role], role
        assert len(changed & own[role]) >= len(own[role]) // 2, role


@pytest.mark.parametrize("nets,arch_roles", [("[g]", ("arch_g",)), ("[d]", ("arch_d",))])
def test_searching_one_network_keeps_the_other_fixed(nets, arch_roles, tmp_path, cache_dir):
    """Table 3's "NAS, fixed D / G": no architecture optimizer (nor Eq. 6 / 8 step) for the hand-crafted net."""
    m = _bound_search(tmp_path, cache_dir, [f"zeronas.networks={nets}"])
    assert m.arch_roles == arch_roles and m.optimizer_roles[-1:] == arch_roles
    fixed = m.discriminator if arch_roles == ("arch_g",) else m.generator
    assert not search_cells(fixed)
    batch = {"x": torch.zeros(1, 16)}  # the loader's batch only sets the batch size
    before = {id(p): p.detach().clone() for p in fixed.parameters()}
    m.training_step(batch, 0)
    assert any(not torch.equal(before[id(p)], p.detach()) for p in fixed.parameters())  # still trained (Eq. 7 / 9)


def test_the_halves_split_the_seen_training_rows(tmp_path, cache_dir):
    m = _bound_search(tmp_path, cache_dir)
    arch, weight = m._halves["arch"], m._halves["weight"]
    n = m.data.num_train
    assert len(arch) == round(n / 2) and len(arch) + len(weight) == n
    assert sorted(torch.cat([arch, weight]).tolist()) == list(range(n))  # disjoint, every row once


def test_search_never_reads_the_test_split(tmp_path, cache_dir):
    cfg = compose_cfg(["method=zeronas", *TINY, f"data._target_={__name__}.NoTestSplit"], tmp_path, cache_dir)
    state = start_run(cfg)
    with pytest.raises(AssertionError, match="test split"):  # the guard works
        state.datamodule.split("test")
    state.datamodule._splits.pop("test", None)
    search_phase(state)
    derive_phase(state)
    assert state.results["search"]["split"] == "dev"
    assert (tmp_path / "genotype_g.yaml").is_file() and (tmp_path / "genotype.png").is_file()
    assert "test" not in state.datamodule._splits


def test_method_zeronas_searches_derives_and_retrains(tmp_path, cache_dir):
    out = tmp_path / "search"
    res = run(compose_cfg(["method=zeronas", *TINY, "zeronas.epochs=2"], out, cache_dir))
    for f in ("genotype_g.yaml", "genotype_d.yaml", "genotype.png", "results.json"):
        assert (out / f).is_file(), f
    search = json.loads((out / "results.json").read_text())["search"]
    assert search["epochs"] == 2 and [v["epoch"] for v in search["val"]] == [1, 2]
    best = max(search["val"], key=lambda v: (v["zsl_t1"], -v["epoch"]))["epoch"]
    assert search["chosen_epoch"] == best and search["monitor"] == "val/zsl_t1"
    assert Genotype.from_yaml(out / "genotype_g.yaml") == \
        Genotype.from_yaml(out / "search" / "genotypes" / f"epoch_{best}_g.yaml")
    derived = (out / "method_derived.yaml").read_text()
    assert "zsl_lightning.nn.nas.SearchedNetwork" in derived and "SearchNetwork" not in derived and res["headline"]
    g = Genotype.from_yaml(out / "genotype_g.yaml")
    assert g.kind == "generator" and g.out_activation == "relu"  # f-CLSWGAN's generator keeps its ReLU

    # retrain f-CLSWGAN from the files through the config groups
    again = tmp_path / "retrain"
    cfg = compose_cfg(["method=clswgan", "method.epochs=1", "eval.select=last", "eval.syn_num=8",
                       "eval.classifier.epochs=1", "method/generator=searched",
                       f"method.generator.genotype={out / 'genotype_g.yaml'}", "method/discriminator=searched",
                       f"method.discriminator.genotype={out / 'genotype_d.yaml'}"], again, cache_dir)
    assert run(cfg)["headline"]
    ckpt = torch.load(again / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert any(k.startswith("generator.ops.") for k in ckpt["state_dict"])  # a SearchedNetwork's modules

    # zeronas.genotype=<dir> skips the search
    skip = tmp_path / "skip"
    res = run(compose_cfg(["method=zeronas", *TINY, f"zeronas.genotype={out}", "eval.select=last"], skip, cache_dir))
    assert res["search"]["skipped"] and not (skip / "search").exists()
    assert (skip / "genotype.png").is_file()


def test_searched_network_node_checks_the_data_dims(tmp_path):
    g = Genotype("generator", (4, 3), (8,), 5, "none", "ops", [[(2, "fc_relu"), (0, "fc_lrelu")], [(3, "fc_relu")]])
    g.to_yaml(tmp_path / "g.yaml")
    from zsl_lightning.errors import ConfigError
    from zsl_lightning.nn.nas import searched_network

    net = searched_network(str(tmp_path / "g.yaml"), kind="generator", in_dims=[4, 3], out_dim=5, hidden=[512],
                           activation="leaky_relu", out_activation="relu")
    assert isinstance(net, SearchedNetwork) and net(torch.randn(2, 4), torch.randn(2, 3)).min() >= 0
    with pytest.raises(ConfigError, match="input_dims"):
        searched_network(str(tmp_path / "g.yaml"), in_dims=[4, 4])


@pytest.mark.slow
def test_multi_label_base_searches_the_fusion_branches(tmp_path, cache_dir):
    out = tmp_path / "ml"
    res = run(compose_cfg(["method=zeronas", "zeronas=clf_vaegan", "data=synthetic_ml", *TINY[:-2],
                           "method.generator.hidden=[16]", "method.generator.ffn_hidden=16",
                           "method.encoder.hidden=[16]", "method.discriminator.hidden=[16]"], out, cache_dir))
    assert res["headline"] and res["search"]["base"] == "clf_vaegan"
    g = Genotype.from_yaml(out / "genotype_g.yaml")
    assert g.out_activation == "sigmoid" and (out / "genotype_d.yaml").is_file()
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    keys = ckpt["state_dict"]
    assert any(k.startswith("generator.alf.net.ops.") for k in keys)
    assert any(k.startswith("generator.flf.net.ops.") for k in keys)
    assert any(k.startswith("generator.attn.") for k in keys)  # the fusion stays


@pytest.mark.parametrize("base, data", [("clswgan", "synthetic"), ("vaegan", "synthetic"),
                                        ("clf_vaegan", "synthetic_ml")])
def test_the_base_composes_as_its_own_method_with_its_preset(base, data, tmp_path):
    from omegaconf import OmegaConf

    zn = compose_cfg(["method=zeronas", f"zeronas={base}", f"data={data}", "method.n_critic=3"], tmp_path)
    assert zn.zeronas.base == base  # read from the Hydra run's choices: before composing another config
    own = compose_cfg([f"method={base}", f"data={data}", "method.n_critic=3"], tmp_path)
    assert OmegaConf.to_container(zn.method) == OmegaConf.to_container(own.method)
    assert zn.run_plan.endswith("ZeroNASPlan") and "zeronas" not in own and "run_plan" not in own
