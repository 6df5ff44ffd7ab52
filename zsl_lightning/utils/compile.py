"""``trainer.compile`` and ``trainer.cuda_graphs``: the method's networks run through ``torch.compile``.

Each network (every direct child module of the method that has parameters: generator, critic, encoder, ...) is
compiled *in place* (:meth:`torch.nn.Module.compile`), so the method keeps calling the same objects, manual
optimisation and the optimizers' parameter lists are untouched, and state-dict keys stay those of an eager run:
checkpoints load either way. A network wrapped by ``torch.compile(net)`` instead (an ``OptimizedModule``) saves
its keys under ``_orig_mod.``; :func:`strip_compiled_prefix` removes that segment when a checkpoint is loaded
(:class:`~zsl_lightning.methods.base.ZSLMethod` registers it as a load pre-hook), so such checkpoints load too.

``cuda_graphs=true`` (CUDA only) compiles with ``mode="reduce-overhead"``: torch.compile captures each network's
forward and backward at the step's fixed batch shape in CUDA graphs and replays them, removing the per-kernel
launch cost that dominates small-batch GAN steps on a GPU. The optimizer updates stay outside the graphs. On a
CPU the option does nothing (a notice is printed), so CPU runs are unchanged.
"""

from __future__ import annotations

import sys

from torch import nn

COMPILED_PREFIX = "_orig_mod."


def compile_mode(compile_: bool, cuda_graphs: bool, device_type: str) -> str | None:
    """The ``torch.compile`` mode of a run: ``None`` (eager), ``"default"`` or ``"reduce-overhead"`` (CUDA graphs,
    only on CUDA)."""
    if cuda_graphs and device_type != "cuda":
        print(f"[zsl-lightning] notice: trainer.cuda_graphs=true is CUDA-only; ignored on {device_type}.",
              file=sys.stderr)
        cuda_graphs = False
    if cuda_graphs:
        return "reduce-overhead"
    return "default" if compile_ else None


def networks(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """The networks of a method: its direct children that hold parameters."""
    return [(n, c) for n, c in module.named_children() if next(c.parameters(), None) is not None]


def compile_networks(module: nn.Module, mode: str | None = "default") -> list[str]:
    """Compile every network of ``module`` in place (``mode=None``: nothing); returns their names."""
    if mode is None:
        return []
    import torch._dynamo

    # compiled code is cached per code object: G and D are often both MLPs (one MLP.forward), each called with
    # and without gradients, and in evaluation with other batch sizes; past the limit torch silently runs eager
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
    names = []
    for name, net in networks(module):
        # CUDA graphs replay one shape each: no dynamic shapes there; elsewhere torch decides (evaluation
        # synthesises in larger chunks than the training batch)
        net.compile(mode=mode, dynamic=False if mode == "reduce-overhead" else None)
        names.append(name)
    return names


def strip_compiled_prefix(state_dict: dict) -> dict:
    """Remove ``_orig_mod.`` (``torch.compile``'s wrapper) from every key of ``state_dict``, in place; returns
    it. Keys of an eager or in-place-compiled network are unchanged."""
    for key in [k for k in state_dict if COMPILED_PREFIX in k]:
        state_dict[key.replace(COMPILED_PREFIX, "")] = state_dict.pop(key)
    return state_dict
