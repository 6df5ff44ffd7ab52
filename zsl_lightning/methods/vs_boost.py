"""VS-Boost (Li, Zhang, Bian, Qu, Xie, Shi, Fan — IJCAI 2023): a conditional WGAN-GP feature
generator plus a metric-learning module that refines features with an encoder ``h = E(x)``.

Objective (Eq. 8): ``min_{G,R,E,F} max_D  L_WGAN + L_SM + L_RM`` with

* ``L_WGAN`` — Eq. (1), conditional WGAN-GP on the (pre-processed) ResNet features, γ = 10;
* ``L_SM`` — Eq. (3), InfoNCE between ``ã = R(h)`` and the class semantic vectors
  (:func:`~zsl_lightning.losses.metric.semantic_infonce`);
* ``L_RM`` — Eqs. (4)-(7), binary cross-entropy between the learnable similarity
  ``F(h_i, h_j) = σ(w^F (h_i ∘ h_j))`` and the semantic cosine similarity, for each ``h`` one random
  positive and one random negative (:func:`~zsl_lightning.losses.metric.relational_metric_loss`).

Classification (Eqs. 9-10): real seen features and synthetic unseen features are both refined by E,
then a softmax classifier is trained; test features are refined the same way
(:meth:`VSBoost.feature_transform`).

The paper leaves several things open; each is an option here, and ``docs/methods/vs_boost.md`` gives
the reasons for the defaults:

* ``synthetic_metric`` — whether generated features pass through E during training:
  ``generator`` (default): ``L_SM``/``L_RM`` are also computed on ``E(G(z, a))`` and that term trains G
  only (E, R, F are held fixed in it — the metric module is learnt from real features, and G is pulled
  towards features the module recognises, as the ``min over G`` of Eq. 8 implies);
  ``joint``: the synthetic term trains E, R and F as well; ``none``: the metric losses see real
  features only, and G is trained by the WGAN loss alone.
* ``sm_classes`` — the candidate classes of Eq. (3): ``all`` (seen + unseen classes of the split,
  "N is the total number of semantic embeddings"; on the dev split the validation classes stand in for
  the unseen ones, test classes are never used) or ``seen``.
* ``similarity_target`` — how ``cos(a_i, a_j)`` is mapped into [0, 1] (``clamp`` or ``rescale``).
* ``rml_pairs`` — where ``h⁺``/``h⁻`` come from: ``batch`` (other rows of the same N-way K-shot episode;
  an anchor whose episode has no such row — K = 1 or N = 1 — draws it from the training split instead)
  or ``split`` (always drawn uniformly from the whole training split).
* ``use_sml`` / ``use_rml`` (Table 4 ablations) and ``sm_weight`` / ``rm_weight`` (1 = the paper).
  With neither loss on (ablation a, "plain feature generation") E is not trained and not used.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call

from zsl_lightning.errors import ConfigError
from zsl_lightning.losses.gan import wgan_generator_loss
from zsl_lightning.losses.metric import (
    SIMILARITY_TARGETS,
    relational_metric_loss,
    semantic_infonce,
)
from zsl_lightning.losses.metric import similarity_target as semantic_similarity
from zsl_lightning.methods.wgan import WGANMethod

SYNTHETIC_METRIC = ("generator", "joint", "none")
SM_CLASSES = ("all", "seen")
RML_PAIRS = ("batch", "split")


def _frozen_call(module: nn.Module, *args: torch.Tensor) -> torch.Tensor:
    """``module(*args)`` with its parameters detached: gradients reach the inputs only."""
    params = {k: v.detach() for k, v in module.named_parameters()}
    return functional_call(module, params, args)


class VSBoost(WGANMethod):
    """VS-Boost. Optimizers (return order): ``d`` (critic), ``g`` (generator), ``e`` (encoder E),
    ``r`` (semantic regressor R), ``f`` (relation F).

    One training step = one generator iteration: ``n_critic`` critic updates on raw features (one
    episode each), then one joint update of G, E, R and F (those in use) on the last episode:
    ``−E[D(G(z,a), a)] + w_SM L_SM + w_RM L_RM``.
    """

    optimizer_roles = ("d", "g", "e", "r", "f")

    def __init__(
        self,
        encoder: nn.Module,
        regressor: nn.Module,
        relation: nn.Module,
        optimizer_e: Callable,
        optimizer_r: Callable,
        optimizer_f: Callable,
        use_sml: bool = True,
        use_rml: bool = True,
        sm_weight: float = 1.0,
        rm_weight: float = 1.0,
        temperature: float = 0.1,
        sm_normalize: bool = False,
        sm_classes: str = "all",
        similarity_target: str = "clamp",
        rml_pairs: str = "batch",
        synthetic_metric: str = "generator",
        **kw,
    ):
        super().__init__(**kw)
        for name, value, allowed in (("synthetic_metric", synthetic_metric, SYNTHETIC_METRIC),
                                     ("sm_classes", sm_classes, SM_CLASSES),
                                     ("similarity_target", similarity_target, SIMILARITY_TARGETS),
                                     ("rml_pairs", rml_pairs, RML_PAIRS)):
            if value not in allowed:
                raise ConfigError(f"method.{name} must be one of {' | '.join(allowed)}, got '{value}'.")
        if temperature <= 0:
            raise ConfigError(f"method.temperature (τ of Eq. 3) must be > 0, got {temperature}.")
        if sm_weight < 0 or rm_weight < 0:
            raise ConfigError("method.sm_weight and method.rm_weight must be >= 0.")
        self.encoder, self.regressor, self.relation = encoder, regressor, relation
        self._check_widths()
        self.use_sml, self.use_rml = bool(use_sml), bool(use_rml)
        self.sm_weight, self.rm_weight = float(sm_weight), float(rm_weight)
        self.temperature, self.sm_normalize = float(temperature), bool(sm_normalize)
        self.sm_classes, self.similarity_target = sm_classes, similarity_target
        self.rml_pairs, self.synthetic_metric = rml_pairs, synthetic_metric
        # in-batch partners always exist when every batch has >= 2 classes and >= 2 rows per class
        plan = self.batch_plan
        self._episodes_have_partners = (getattr(plan, "classes_per_batch", 1) >= 2
                                        and getattr(plan, "rows_per_class", 1) >= 2)
        self.register_optimizer("e", optimizer_e, self.encoder.parameters)
        self.register_optimizer("r", optimizer_r, self.regressor.parameters)
        self.register_optimizer("f", optimizer_f, self.relation.parameters)

    def _check_widths(self) -> None:
        h = getattr(self.encoder, "out_dim", None)
        r_in = getattr(self.regressor, "in_dims", None)
        if h is not None and r_in is not None and sum(r_in) != h:
            raise ConfigError(f"method.regressor takes {sum(r_in)}-d input but the encoder gives {h}-d features.")
        fc = getattr(self.relation, "fc", None)
        if h is not None and isinstance(fc, nn.Linear) and fc.in_features != h:
            raise ConfigError(f"method.relation has width {fc.in_features} but the encoder gives {h}-d features.")

    # ---------------------------------------------------------------- what is trained
    @property
    def uses_encoder(self) -> bool:
        """E is trained (and used for classification) only when a metric loss refines it."""
        return self.use_sml or self.use_rml

    @property
    def joint_roles(self) -> tuple[str, ...]:
        return ("g",) + (("e",) if self.uses_encoder else ()) + (("r",) if self.use_sml else ()) \
            + (("f",) if self.use_rml else ())

    def feature_transform(self):
        """Eqs. (9)-(10): the classifier sees ``h = E(x)`` for real, synthetic and test features."""
        return self.encoder if self.uses_encoder else None

    # ---------------------------------------------------------------- setup
    def prepare(self, split) -> None:
        """Index tables of the bound split (recomputed at every fit start; nothing to checkpoint)."""
        dev = split.train_y.device
        n_cls = int(split.class_embeddings.shape[0])
        seen = split.seen_classes
        cand = seen if self.sm_classes == "seen" else torch.cat([seen, split.unseen_classes]).sort().values
        self._sm_candidates = cand
        self._sm_lookup = torch.full((n_cls,), -1, dtype=torch.long, device=dev)
        self._sm_lookup[cand] = torch.arange(len(cand), device=dev)
        if self.use_rml and len(seen) < 2:
            raise ConfigError("relational metric learning needs >= 2 training classes (a negative for each "
                              "instance); set method.use_rml=false.")
        # training rows grouped by class: partner sampling from the whole split, without loops
        y = split.train_y
        order = torch.argsort(y, stable=True)
        counts = torch.bincount(y, minlength=n_cls)
        starts = torch.cumsum(counts, 0) - counts
        rank = torch.empty_like(order)
        rank[order] = torch.arange(len(y), device=dev) - starts[y[order]]
        self._split_order, self._split_counts, self._split_starts, self._split_rank = order, counts, starts, rank

    # ---------------------------------------------------------------- losses
    def sm_loss(self, h: torch.Tensor, y: torch.Tensor, frozen: bool = False) -> torch.Tensor:
        """Eq. (3) on refined features ``h`` of classes ``y`` (global ids)."""
        a_tilde = _frozen_call(self.regressor, h) if frozen else self.regressor(h)
        emb = self.data.class_embeddings[self._sm_candidates]
        return semantic_infonce(a_tilde, self._sm_lookup[y], emb, self.temperature, self.sm_normalize)

    def sample_partners(self, y: torch.Tensor, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        """One random positive and one random negative partner per anchor (Eq. 7).

        Returns ``pos_b``/``neg_b`` (rows of the batch) when every anchor has both inside the batch
        (``rml_pairs=batch`` with N ≥ 2, K ≥ 2 episodes), else ``pos_s``/``neg_s`` (rows of the training
        split: the in-batch partner where one exists and ``rml_pairs=batch``, a uniform draw from the
        split otherwise). A positive is never the anchor's own row unless its class has one image.
        """
        if self.rml_pairs == "batch":
            same = y.unsqueeze(0) == y.unsqueeze(1)
            other_row = ~torch.eye(len(y), dtype=torch.bool, device=y.device)
            r = torch.rand(len(y), len(y), device=y.device)
            pos_ok, neg_ok = same & other_row, ~same
            pos_b = torch.where(pos_ok, r, -1.0).argmax(1)
            neg_b = torch.where(neg_ok, r, -1.0).argmax(1)
            if self._episodes_have_partners:
                return {"pos_b": pos_b, "neg_b": neg_b}
        pos_s, neg_s = self._split_partners(y, idx)
        if self.rml_pairs == "batch":
            pos_s = torch.where(pos_ok.any(1), idx[pos_b], pos_s)
            neg_s = torch.where(neg_ok.any(1), idx[neg_b], neg_s)
        return {"pos_s": pos_s, "neg_s": neg_s}

    def _split_partners(self, y: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cnt, start, rank = self._split_counts[y], self._split_starts[y], self._split_rank[idx]
        # positive: uniform over the other rows of the class (the row itself for a one-image class)
        r = (torch.rand(len(y), device=y.device) * (cnt - 1)).long().clamp_max((cnt - 2).clamp_min(0))
        r = torch.where(cnt > 1, r + (r >= rank).long(), rank)
        pos = self._split_order[start + r]
        # negative: uniform over the rows of every other class (skip the class's block in `order`)
        n_other = len(self._split_order) - cnt
        r = (torch.rand(len(y), device=y.device) * n_other).long().clamp_max(n_other - 1)
        neg = self._split_order[torch.where(r < start, r, r + cnt)]
        return pos, neg

    def rm_loss(self, h: torch.Tensor, y: torch.Tensor, partners: dict[str, torch.Tensor],
                h_partner: tuple[torch.Tensor, torch.Tensor], frozen: bool = False) -> torch.Tensor:
        """Eq. (7) for anchors ``h`` (classes ``y``) and their positive/negative refined partners."""
        emb = self.data.class_embeddings
        y_pos, y_neg = self._partner_labels(y, partners)
        rel = (lambda a, b: _frozen_call(self.relation, a, b)) if frozen else self.relation
        h_pos, h_neg = h_partner
        z_pos = semantic_similarity(emb[y], emb[y_pos], self.similarity_target)
        z_neg = semantic_similarity(emb[y], emb[y_neg], self.similarity_target)
        return relational_metric_loss(rel(h, h_pos), z_pos, rel(h, h_neg), z_neg)

    def _partner_labels(self, y, partners):
        if "pos_b" in partners:
            return y[partners["pos_b"]], y[partners["neg_b"]]
        train_y = self.data.train_y
        return train_y[partners["pos_s"]], train_y[partners["neg_s"]]

    def _partner_features(self, h: torch.Tensor, partners) -> tuple[torch.Tensor, torch.Tensor]:
        if "pos_b" in partners:
            return h[partners["pos_b"]], h[partners["neg_b"]]
        x = self.data.train_x
        both = self.encoder(torch.cat([x[partners["pos_s"]], x[partners["neg_s"]]]))
        return both.chunk(2)

    def joint_loss(self, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """The ``min`` side of Eq. (8) on one episode: ``−E[D(x̃, a)] + w_SM L_SM + w_RM L_RM``."""
        a = self.data.class_embeddings[y]
        fake = self.generate(self.sample_noise(len(a)), a)
        adv = wgan_generator_loss(self.discriminator(fake, a))
        loss, info = adv, {"loss_adv": adv.detach()}
        if not self.uses_encoder:
            return loss, info
        h = self.encoder(x)
        syn = self.synthetic_metric
        frozen = syn == "generator"
        h_fake = None
        if syn != "none":
            h_fake = _frozen_call(self.encoder, fake) if frozen else self.encoder(fake)
        if self.use_sml:
            sm = self.sm_loss(h, y)
            info["loss_sm"] = sm.detach()
            if h_fake is not None:
                sm_fake = self.sm_loss(h_fake, y, frozen=frozen)
                info["loss_sm_syn"] = sm_fake.detach()
                sm = sm + sm_fake
            loss = loss + self.sm_weight * sm
        if self.use_rml:
            partners = self.sample_partners(y, idx)
            hp = self._partner_features(h, partners)
            rm = self.rm_loss(h, y, partners, hp)
            info["loss_rm"] = rm.detach()
            if h_fake is not None:
                # a synthetic anchor is related to the *real* partners of its row
                hp_fake = tuple(t.detach() for t in hp) if frozen else hp
                rm_fake = self.rm_loss(h_fake, y, partners, hp_fake, frozen=frozen)
                info["loss_rm_syn"] = rm_fake.detach()
                rm = rm + rm_fake
            loss = loss + self.rm_weight * rm
        return loss, info

    # ---------------------------------------------------------------- training
    def training_step(self, batch, batch_idx):
        parts: dict = {}
        loss_d, x, cond, target = self.critic_phase(batch, parts)
        idx = batch["idx"][-1]
        loss_g = self.step_collecting(self.joint_roles, lambda: self.joint_loss(x, target, idx), parts)
        self.log_losses({"loss_d": loss_d, "loss_g": loss_g, **parts}, prog_bar=("loss_d", "loss_g"))
