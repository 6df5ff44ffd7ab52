"""Every method config × every label mode it declares, with no per-method code: a new ``conf/method/<name>.yaml``
is tested here without a new test (the registry is :func:`tests.helpers.method_jobs`).

* each optimizer role of one real ``training_step`` changes only its own parameters;
* a Lightning checkpoint of a bound method, resumed into a fresh one, gives the same state and the same scores;
* a tiny run of the whole pipeline ends without NaN and writes the documented ``results.json``.

A config is left out of a check only through :data:`SKIP` (with its reason) and a config that needs extra
overrides to run in CPU time names them in :data:`EXTRA`; nothing is skipped silently.
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
import pkgutil

import pytest
import pytorch_lightning as pl
import torch
from omegaconf import open_dict

from tests.helpers import (
    bound_method,
    changed_params,
    compose_cfg,
    embedded_data,
    method_configs,
    method_jobs,
    method_targets,
    shrink,
    snapshot_params,
)

JOBS = [pytest.param(m, mode, id=f"{m}@{mode}") for m, mode in method_jobs()]
WIDTH = 16
#: evaluation as small as it gets: a few synthetic features, one classifier epoch
TINY_EVAL = ["eval.syn_num=8", "eval.classifier.epochs=1"]
#: the tiny pipeline run: one epoch of two steps per phase, selected on validation (both phases run)
TINY_RUN = ["eval.select=val", "method.epochs=1", "eval.every=1", "++trainer.limit_train_batches=2", "seed=3",
            *TINY_EVAL]
#: config -> overrides it needs on the embedded benchmark besides the ones above
EXTRA: dict[str, list[str]] = {
    "gbe": ["data.generator.num_train=240", "data.generator.num_test=80", "debug_nets=fast/gbe"],
}
#: (config, check) -> why the check does not apply; check is "roles", "checkpoint" or "fit"
SKIP: dict[tuple[str, str], str] = {
    ("eszsl", "roles"): "no optimizer: V is solved in closed form when fitting starts",
    ("ridge_ml", "roles"): "no optimizer: W is solved in closed form when fitting starts",
}
#: method class -> {label mode it declares but no config runs: why}
MODES_WITHOUT_CONFIG: dict[str, dict[str, str]] = {
    "zsl_lightning.methods.cvae.CVAE": {"multi": "the docs' example method; conf/method/cvae.yaml is its single-label "
                                                "MLP-generator configuration and no multi-label one exists yet"},
}
#: keys every results.json holds (a phase plan of a method may add others)
RESULT_KEYS = {"method", "data", "seed", "config", "selection", "headline", "validation", "objective", "history",
               "checkpoints"}


def _overrides(method: str, mode: str) -> list[str]:
    return [f"method={method}", f"data={embedded_data(method, mode)}", *TINY_EVAL, *EXTRA.get(method, [])]


def _skip(method: str, check: str) -> None:
    if (method, check) in SKIP:
        pytest.skip(SKIP[(method, check)])


# ------------------------------------------------------------------------------------------ the registry
def test_skip_and_extra_tables_name_existing_configs():
    """A stale entry would hide nothing today but would silently skip a future config of the same name."""
    names = set(method_configs())
    assert {m for m, _ in SKIP} <= names and set(EXTRA) <= names
    assert set(MODES_WITHOUT_CONFIG) <= {target for target, _ in method_targets().values()}
    assert {c for _, c in SKIP} <= {"roles", "checkpoint", "fit"}


def test_every_method_class_has_a_config_for_each_of_its_label_modes():
    """Registry by discovery: each concrete LightningModule of ``zsl_lightning.methods`` (one that no other
    class there extends) is the ``_target_`` of some ``conf/method/*.yaml``, and its configs together run
    every label mode the class declares."""
    from hydra.utils import get_class

    import zsl_lightning.methods as pkg
    from zsl_lightning.methods.base import ZSLMethod

    classes = set()
    for info in pkgutil.iter_modules(pkg.__path__):
        mod = importlib.import_module(f"{pkg.__name__}.{info.name}")
        classes |= {c for _, c in inspect.getmembers(mod, inspect.isclass) if issubclass(c, ZSLMethod)}
    leaves = {c for c in classes if not any(o is not c and issubclass(o, c) for o in classes)}
    assert leaves, "no method class found in zsl_lightning.methods"
    modes: dict[type, set[str]] = {}
    for target, config_modes in method_targets().values():
        modes.setdefault(get_class(target), set()).update(config_modes)
    for cls in leaves:
        name = f"{cls.__module__}.{cls.__name__}"
        assert cls in modes, f"{name} has no conf/method/*.yaml naming it"
        untested = set(cls.label_modes) - modes[cls]
        assert untested == set(MODES_WITHOUT_CONFIG.get(name, {})), (
            f"{name} declares label modes {cls.label_modes}; configs run {sorted(modes[cls])}: add a config for "
            f"{sorted(untested)} or say why in MODES_WITHOUT_CONFIG")


# ------------------------------------------------------------------------------------------ one training step
@pytest.mark.parametrize("method,mode", JOBS)
def test_each_optimizer_role_changes_only_its_own_parameters(method, mode, tmp_path, cache_dir, monkeypatch):
    """One real ``training_step`` on a real batch, every optimizer's ``step`` spied on. Each role steps at least
    once, inside ``manual_step``; each step changes some of its own parameters and no other; the loss of an
    update puts no gradient on a parameter of another role; nothing changes a parameter between steps."""
    m, dm = bound_method(_overrides(method, mode), tmp_path, cache_dir, "test", width=WIDTH)
    roles = tuple(m.optimizer_roles)
    if (method, "roles") in SKIP:
        assert not roles, f"{method} declares optimizer roles {roles}: remove it from SKIP"
        pytest.skip(SKIP[(method, "roles")])
    assert roles, f"{method} has no optimizer_roles; if it has no optimizer, say why in SKIP"

    names = {id(p): n for n, p in m.named_parameters()}
    owner: dict[str, str] = {}
    for role in roles:
        for group in m.optimizer(role).param_groups:
            for p in group["params"]:
                assert id(p) in names, f"role {role} optimizes a tensor that is not a parameter of the module"
                n = names[id(p)]
                assert n not in owner, f"{n} is optimized by roles {owner[n]} and {role}"
                owner[n] = role

    def grads():
        return {n: None if p.grad is None else p.grad.clone() for n, p in m.named_parameters()}

    active: list[tuple[tuple[str, ...], dict]] = []  # the manual_step in progress: its roles, grads before it
    steps: list[tuple[str, set[str]]] = []
    last = {"params": snapshot_params(m)}
    real_manual_step = m.manual_step

    def manual_step(step_roles, loss_fn):
        active.append(((step_roles,) if isinstance(step_roles, str) else tuple(step_roles), grads()))
        try:
            return real_manual_step(step_roles, loss_fn)
        finally:
            active.pop()

    monkeypatch.setattr(m, "manual_step", manual_step)
    for role in roles:
        inner = m.optimizer(role).optimizer

        def spy(*args, _role=role, _step=inner.step, **kw):
            assert active, f"role {_role} stepped outside manual_step"
            step_roles, grads_before = active[-1]
            assert _role in step_roles, f"role {_role} stepped inside manual_step{step_roles}"
            between = changed_params(m, last["params"])
            assert not between, f"parameters changed outside an optimizer step: {sorted(between)}"
            for n, p in m.named_parameters():
                if owner.get(n) not in step_roles:
                    g0 = grads_before[n]
                    same = p.grad is None if g0 is None else p.grad is not None and torch.equal(g0, p.grad)
                    assert same, f"the update of {step_roles} put a gradient on {n} (role {owner.get(n)})"
            before = snapshot_params(m)
            out = _step(*args, **kw)
            steps.append((_role, changed_params(m, before)))
            last["params"] = snapshot_params(m)
            return out

        monkeypatch.setattr(inner, "step", spy)

    batch = next(iter(dm.train_dataloader()))
    torch.manual_seed(0)
    m.training_step(batch, 0)

    assert {r for r, _ in steps} == set(roles), f"roles that never stepped: {set(roles) - {r for r, _ in steps}}"
    for role, moved in steps:
        assert moved, f"a step of role {role} changed nothing"
        foreign = {n for n in moved if owner.get(n) != role}
        assert not foreign, f"the step of role {role} changed {sorted(foreign)}"
    assert not changed_params(m, last["params"]), "parameters changed after the last optimizer step"


# ------------------------------------------------------------------------------------------ checkpoint round trip
class _Recording:
    """A scorer that keeps a copy of every score matrix it returns."""

    def __init__(self, scorer, out: list):
        self._scorer, self._out = scorer, out

    def __getattr__(self, name):
        return getattr(self._scorer, name)

    def __call__(self, x):
        s = self._scorer(x)
        self._out.append(s.detach().clone())
        return s


def _scores(m) -> tuple[dict, list]:
    """One seeded evaluation (generation, final classifier, scoring): its metrics and every score matrix."""
    out: list = []
    fit_scorer = m.fit_scorer
    m.fit_scorer = lambda *a, **kw: _Recording(fit_scorer(*a, **kw), out)
    try:
        return m.run_evaluation(1), out
    finally:
        del m.fit_scorer


def _assert_same(a, b, where="state"):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.shape == b.shape and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), (where, set(a) ^ set(b))
        for k in a:
            _assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


@pytest.mark.parametrize("method,mode", JOBS)
def test_checkpoint_round_trip(method, mode, tmp_path, cache_dir):
    """After one training step, a Lightning checkpoint resumed (``fit(ckpt_path=...)``, as a crashed run is)
    into a fresh method built from the same config, with other initial weights, restores the same state dict
    and optimizer states and gives the same scores in one seeded evaluation."""
    _skip(method, "checkpoint")
    overrides = _overrides(method, mode)
    pl.seed_everything(0, verbose=False)
    m, dm = bound_method(overrides, tmp_path, cache_dir, "test", width=WIDTH)
    if m.optimizer_roles:
        torch.manual_seed(0)
        m.training_step(next(iter(dm.train_dataloader())), 0)
    path = tmp_path / "step.ckpt"
    m.trainer.save_checkpoint(path)

    from zsl_lightning.context import PhaseContext
    from zsl_lightning.pipeline import build_method

    pl.seed_everything(1, verbose=False)
    cfg = shrink(compose_cfg(overrides, tmp_path, cache_dir), WIDTH)
    with open_dict(cfg):
        cfg.data_info = dm.info
    fresh = build_method(cfg, PhaseContext(phase="test", split=dm.split("test"), on_device=dm.device_split,
                                           tasks=m.context.tasks))
    dm.use("test", fresh.batch_plan)
    pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False, limit_train_batches=0, limit_val_batches=0,
               accelerator="cpu").fit(fresh, datamodule=dm, ckpt_path=str(path))

    _assert_same(m.state_dict(), fresh.state_dict(), "state_dict")
    if m.optimizer_roles:
        def states(method):  # Lightning returns a lone optimizer itself, not a list of one
            opts = method.optimizers()
            return [o.state_dict() for o in (opts if isinstance(opts, list) else [opts])]

        _assert_same(states(m), states(fresh), "optimizer_states")
    metrics, scores = _scores(m)
    metrics_fresh, scores_fresh = _scores(fresh)
    assert scores, "the evaluation scored nothing"
    _assert_same(scores, scores_fresh, "scores")
    assert metrics == metrics_fresh


# ------------------------------------------------------------------------------------------ a tiny run
def _finite(values, where):
    for k, v in values.items():
        if isinstance(v, int | float):
            assert math.isfinite(v), f"{where}: {k} = {v}"


@pytest.mark.parametrize("method,mode", JOBS)
def test_tiny_run_has_no_nan_and_writes_the_results(method, mode, tmp_path, cache_dir):
    """The whole pipeline (``eval.select=val``: dev then test) on the embedded benchmark with two steps per
    phase: finite numbers everywhere, and ``results.json`` as documented (docs/architecture.md)."""
    _skip(method, "fit")
    from zsl_lightning.pipeline import run

    cfg = shrink(compose_cfg([*_overrides(method, mode), *TINY_RUN], tmp_path, cache_dir), WIDTH)
    returned = run(cfg)
    res = json.loads((tmp_path / "results.json").read_text())
    assert res == json.loads(json.dumps(returned))  # the file is what run() returned
    assert RESULT_KEYS <= set(res), RESULT_KEYS - set(res)
    assert res["method"] == method and res["data"] and res["seed"] == 3
    tasks = set(res["selection"]["epochs"])
    assert tasks and res["selection"]["mode"] == "val"
    assert res["headline"] and {k.split("_")[0] for k in res["headline"]} == tasks
    assert set(res["validation"]) == set(res["headline"])
    _finite(res["headline"], "headline")
    _finite(res["validation"], "validation")
    assert set(res["objective"]) == tasks
    assert {"dev", "test"} <= set(res["history"])
    for phase, history in res["history"].items():
        assert [h["epoch"] for h in history] == [1], phase
        for h in history:
            _finite(h, f"history.{phase}")
    assert {"last", *(f"best_{t}" for t in tasks)} <= set(res["checkpoints"])
    for t in tasks:
        assert (tmp_path / "checkpoints" / f"best_{t}.ckpt").is_file()
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
