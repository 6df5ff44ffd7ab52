"""tf-VAEGAN (Narayan, Gupta, Khan, Snoek, Shao, ECCV 2020: "Latent Embedding Feedback and Discriminative
Features for Zero-Shot Classification"), inductive, single-label: f-VAEGAN plus a semantic embedding decoder,
a feedback module and decoder features for the final classifier.

Equations (numbering as we read the arXiv version, 2003.07833; the paper is not in shared/papers):

* Eq. (1)-(2): f-VAEGAN's ``L_V = KL(q(z|x,a) ‖ p(z|a)) − E_q[log p(x|z,a)]`` and the conditional WGAN-GP
  ``L_W``; ``L_vaegan = L_V + γ L_W`` (inherited from :class:`~zsl_lightning.methods.vaegan.VAEGAN`).
* Eq. (3): cycle-consistency of the semantic decoder ``L_R = E[‖Dec(x) − a‖₁] + E[‖Dec(x̃) − a‖₁]``
  (:mod:`zsl_lightning.losses.semantic`; released: a weighted L1).
* Eq. (4): ``L_total = L_vaegan + β L_R`` with β = ``recons_weight``.
* Eq. (5): feedback — the generator's latent embedding (last hidden layer) ``g_l`` becomes
  ``g_l + δ · x_f`` with ``x_f = F(h)``, ``h`` the decoder's hidden activation on the first-pass feature
  ``x̃⁰ = G(z, a)``: ``x̃ = G(z, a; g_l + δ F(h(x̃⁰)))`` (:meth:`TFVAEGAN.generate`). ``h`` is detached, as
  released: the feedback path trains ``F`` and ``G`` only.
* Sec. 3.3 (discriminative features): the final classifier sees ``x ⊕ Dec(x) ⊕ h(x)`` for real and
  synthetic features (:meth:`TFVAEGAN.feature_transform`; ``decoder_features``).

Training (the released ``train_images.py``), per generator iteration of pass ``p``:

1. ``n_critic`` times, on a fresh real batch: a decoder step ``β · ℓ(Dec(x), a)`` (role ``dec``), then a
   critic step on fakes made without gradient — with feedback (δ = ``a1``) when ``p ≥ 1``;
2. one joint step of ``E``, ``G`` (and ``F`` when ``p ≥ 1``; and ``Dec`` unless ``freeze_dec``) on
   ``KL + BCE(x̃_rec, x) + γ_G · (−D(x̃, a)) + β · ℓ(Dec(x̃), a)``, where ``x̃`` is the critic's fake
   (decoded encoder noise with ``fake_noise=encoded``, else prior noise), with feedback when ``p ≥ 1``.

``feedback_loop`` passes (2 released: one without, one with feedback) make one training step here; each pass
takes ``n_critic`` batches of the step, so ``method.sampler.batches_per_step`` must be
``n_critic × feedback_loop``. The released code runs the two passes as two whole sweeps over the data per
epoch (all no-feedback iterations, then all feedback iterations); here they alternate step by step — the same
number of iterations of each kind per epoch (docs/methods/tfvaegan.md, "Deviations").

Features for the final classifier are synthesised with feedback, δ = ``a2`` (released), when
``feedback_loop ≥ 2``. With ``feedback_loop=1`` and ``recons_weight=0`` the training is f-VAEGAN's, step for
step (a test checks it).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from zsl_lightning.errors import ConfigError
from zsl_lightning.losses import gaussian_kl, vae_bce_loss, wgan_generator_loss
from zsl_lightning.losses.semantic import KINDS, semantic_reconstruction_loss
from zsl_lightning.methods.conditioning import Condition, as_condition
from zsl_lightning.methods.generative import SYNTHESIS_CHUNK
from zsl_lightning.methods.vaegan import VAEGAN
from zsl_lightning.nn.mlp import GaussianEncoder
from zsl_lightning.nn.tfvaegan import FeedbackModule, SemanticDecoder


class TFVAEGAN(VAEGAN):
    """tf-VAEGAN. Optimizers (return order): ``d`` (critic), ``e`` (encoder), ``g`` (generator),
    ``dec`` (semantic decoder), ``fb`` (feedback module).

    Args:
        decoder: the semantic embedding decoder ``Dec`` (:class:`~zsl_lightning.nn.tfvaegan.SemanticDecoder`).
        feedback: the feedback module ``F`` (:class:`~zsl_lightning.nn.tfvaegan.FeedbackModule`), from the
            decoder's hidden width to the generator's last hidden width.
        optimizer_dec, optimizer_fb: optimizer partials of ``Dec`` (``--dec_lr``) and ``F`` (``--feed_lr``).
        recons_weight: β of Eq. (4) (``--recons_weight``); also scales the decoder's own loss on real features.
        a1: δ of Eq. (5) while training (``--a1``); a2: δ when synthesising features (``--a2``).
        feedback_loop: passes per step; every pass after the first uses feedback (released: 2; 1 = none).
        freeze_dec: the decoder is not updated by the generator-side loss (``--freeze_dec``, AWA script).
        recon_loss: ``weighted_l1`` (released) | ``l1`` (paper Eq. 3).
        decoder_features: the final classifier sees ``[x; Dec(x); h(x)]`` (released, Sec. 3.3) instead of ``x``.
        synthesis_feedback: synthesise the classifier's features with feedback (released) when
            ``feedback_loop ≥ 2``.
    """

    label_modes = ("single",)
    optimizer_roles = ("d", "e", "g", "dec", "fb")

    def __init__(self, decoder: SemanticDecoder, feedback: FeedbackModule, optimizer_dec: Callable,
                 optimizer_fb: Callable, recons_weight: float = 0.01, a1: float = 1.0, a2: float = 1.0,
                 feedback_loop: int = 2, freeze_dec: bool = False, recon_loss: str = "weighted_l1",
                 decoder_features: bool = True, synthesis_feedback: bool = True, **kw):
        super().__init__(**kw)
        if recon_loss not in KINDS:
            raise ConfigError(f"method.recon_loss must be {' | '.join(KINDS)}, got '{recon_loss}'.")
        if int(feedback_loop) < 1:
            raise ConfigError(f"method.feedback_loop must be >= 1 (2 = released, 1 = no feedback), got {feedback_loop}.")
        self.decoder, self.feedback = decoder, feedback
        self.recons_weight, self.a1, self.a2 = float(recons_weight), float(a1), float(a2)
        self.feedback_loop, self.freeze_dec, self.recon_loss = int(feedback_loop), bool(freeze_dec), recon_loss
        self.decoder_features, self.synthesis_feedback = bool(decoder_features), bool(synthesis_feedback)
        self._check_shapes()
        self.delta = 0.0  # δ of the pass being run (0: plain G(z, a)); transient, not checkpointed
        self.register_optimizer("dec", optimizer_dec, self.decoder.parameters)
        self.register_optimizer("fb", optimizer_fb, self.feedback.parameters)

    def _check_shapes(self) -> None:
        g_hidden = getattr(self.generator, "hidden_width", None)
        if g_hidden is None:
            raise ConfigError("method.generator must accept a feedback on its hidden layer: use "
                              "_target_: zsl_lightning.nn.tfvaegan.FeedbackGenerator.")
        f_in, f_out = self.feedback.in_dims[0], self.feedback.out_dim
        if f_in != self.decoder.hidden_width or f_out != g_hidden:
            raise ConfigError(f"method.feedback maps {f_in} → {f_out}, but the decoder's last hidden layer has "
                              f"{self.decoder.hidden_width} units and the generator's {g_hidden}: set "
                              "method.feedback.in_dim / out_dim to those widths.")
        sampler = self.batch_plan
        need = self.n_critic * self.feedback_loop
        if sampler is not None and getattr(sampler, "batches_per_step", need) != need:
            raise ConfigError(f"method.sampler.batches_per_step is {sampler.batches_per_step}, but one tf-VAEGAN "
                              f"step takes n_critic × feedback_loop = {self.n_critic} × {self.feedback_loop} = "
                              f"{need} batches: set method.sampler.batches_per_step={need}.")

    # ------------------------------------------------------------------ the two-pass generator (Eq. 5)
    def generate(self, z: torch.Tensor, cond: Condition | torch.Tensor) -> torch.Tensor:
        """``x̃ = G(z, a)`` when δ = 0, else the feedback pass ``G(z, a; g_l + δ F(h(G(z, a))))`` (Eq. 5) with
        ``h`` the decoder's hidden activation, detached (module docstring)."""
        a = as_condition(cond).vector
        first = self.generator(z, a)
        if self.delta == 0.0:
            return first
        _, h = self.decoder.forward_with_hidden(first)
        return self.generator(z, a, feedback=self.delta * self.feedback(h.detach()))

    def synthesize(self, class_embeddings: torch.Tensor, n_per_class: int, chunk: int = SYNTHESIS_CHUNK["single"]):
        """Features for the final classifier, generated with feedback δ = ``a2`` (released) when the model was
        trained with feedback."""
        use = self.feedback_loop >= 2 and self.synthesis_feedback
        previous, self.delta = self.delta, (self.a2 if use else 0.0)
        try:
            return super().synthesize(class_embeddings, n_per_class, chunk)
        finally:
            self.delta = previous

    # ------------------------------------------------------------------ losses
    def semantic_loss(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """One term of Eq. (3): ``ℓ(Dec(x), a)`` (weighted L1 as released, or L1)."""
        return semantic_reconstruction_loss(self.decoder(x), a, self.recon_loss)

    def before_critic_batch(self, x: torch.Tensor, cond: Condition, parts: dict) -> None:
        """The decoder's step on a real batch, ``β · ℓ(Dec(x), a)`` (the real-feature term of Eq. 3), before
        the critic's fakes are made (released order). Skipped when β = 0 (its gradient is zero)."""
        if self.recons_weight == 0.0:
            return
        a = cond.vector
        loss = self.manual_step("dec", lambda: self.recons_weight * self.semantic_loss(x, a))
        parts["loss_dec_real"] = loss

    def tf_vaegan_loss(self, x: torch.Tensor, cond: Condition | torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Eq. (4) for E, G (and F, Dec): ``KL + BCE(G(z_E, a), x) + γ_G · (−E[D(x̃, a)]) + β ℓ(Dec(x̃), a)``,
        every ``G`` call with the current pass's feedback δ. With β = 0 and δ = 0 this is f-VAEGAN's
        :meth:`VAEGAN.vae_gan_loss`, with the same random draws in the same order."""
        cond = as_condition(cond)
        a = cond.vector
        mu, logvar = self.encoder(x.flatten(1), a)
        recon = self.generate(GaussianEncoder.sample(mu, logvar), cond)
        kl, bce = gaussian_kl(mu, logvar), vae_bce_loss(recon, x.flatten(1))
        fake = recon if self.fake_noise == "encoded" else self.generate(self.sample_noise(len(cond)), cond)
        adv = wgan_generator_loss(self.discriminator(fake, a))
        loss = kl + bce + self.gamma_g * adv
        info = {"loss_kl": kl.detach(), "loss_recon": bce.detach(), "loss_adv": adv.detach()}
        if self.recons_weight != 0.0:
            sem = self.semantic_loss(fake, a)
            loss = loss + self.recons_weight * sem
            info["loss_sem"] = sem.detach()
        return loss, info

    def generator_roles(self, feedback_pass: bool) -> tuple[str, ...]:
        """Who the generator-side loss updates: E and G; F in a feedback pass; Dec unless frozen (or β = 0)."""
        roles = ("e", "g") + (("fb",) if feedback_pass else ())
        return roles + (("dec",) if self.recons_weight != 0.0 and not self.freeze_dec else ())

    def training_step(self, batch, batch_idx):
        k, logged = self.n_critic, {}
        try:
            for p in range(self.feedback_loop):
                parts: dict = {}
                sub = {"x": batch["x"][p * k:(p + 1) * k], "target": batch["target"][p * k:(p + 1) * k]}
                self.delta = self.a1 if p >= 1 else 0.0
                loss_d, x, cond, _ = self.critic_phase(sub, parts)
                loss_g = self.step_collecting(self.generator_roles(p >= 1),
                                              lambda x=x, cond=cond: self.tf_vaegan_loss(x, cond), parts)
                suffix = "_fb" if p >= 1 else ""
                logged.update({f"{n}{suffix}": v for n, v in {"loss_d": loss_d, "loss_g": loss_g, **parts}.items()})
        finally:
            self.delta = 0.0
        self.log_losses(logged, prog_bar=("loss_d", "loss_g"))

    # ------------------------------------------------------------------ the final classifier (Sec. 3.3)
    def feature_transform(self) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """``x ↦ [x; Dec(x); h(x)]`` (released classifier input) when ``decoder_features``, else none."""
        if not self.decoder_features:
            return None
        decoder = self.decoder

        @torch.no_grad()
        def transform(x: torch.Tensor) -> torch.Tensor:
            was_training = decoder.training
            decoder.eval()
            try:
                x = x.flatten(1)
                out, h = decoder.forward_with_hidden(x)
                return torch.cat([x, out, h], dim=1)
            finally:
                decoder.train(was_training)

        return transform
