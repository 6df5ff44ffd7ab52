"""Test helpers: tiny benchmark files in the real on-disk formats, config composition, the method registry,
bound methods, parameter snapshots, crashes."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"

#: the embedded benchmark each label mode runs on
DATA_FOR_MODE = {"single": "synthetic", "multi": "synthetic_ml"}
#: methods whose embedded benchmark is not their label mode's (GBE reads feature maps, not vectors)
DATA_FOR_METHOD = {"gbe": "synthetic_maps"}


def embedded_data(method: str, mode: str) -> str:
    """The embedded benchmark a method config runs on in the generic tests."""
    return DATA_FOR_METHOD.get(method, DATA_FOR_MODE[mode])
QUIET = ["print_config=false", "callbacks=none", "logger=none", "trainer.enable_progress_bar=false"]


def write_xlsa17(root: Path, name: str = "TINY", *, n_classes: int = 10, n_unseen: int = 3, n_val: int = 2,
                 per_class: int = 12, dim: int = 16, att_dim: int = 6, seed: int = 0, **tamper) -> Path:
    """Write ``root/name/{res101.mat, att_splits.mat}`` in the xlsa17 layout (1-based, D x N).

    ``tamper`` changes one thing to produce a specific bad input (see tests/test_data_xlsa17.py).
    """
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_classes), per_class)
    feats = np.abs(rng.standard_normal((len(labels), dim))) + labels[:, None] * 0.1
    att = np.abs(rng.standard_normal((n_classes, att_dim)))
    att /= np.linalg.norm(att, axis=1, keepdims=True)
    unseen = np.arange(n_classes - n_unseen, n_classes)
    val_cls = np.arange(n_classes - n_unseen - n_val, n_classes - n_unseen)
    is_unseen = np.isin(labels, unseen)
    test_seen = np.zeros(len(labels), bool)
    for c in range(n_classes - n_unseen):
        test_seen[np.nonzero(labels == c)[0][:3]] = True
    trainval = ~is_unseen & ~test_seen
    val = trainval & np.isin(labels, val_cls)
    train = trainval & ~val

    def loc(m):
        return (np.nonzero(m)[0] + 1).reshape(-1, 1).astype(float)

    res = {"features": feats.T.copy(), "labels": (labels + 1).reshape(-1, 1).astype(float)}
    spl = {"att": att.T.copy(), "trainval_loc": loc(trainval), "train_loc": loc(train), "val_loc": loc(val),
           "test_seen_loc": loc(test_seen), "test_unseen_loc": loc(is_unseen),
           "allclasses_names": np.array([f"c{i}" for i in range(n_classes)], dtype=object).reshape(-1, 1)}
    if tamper.get("transpose_features"):
        res["features"] = feats.copy()
    if tamper.get("zero_based_labels"):
        res["labels"] = labels.reshape(-1, 1).astype(float)
    if tamper.get("zero_based_locs"):  # every split written 0-based (the first image then has index 0)
        for k in ("trainval_loc", "train_loc", "val_loc", "test_seen_loc", "test_unseen_loc"):
            spl[k] = spl[k] - 1
    if tamper.get("nan"):
        res["features"][0, 5] = np.nan
    if tamper.get("inf_att"):
        spl["att"][1, 2] = np.inf
    if tamper.get("overlap"):
        # one unseen class also gets training images
        extra = np.nonzero(labels == unseen[0])[0][:2]
        spl["trainval_loc"] = np.concatenate([spl["trainval_loc"], (extra + 1).reshape(-1, 1)])
        spl["test_unseen_loc"] = loc(is_unseen & ~np.isin(np.arange(len(labels)), extra))
    if tamper.get("empty_split"):
        spl["test_seen_loc"] = np.zeros((0, 1))
    if tamper.get("transpose_att"):
        spl["att"] = att.copy()
    if tamper.get("short_att"):
        spl["att"] = att.T[:, :-1].copy()
    if "drop" in tamper:
        spl.pop(tamper["drop"])
    d = Path(root) / name
    d.mkdir(parents=True, exist_ok=True)
    savemat(d / "res101.mat", res)
    savemat(d / "att_splits.mat", spl)
    return d


def write_sent_splits(d: Path, dim: int = 20, seed: int = 3) -> np.ndarray:
    """Write ``d/sent_splits.mat`` next to ``write_xlsa17``'s files, in the layout of the f-CLSWGAN release:
    ``att`` = ``dim`` x C "CNN-RNN sentence" embeddings (L2-normalised columns) and the same split fields as
    ``att_splits.mat``. Returns ``att`` (dim x C)."""
    from scipy.io import loadmat, savemat

    spl = loadmat(Path(d) / "att_splits.mat")
    n_classes = spl["att"].shape[1]
    sent = np.random.default_rng(seed).standard_normal((dim, n_classes))  # signed, as CNN-RNN outputs are
    sent /= np.linalg.norm(sent, axis=0, keepdims=True)
    keep = ("trainval_loc", "train_loc", "val_loc", "test_seen_loc", "test_unseen_loc", "allclasses_names")
    savemat(Path(d) / "sent_splits.mat", {"att": sent, **{k: spl[k] for k in keep if k in spl}})
    return sent


def compose_cfg(overrides: list[str], output_dir: Path, cache_dir: Path | None = None,
                quiet: bool = True) -> DictConfig:
    """Compose conf/train.yaml like ``python train.py`` does (Hydra's runtime node included)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=(QUIET if quiet else []) + list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        if cache_dir is not None:
            cfg.paths.cache_dir = str(cache_dir)
    return cfg


def shrink(cfg: DictConfig, width: int = 32) -> DictConfig:
    """Make every network of ``cfg.method`` tiny: any ``hidden`` list inside a ``_target_`` node."""

    def walk(node):
        if isinstance(node, DictConfig):
            for k in list(node.keys()):
                v = node._get_node(k)
                if k == "hidden" and "_target_" in node:
                    node[k] = [width] * max(1, len(node[k]))
                elif isinstance(v, DictConfig):
                    walk(v)

    with open_dict(cfg):
        walk(cfg.method)
    return cfg


class CrashAtEpochStart(pl.Callback):
    """Simulates a run dying at the start of (0-based) ``epoch`` of the phase named ``split``."""

    def __init__(self, epoch: int, split: str = "test"):
        self.epoch, self.split = epoch, split

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch and pl_module.data.name == self.split:
            raise RuntimeError("simulated crash")


def bound_method(overrides: list[str], output_dir: Path, cache_dir: Path | None = None, split: str = "dev",
                 width: int | None = 32, data=None):
    """A method built from ``overrides`` (networks shrunk to ``width``; ``None`` keeps them) and bound to
    ``split`` of its datamodule the way a phase binds it: optimizers configured and ``prepare`` run (e.g.
    pre-training), but no training step taken. Returns ``(method, datamodule)``."""
    from zsl_lightning.context import PhaseContext
    from zsl_lightning.pipeline import build_datamodule, build_method

    cfg = compose_cfg(overrides, output_dir, cache_dir)
    if width is not None:
        shrink(cfg, width)
    dm = data if data is not None else build_datamodule(cfg)
    with open_dict(cfg):
        cfg.data_info = dm.info
    m = build_method(cfg, PhaseContext(phase=split, split=dm.split(split), on_device=dm.device_split,
                                       tasks=tuple(getattr(dm, "tasks", ("zsl", "gzsl")))))
    dm.use(split, m.batch_plan)
    pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False, limit_train_batches=0, limit_val_batches=0,
               accelerator="cpu").fit(m, datamodule=dm)
    return m, dm


