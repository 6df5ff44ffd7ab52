"""ZeroNAS genotypes (Yan et al. 2021, Sec. 3.4 and Fig. 3): the discrete architecture a search derives.

A genotype describes a DAG over *states*. States ``0, 1, 2`` are the inputs, in this order:

* generator ``G(z, a)``: ``a``, ``z``, ``[a; z]``;
* discriminator ``D(x, a)``: ``a``, ``x``, ``[a; x]``;

state ``3 + j`` is node ``j`` (``widths[j]`` units; the last node, ``out_dim`` units, is the output).
``nodes[j]`` lists the kept in-edges of node ``j`` as ``(source state, op name)``; a derived node is the
sum of its kept ops (Sec. 3.4). Nodes that do not reach the output are dead: they are neither built nor
drawn, which is how a searched network ends up with fewer hidden layers than the search space
(e.g. the paper's FLO generator links the inputs straight to the output).

Op names (the candidate set of Sec. 3.2, each an FC layer ``Linear(in, out)`` followed by, in this
order, ``BatchNorm1d`` if ``_bn``, the activation, ``Dropout(0.5)`` if ``_drop`` — the order of the
paper's list, "FC+BatchNorm+ReLU+DropOut"):

``fc_relu, fc_relu_bn, fc_relu_drop, fc_relu_bn_drop, fc_lrelu, fc_lrelu_bn, fc_lrelu_drop,
fc_lrelu_bn_drop`` (``lrelu`` = LeakyReLU(0.2)); ``fc`` (a plain Linear) is not a candidate: it is
the op of an output node built with ``output_node="linear"`` (see ``zsl_lightning.nn.nas``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zsl_lightning.errors import ConfigError

CANDIDATE_OPS: tuple[str, ...] = (
    "fc_relu", "fc_relu_bn", "fc_relu_drop", "fc_relu_bn_drop",
    "fc_lrelu", "fc_lrelu_bn", "fc_lrelu_drop", "fc_lrelu_bn_drop",
)
LINEAR_OP = "fc"
KINDS = ("generator", "discriminator")
OUTPUT_NODE_MODES = ("ops", "linear")
# Fig. 3 of the paper: "a" attribute, "z" noise, "f" feature, "o" output.
INPUT_LABELS = {"generator": ("a", "z", "[a;z]"), "discriminator": ("a", "f", "[a;f]")}


def parse_op(name: str) -> tuple[str | None, bool, bool]:
    """``'fc_lrelu_bn_drop'`` → ``('leaky_relu', True, True)``; ``'fc'`` → ``(None, False, False)``."""
    if name == LINEAR_OP:
        return None, False, False
    if name not in CANDIDATE_OPS:
        raise ValueError(f"unknown ZeroNAS op '{name}' (one of {', '.join(CANDIDATE_OPS)} or '{LINEAR_OP}')")
    parts = name.split("_")
    return ("relu" if parts[1] == "relu" else "leaky_relu"), "bn" in parts, "drop" in parts


@dataclass
class Genotype:
    """A derived ZeroNAS architecture (one network: generator or discriminator).

    Args:
        kind: ``generator`` or ``discriminator``.
        input_dims: sizes of the two raw inputs in call order: ``(z_dim, a_dim)`` for ``G(z, a)``,
            ``(x_dim, a_dim)`` for ``D(x, a)``.
        widths: intermediate node widths (the output node is not included).
        out_dim: width of the output node (feature dim for G, 1 for D).
        out_activation: applied to the output node's sum (``none``, ``relu``, ``sigmoid``, ...).
        output_node: ``ops`` (the output node's edges carry searched ops) or ``linear`` (plain FC edges).
        nodes: per node (``len(widths) + 1`` of them), the kept in-edges ``(source state, op name)``.
    """

    kind: str
    input_dims: tuple[int, int]
    widths: tuple[int, ...]
    out_dim: int
    out_activation: str = "none"
    output_node: str = "ops"
    nodes: list[list[tuple[int, str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.input_dims = tuple(int(d) for d in self.input_dims)
        self.widths = tuple(int(w) for w in self.widths)
        self.out_dim = int(self.out_dim)
        self.out_activation = str(self.out_activation or "none")
        self.nodes = [[(int(src), str(op)) for src, op in node] for node in self.nodes]
        self.validate()

    # ------------------------------------------------------------------ structure
    @property
    def state_dims(self) -> list[int]:
        """Width of every state: the three inputs, then every node (the last one is the output)."""
        first, a = self.input_dims
        return [a, first, a + first, *self.widths, self.out_dim]

    @property
    def num_nodes(self) -> int:
        return len(self.widths) + 1

    def live_states(self) -> set[int]:
        """States the output depends on (the output itself included)."""
        live, todo = set(), [2 + self.num_nodes]
        while todo:
            s = todo.pop()
            if s in live:
                continue
            live.add(s)
            if s >= 3:
                todo += [src for src, _ in self.nodes[s - 3]]
        return live

    def validate(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"genotype kind '{self.kind}' must be one of {KINDS}")
        if self.output_node not in OUTPUT_NODE_MODES:
            raise ConfigError(f"genotype output_node '{self.output_node}' must be one of {OUTPUT_NODE_MODES}")
        if len(self.input_dims) != 2:
            raise ConfigError(f"genotype input_dims {list(self.input_dims)} must list the 2 raw inputs")
        if len(self.nodes) != self.num_nodes:
            raise ConfigError(f"genotype has {len(self.nodes)} node entries for {len(self.widths)} widths "
                              f"+ 1 output node (expected {self.num_nodes})")
        for j, node in enumerate(self.nodes):
            if not node:
                raise ConfigError(f"genotype node {j} has no in-edge")
            last = j == self.num_nodes - 1
            for src, op in node:
                if not 0 <= src < 3 + j:
                    raise ConfigError(f"genotype node {j}: source state {src} is not an earlier state (0..{2 + j})")
                allowed = (LINEAR_OP,) if last and self.output_node == "linear" else CANDIDATE_OPS
                if op not in allowed:
                    raise ConfigError(f"genotype node {j}: op '{op}' is not one of {', '.join(allowed)}")

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "input_dims": list(self.input_dims), "widths": list(self.widths),
            "out_dim": self.out_dim, "out_activation": self.out_activation, "output_node": self.output_node,
            "nodes": [[[src, op] for src, op in node] for node in self.nodes],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "genotype") -> Genotype:
        missing = [k for k in ("kind", "input_dims", "widths", "out_dim", "nodes") if k not in d]
        if missing:
            raise ConfigError(f"{source}: missing key(s) {missing} (write genotypes with Genotype.to_yaml)")
        try:
            return cls(kind=d["kind"], input_dims=d["input_dims"], widths=d["widths"], out_dim=d["out_dim"],
                       out_activation=d.get("out_activation", "none"), output_node=d.get("output_node", "ops"),
                       nodes=d["nodes"])
        except ConfigError as e:
            raise ConfigError(f"{source}: {e}") from None
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{source}: malformed genotype ({e})") from None

    def to_yaml(self, path: str | Path) -> Path:
        import yaml

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None))
        return path

    @classmethod
    def from_yaml(cls, path: str | Path) -> Genotype:
        import yaml

        from zsl_lightning.errors import MissingFilesError

        path = Path(path).expanduser()
        if not path.is_file():
            raise MissingFilesError(
                "ZeroNAS genotype", [path], layout="one YAML file per network, written by Genotype.to_yaml",
                source="a ZeroNAS search (zsl_lightning.nn.nas.derive(...).to_yaml(path))",
                hint="Point the network's `genotype` config key at an existing file.")
        try:
            d = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            raise ConfigError(f"genotype file {path}: not valid YAML ({e})") from None
        if not isinstance(d, Mapping):
            raise ConfigError(f"genotype file {path}: expected a mapping, got {type(d).__name__}")
        return cls.from_dict(d, source=f"genotype file {path}")


def draw_genotype(genotype_g: Genotype | None, genotype_d: Genotype | None, path: str | Path) -> Path:
    """A PNG in the style of Fig. 3 of Yan et al. 2021: one row per network, live nodes only.

    Inputs on the left (``a``, ``z``/``f``, the concatenation), nodes ``v<j>`` left to right with their
    width, output ``o``; every kept edge is an arrow labelled with its op name.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch

    genotypes = [g for g in (genotype_g, genotype_d) if g is not None]
    if not genotypes:
        raise ValueError("draw_genotype needs at least one genotype")
    width = max(len(g.live_states()) for g in genotypes)
    fig, axes = plt.subplots(len(genotypes), 1, figsize=(1.8 * width + 2, 4.0 * len(genotypes)), squeeze=False)
    for ax, g in zip(axes[:, 0], genotypes, strict=True):
        live = g.live_states()
        out = 2 + g.num_nodes
        pos: dict[int, tuple[float, float]] = {s: (0.0, 1.2 - 1.2 * s) for s in range(3)}
        labels = dict(enumerate(INPUT_LABELS[g.kind]))
        for col, s in enumerate(sorted(s for s in live if s >= 3), start=1):
            pos[s] = (2.0 * col, 0.0)
            labels[s] = ("o" if s == out else f"v{s - 2}") + f"\n{g.state_dims[s]}"
        for s, (x, y) in pos.items():
            used = s in live
            ax.text(x, y, labels[s], ha="center", va="center", fontsize=9, zorder=3,
                    color="black" if used else "0.6",
                    bbox={"boxstyle": "circle", "fc": "lightblue" if s >= 3 else "lightyellow",
                          "ec": "black" if used else "0.6"})
        ys = [p[1] for p in pos.values()]
        for s in sorted(s for s in live if s >= 3):
            for k, (src, op) in enumerate(g.nodes[s - 3]):
                (x0, y0), (x1, y1) = pos[src], pos[s]
                # straight arrows between neighbouring columns, arcs over skipped nodes: away from the node
                # row for the inputs above / below it, alternating sides along the row (rad < 0 bends up)
                side = -1.0 if y0 > 0 else 1.0 if y0 < 0 else (-1.0 if (k + s) % 2 == 0 else 1.0)
                rad = 0.0 if x1 - x0 <= 2.0 else 0.3 * side
                ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), connectionstyle=f"arc3,rad={rad}",
                                             arrowstyle="-|>", mutation_scale=12, shrinkA=14, shrinkB=14,
                                             color="0.3", zorder=1))
                # the midpoint of matplotlib's arc3 Bezier curve
                dx, dy = x1 - x0, y1 - y0
                mx, my = (x0 + x1) / 2 + 0.5 * rad * dy, (y0 + y1) / 2 - 0.5 * rad * dx
                ys.append(my)
                ax.text(mx, my, op, ha="center", va="center", fontsize=7, zorder=2,
                        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85})
        xs = [p[0] for p in pos.values()]
        ax.set_xlim(min(xs) - 0.8, max(xs) + 0.8)
        ax.set_ylim(min(ys) - 0.8, max(ys) + 0.8)
        ax.set_aspect("equal")
        ax.axis("off")
        ax.set_title(f"{g.kind} (inputs {list(g.input_dims)}, out {g.out_dim}, out_activation {g.out_activation})",
                     fontsize=9)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
