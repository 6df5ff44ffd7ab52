"""The generative core, one for both label modes: noise, conditioning, synthesis and the final classifier.

A generative method synthesises features of classes (single-label) or label sets (multi-label) it never saw,
then a fresh linear classifier is fit on them (:meth:`GenerativeZSLMethod.fit_scorer`):

* single-label — ``eval.syn_num`` features per unseen class; ZSL trains on synthetic unseen features over the
  unseen classes; GZSL on seen features (``eval.gzsl_seen``: real, as f-CLSWGAN / f-VAEGAN; synthetic; or
  both) + synthetic unseen features, over all classes (softmax, cross-entropy);
* multi-label (Gupta et al. 2021, Sec. 3.2) — ``syn_per_set`` features per label set of the pool of
  :mod:`zsl_lightning.eval.label_pool`; ZSL on the sets without a seen label (``zsl_sets=unseen_only``, the
  paper and released code) or on every set (``all``: seen-only sets as all-negative rows), over the unseen
  labels; GZSL on every set plus, with ``gzsl_real``, the real seen training features (paper Sec. 3), over
  all labels (BCE with logits).

Memory of the multi-label classifier's training set (training device, float32): the pool has ~2 sets per
training image (shares 1 + 0.5 + 0.5). NUS-WIDE GZSL, at most 2 × 161,789 sets: 323,578 × 4,096 × 4 B =
5.3 GB synthetic + 100,000 × 4,096 × 4 B = 1.6 GB real + 423,578 × 1,006 × 4 B = 1.7 GB targets ≈ 8.6 GB.
Bounded by ``pool.max_sets``, ``pool.max_train_sets``, ``gzsl_real_rows`` and ``syn_per_set``; synthesis
fills one preallocated tensor, and the GZSL set (synthetic, then real rows) is one tensor allocated once.
See docs/methods/multilabel.md, "Memory".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn

from zsl_lightning.data.base import epoch_seed
from zsl_lightning.errors import ConfigError
from zsl_lightning.eval.classifier import LinearScorer, fit_linear_classifier, fit_softmax_classifier
from zsl_lightning.eval.label_pool import build_label_pool
from zsl_lightning.methods.base import ZSLMethod
from zsl_lightning.methods.conditioning import (
    Condition,
    as_condition,
    condition_on,
    labels_condition,
)

POOL_DEFAULTS = {"seen_fraction": 1.0, "unseen_fraction": 0.5, "mixed_fraction": 0.5, "repeats": 1,
                 "max_sets": None, "max_train_sets": None}
#: rows generated per forward pass when synthesising, per label mode
SYNTHESIS_CHUNK = {"single": 8192, "multi": 4096}


class GenerativeZSLMethod(ZSLMethod):
    """A method that synthesises features from a :class:`~zsl_lightning.methods.conditioning.Condition`.

    Subclasses own ``self.generator`` (called ``G(z, a)`` or ``G(z, y, E)``, see
    :meth:`~zsl_lightning.methods.conditioning.Condition.generator_inputs`) and write their losses and
    ``training_step``; everything after training is here.

    Args (multi-label synthesis; ignored in single-label mode):
        pool: shares of the label-set pool (:data:`POOL_DEFAULTS`).
        syn_per_set: synthetic features per pool set.
        gzsl_real: the GZSL classifier also trains on the real seen training features (paper Sec. 3);
            ``false`` = the released code (synthetic features only).
        gzsl_real_rows: at most this many real rows (``null``: all; must be set when streaming).
        zsl_sets: ``unseen_only`` (paper) | ``all`` (seen-only sets as all-negative rows).
    """

    def __init__(self, noise_dim: int = 0, pool: Mapping | None = None, syn_per_set: int = 1,
                 gzsl_real: bool = True, gzsl_real_rows: int | None = 100_000, zsl_sets: str = "unseen_only",
                 **base):
        super().__init__(**base)
        self.noise_dim = int(noise_dim)
        unknown = set(dict(pool or {})) - set(POOL_DEFAULTS)
        if unknown:
            raise ConfigError(f"method.pool has unknown keys {sorted(unknown)}; known: {sorted(POOL_DEFAULTS)}.")
        if zsl_sets not in ("unseen_only", "all"):
            raise ConfigError(f"method.zsl_sets must be unseen_only | all, got '{zsl_sets}'.")
        self.pool_cfg = {**POOL_DEFAULTS, **dict(pool or {})}
        self.syn_per_set, self.gzsl_real, self.zsl_sets = int(syn_per_set), bool(gzsl_real), zsl_sets
        self.gzsl_real_rows = None if gzsl_real_rows is None else int(gzsl_real_rows)
        self._pool_cache: tuple | None = None
        self._shared_synthesis: dict | None = None  # eval.share_synthesis, during an evaluation only

    # ------------------------------------------------------------------ conditioning and synthesis
    def condition(self, target: torch.Tensor) -> Condition:
        """The condition of training rows (the batch's ``target``) of the bound split."""
        return condition_on(self.data, target)

    def sample_noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.noise_dim, device=self.device)

    def generate(self, z: torch.Tensor, cond: Condition | torch.Tensor) -> torch.Tensor:
        """``x̃ = G(z, cond)``; a bare tensor is a batch of class embeddings ``a``."""
        return self.generator(z, *as_condition(cond).generator_inputs())

    @torch.no_grad()
    def _synthesize(self, n: int, cond_of: Callable[[torch.Tensor], Condition], chunk: int, shape=None):
        """``n`` features, rows ``rows`` conditioned on ``cond_of(rows)``, generated ``chunk`` rows at a time
        into one preallocated tensor (no list + cat: the synthetic set exists once), viewed as ``shape`` per
        row when given. Networks in eval mode."""
        was_training = self.training
        self.eval()
        try:
            out = None
            for i in range(0, n, chunk):
                cond = cond_of(torch.arange(i, min(i + chunk, n), device=self.device))
                fake = self.generate(self.sample_noise(len(cond)), cond).flatten(1)
                if out is None:
                    out = torch.empty(n, fake.shape[1], device=fake.device, dtype=fake.dtype)
                out[i : i + len(cond)] = fake
            if out is None:  # nothing to synthesise
                return torch.empty(0, *(shape or (0,)), device=self.device)
            return out if shape is None else out.view(n, *shape)
        finally:
            self.train(was_training)

    def synthesize(self, class_embeddings: torch.Tensor, n_per_class: int, chunk: int = SYNTHESIS_CHUNK["single"]):
        """``n_per_class`` features for each row of ``class_embeddings``: rows ``i*n .. (i+1)*n-1`` belong to
        class ``i`` (single-label)."""
        emb, k = class_embeddings.to(self.device), int(n_per_class)
        return self._synthesize(len(emb) * k, lambda rows: Condition(emb[rows // k]), chunk)

    def synthesize_sets(self, sets: torch.Tensor, chunk: int = SYNTHESIS_CHUNK["multi"]) -> torch.Tensor:
        """``syn_per_set`` features for every label set (rows of a bool matrix over global label ids), rows
        ``i*syn_per_set .. (i+1)*syn_per_set-1`` for set ``i`` (multi-label)."""
        sets, k = sets.to(self.device), self.syn_per_set
        return self._synthesize(len(sets) * k, lambda rows: labels_condition(self.data, sets[rows // k]), chunk,
                                self.data.feature_shape)

    # ------------------------------------------------------------------ the final classifier
    def feature_transform(self) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """Features are mapped through this before the final classifier (VS-Boost's encoder E)."""
        return None

    def num_synthetic(self, split, task: str) -> int:
        """Synthetic features per unseen class (``eval.syn_num``; Gao et al. override it)."""
        return int(self.eval_cfg.syn_num)

    def classifier_batch_size(self) -> int:
        """``eval.classifier.batch_size``, or ``eval.syn_num`` as in the released code."""
        return int(self.eval_cfg.classifier.batch_size or self.eval_cfg.syn_num)

    def classifier_training_data(self, split, task: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Single-label: features and global class ids the final classifier of ``task`` trains on."""
        n = self.num_synthetic(split, task)
        unseen = split.unseen_classes
        syn_x = self.unseen_synthetic(split, n)
        syn_y = unseen.repeat_interleave(n)
        if task == "zsl":
            return syn_x, syn_y
        parts_x, parts_y = [], []
        if self.eval_cfg.gzsl_seen in ("real", "both"):
            parts_x.append(split.train_x)
            parts_y.append(split.train_y)
        if self.eval_cfg.gzsl_seen in ("synthetic", "both"):
            seen = split.seen_classes
            parts_x.append(self.synthesize(split.class_embeddings[seen], n))
            parts_y.append(seen.repeat_interleave(n))
        return torch.cat(parts_x + [syn_x]), torch.cat(parts_y + [syn_y])

    def unseen_synthetic(self, split, n: int) -> torch.Tensor:
        """``n`` synthetic features per unseen class (single-label). With ``eval.share_synthesis`` the ZSL and
        GZSL classifiers of one evaluation train on the same set when they ask for the same ``n`` (one
        synthesis instead of two); off by default: the GZSL classifier then gets its own draw, as in the
        released code, and sharing changes the numbers."""
        share = self._shared_synthesis is not None and bool(self.eval_cfg.share_synthesis)
        key = (id(split), n)
        if share and key in self._shared_synthesis:
            return self._shared_synthesis[key]
        x = self.synthesize(split.class_embeddings[split.unseen_classes], n)
        if share:
            self._shared_synthesis = {key: x}  # one set at a time: never two held for sharing
        return x

    def evaluate(self, split, details: dict | None = None) -> dict[str, float]:
        """The base evaluation; a set shared between its ZSL and GZSL classifiers lives only during it."""
        self._shared_synthesis = {}
        try:
            return super().evaluate(split, details)
        finally:
            self._shared_synthesis = None

    def label_pool(self, split) -> torch.Tensor:
        """Multi-label: the label-set pool of this evaluation (built once per evaluation, seeded by the epoch)."""
        key = (id(split), self.current_epoch)
        if self._pool_cache is None or self._pool_cache[0] != key:
            c = self.pool_cfg
            g = torch.Generator().manual_seed(epoch_seed(self.seed, self.current_epoch, 0, stream=5))
            train_sets = split.train_label_sets(c["max_train_sets"], self.seed)
            pool = build_label_pool(train_sets, split.train_cols, split.class_embeddings, split.seen_classes,
                                    split.unseen_classes, len(split.class_embeddings), g, c["seen_fraction"],
                                    c["unseen_fraction"], c["mixed_fraction"], c["repeats"], c["max_sets"])
            self._pool_cache = (key, pool)
        return self._pool_cache[1]

    def real_training_features(self, split) -> tuple[torch.Tensor, torch.Tensor]:
        """Multi-label: the real seen training features of the GZSL classifier (paper Sec. 3: "synthesized
        features along with the real seen class features"): all, or at most ``gzsl_real_rows`` (seeded)."""
        g = torch.Generator().manual_seed(epoch_seed(self.seed, self.current_epoch, 0, stream=6))
        return split.sample_train_rows(self.gzsl_real_rows, g)

    def label_set_training_data(self, split, task: str, classes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Multi-label: synthetic features of the pool's sets (and real seen rows for GZSL) with float targets
        over ``classes``. Unknown (0) labels of real rows count as negatives."""
        pool = self.label_pool(split)
        if task == "zsl" and self.zsl_sets == "unseen_only":
            sets = pool[~pool[:, split.seen_classes.cpu()].any(1)]
            if len(sets) == 0:
                raise ConfigError("the label-set pool has no unseen-only set: raise method.pool.unseen_fraction.")
        else:
            sets = pool
        if not (task == "gzsl" and self.gzsl_real):
            x = self.synthesize_sets(sets)
            return x, sets[:, classes.cpu()].float().repeat_interleave(self.syn_per_set, dim=0).to(x.device)
        return self._synthetic_and_real(split, sets, classes)

    def _synthetic_and_real(self, split, sets: torch.Tensor, classes: torch.Tensor):
        """GZSL: synthetic features of ``sets`` followed by the real seen rows, written into one tensor allocated
        once (a concatenation would hold both parts twice: ~2x the classifier's training set). Synthesis runs
        in blocks of ``SYNTHESIS_CHUNK`` sets, each a whole number of synthesis chunks, so the noise draws and
        features are those of one :meth:`synthesize_sets` call."""
        xr, yr = self.real_training_features(split)
        k, per = self.syn_per_set, SYNTHESIS_CHUNK["multi"]
        n_syn, n = len(sets) * k, len(sets) * k + len(xr)
        x = None
        for i in range(0, len(sets), per):
            block = self.synthesize_sets(sets[i : i + per], chunk=per).flatten(1)
            if x is None:
                x = torch.empty(n, block.shape[1], dtype=block.dtype, device=block.device)
            x[i * k : i * k + len(block)] = block
            del block
        if x is None:
            x = torch.empty(n, xr[0].numel(), device=self.device)
        x[n_syn:] = xr.to(x.device).flatten(1)
        targets = torch.zeros(n, len(classes), device=x.device)
        targets[:n_syn].view(len(sets), k, len(classes)).copy_(sets[:, classes.cpu()].unsqueeze(1).expand(-1, k, -1))
        col = {int(c): i for i, c in enumerate(classes.tolist())}
        targets[n_syn:, [col[int(c)] for c in split.train_cols.tolist()]] = (yr > 0).float().to(x.device)
        return x, targets

    def fit_scorer(self, split, task: str, classes: torch.Tensor, select_fn=None) -> LinearScorer:
        """The final classifier over ``classes``: softmax (single-label) or one logit per label (multi-label)."""
        transform = self.feature_transform()
        if split.label_mode == "single":
            x, y = self.classifier_training_data(split, task)
            if transform is not None:
                with torch.no_grad():
                    x = transform(x)
            lookup = torch.full((int(classes.max()) + 1,), -1, dtype=torch.long, device=classes.device)
            lookup[classes] = torch.arange(len(classes), device=classes.device)
            targets, activation = lookup[y], "softmax"
        else:
            x, targets = self.label_set_training_data(split, task, classes)
            activation = "none"
        c = self.eval_cfg.classifier
        wrap = (lambda lin: select_fn(LinearScorer(lin, classes, transform, activation))) if select_fn else None
        linear = fit_softmax_classifier(
            x, targets, len(classes), epochs=c.epochs, lr=c.lr, betas=(c.beta1, 0.999),
            batch_size=self.classifier_batch_size(), weight_decay=c.weight_decay,
            generator=self.classifier_generator(), select_fn=wrap, multilabel=activation == "none", init=c.init,
            init_std=c.init_std)
        return LinearScorer(linear, classes, transform, activation)

    # ------------------------------------------------------------------ frozen seen classifiers
    def fit_seen_classifier(self, split, settings: Mapping) -> tuple[nn.Linear, torch.Tensor]:
        """A linear classifier over the split's training classes, fit on the real training features: softmax
        over the seen classes (f-CLSWGAN's θ of L_CLS, Eq. 3) or BCE over the training label columns with
        unknown labels ignored (Gupta et al.'s f_cls, Eq. 7). Returns it and the global ids of its outputs."""
        c = settings
        kw = dict(epochs=c["epochs"], lr=c["lr"], betas=(c["beta1"], 0.999), batch_size=c["batch_size"],
                  generator=torch.Generator().manual_seed(self.seed), init=c["init"], init_std=c["init_std"])
        if split.label_mode == "single":
            seen = split.seen_classes
            return fit_softmax_classifier(split.train_x, torch.searchsorted(seen, split.train_y), len(seen), **kw), seen
        lin = fit_linear_classifier(TrainRows(split), split.feature_dim, len(split.train_cols), self.device,
                                    loss="bce_known", **kw)
        return lin, split.train_cols


class TrainRows:
    """A multi-label split's training rows as the chunked source :func:`~zsl_lightning.eval.classifier.train_classifier`
    iterates (streamed when the file is)."""

    def __init__(self, split):
        self.split, self.num_chunks = split, split.num_train_chunks

    def chunks(self, order=None):
        return self.split.train_chunks(order)
