"""ZeroNAS (Yan et al. 2021) as a method: the search of Algorithm 1 around any WGAN base framework.

:func:`search_class` makes, from a :class:`~zsl_lightning.methods.wgan.WGANMethod` subclass (f-CLSWGAN,
f-VAEGAN, VS-Boost, the multi-label GANs), its *search* subclass: the same losses, with G and D made of
:class:`~zsl_lightning.nn.nas.SearchNetwork` cells and two more manual optimizer roles, ``arch_d`` (α_D, β_D)
and ``arch_g`` (α_G, β_G), next to the base's ``d``, ``g`` (``e``, ...). The base's roles ``d`` and ``g`` own
the cells' weights θ only, so :meth:`~zsl_lightning.methods.base.ZSLMethod.manual_step` freezes α/β during a
weight step and θ (and every other network) during an architecture step.

One training step (Algorithm 1, first-order and alternating; the training rows of the split are halved once,
seeded, into a *weight* set D^tr and an *architecture* set D^val, both of seen classes):

* ``n_critic`` × {α_D/β_D step on an architecture batch (Eq. 6), θ_D step on a weight batch (Eq. 7)};
* α_G/β_G step on an architecture batch (Eq. 8), then θ_G step on a weight batch (Eq. 9).

Eqs. (6)-(9) are the base's own losses: ``critic_loss`` (WGAN-GP) for D; for G ``generator_loss``
(f-CLSWGAN: ``−D + λ L_CLS``), ``vae_gan_loss`` (f-VAEGAN: KL + reconstruction + γ·(−D)) or ``joint_loss``
(VS-Boost), updating the same roles as the base's generator step. JGM is not a WGAN method and has no search.

Multi-label generators (ALF / FLF / CLF of :mod:`zsl_lightning.nn.fusion`): the searched cell replaces each
branch's MLP ``G(z, e)`` (ALF's ``net`` on ``[z; e_µ]``, FLF's ``net`` on ``[z; e(y_j)]``, both in CLF) — the
blocks before the attention fusion, which is kept fixed. CLF's two branches share one architecture (the same
α, β tensors; separate weights), so one genotype describes both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from hydra.utils import get_class
from torch import nn

from zsl_lightning.errors import ConfigError
from zsl_lightning.methods.wgan import WGANMethod
from zsl_lightning.nn.genotype import Genotype
from zsl_lightning.nn.nas import SearchedNetwork, SearchNetwork, derive

ARCH_ROLES = ("arch_d", "arch_g")


# ---------------------------------------------------------------------- networks
def fusion_blocks(generator: nn.Module) -> list[tuple[nn.Module, str]]:
    """The MLP blocks of a multi-label generator that the searched cell replaces, as ``(owner, attribute)``:
    ALF / FLF: ``net``; CLF: ``alf.net`` and ``flf.net``. Empty for any other module."""
    from zsl_lightning.nn.fusion import ALF, CLF, FLF

    if isinstance(generator, CLF):
        return [(generator.alf, "net"), (generator.flf, "net")]
    if isinstance(generator, ALF | FLF):
        return [(generator, "net")]
    return []


def _block_dims(generator: nn.Module) -> tuple[list[int], int]:
    blocks = fusion_blocks(generator)
    if not blocks:
        raise ConfigError(f"ZeroNAS cannot search a {type(generator).__name__} generator: only MLP generators "
                          "(method.generator: zsl_lightning.nn.mlp.MLP) and ALF / FLF / CLF are searched.")
    mlp = getattr(*blocks[0])
    return list(mlp.in_dims), int(mlp.out_dim)


def fusion_with_search_cell(generator: nn.Module, out_activation: str = "sigmoid", widths=None,
                            output_node: str | None = None) -> nn.Module:
    """``generator`` (ALF / FLF / CLF) whose branch MLPs are :class:`SearchNetwork` cells sharing α and β
    (module docstring); ``out_activation`` is the branches' (ALF/FLF ``out_activation``, CLF
    ``branch_activation``)."""
    in_dims, out_dim = _block_dims(generator)
    first = None
    for owner, attr in fusion_blocks(generator):
        cell = SearchNetwork("generator", in_dims, out_dim, widths, out_activation, output_node)
        if first is None:
            first = cell
        else:  # one architecture for every branch: the same α/β tensors
            cell.alphas, cell.betas = first.alphas, first.betas
        setattr(owner, attr, cell)
    return generator


def fusion_with_searched_cell(generator: nn.Module, genotype, out_activation: str | None = None) -> nn.Module:
    """``generator`` (ALF / FLF / CLF) whose branch MLPs are the derived network of ``genotype`` (fresh
    weights, Sec. 3.4); the Hydra node a derived multi-label generator is built from."""
    _block_dims(generator)
    for owner, attr in fusion_blocks(generator):
        setattr(owner, attr, SearchedNetwork(genotype, kind="generator", out_activation=out_activation))
    return generator


def search_cells(module: nn.Module) -> list[SearchNetwork]:
    return [m for m in module.modules() if isinstance(m, SearchNetwork)]


def arch_parameters(module: nn.Module) -> list[nn.Parameter]:
    """α and β of every search cell in ``module`` (shared tensors once)."""
    seen, out = set(), []
    for cell in search_cells(module):
        for p in cell.arch_parameters():
            if id(p) not in seen:
                seen.add(id(p))
                out.append(p)
    return out


def weight_parameters(module: nn.Module) -> list[nn.Parameter]:
    """Every parameter of ``module`` that is not an architecture weight (θ)."""
    arch = {id(p) for p in arch_parameters(module)}
    return [p for p in module.parameters() if id(p) not in arch]


def derive_network(module: nn.Module, top_k: int = 2) -> Genotype:
    """Sec. 3.4 on the (first) search cell of ``module`` (CLF's branches share it)."""
    cells = search_cells(module)
    if not cells:
        raise ConfigError(f"{type(module).__name__} has no ZeroNAS search cell to derive.")
    return derive(cells[0], top_k)


# ---------------------------------------------------------------------- the search method
class ZeroNASSearch:
    """Mixin making a WGAN method the ZeroNAS search of its G and D (module docstring). Use :func:`search_class`.

    Args:
        optimizer_arch: partial optimizer of α and β (Adam lr 3e-4, weight decay 1e-3: released code).
        arch_fraction: share of the training rows in the architecture set (0.5: Sec. 4).
        top_k: in-edges kept per node when deriving (2: Sec. 3.4).
        genotype_dir: where the genotypes derived at every evaluation are written (``epoch_<e>_g.yaml``, ``_d``).
    """

    def __init__(self, optimizer_arch: Callable, arch_fraction: float = 0.5, top_k: int = 2,
                 genotype_dir: str | None = None, **kw):
        super().__init__(**kw)
        if not 0.0 < float(arch_fraction) < 1.0:
            raise ConfigError(f"zeronas.arch_fraction must be in (0, 1), got {arch_fraction}.")
        self.arch_fraction, self.top_k = float(arch_fraction), int(top_k)
        self.genotype_dir = Path(genotype_dir) if genotype_dir else None
        g_net, d_net = self.generator, self.discriminator
        if not arch_parameters(d_net) and not arch_parameters(g_net):
            raise ConfigError("ZeroNAS search: neither the generator nor the discriminator is a search network.")
        # a fixed (hand-crafted) network has no alpha / beta: its architecture step (Eq. 6 or 8) is left out
        searched = {"arch_d": bool(arch_parameters(d_net)), "arch_g": bool(arch_parameters(g_net))}
        self.arch_roles = tuple(role for role in ARCH_ROLES if searched[role])
        self.optimizer_roles = (*type(self).optimizer_roles, *self.arch_roles)
        for role, net in (("d", d_net), ("g", g_net)):
            partial, _ = self._optimizer_partials[role]
            self.register_optimizer(role, partial, lambda net=net: weight_parameters(net))
        for role, net in (("arch_d", d_net), ("arch_g", g_net)):
            if searched[role]:
                self.register_optimizer(role, optimizer_arch, lambda net=net: arch_parameters(net))
        self._halves: dict[str, torch.Tensor] = {}

    # -------------------------------------------------------------- the weight / architecture halves
    def prepare(self, split) -> None:
        super().prepare(split)
        n = split.num_train
        g = torch.Generator().manual_seed(self.seed)
        perm = torch.randperm(n, generator=g)
        n_arch = max(1, min(n - 1, round(self.arch_fraction * n)))
        self._halves = {"arch": perm[:n_arch].to(self.device), "weight": perm[n_arch:].to(self.device)}

    def training_rows(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The bound split's training features and targets (the batch contract's ``target``), in memory."""
        split = self.data
        if split.label_mode == "single":
            return split.train_x, split.train_y
        if not split.train.in_memory:
            raise ConfigError("the ZeroNAS search needs the training rows in memory (data.in_memory=true).")
        return split.train.x, split.train.y.float()

    def search_batch(self, half: str, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``size`` rows drawn uniformly from the ``arch`` or ``weight`` half: ``(x, target, idx)``."""
        rows = self._halves[half]
        idx = rows[torch.randint(len(rows), (size,), device=rows.device)]
        x, t = self.training_rows()
        return x[idx], t[idx], idx

    # -------------------------------------------------------------- Algorithm 1
    def generator_objective(self, x, target, idx) -> tuple[tuple[str, ...], Callable]:
        """The base's generator-side update: its roles and a ``() -> (loss, info)`` (Eqs. 8-9)."""
        cond = self.condition(target)
        if hasattr(self, "vae_gan_loss"):
            return ("e", "g"), lambda: self.vae_gan_loss(x, cond)
        if hasattr(self, "joint_loss"):
            return tuple(self.joint_roles), lambda: self.joint_loss(x, target, idx)
        if hasattr(self, "generator_loss"):
            return ("g",), lambda: self.generator_loss(cond, target)
        raise ConfigError(f"ZeroNAS does not know the generator loss of {type(self).__name__}.")

    def critic_update(self, role: str, half: str, size: int, parts: dict) -> torch.Tensor:
        x, t, _ = self.search_batch(half, size)
        cond = self.condition(t)
        with torch.no_grad():
            fake = self.make_fake(x, cond)
        return self.step_collecting(role, lambda: self.critic_loss(x, cond, fake), parts)

    def training_step(self, batch, batch_idx):
        """One iteration of Algorithm 1 (module docstring); the loader's batch only sets the batch size."""
        size, parts, arch_parts, arch_losses = batch["x"].shape[1], {}, {}, {}
        for _ in range(self.n_critic):
            if "arch_d" in self.arch_roles:
                arch_losses["loss_arch_d"] = self.critic_update("arch_d", "arch", size, arch_parts)  # Eq. (6)
            loss_d = self.critic_update("d", "weight", size, parts)  # Eq. (7)
        if "arch_g" in self.arch_roles:
            _, fn = self.generator_objective(*self.search_batch("arch", size))
            arch_losses["loss_arch_g"] = self.step_collecting("arch_g", fn, arch_parts)  # Eq. (8)
        roles, fn = self.generator_objective(*self.search_batch("weight", size))
        loss_g = self.step_collecting(roles, fn, parts)  # Eq. (9)
        self.log_losses({"loss_d": loss_d, "loss_g": loss_g, **arch_losses, **parts},
                        prog_bar=("loss_d", "loss_g"))

    # -------------------------------------------------------------- genotypes at every evaluation
    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        epoch = self.current_epoch + 1
        if self.history and self.history[-1]["epoch"] == epoch and self.genotype_dir is not None:
            for tag, net in (("g", self.generator), ("d", self.discriminator)):
                if search_cells(net):
                    derive_network(net, self.top_k).to_yaml(self.genotype_dir / f"epoch_{epoch}_{tag}.yaml")


_SEARCH_CLASSES: dict[type, type] = {}


def search_class(base: type) -> type:
    """The ZeroNAS search subclass of the WGAN method class ``base`` (cached)."""
    if not (isinstance(base, type) and issubclass(base, WGANMethod)):
        raise ConfigError(f"ZeroNAS searches the G and D of a WGAN method; {getattr(base, '__name__', base)} is "
                          "not one (zeronas=clswgan | vaegan | vs_boost | alf_/flf_/clf_clswgan | ..._vaegan).")
    if base not in _SEARCH_CLASSES:
        _SEARCH_CLASSES[base] = type(f"{base.__name__}Search", (ZeroNASSearch, base),
                                     {"__module__": __name__, "__qualname__": f"{base.__name__}Search"})
    return _SEARCH_CLASSES[base]


def search_method(base_target: str, **kw):
    """Hydra target of the search phase's method: ``search_class(base)(**kw)``."""
    return search_class(get_class(base_target))(**kw)


def search_settings(zeronas: Mapping) -> dict:
    """Search-network options of a ``zeronas`` config node for one kind: ``{"g": {...}, "d": {...}}``."""
    return {tag: {"widths": zeronas.get(f"widths_{tag}"), "output_node": zeronas.get(f"output_node_{tag}")}
            for tag in ("g", "d")}
