"""The phases of ``method=zeronas`` (Yan et al. 2021): ``search`` → ``derive`` → ``dev`` → ``test``.

* ``search`` (Algorithm 1, Sec. 3.3): the base method's search subclass
  (:func:`~zsl_lightning.methods.zeronas.search_class`) trains on the **dev** split — the training classes
  only, their rows halved into weight and architecture sets. Every ``zeronas.eval_every`` epochs it is
  evaluated like any method on the dev split's validation classes (pseudo-unseen), and the genotypes derived
  at that epoch are kept; the epoch with the best ``zeronas.select_task`` metric wins (Sec. 3.4 selection, on
  validation; the released code selects on test accuracy). The test split is never built or read.
  Writes ``genotype_g.yaml`` / ``genotype_d.yaml`` into the run dir and ``results["search"]``.
  Skipped when ``zeronas.genotype_g`` / ``zeronas.genotype_d`` (or ``zeronas.genotype``: a directory holding
  both) name files.
* ``derive``: draws ``genotype.png`` (Fig. 3) and points ``method.generator`` / ``method.discriminator`` at the
  genotype files (:class:`~zsl_lightning.nn.nas.SearchedNetwork`, fresh weights): the ``dev`` and ``test``
  phases then retrain the derived networks with the base method's recipe (``method_derived.yaml``: the
  ``method`` node they build).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import shutil
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from zsl_lightning.errors import ConfigError, MissingFilesError, ZSLError
from zsl_lightning.methods.base import ZSLMethod
from zsl_lightning.phases import RunState, fit_phase
from zsl_lightning.utils.env import is_rank_zero
from zsl_lightning.utils.io import atomic_write_json

MLP_TARGET = "zsl_lightning.nn.mlp.MLP"
FUSION_PREFIX = "zsl_lightning.nn.fusion."
KINDS = {"g": ("generator", "generator"), "d": ("discriminator", "discriminator")}


def _resolved(node) -> object:
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def _branch_activation(node: DictConfig) -> str:
    return str(node.get("branch_activation", node.get("out_activation", "sigmoid")) or "none")


def search_node(kind: str, node: DictConfig, widths, output_node) -> dict:
    """The config node of the searched version of the base's network ``node``."""
    target = str(node.get("_target_", ""))
    if target == MLP_TARGET:
        return {"_target_": "zsl_lightning.nn.nas.SearchNetwork", "kind": kind, "input_dims": _resolved(node.in_dims),
                "out_dim": int(node.out_dim), "out_activation": str(node.get("out_activation") or "none"),
                "widths": _resolved(widths), "output_node": output_node}
    if kind == "generator" and target.startswith(FUSION_PREFIX):
        return {"_target_": "zsl_lightning.methods.zeronas.fusion_with_search_cell", "generator": _resolved(node),
                "out_activation": _branch_activation(node), "widths": _resolved(widths), "output_node": output_node}
    raise ConfigError(f"ZeroNAS cannot search method.{kind} ({target}): only {MLP_TARGET} networks and the ALF / "
                      "FLF / CLF generators are searched; drop it from zeronas.networks to keep it fixed.")


def searched_node(kind: str, node: DictConfig, genotype: str) -> dict:
    """The config node of the derived network of ``genotype`` in place of the base's ``node``."""
    target = str(node.get("_target_", ""))
    if target.startswith(FUSION_PREFIX):
        return {"_target_": "zsl_lightning.methods.zeronas.fusion_with_searched_cell", "generator": _resolved(node),
                "genotype": genotype, "out_activation": _branch_activation(node)}
    node_in = node.get("in_dims") if target == MLP_TARGET else node.get("input_dims")
    out = {"_target_": "zsl_lightning.nn.nas.SearchedNetwork", "genotype": genotype, "kind": kind,
           "out_activation": str(node.get("out_activation") or "none")}
    if node_in is not None:
        out["input_dims"] = _resolved(node_in)
    if node.get("out_dim") is not None:
        out["out_dim"] = int(node.out_dim)
    return out


def networks(cfg: DictConfig) -> list[str]:
    nets = [str(n) for n in cfg.zeronas.get("networks", ["g", "d"])]
    if not nets or set(nets) - set(KINDS):
        raise ConfigError(f"zeronas.networks must list g and/or d, got {nets}.")
    return nets


def search_config(cfg: DictConfig, genotype_dir: Path) -> DictConfig:
    """``cfg`` with the base method's searched networks and the search subclass as the method."""
    z = cfg.zeronas
    scfg = copy.deepcopy(cfg)
    with open_dict(scfg):
        m = scfg.method
        m.base_target = str(m._target_)
        m._target_ = "zsl_lightning.methods.zeronas.search_method"
        m.optimizer_arch = copy.deepcopy(z.optimizer_arch)
        m.arch_fraction, m.top_k, m.genotype_dir = float(z.arch_fraction), int(z.top_k), str(genotype_dir)
        for tag in networks(cfg):
            key, kind = KINDS[tag]
            m[key] = search_node(kind, cfg.method[key], z.get(f"widths_{tag}"), z.get(f"output_node_{tag}"))
    return scfg


