"""The GBE-MLZSL network (Liu et al. 2023, "A Group Bi-Enhancement Framework for Multi-Label Zero-Shot
Learning", Sec. III): multi-scale VGG19 maps → ML-FEF (Eqs. 1–3) → n groups of d_w channels → LID per
group (Eqs. 4–6) and GEM on the deepest map (Eqs. 7–10) → static GLA graph (Eqs. 11–12) → ``S`` of
shape ``(B, n, d_w)``, scored against label word vectors by the max over groups (Eq. 13).

No code was released; every size and operator the paper leaves open is a constructor argument of
:class:`GBE` and listed in ``docs/methods/gbe.md`` ("Choices the paper leaves open").
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from zsl_lightning.errors import ConfigError

#: Table III of the paper: which modules each ablation variant keeps (ML-FEF, LID, GEM, GLA).
VARIANTS: dict[str, dict[str, bool]] = {
    name: dict(zip(("use_mlfef", "use_lid", "use_gem", "use_gla"), flags, strict=True))
    for name, flags in {
        "a": (False, False, False, False),
        "b": (True, False, False, False),
        "c": (True, True, False, False),
        "d": (True, False, True, False),
        "e": (True, True, False, True),
        "f": (True, False, True, True),
        "ours": (True, True, True, True),
    }.items()
}


def group_max_scores(S: torch.Tensor, word_vectors: torch.Tensor) -> torch.Tensor:
    """Eq. (13) ranking rule of Liu et al. 2023: ``score(i, l) = max_m ⟨S_i^m, w_l⟩``.

    ``S`` ``(B, n, d_w)``, ``word_vectors`` ``(L, d_w)`` → ``(B, L)``.
    """
    return torch.einsum("bnd,ld->bnl", S, word_vectors.to(S.dtype)).amax(dim=1)


class GroupedLinear(nn.Module):
    """``n`` independent linear layers, one per group: ``(B, n, T, d_in) → (B, n, T, d_out)``.

    A 1×1 ("fully") convolution on a token sequence, with separate weights for every group so that each
    group is "trained independently" (Sec. III-C). Initialised like ``nn.Linear``.
    """

    def __init__(self, n_groups: int, d_in: int, d_out: int):
        super().__init__()
        bound = 1.0 / math.sqrt(d_in)
        self.weight = nn.Parameter(torch.empty(n_groups, d_in, d_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n_groups, d_out).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bntd,nde->bnte", x, self.weight) + self.bias[:, None, :]


class MLFEF(nn.Module):
    """Multi-Layer Feature Enhancement Fusion, Eqs. (1)–(3) of Liu et al. 2023 (Fig. 3).

    Each scale is filtered by its own 3×3 conv + ReLU (``in → channels``); the 28×28 map is then
    down-sampled to the 14×14 grid by max-pooling and the 7×7 map up-sampled by bilinear interpolation.
    With ``F`` the filtered, resampled maps:

    * Eq. (1): ``F^{14,28} = F^14 ⊙ F^28``;
    * Eq. (2): ``F^{14,7} = F^14 ⊙ F^7``;
    * Eq. (3): ``F^g = F^14 ⊕ F^{14,7} ⊕ F^{14,28}`` (⊕ = channel concatenation, in this order),

    where ⊙ is the element-wise (Hadamard) product (``fusion="mul"``) or sum (``fusion="add"``); the paper
    calls it "the multi-layer feature fusion operation" without defining it. Output: ``3·channels``
    channels on the 14×14 grid.
    """

    def __init__(self, in_channels_28: int, in_channels: int, channels: int, fusion: str = "mul"):
        super().__init__()
        if fusion not in ("mul", "add"):
            raise ConfigError(f"method.model.fusion must be 'mul' or 'add', got '{fusion}'")
        self.fusion = fusion
        self.out_channels = 3 * channels
        self.filter28 = nn.Sequential(nn.Conv2d(in_channels_28, channels, 3, padding=1), nn.ReLU())
        self.filter14 = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1), nn.ReLU())
        self.filter7 = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1), nn.ReLU())

    def _fuse(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a * b if self.fusion == "mul" else a + b

    def forward(self, f28: torch.Tensor, f14: torch.Tensor, f7: torch.Tensor) -> torch.Tensor:
        size = f14.shape[-2:]
        g14 = self.filter14(f14)
        g28 = F.adaptive_max_pool2d(self.filter28(f28), size)
        g7 = F.interpolate(self.filter7(f7), size=size, mode="bilinear", align_corners=False)
        f14_28 = self._fuse(g14, g28)  # Eq. (1)
        f14_7 = self._fuse(g14, g7)  # Eq. (2)
        return torch.cat([g14, f14_7, f14_28], dim=1)  # Eq. (3)


class Grouping(nn.Module):
    """Sec. III-C: split ``F^g`` into ``n`` groups of ``d_w`` channels (``d_w`` = word-vector length).

    ``F^g`` has ``3·512`` channels, not ``n·d_w``: a 1×1 conv (no activation) maps it to ``n·d_w``
    channels, then channels ``[m·d_w, (m+1)·d_w)`` form group ``m``. Output ``(B, n, d_w, H, W)``.
    """

    def __init__(self, in_channels: int, n_groups: int, word_dim: int):
        super().__init__()
        self.n_groups, self.word_dim = n_groups, word_dim
        self.proj = nn.Conv2d(in_channels, n_groups * word_dim, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.proj(x)
        return y.view(y.shape[0], self.n_groups, self.word_dim, *y.shape[-2:])


class LID(nn.Module):
    """Local Information Distinguishing module, Eqs. (4)–(6) of Liu et al. 2023 (Fig. 4), one independent
    set of weights per group (:class:`GroupedLinear`).

    For group ``m`` (``d_w × H × W``): patch embedding ``F^{a,m}`` (``p×p`` patches, a linear layer
    ``p²·d_w → d_w``); Eq. (4): ``Q, K, V = W^Q F^a, W^K F^a, W^V F^a`` (1×1 convs = per-token linear);
    Eq. (5): ``A_c = softmax(Q Kᵀ / √d_w)`` over keys (``HW × HW`` for ``p = 1``), ``Attention = A_c V``;
    Eq. (6): ``F̂^a = F^a + Attention``; then the feed-forward layer with a residual,
    ``F̂^a + W_2 ReLU(W_1 F̂^a)``; then a max-pool over tokens → ``F̂^m ∈ R^{d_w}``.

    Input ``(B, n, d_w, H, W)`` → output ``(B, n, d_w)``.

    Visualisation hook (Fig. 7, :class:`~zsl_lightning.callbacks_plots.GBEAttentionMaps`): with
    ``record_attention = True`` each forward also keeps ``A_c`` (detached, ``(B, n, T, T)``) in
    ``last_attention``; the output is the same either way. Off by default.
    """

    def __init__(self, n_groups: int, word_dim: int, patch_size: int = 1, ffn_hidden: int | None = None,
                 attn_scale: bool = True):
        super().__init__()
        self.record_attention = False
        self.last_attention: torch.Tensor | None = None
        if patch_size < 1:
            raise ConfigError(f"method.model.patch_size must be >= 1, got {patch_size}")
        self.patch_size = int(patch_size)
        self.scale = 1.0 / math.sqrt(word_dim) if attn_scale else 1.0
        hidden = int(ffn_hidden) if ffn_hidden else word_dim
        self.embed = GroupedLinear(n_groups, word_dim * self.patch_size**2, word_dim)
        self.qkv = GroupedLinear(n_groups, word_dim, 3 * word_dim)  # W^Q, W^K, W^V side by side
        self.ffn1 = GroupedLinear(n_groups, word_dim, hidden)
        self.ffn2 = GroupedLinear(n_groups, hidden, word_dim)

    def patches(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, n, d, H, W)`` → ``(B, n, T, p²·d)``, ``T = ⌊H/p⌋·⌊W/p⌋`` non-overlapping patches."""
        b, n, d, h, w = x.shape
        p = self.patch_size
        if p == 1:
            return x.flatten(3).transpose(2, 3)
        cols = F.unfold(x.reshape(b * n, d, h, w), kernel_size=p, stride=p)  # (B·n, d·p², T)
        return cols.view(b, n, d * p * p, -1).transpose(2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fa = self.embed(self.patches(x))
        q, k, v = self.qkv(fa).chunk(3, dim=-1)  # Eq. (4)
        attn = torch.softmax(q @ k.transpose(-1, -2) * self.scale, dim=-1)  # Eq. (5): A_c
        if self.record_attention:
            self.last_attention = attn.detach()
        fh = fa + attn @ v  # Eq. (6)
        fh = fh + self.ffn2(F.relu(self.ffn1(fh)))
        return fh.amax(dim=2)


class GEM(nn.Module):
    """Global Enhancement Module, Eqs. (7)–(10) of Liu et al. 2023, on the deepest map ``F^7``.

    Eqs. (7)–(8): spatial average and max pooling → two ``C``-vectors; Eq. (9):
    ``CE = MLP(avg) + MLP(max)`` with ONE shared MLP ``C → C/r → C`` (ReLU hidden layer); Eq. (10):
    ``F^CE = CE ⊗ F^7`` (channel-wise product; ``gate="sigmoid"`` uses ``σ(CE)`` as in CBAM, the
    equation has no σ); convolutional screening, a 1×1 conv ``C → d_w``; max-pool → ``GF ∈ R^{d_w}``.

    Input ``(B, C, h, w)`` → ``(B, d_w)``.
    """

    def __init__(self, in_channels: int, word_dim: int, reduction: int = 16, gate: str = "none"):
        super().__init__()
        if gate not in ("none", "sigmoid"):
            raise ConfigError(f"method.model.gem_gate must be 'none' or 'sigmoid', got '{gate}'")
        self.gate = gate
        hidden = max(in_channels // int(reduction), 1)
        self.mlp = nn.Sequential(nn.Linear(in_channels, hidden), nn.ReLU(), nn.Linear(hidden, in_channels))
        self.screen = nn.Conv2d(in_channels, word_dim, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ce = self.mlp(x.mean(dim=(2, 3))) + self.mlp(x.amax(dim=(2, 3)))  # Eqs. (7)-(9)
        if self.gate == "sigmoid":
            ce = torch.sigmoid(ce)
        f_ce = x * ce[:, :, None, None]  # Eq. (10)
        return self.screen(f_ce).amax(dim=(2, 3))


class GLA(nn.Module):
    """Global-Local Association graph, Eqs. (11)–(12) of Liu et al. 2023: a single-layer static GCN over
    the ``n`` group nodes, ``S = LeakyReLU(A_s V W_s)``.

    ``V`` ``(B, n, d_in)`` (Eq. 11 builds it as ``[F̂^m; GF]``); ``W_s`` a bias-free linear layer
    ``d_in → d_w``; ``A_s`` the ``n × n`` affinity of a fully connected graph with self-loops, initialised
    to ``½·I + ½·(1/n)·11ᵀ`` (rows sum to 1; a uniform ``11ᵀ/n`` alone would make all nodes equal).
    ``affinity="learned"`` trains ``A_s``; ``"fixed"`` keeps it as that constant.
    """

    def __init__(self, n_groups: int, in_dim: int, word_dim: int, affinity: str = "learned",
                 negative_slope: float = 0.2):
        super().__init__()
        if affinity not in ("learned", "fixed"):
            raise ConfigError(f"method.model.affinity must be 'learned' or 'fixed', got '{affinity}'")
        a0 = 0.5 * torch.eye(n_groups) + 0.5 / n_groups * torch.ones(n_groups, n_groups)
        if affinity == "learned":
            self.affinity = nn.Parameter(a0)
        else:
            self.register_buffer("affinity", a0)
        self.w_s = nn.Linear(in_dim, word_dim, bias=False)
        self.act = nn.LeakyReLU(negative_slope)

    def forward(self, nodes: torch.Tensor) -> torch.Tensor:
        return self.act(torch.einsum("mk,bkd->bmd", self.affinity, self.w_s(nodes)))


def _scale(feats: Mapping, key: int) -> torch.Tensor | None:
    if key in feats:
        return feats[key]
    return feats.get(str(key))


class GBE(nn.Module):
    """GBE-MLZSL (Liu et al. 2023, Sec. III, Fig. 2): feature maps → semantic vector group ``S (B, n, d_w)``.

    Input: a dict ``{28: (B, C28, 28, 28), 14: (B, C, 14, 14), 7: (B, C, 7, 7)}`` (keys may be ints or
    strings), e.g. from :class:`~zsl_lightning.nn.backbone.VGG19MultiScale`; with ``single_scale`` only
    ``{14: …}`` is read (the BiAM/LESA feature files).

    Modules, each switchable for the Table III ablation (:meth:`variant` builds a–f and ``ours``):

    * ``use_mlfef``: :class:`MLFEF` (Eqs. 1–3); off: ``F^g = F^14``.
    * :class:`Grouping` (always): 1×1 conv to ``n·d_w`` channels, ``n`` groups.
    * ``use_lid``: :class:`LID` per group (Eqs. 4–6); off: spatial max-pool of each group.
    * ``use_gem``: :class:`GEM` on ``F^7`` (Eqs. 7–10) → ``GF``; ``F^7`` is derived as pool5 =
      2×2 max-pool of ``F^14`` when it is not given or ``single_scale``; off: no global vector.
    * ``use_gla``: :class:`GLA` (Eqs. 11–12) on ``[F̂^m; GF]`` (or ``F̂^m`` without GEM); off:
      ``S^m = F̂^m + GF`` (or ``F̂^m``), since without ``W_s`` nothing maps ``2·d_w`` back to ``d_w``.

    Sizes: ``in_channels`` (channels of F^14 and F^7, 512), ``in_channels_28`` (F^28, default
    ``in_channels``), ``word_dim`` ``d_w`` (300), ``n_groups`` ``n`` (25, Fig. 6), ``fef_channels``
    (ML-FEF filter width, default ``in_channels``), ``patch_size``, ``ffn_hidden`` (default ``d_w``),
    ``gem_reduction`` (16), and the operators ``fusion``, ``attn_scale``, ``gem_gate``, ``affinity``,
    ``negative_slope`` (see the module classes).
    """

    def __init__(self, in_channels: int = 512, in_channels_28: int | None = None, word_dim: int = 300,
                 n_groups: int = 25, use_mlfef: bool = True, use_lid: bool = True, use_gem: bool = True,
                 use_gla: bool = True, single_scale: bool = False, fef_channels: int | None = None,
                 fusion: str = "mul", patch_size: int = 1, ffn_hidden: int | None = None,
                 attn_scale: bool = True, gem_reduction: int = 16, gem_gate: str = "none",
                 affinity: str = "learned", negative_slope: float = 0.2):
        super().__init__()
        if single_scale and use_mlfef:
            raise ConfigError("method.model.single_scale=true reads only the 14x14 map, so ML-FEF needs "
                              "method.model.use_mlfef=false (Table III variant 'a')")
        if n_groups < 1 or word_dim < 1:
            raise ConfigError(f"method.model.n_groups and word_dim must be >= 1, got {n_groups}, {word_dim}")
        self.n_groups, self.word_dim = int(n_groups), int(word_dim)
        self.single_scale = bool(single_scale)
        c28 = int(in_channels_28 or in_channels)
        self.mlfef = MLFEF(c28, in_channels, int(fef_channels or in_channels), fusion) if use_mlfef else None
        c_g = self.mlfef.out_channels if use_mlfef else in_channels
        self.grouping = Grouping(c_g, self.n_groups, self.word_dim)
        self.lid = LID(self.n_groups, self.word_dim, patch_size, ffn_hidden, attn_scale) if use_lid else None
        self.gem = GEM(in_channels, self.word_dim, gem_reduction, gem_gate) if use_gem else None
        node_dim = 2 * self.word_dim if use_gem else self.word_dim
        self.gla = GLA(self.n_groups, node_dim, self.word_dim, affinity, negative_slope) if use_gla else None

    @classmethod
    def variant(cls, name: str, **kwargs) -> GBE:
        """The Table III model ``name`` (``a``–``f`` or ``ours``); ``a`` reads only the 14×14 map."""
        if name not in VARIANTS:
            raise ConfigError(f"unknown GBE ablation variant '{name}'; choose one of {sorted(VARIANTS)}")
        flags = dict(VARIANTS[name])
        if name == "a":
            flags["single_scale"] = True
        flags.update(kwargs)
        return cls(**flags)

    def forward(self, feats: Mapping[int | str, torch.Tensor]) -> torch.Tensor:
        f14 = _scale(feats, 14)
        if f14 is None:
            raise KeyError("GBE needs the 14x14 feature map under key 14")
        f7 = None if self.single_scale else _scale(feats, 7)
        if f7 is None and (self.gem is not None or self.mlfef is not None):
            f7 = F.max_pool2d(f14, kernel_size=2, stride=2)  # pool5 of conv5_4
        if self.mlfef is not None:
            f28 = _scale(feats, 28)
            if f28 is None:
                raise KeyError("GBE with ML-FEF needs the 28x28 feature map under key 28")
            fg = self.mlfef(f28, f14, f7)
        else:
            fg = f14
        groups = self.grouping(fg)
        local = self.lid(groups) if self.lid is not None else groups.amax(dim=(3, 4))
        gf = self.gem(f7) if self.gem is not None else None
        if self.gla is not None:
            nodes = local if gf is None else torch.cat([local, gf[:, None, :].expand_as(local)], dim=-1)  # Eq. 11
            return self.gla(nodes)  # Eq. (12)
        return local if gf is None else local + gf[:, None, :]

    def scores(self, S: torch.Tensor, word_vectors: torch.Tensor) -> torch.Tensor:
        """Eq. (13) ranking rule: ``(B, L)`` scores ``max_m ⟨S^m, w_l⟩``."""
        return group_max_scores(S, word_vectors)
