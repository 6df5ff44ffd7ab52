"""ZeroNAS (Yan et al. 2021): the MLP search space of Sec. 3.2 and the derived networks of Sec. 3.4.

* :func:`make_op` — the 8 candidate operations of Sec. 3.2 (names and layer order: ``nn.genotype``).
* :class:`MixedOp` — Eq. (2): one edge, ``Σ_o softmax(α)_o · o(f_i)``.
* :class:`SearchNetwork` — Eq. (3): the densely connected DAG whose nodes are
  ``f_j = Σ_{i<j} softmax(β^{v_j})_i · M(v_i → v_j)``; owns α and β (``arch_parameters``).
* :func:`derive` — Sec. 3.4 pruning: per node the top-2 in-edges by β, each with its argmax-α op.
* :class:`SearchedNetwork` — the fixed network of a genotype (node = sum of its kept ops), trained from
  scratch with the base framework's recipe; drop-in for ``zsl_lightning.nn.mlp.MLP`` (``G(z, a)``,
  ``D(x, a)``, ``forward_with_hidden``).

States (inputs, then nodes) are numbered as in :mod:`zsl_lightning.nn.genotype`: ``a``, the first call
argument (``z`` or ``x``), ``[a; first]``, then node 0, 1, ..., the last node being the output.

**The output node.** ``output_node="ops"`` searches the output node like every other node (the released
code; the paper reports searched generators ending in FC+ReLU). ``output_node="linear"`` gives each of
its in-edges a plain ``Linear`` (no op choice, no α) — the default for the discriminator, whose output is
a WGAN critic score: a ReLU would clip it at 0, BatchNorm over a 1-d score would centre every batch's
scores (``E[D(x)] − E[D(x̃)]`` on separate batches would lose its meaning) and couple the samples that
the gradient penalty treats separately, and Dropout(0.5) would zero half the scores. In both modes
``out_activation`` (``none`` by default; f-VAEGAN's generator uses ``sigmoid``) is applied to the output
node's sum; with ``output_node="ops"`` prefer ``none`` since the ops already end in an activation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from zsl_lightning.errors import ConfigError
from zsl_lightning.nn.genotype import CANDIDATE_OPS, KINDS, LINEAR_OP, OUTPUT_NODE_MODES, Genotype, parse_op
from zsl_lightning.nn.mlp import init_weights, make_activation

# Sec. 4 (Implementation details): four intermediate nodes; the output node (feature dim / 1) is added.
DEFAULT_WIDTHS = {"generator": (128, 256, 512, 1024), "discriminator": (1024, 512, 256, 128)}


def make_op(name: str, in_dim: int, out_dim: int, negative_slope: float = 0.2, dropout: float = 0.5) -> nn.Module:
    """One candidate op of Sec. 3.2: ``Linear → [BatchNorm1d] → ReLU | LeakyReLU(0.2) → [Dropout(0.5)]``."""
    activation, bn, drop = parse_op(name)
    layers: list[nn.Module] = [nn.Linear(in_dim, out_dim)]
    if activation is None:
        return layers[0]
    if bn:
        layers.append(nn.BatchNorm1d(out_dim))
    layers.append(make_activation(activation, negative_slope))
    if drop:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class MixedOp(nn.Module):
    """Eq. (2) of Yan et al. 2021: ``M(v_i → v_j) = Σ_k softmax(a^{v_i,v_j})_k · o_k(f_i)``.

    The op weights ``alpha`` (``|O|`` = 8 logits) are passed to ``forward``: they belong to the search
    network, so that one optimiser owns all architecture parameters and another all weights.
    """

    def __init__(self, in_dim: int, out_dim: int, ops: Sequence[str] = CANDIDATE_OPS):
        super().__init__()
        self.op_names = tuple(ops)
        self.ops = nn.ModuleList(make_op(name, in_dim, out_dim) for name in self.op_names)

    def forward(self, x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        w = F.softmax(alpha, dim=-1)
        return sum(w[k] * op(x) for k, op in enumerate(self.ops))


def _input_states(first: torch.Tensor, a: torch.Tensor) -> list[torch.Tensor]:
    """The three input states of Sec. 4: ``a``, ``z`` (or ``x``), ``[a; z]`` (or ``[a; x]``)."""
    return [a, first, torch.cat([a, first], dim=-1)]


class SearchNetwork(nn.Module):
    """Eq. (3) of Yan et al. 2021: the continuous relaxation of the MLP search space (Sec. 3.2, Fig. 2).

    Node ``j`` (``widths[j]`` units; the last node has ``out_dim`` units and is the output) sums the
    mixed ops (Eq. 2) of every earlier state, weighted by ``softmax(β^{v_j})``:
    ``f_j = Σ_{i<j} softmax(β^{v_j})_i · Σ_k softmax(a^{v_i,v_j})_k · o_k(f_i)``.

    Args:
        kind: ``generator`` (called ``G(z, a)``) or ``discriminator`` (called ``D(x, a)``).
        input_dims: sizes of the two raw inputs in call order, ``(z_dim, a_dim)`` / ``(x_dim, a_dim)``.
        widths: intermediate node widths; default Sec. 4: G ``[128, 256, 512, 1024]``,
            D ``[1024, 512, 256, 128]`` (the released code's 5-node layout is the same 4 nodes + output).
        out_dim: output node width (feature dim for G, 1 for D).
        out_activation: applied to the output node (see the module docstring).
        output_node: ``ops`` or ``linear``; ``None`` = ``ops`` for G, ``linear`` for D (module docstring);
            ``ops`` for both reproduces the released code.
        arch_init_std: α and β are initialised ``arch_init_std · N(0, 1)`` (1e-3, released code).
        init, init_std: weight initialisation of every Linear (``nn.mlp.init_weights``: N(0, 0.02)).
    """

    def __init__(self, kind: str, input_dims: Sequence[int], out_dim: int, widths: Sequence[int] | None = None,
                 out_activation: str | None = "none", output_node: str | None = None,
                 arch_init_std: float = 1e-3, init: str = "normal", init_std: float = 0.02):
        super().__init__()
        if kind not in KINDS:
            raise ConfigError(f"SearchNetwork kind '{kind}' must be one of {KINDS}")
        output_node = output_node or ("ops" if kind == "generator" else "linear")
        if output_node not in OUTPUT_NODE_MODES:
            raise ConfigError(f"SearchNetwork output_node '{output_node}' must be one of {OUTPUT_NODE_MODES}")
        input_dims = [int(d) for d in input_dims]
        if len(input_dims) != 2:
            raise ConfigError(f"SearchNetwork input_dims {input_dims} must give the sizes of the 2 raw inputs")
        self.kind, self.input_dims, self.output_node = kind, tuple(input_dims), output_node
        self.widths = tuple(int(w) for w in (DEFAULT_WIDTHS[kind] if widths is None else widths))
        self.out_dim = int(out_dim)
        self.out_activation = str(out_activation or "none")
        first, a = input_dims
        dims = [a, first, a + first, *self.widths, self.out_dim]
        n_nodes = len(self.widths) + 1
        edges, alphas, betas = [], [], []
        for j in range(n_nodes):
            n_in, d_out = 3 + j, dims[3 + j]
            linear = j == n_nodes - 1 and output_node == "linear"
            edges.append(nn.ModuleList(
                make_op(LINEAR_OP, dims[i], d_out) if linear else MixedOp(dims[i], d_out) for i in range(n_in)))
            if not linear:
                alphas.append(nn.Parameter(arch_init_std * torch.randn(n_in, len(CANDIDATE_OPS))))
            betas.append(nn.Parameter(arch_init_std * torch.randn(n_in)))
        self.edges = nn.ModuleList(edges)
        self.alphas = nn.ParameterList(alphas)
        self.betas = nn.ParameterList(betas)
        self.out_act = make_activation(self.out_activation)
        init_weights(self, init, init_std)

    @property
    def num_nodes(self) -> int:
        return len(self.widths) + 1

    def has_alpha(self, j: int) -> bool:
        return j < len(self.alphas)

    def arch_parameters(self) -> list[nn.Parameter]:
        """α (one ``(in-edges, 8)`` tensor per searched node) and β (one ``(in-edges,)`` per node)."""
        return [*self.alphas, *self.betas]

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every other parameter: the ops' Linear and BatchNorm weights."""
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def edge_forward(self, j: int, i: int, h: torch.Tensor) -> torch.Tensor:
        """``M(v_i → v_j)`` (Eq. 2) — or the plain Linear of a ``linear`` output node."""
        edge = self.edges[j][i]
        return edge(h, self.alphas[j][i]) if self.has_alpha(j) else edge(h)

    def node_forward(self, j: int, states: Sequence[torch.Tensor]) -> torch.Tensor:
        """Eq. (3): ``f_j = Σ_i softmax(β^{v_j})_i · M(v_i → v_j)`` over ``states[0 .. 2 + j]``."""
        w = F.softmax(self.betas[j], dim=-1)
        return sum(w[i] * self.edge_forward(j, i, states[i]) for i in range(3 + j))

    def forward_with_hidden(self, first: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(output, last intermediate node)`` (``[a; first]`` when there is no intermediate node)."""
        states = _input_states(first, a)
        for j in range(self.num_nodes):
            states.append(self.node_forward(j, states))
        return self.out_act(states[-1]), states[-2]

    def forward(self, first: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return self.forward_with_hidden(first, a)[0]


def derive(network: SearchNetwork, top_k: int = 2) -> Genotype:
    """Sec. 3.4 of Yan et al. 2021: edge pruning, then operation pruning.

    Per node, keep the ``top_k`` (2) in-edges with the largest β (all of them if it has fewer); each kept
    edge keeps its op with the largest α (``fc`` for a ``linear`` output node). Ties go to the lower
    source index; kept edges are listed by source index.
    """
    nodes = []
    with torch.no_grad():
        for j in range(network.num_nodes):
            beta = network.betas[j].detach().cpu().tolist()
            kept = sorted(sorted(range(len(beta)), key=lambda i: (-beta[i], i))[:top_k])
            if network.has_alpha(j):
                ops = [CANDIDATE_OPS[int(torch.argmax(network.alphas[j][i]))] for i in kept]
            else:
                ops = [LINEAR_OP] * len(kept)
            nodes.append(list(zip(kept, ops, strict=True)))
    return Genotype(kind=network.kind, input_dims=network.input_dims, widths=network.widths,
                    out_dim=network.out_dim, out_activation=network.out_activation,
                    output_node=network.output_node, nodes=nodes)


def load_genotype(genotype: str | Path | Mapping | Genotype) -> tuple[Genotype, str]:
    """A genotype from a YAML path, a mapping (e.g. a Hydra config node) or a :class:`Genotype`;
    also returns a description of where it came from, for error messages."""
    if isinstance(genotype, Genotype):
        return genotype, "the given genotype"
    if isinstance(genotype, str | Path):
        return Genotype.from_yaml(genotype), f"genotype file {Path(genotype).expanduser()}"
    if isinstance(genotype, Mapping) or hasattr(genotype, "keys"):
        from omegaconf import DictConfig, OmegaConf

        d = OmegaConf.to_container(genotype, resolve=True) if isinstance(genotype, DictConfig) else dict(genotype)
        return Genotype.from_dict(d, source="genotype config node"), "the genotype config node"
    raise ConfigError(f"genotype must be a YAML path, a mapping or a Genotype, got {type(genotype).__name__}")


class SearchedNetwork(nn.Module):
    """A network derived by ZeroNAS (Sec. 3.4 of Yan et al. 2021), built with fresh weights.

    Node ``j`` = ``Σ`` of its kept ops applied to their source states (no β, no α: the pruned Eq. 3);
    nodes that do not reach the output are not built. Called like ``nn.mlp.MLP``: ``G(z, a)``, ``D(x, a)``.

    What comes from where: the architecture (kind, input dims, widths, out_dim, edges, ops) comes from
    the genotype. The config may restate ``kind``, ``input_dims`` and ``out_dim`` (interpolated from the
    data, e.g. ``${data_info.feature_dim}``): they are checked against the genotype and a mismatch is a
    :class:`ConfigError` (a genotype searched on other data). ``out_activation`` is a choice of the base
    framework (f-CLSWGAN ``relu`` or ``none``, f-VAEGAN ``sigmoid``): when given it overrides the file's.

    Hydra: ``{_target_: zsl_lightning.nn.nas.SearchedNetwork, genotype: /path/genotype_g.yaml,
    kind: generator, input_dims: [z_dim, a_dim], out_dim: feature_dim}``.
    """

    def __init__(self, genotype: str | Path | Mapping | Genotype, kind: str | None = None,
                 input_dims: Sequence[int] | None = None, out_dim: int | None = None,
                 out_activation: str | None = None, init: str = "normal", init_std: float = 0.02):
        super().__init__()
        g, source = load_genotype(genotype)
        if kind is not None and kind != g.kind:
            raise ConfigError(f"{source} is a {g.kind} genotype but the config builds a {kind}; "
                              f"point `genotype` at the {kind}'s file")
        if input_dims is not None and [int(d) for d in input_dims] != list(g.input_dims):
            raise ConfigError(f"config input_dims {[int(d) for d in input_dims]} do not match {source}, which was "
                              f"searched with input_dims {list(g.input_dims)}; search again on this data or "
                              "point `genotype` at the right file")
        if out_dim is not None and int(out_dim) != g.out_dim:
            raise ConfigError(f"config out_dim {int(out_dim)} does not match {source}, which was searched with "
                              f"out_dim {g.out_dim}; search again on this data or point `genotype` at the right file")
        if out_activation is not None:
            g = dataclasses.replace(g, out_activation=out_activation)
        self.genotype = g
        self.kind, self.input_dims, self.out_dim = g.kind, g.input_dims, g.out_dim
        dims = g.state_dims
        self.live = sorted(g.live_states())
        self.live_nodes = [s - 3 for s in self.live if s >= 3]
        self.ops = nn.ModuleDict()
        for j in self.live_nodes:
            for src, op in g.nodes[j]:
                self.ops[f"{j}_{src}"] = make_op(op, dims[src], dims[3 + j])
        self.out_act = make_activation(g.out_activation)
        init_weights(self, init, init_std)

    def forward_with_hidden(self, first: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(output, last hidden state)``: the live intermediate node of highest index, or ``[a; first]``
        when the output is wired straight to the inputs (like the paper's FLO generator)."""
        states: dict[int, torch.Tensor] = dict(enumerate(_input_states(first, a)))
        for j in self.live_nodes:
            states[3 + j] = sum(self.ops[f"{j}_{src}"](states[src]) for src, _ in self.genotype.nodes[j])
        out = 2 + self.genotype.num_nodes
        hidden = [s for s in self.live if 3 <= s < out]
        return self.out_act(states[out]), states[hidden[-1] if hidden else 2]

    def forward(self, first: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return self.forward_with_hidden(first, a)[0]

    def extra_repr(self) -> str:
        return f"kind={self.kind}, input_dims={list(self.input_dims)}, out_dim={self.out_dim}"


def searched_network(genotype: str | Path | Mapping | Genotype, kind: str | None = None,
                     in_dims: Sequence[int] | None = None, out_dim: int | None = None,
                     out_activation: str | None = None, input_dims: Sequence[int] | None = None,
                     init: str = "normal", init_std: float = 0.02, **mlp_options) -> SearchedNetwork:
    """:class:`SearchedNetwork` from an ``MLP`` config node with ``_target_`` and ``genotype`` replaced
    (``method/generator=searched``, ``method/discriminator=searched``): the node keeps the base's
    ``in_dims`` (checked as ``input_dims``), ``out_dim`` and ``out_activation``; the MLP's own architecture
    options (``hidden``, ``activation``, ``negative_slope``, ``dropout``) are ignored, the genotype sets them."""
    unknown = set(mlp_options) - {"hidden", "activation", "negative_slope", "dropout"}
    if unknown:
        raise ConfigError(f"searched network: unknown option(s) {sorted(unknown)}")
    return SearchedNetwork(genotype, kind=kind, input_dims=input_dims if input_dims is not None else in_dims,
                           out_dim=out_dim, out_activation=out_activation, init=init, init_std=init_std)
