"""Type checks of the composed config before anything is loaded: every literal value of the ``method`` and ``data``
nodes against the constructor annotations of the class their ``_target_`` names (and of its bases, which take
the rest as ``**kwargs``), ``eval`` against :class:`~zsl_lightning.methods.base.EvalSettings`, the pipeline's own
``trainer`` options (``compile``, ``cuda_graphs``: bool), the seed and ``threads``.

Only plain annotations are checked (``int``, ``float``, ``str``, ``bool`` and their ``| None``); anything else
(callables, nested nodes, lists) and interpolations (``${data_info.*}`` is not known yet) are left to the
constructors. A mismatch is a :class:`~zsl_lightning.errors.ConfigError` naming the key, the value and the type.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing

from omegaconf import DictConfig, OmegaConf

from zsl_lightning.errors import ConfigError

SIMPLE = (int, float, str, bool)


def _simple_types(annotation) -> tuple[set, bool] | None:
    """``({int, ...}, allows_none)`` for a plain annotation, ``None`` for anything this module does not check."""
    if annotation in SIMPLE:
        return {annotation}, False
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        kinds = {a for a in args if a is not type(None)}
        if kinds and kinds <= set(SIMPLE):
            return kinds, type(None) in args
    return None


def _fits(value, kinds: set, allows_none: bool) -> bool:
    if value is None:
        return allows_none
    if isinstance(value, bool):
        return bool in kinds
    if isinstance(value, int):
        return int in kinds or float in kinds
    if isinstance(value, float):
        return float in kinds
    if isinstance(value, str):
        return str in kinds
    return True  # nodes and lists: the constructor's business


def constructor_annotations(cls) -> dict:
    """Annotated keyword arguments of ``cls.__init__`` and, through ``**kwargs``, of its bases (the first
    class that declares a name wins). A class may name a delegate with ``benchmark_class`` (multi-label data)."""
    out: dict = {}
    chain = [c for c in inspect.getmro(cls) if "__init__" in vars(c) and c is not object]
    if getattr(cls, "benchmark_class", None) is not None:
        chain.append(cls.benchmark_class)
    for c in chain:
        try:
            hints = typing.get_type_hints(c.__init__)
        except Exception:  # an annotation that does not evaluate here: skip that class
            continue
        for name, ann in hints.items():
            if name != "return":
                out.setdefault(name, ann)
    return out


def check_node(node: DictConfig, annotations: dict, prefix: str) -> None:
    for key in node.keys():
        if key not in annotations or OmegaConf.is_interpolation(node, key) or OmegaConf.is_missing(node, key):
            continue
        spec = _simple_types(annotations[key])
        if spec is None:
            continue
        value = node[key]
        if not _fits(value, *spec):
            names = " | ".join(sorted(k.__name__ for k in spec[0])) + (" | null" if spec[1] else "")
            raise ConfigError(f"{prefix}.{key}={value!r}: expected {names}, got {type(value).__name__}.")


def check_target_node(cfg: DictConfig, group: str) -> None:
    from hydra.utils import get_class

    node = cfg.get(group)
    if not isinstance(node, DictConfig) or "_target_" not in node:
        return
    try:
        cls = get_class(str(node._target_))
    except Exception:  # an unknown target is reported when it is instantiated
        return
    check_node(node, constructor_annotations(cls), group)


def check_eval(cfg: DictConfig) -> None:
    from zsl_lightning.methods.base import ClassifierSettings, EvalSettings

    def hints(dc):
        resolved = typing.get_type_hints(dc)
        return {f.name: resolved[f.name] for f in dataclasses.fields(dc)}

    node = cfg.get("eval")
    if isinstance(node, DictConfig):
        check_node(node, hints(EvalSettings), "eval")
        if isinstance(node.get("classifier"), DictConfig):
            check_node(node.classifier, hints(ClassifierSettings), "eval.classifier")


#: the ``trainer:`` keys the pipeline reads itself (:data:`zsl_lightning.phases.PIPELINE_TRAINER_OPTIONS`)
TRAINER_OPTIONS = {"compile": bool, "cuda_graphs": bool}


def check_trainer(cfg: DictConfig) -> None:
    node = cfg.get("trainer")
    if isinstance(node, DictConfig):
        check_node(node, TRAINER_OPTIONS, "trainer")


def check_seed(cfg: DictConfig) -> None:
    seed = cfg.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ConfigError(f"seed={seed!r}: the seed must be a non-negative integer below 2**32 (e.g. seed=0).")


def check_threads(cfg: DictConfig) -> None:
    threads = cfg.get("threads")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"threads={threads!r}: the CPU threads of a run must be a positive integer (e.g. threads=1), "
                          "or null to choose cores ÷ concurrent jobs.")


def check_config_types(cfg: DictConfig) -> None:
    """Every check of this module, in the order a user reads the command line."""
    check_seed(cfg)
    check_threads(cfg)
    check_target_node(cfg, "method")
    check_target_node(cfg, "data")
    check_eval(cfg)
    check_trainer(cfg)