def set_search_steps(scfg: DictConfig, n_train: int) -> None:
    """Steps of a search epoch: ``zeronas.steps_per_epoch``, or one pass over the weight set counting every
    critic batch, ``ceil(|D^tr| / (B · n_critic))`` (each step also draws as many architecture batches)."""
    sampler = scfg.method.get("sampler")
    if sampler is None or "batch_size" not in sampler:
        return
    steps = scfg.zeronas.get("steps_per_epoch")
    if not steps:
        n_weight = n_train - max(1, round(float(scfg.zeronas.arch_fraction) * n_train))
        per_step = int(sampler.batch_size) * int(scfg.method.get("n_critic", 1))
        steps = max(1, math.ceil(n_weight / per_step))
    with open_dict(scfg):
        scfg.method.sampler.steps_per_epoch = int(steps)


def given_genotypes(cfg: DictConfig) -> dict[str, str]:
    """Genotype files named by the config (the search is then skipped): tag → path."""
    z = cfg.zeronas
    out = {}
    if z.get("genotype"):
        root = Path(str(z.genotype)).expanduser()
        for tag in networks(cfg):
            out[tag] = str(root / f"genotype_{tag}.yaml")
    for tag in KINDS:
        if z.get(f"genotype_{tag}"):
            out[tag] = str(Path(str(z[f"genotype_{tag}"])).expanduser())
    missing = [p for p in out.values() if not Path(p).is_file()]
    if missing:
        raise MissingFilesError(f"zeronas genotype file(s) not found: {missing}; point zeronas.genotype_g / "
                                "zeronas.genotype_d (or zeronas.genotype=<run dir>) at existing files.")
    return out


def search_phase(state: RunState) -> None:
    """Algorithm 1 on the dev split, genotype selection on its validation classes (module docstring)."""
    from zsl_lightning.eval.selection import best_epochs

    cfg, out = state.cfg, state.out
    given = given_genotypes(cfg)
    if given:
        state.results["search"] = {"skipped": True, "genotypes": given}
        return
    z = cfg.zeronas
    task = str(z.get("select_task") or next(iter(state.monitors)))
    if task not in state.monitors:
        raise ConfigError(f"zeronas.select_task '{task}' is not an evaluated task ({sorted(state.monitors)}).")
    search_dir = out / "search"
    record_file = search_dir / "search.json"
    record = json.loads(record_file.read_text()) if record_file.is_file() else None
    if record is None or record.get("config_hash") != state.fingerprint:
        epochs, every = int(z.epochs), int(z.eval_every)
        if epochs < 1 or every < 1:
            raise ConfigError("zeronas.epochs and zeronas.eval_every must be >= 1.")
        eval_epochs = set(range(every, epochs + 1, every)) | {epochs}
        scfg = search_config(cfg, search_dir / "genotypes")
        set_search_steps(scfg, state.datamodule.split("dev").num_train)
        module = fit_phase(dataclasses.replace(state, cfg=scfg), "search", "dev", search_dir, epochs, eval_epochs)
        key = state.monitors[task]
        chosen = best_epochs(module.history, {task: key})
        if task not in chosen:
            raise ZSLError(f"the search's validation never produced {key}; no genotype to select.")
        best = chosen[task]
        files = {}
        for tag in networks(cfg):
            src = search_dir / "genotypes" / f"epoch_{best}_{tag}.yaml"
            files[tag] = str(out / f"genotype_{tag}.yaml")
            if is_rank_zero():
                shutil.copyfile(src, files[tag])
        record = {"base": str(z.get("base")), "split": "dev", "epochs": epochs, "eval_every": every,
                  "monitor": f"val/{key}", "val": [{"epoch": h["epoch"], key: h.get(key)} for h in module.history],
                  "chosen_epoch": best, "genotypes": files, "config_hash": state.fingerprint}
        if is_rank_zero():
            atomic_write_json(record_file, record)
    state.results["search"] = {k: v for k, v in record.items() if k != "config_hash"}


def derive_phase(state: RunState) -> None:
    """Draw the genotypes and make the later phases build the derived networks (module docstring)."""
    from zsl_lightning.nn.genotype import Genotype, draw_genotype

    files = dict(state.results.get("search", {}).get("genotypes") or {})
    if not files:
        raise ConfigError("the derive phase needs the search phase before it (or zeronas.genotype_g/_d).")
    loaded = {tag: Genotype.from_yaml(p) for tag, p in files.items()}
    if is_rank_zero():
        draw_genotype(loaded.get("g"), loaded.get("d"), state.out / "genotype.png")
        state.loggers.log_image("plots/genotype", state.out / "genotype.png")  # W&B, when logger=wandb
    with open_dict(state.cfg):
        for tag, path in files.items():
            key, kind = KINDS[tag]
            state.cfg.method[key] = searched_node(kind, state.cfg.method[key], str(Path(path).resolve()))
    if is_rank_zero():  # config_resolved.yaml is the composed config; this is what dev and test build
        OmegaConf.save(state.cfg.method, state.out / "method_derived.yaml", resolve=True)


class ZeroNASPlan:
    """The plan of ``method=zeronas`` (``run_plan`` in the config): ``search`` → ``derive`` → the base's phases."""

    @classmethod
    def phase_plan(cls, select: str) -> tuple[str, ...]:
        return ("search", "derive", *ZSLMethod.phase_plan(select))

    @classmethod
    def custom_phases(cls):
        return {"search": search_phase, "derive": derive_phase}
