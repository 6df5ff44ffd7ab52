"""Generative multi-label ZSL (Gupta et al., ICCV 2021): ALF / FLF / CLF generators inside
f-CLSWGAN (``{alf,flf,clf}_clswgan``) and f-VAEGAN (``{alf,flf,clf}_vaegan``).

The generator is a config node (``zsl_lightning.nn.fusion.ALF | FLF | CLF``) called ``G(z, y, E)``;
the critic and the encoder are conditioned on the image's mean label embedding e_µ (Eq. 1).

* ML-f-CLSWGAN, Eqs. (6)–(7): ``min_G max_D L_W − α E[BCE(f_cls(x̃), y)]`` — WGAN-GP with λ, plus the BCE of
  a seen multi-label classifier f_cls pre-trained on real features and frozen (α = ``cls_weight`` = 0.1).
* ML-f-VAEGAN: the f-VAEGAN losses (KL + BCE reconstruction + γ_G · (−D(x̃)); critic scaled by γ_D, fakes
  from the prior) with the multi-label generator shared by the VAE and the GAN.

Evaluation (Sec. 3.2): features are synthesised from the label-set pool of
:mod:`zsl_lightning.eval.label_pool` (``syn_per_set`` per set), then a linear BCE-with-logits classifier
is fit — ZSL on the sets without a seen label, over the unseen labels; GZSL on every set, over all labels,
plus the real seen training features (the paper, Sec. 3: ``gzsl_real=true``, at most ``gzsl_real_rows`` of
them); ``gzsl_real=false`` is the released code's choice, synthetic features only.

Memory of the final classifier's training set (on the training device, float32): the pool has ~2 sets per
training image (shares 1 + 0.5 + 0.5), each giving ``syn_per_set`` synthetic features, plus up to
``gzsl_real_rows`` real rows and a float target row per feature. NUS-WIDE GZSL, at most 2 × 161,789 sets:
323,578 × 4,096 × 4 B = 5.3 GB synthetic + 100,000 × 4,096 × 4 B = 1.6 GB real + 423,578 × 1,006 × 4 B =
1.7 GB targets ≈ 8.6 GB, and about twice that while the synthetic and real parts are concatenated.
Bounded by ``pool.max_sets`` (sets), ``pool.max_train_sets`` (training images drawn into the pool),
``gzsl_real_rows`` and ``syn_per_set``; :meth:`MultiLabelGenerativeMethod.synthesize_sets` fills one
preallocated tensor. See docs/methods/multilabel.md, "Memory".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from zsl_lightning.data.base import epoch_seed
from zsl_lightning.errors import ConfigError
from zsl_lightning.eval.classifier import LinearScorer, fit_softmax_classifier
from zsl_lightning.eval.label_pool import build_label_pool
from zsl_lightning.losses import (
    gaussian_kl,
    gradient_penalty,
    vae_bce_loss,
    wgan_critic_loss,
    wgan_generator_loss,
)
from zsl_lightning.methods.base import ZSLMethod, freeze
from zsl_lightning.nn.fusion import mean_label_embedding
from zsl_lightning.nn.mlp import GaussianEncoder

POOL_DEFAULTS = {"seen_fraction": 1.0, "unseen_fraction": 0.5, "mixed_fraction": 0.5, "repeats": 1,
                 "max_sets": None, "max_train_sets": None}


class MultiLabelGenerativeMethod(ZSLMethod):
    """What ML-f-CLSWGAN and ML-f-VAEGAN share: conditioning, the critic, synthesis and evaluation."""

    label_modes = ("multi",)

    def __init__(self, generator: nn.Module, discriminator: nn.Module, noise_dim: int, n_critic: int = 5,
                 lambda_gp: float = 10.0, pool: Mapping | None = None, syn_per_set: int = 1,
                 gzsl_real: bool = True, gzsl_real_rows: int | None = 100_000, zsl_sets: str = "unseen_only",
                 **base):
        super().__init__(**base)
        self.generator, self.discriminator = generator, discriminator
        self.noise_dim, self.n_critic, self.lambda_gp = int(noise_dim), int(n_critic), float(lambda_gp)
        unknown = set(dict(pool or {})) - set(POOL_DEFAULTS)
        if unknown:
            raise ConfigError(f"method.pool has unknown keys {sorted(unknown)}; known: {sorted(POOL_DEFAULTS)}.")
        self.pool_cfg = {**POOL_DEFAULTS, **dict(pool or {})}
        self.syn_per_set, self.gzsl_real = int(syn_per_set), bool(gzsl_real)
        self.gzsl_real_rows = None if gzsl_real_rows is None else int(gzsl_real_rows)
        self._pool_cache: tuple | None = None
        if zsl_sets not in ("unseen_only", "all"):
            raise ConfigError(f"method.zsl_sets must be unseen_only | all, got '{zsl_sets}'.")
        self.zsl_sets = zsl_sets

    # ------------------------------------------------------------------------------ conditioning
    def train_embeddings(self) -> torch.Tensor:
        """Embeddings of the training label columns (rows of ``y`` in a training batch)."""
        return self.data.class_embeddings[self.data.train_cols]

    def sample_noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.noise_dim, device=self.device)

    def generate(self, z: torch.Tensor, y: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        return self.generator(z, y, emb)

    def critic_loss(self, x: torch.Tensor, y: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Eq. (6), critic side: ``E[D(x̃, e_µ)] − E[D(x, e_µ)] + λ GP`` (scaled by ``gamma_d`` in ML-f-VAEGAN)."""
        e = mean_label_embedding(y, self.train_embeddings())
        d_real, d_fake = self.discriminator(x, e), self.discriminator(fake, e)
        gp = gradient_penalty(self.discriminator, x, fake, e)
        loss = getattr(self, "gamma_d", 1.0) * wgan_critic_loss(d_real, d_fake, gp, self.lambda_gp)
        return loss, {"wasserstein": (d_real.mean() - d_fake.mean()).detach(), "gp": gp.detach()}

    def _critic_phase(self, batch, parts) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x_all, pos_all = batch["x"], (batch["target"] > 0).float()
        emb = self.train_embeddings()
        loss_d, _ = self.critic_updates(((x_all[i], pos_all[i]) for i in range(x_all.shape[0])),
                                        lambda x, y: self.generate(self.sample_noise(len(y)), y, emb), parts)
        return loss_d, x_all[-1], pos_all[-1]

    # ------------------------------------------------------------------------------ synthesis and evaluation
    @torch.no_grad()
    def synthesize_sets(self, sets: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
        """``syn_per_set`` features for every label set (rows of a bool matrix over global label ids), rows
        ``i*syn_per_set .. (i+1)*syn_per_set-1`` for set ``i``. Generated ``chunk`` rows at a time into one
        preallocated tensor: no second full-size copy (list + cat) and no full float label matrix."""
        was_training = self.training
        self.eval()
        try:
            emb, k = self.data.class_embeddings, self.syn_per_set
            sets = sets.to(self.device)
            n = len(sets) * k
            out = torch.empty(n, self.data.feature_dim, device=self.device)
            for i in range(0, n, chunk):
                y = sets[torch.arange(i, min(i + chunk, n), device=self.device) // k].float()
                out[i : i + len(y)] = self.generate(self.sample_noise(len(y)), y, emb).flatten(1)
            return out.view(n, *self.data.feature_shape)
        finally:
            self.train(was_training)

    def label_pool(self, split) -> torch.Tensor:
        """The label-set pool of this evaluation (built once per evaluation, seeded by the epoch)."""
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
        """The real seen training features for the GZSL classifier (paper Sec. 3: "synthesized features along
        with the real seen class features"): all of them, or at most ``gzsl_real_rows`` (whole chunks in a
        seeded random order when the file is streamed, so memory stays bounded). Unknown (0) labels count
        as negatives for the classifier."""
        store, cap = split.train, self.gzsl_real_rows
        if store.in_memory and (cap is None or len(store) <= cap):
            return store.x, store.y
        if cap is None:
            raise ConfigError("method.gzsl_real_rows must be set when the training file is streamed "
                              "(data.in_memory=false or a file above data.memory_limit_gb).")
        g = torch.Generator().manual_seed(epoch_seed(self.seed, self.current_epoch, 0, stream=6))
        order = torch.randperm(store.num_chunks(split.chunk_rows), generator=g).numpy()
        xs, ys, n = [], [], 0
        for xc, yc in store.chunks(split.chunk_rows, order):
            xs.append(xc), ys.append(yc)
            n += len(xc)
            if n >= cap:
                break
        return torch.cat(xs)[:cap], torch.cat(ys)[:cap]

    def fit_scorer(self, split, task: str, classes: torch.Tensor, select_fn=None) -> LinearScorer:
        """The final multi-label classifier over ``classes``, trained on one synthetic feature per pool set.

        ZSL, ``zsl_sets="unseen_only"`` (paper and released code): only the sets without a seen label, so
        the classifier never sees an image without an unseen label. ``zsl_sets="all"`` (our option): every
        pool set, seen-only sets being all-negative rows; it teaches the classifier to score images without
        an unseen label low, which the ZSL test split is full of. GZSL: every pool set, plus the real seen
        training features when ``gzsl_real`` (paper Sec. 3)."""
        pool = self.label_pool(split)
        if task == "zsl" and self.zsl_sets == "unseen_only":
            sets = pool[~pool[:, split.seen_classes.cpu()].any(1)]
            if len(sets) == 0:
                raise ConfigError("the label-set pool has no unseen-only set: raise method.pool.unseen_fraction.")
        else:
            sets = pool
        x = self.synthesize_sets(sets)
        targets = sets[:, classes.cpu()].float().repeat_interleave(self.syn_per_set, dim=0).to(x.device)
        if task == "gzsl" and self.gzsl_real:
            xr, yr = self.real_training_features(split)
            real_t = torch.zeros(len(yr), len(classes), device=x.device)
            col = {int(c): i for i, c in enumerate(classes.tolist())}
            real_t[:, [col[int(c)] for c in split.train_cols.tolist()]] = (yr > 0).float().to(x.device)
            x, targets = torch.cat([x, xr.to(x.device).flatten(1)]), torch.cat([targets, real_t])
        c = self.eval_cfg.classifier
        wrap = (lambda lin: select_fn(LinearScorer(lin, classes, activation="none"))) if select_fn else None
        linear = fit_softmax_classifier(
            x, targets, len(classes), epochs=c.epochs, lr=c.lr, betas=(c.beta1, 0.999),
            batch_size=int(c.batch_size or self.eval_cfg.syn_num), weight_decay=c.weight_decay,
            generator=self.classifier_generator(), select_fn=wrap, multilabel=True, init=c.init, init_std=c.init_std)
        return LinearScorer(linear, classes, activation="none")


class MLCLSWGAN(MultiLabelGenerativeMethod):
    """ML-f-CLSWGAN (Gupta et al. Eqs. 6–7). Optimizers (return order): ``d``, ``g``."""

    optimizer_roles = ("d", "g")

    def __init__(self, generator: nn.Module, discriminator: nn.Module, optimizer_g: Callable, optimizer_d: Callable,
                 noise_dim: int, feature_dim: int, cls_weight: float = 0.1, pretrain: Mapping | None = None, **kw):
        super().__init__(generator, discriminator, noise_dim, **kw)
        self.cls_weight, self.feature_dim = float(cls_weight), int(feature_dim)
        self.pretrain_cfg = {"epochs": 5, "lr": 1e-3, "beta1": 0.5, "batch_size": 300, **dict(pretrain or {})}
        self.seen_classifier: nn.Linear | None = None
        self.register_buffer("classifier_ready", torch.tensor(False))
        self.register_optimizer("d", optimizer_d, self.discriminator.parameters)
        self.register_optimizer("g", optimizer_g, self.generator.parameters)

    def build_for_split(self, split) -> None:
        """f_cls of Eq. (7): one output per training label of the split (its seen labels)."""
        n = len(split.train_cols)
        if self.seen_classifier is None or self.seen_classifier.out_features != n:
            self.seen_classifier = freeze(nn.Linear(self.feature_dim, n))

    def prepare(self, split) -> None:
        """Pre-train f_cls on the real training features (BCE over the known labels), then freeze it."""
        if bool(self.classifier_ready):
            return
        c = self.pretrain_cfg
        lin = nn.Linear(self.feature_dim, len(split.train_cols)).to(self.device)
        opt = torch.optim.Adam(lin.parameters(), lr=c["lr"], betas=(c["beta1"], 0.999))
        g = torch.Generator().manual_seed(self.seed)
        store, bs = split.train, int(c["batch_size"])
        with torch.enable_grad():
            for _ in range(int(c["epochs"])):
                order = torch.randperm(store.num_chunks(split.chunk_rows), generator=g).numpy()
                for x, y in store.chunks(split.chunk_rows, order):
                    x, y = x.to(self.device).flatten(1), y.to(self.device)
                    perm = torch.randperm(len(x), generator=g).to(self.device)
                    for i in range(0, len(x), bs):
                        idx = perm[i : i + bs]
                        known = (y[idx] != 0).float()
                        loss = F.binary_cross_entropy_with_logits(lin(x[idx]), (y[idx] > 0).float(), weight=known)
                        opt.zero_grad(set_to_none=True)
                        loss.backward()
                        opt.step()
        with torch.no_grad():
            self.seen_classifier.weight.copy_(lin.weight)
            self.seen_classifier.bias.copy_(lin.bias)
        self.classifier_ready.fill_(True)

    def generator_loss(self, y: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Eq. (7), generator side: ``−E[D(x̃, e_µ)] + α · BCE(f_cls(x̃), y)``."""
        emb = self.train_embeddings()
        fake = self.generate(self.sample_noise(len(y)), y, emb)
        adv = wgan_generator_loss(self.discriminator(fake, mean_label_embedding(y, emb)))
        cls = F.binary_cross_entropy_with_logits(self.seen_classifier(fake.flatten(1)), y)
        return adv + self.cls_weight * cls, {"loss_adv": adv.detach(), "loss_cls": cls.detach()}

    def training_step(self, batch, batch_idx):
        parts: dict = {}
        loss_d, _, y = self._critic_phase(batch, parts)
        loss_g = self.step_collecting("g", lambda: self.generator_loss(y), parts)
        self.log_losses({"loss_d": loss_d, "loss_g": loss_g, **parts}, prog_bar=("loss_d", "loss_g"))


class MLVAEGAN(MultiLabelGenerativeMethod):
    """ML-f-VAEGAN (Gupta et al. Sec. 3.2, Fig. 3). Optimizers (return order): ``d``, ``e``, ``g``.

    Critic: ``γ_D (E[D(x̃)] − E[D(x)] + λ GP)`` with x̃ = G(z_p, y, E), z_p from the prior (released code).
    Encoder + generator: ``KL(q(z|x, e_µ) || N(0, I)) + BCE(G(z_q, y, E), x) + γ_G · (−E[D(G(z_p, y, E))])``.
    """

    optimizer_roles = ("d", "e", "g")

    def __init__(self, encoder: GaussianEncoder, generator: nn.Module, discriminator: nn.Module,
                 optimizer_e: Callable, optimizer_g: Callable, optimizer_d: Callable, noise_dim: int,
                 gamma_d: float = 10.0, gamma_g: float = 10.0, **kw):
        super().__init__(generator, discriminator, noise_dim, **kw)
        if getattr(encoder, "latent_dim", self.noise_dim) != self.noise_dim:
            raise ConfigError("method.encoder.latent_dim must equal method.noise_dim.")
        self.encoder = encoder
        self.gamma_d, self.gamma_g = float(gamma_d), float(gamma_g)
        self.register_optimizer("d", optimizer_d, self.discriminator.parameters)
        self.register_optimizer("e", optimizer_e, self.encoder.parameters)
        self.register_optimizer("g", optimizer_g, self.generator.parameters)

    def vae_gan_loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict]:
        emb = self.train_embeddings()
        e = mean_label_embedding(y, emb)
        mu, logvar = self.encoder(x.flatten(1), e)
        recon = self.generate(GaussianEncoder.sample(mu, logvar), y, emb)
        kl, bce = gaussian_kl(mu, logvar), vae_bce_loss(recon, x.flatten(1))
        adv = wgan_generator_loss(self.discriminator(self.generate(self.sample_noise(len(y)), y, emb), e))
        return kl + bce + self.gamma_g * adv, {"loss_kl": kl.detach(), "loss_recon": bce.detach(),
                                               "loss_adv": adv.detach()}

    def training_step(self, batch, batch_idx):
        parts: dict = {}
        loss_d, x, y = self._critic_phase(batch, parts)
        loss_g = self.step_collecting(("e", "g"), lambda: self.vae_gan_loss(x, y), parts)
        self.log_losses({"loss_d": loss_d, "loss_g": loss_g, **parts}, prog_bar=("loss_d", "loss_g"))