# ------------------------------------------------------------------------------------------ the method registry
def method_configs() -> list[str]:
    """Every ``conf/method/*.yaml`` (a new file is picked up without a test change)."""
    return sorted(p.stem for p in (CONF / "method").glob("*.yaml"))


@lru_cache(maxsize=1)
def method_targets() -> dict[str, tuple[str, tuple[str, ...]]]:
    """config -> (its ``_target_``, the label modes it declares: ``method.label_modes``, else the class's)."""
    import tempfile

    from hydra.utils import get_class

    out = {}
    for name in method_configs():
        method = compose_cfg([f"method={name}"], Path(tempfile.gettempdir())).method
        modes = method.get("label_modes") or get_class(method._target_).label_modes
        out[name] = (str(method._target_), tuple(str(m) for m in modes))
    GlobalHydra.instance().clear()
    return out


def method_jobs() -> list[tuple[str, str]]:
    """(method config, label mode) for every method config and every label mode it declares."""
    return [(name, mode) for name, (_, modes) in method_targets().items() for mode in modes]


# ------------------------------------------------------------------------------------------ parameter snapshots
def snapshot(net: nn.Module) -> list:
    """Copies of ``net``'s parameters, for :func:`changed`."""
    return [p.detach().clone() for p in net.parameters()]


def changed(before: list, net: nn.Module) -> bool:
    """Whether any parameter of ``net`` differs from its :func:`snapshot` ``before``."""
    import torch

    return any(not torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))


def snapshot_nets(m: nn.Module, names) -> dict[str, list]:
    """:func:`snapshot` of each sub-network ``getattr(m, name)``."""
    return {n: snapshot(getattr(m, n)) for n in names}


def changed_nets(m: nn.Module, before: dict[str, list]) -> set[str]:
    """The names of the sub-networks of :func:`snapshot_nets` that changed since."""
    return {n for n, b in before.items() if changed(b, getattr(m, n))}


def snapshot_params(m: nn.Module) -> dict:
    """Copies of every named parameter of ``m`` (finer than :func:`snapshot_nets`: one entry per tensor)."""
    return {n: p.detach().clone() for n, p in m.named_parameters()}


def changed_params(m: nn.Module, before: dict) -> set[str]:
    """The names of the parameters of ``m`` that differ from :func:`snapshot_params` ``before``."""
    import torch

    return {n for n, p in m.named_parameters() if not torch.equal(before[n], p.detach())}


def rewrite_h5(path: Path, fn) -> None:
    """Damage an HDF5 file the way a test needs: read every dataset into a dict, let ``fn`` edit the dict, and
    write the file back with exactly those datasets."""
    import h5py

    with h5py.File(path, "r+") as f:
        data = {k: f[k][()] for k in f}
        fn(data)
        for k in list(f):
            del f[k]
        for k, v in data.items():
            f.create_dataset(k, data=v)
