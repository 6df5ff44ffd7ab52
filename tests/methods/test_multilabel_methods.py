"""Multi-label generators (ALF / FLF / CLF, Gupta et al. Eqs. 1-5), the label-set pool, and the manual
steps of ML-f-CLSWGAN / ML-f-VAEGAN (each changes only its own networks)."""

import pytest
import torch
from omegaconf import open_dict

from tests.helpers import bound_method, changed, compose_cfg, shrink, snapshot
from zsl_lightning.data.loaders import MultiLabelBatchLoader
from zsl_lightning.errors import ConfigError
from zsl_lightning.eval.label_pool import build_label_pool, column_counts, nearest_unseen, random_ranks
from zsl_lightning.nn.fusion import ALF, CLF, FLF, mean_label_embedding
from zsl_lightning.pipeline import build_datamodule, build_method


# ------------------------------------------------------------------------------ generators
def test_mean_label_embedding_eq1():
    emb = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    y = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert torch.allclose(mean_label_embedding(y, emb), torch.tensor([[0.5, 0.5], [1.0, 1.0]]))


def test_flf_is_the_mean_of_per_label_features_eq2():
    torch.manual_seed(0)
    g = FLF(4, 3, 5, hidden=[8])
    emb, z = torch.randn(6, 3), torch.randn(2, 4)
    y = torch.tensor([[1, 0, 1, 1, 0, 0], [0, 1, 0, 0, 0, 0]]).float()
    out = g(z, y, emb)
    expected0 = torch.stack([g.net(z[:1], emb[j : j + 1]) for j in (0, 2, 3)]).mean(0)
    assert torch.allclose(out[0:1], expected0, atol=1e-6)
    assert torch.allclose(out[1:2], g.net(z[1:2], emb[1:2]), atol=1e-6)


def test_alf_uses_only_the_mean_embedding():
    torch.manual_seed(0)
    g = ALF(4, 2, 5, hidden=[8])
    emb = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    z = torch.randn(1, 4)
    # {0, 1} and {2} have the same mean embedding, so ALF gives the same feature
    assert torch.allclose(g(z, torch.tensor([[1.0, 1.0, 0.0]]), emb), g(z, torch.tensor([[0.0, 0.0, 1.0]]), emb))


def test_clf_fuses_two_tokens_eqs3_5():
    torch.manual_seed(0)
    g = CLF(4, 3, 16, hidden=[8], heads=8, ffn_hidden=32, dropout=0.0).eval()
    emb, z = torch.randn(5, 3), torch.randn(3, 4)
    y = torch.tensor([[1, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 1, 1]]).float()
    out = g(z, y, emb)
    assert out.shape == (3, 16) and out.min() >= 0 and out.max() <= 1
    tokens = torch.stack([g.flf(z, y, emb), g.alf(z, y, emb)], dim=1)
    o, _ = g.attn(tokens, tokens, tokens, need_weights=False)
    h = tokens + o
    h = g.ffn(h) + h
    assert torch.allclose(out, torch.sigmoid(h.mean(1)), atol=1e-6)
    assert g.attn.num_heads == 8 and g.attn.in_proj_bias is None  # released code: no projection bias


def test_clf_paper_size_is_about_180m_parameters(tmp_path):
    # the shipped clf_vaegan config at NUS-WIDE sizes (VGG19 fc7 4,096, GloVe 300), built on the meta device
    # (no memory allocated): REFERENCE — attention 67M + FFN 67M + two generators, ~180M in all
    from hydra.utils import instantiate

    cfg = compose_cfg(["method=clf_vaegan", "data=nuswide"], tmp_path)
    with open_dict(cfg):
        cfg.data_info = {"feature_dim": 4096, "embedding_dim": 300}
    with torch.device("meta"):
        g = instantiate(cfg.method.generator)
    assert isinstance(g, CLF) and g.attn.in_proj_weight.is_meta

    def count(m):
        return sum(p.numel() for p in m.parameters())

    assert count(g.attn) == 4 * 4096 * 4096  # W_Q, W_K, W_V, W_O without bias (H = 8 heads of 512)
    assert count(g.ffn) == 4096 * 8192 + 8192 + 8192 * 4096 + 4096
    assert count(g.alf) == count(g.flf) == (300 + 300) * 4096 + 4096 + 4096 * 4096 + 4096
    assert count(g) == count(g.attn) + count(g.ffn) + count(g.alf) + count(g.flf)
    assert 1.65e8 < count(g) < 1.85e8, count(g)


# ------------------------------------------------------------------------------ the label-set pool
def test_label_pool_kinds():
    # seen 0, 1 are nearest to unseen 4; seen 2, 3 to unseen 5
    emb = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [0.95, 0.05], [0.05, 0.95]])
    seen, unseen = torch.tensor([0, 1, 2, 3]), torch.tensor([4, 5])
    assert nearest_unseen(emb, seen, unseen).tolist() == [4, 4, 5, 5]
    train_sets = torch.tensor([[1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 1, 0], [0, 1, 0, 1]]).bool()
    pool = build_label_pool(train_sets, seen, emb, seen, unseen, 6, torch.Generator().manual_seed(0), 1.0, 1.0, 1.0)
    assert pool.shape == (12, 6)
    seen_part, unseen_part, mixed = pool[:4], pool[4:8], pool[8:]
    assert sorted(map(tuple, seen_part[:, :4].int().tolist())) == sorted(map(tuple, train_sets.int().tolist()))
    assert not seen_part[:, 4:].any()
    assert not unseen_part[:, :4].any() and unseen_part.any(1).all()
    # mixed: of each 2-label set, floor(2/2) = 1 label kept and the other mapped to its nearest unseen label
    assert (mixed[:, :4].sum(1) == 1).all() and mixed[:, 4:].any(1).all()


def test_label_pool_without_unseen_labels_is_the_training_sets():
    # standard multi-label classification: every label seen; a label no training image has still gets sets
    emb = torch.eye(4)
    seen, unseen = torch.arange(4), torch.arange(0)
    train_sets = torch.tensor([[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 0, 1]]).bool()
    pool = build_label_pool(train_sets, seen, emb, seen, unseen, 4, torch.Generator().manual_seed(0))
    assert pool.shape == (3, 4)  # unseen / mixed shares are skipped, not failed
    rows = lambda m: sorted(map(tuple, m[:, [0, 1, 3]].int().tolist()))  # noqa: E731 (the pool is shuffled)
    assert rows(pool) == rows(train_sets)
    assert pool[:, 2].sum() == 1  # label 2 (no training image) joins as many sets as the least-covered label


def test_mixed_sets_keep_a_uniformly_random_half_at_any_pool_size():
    # two sets far down a huge pool (ids 10M and 10M + 1, 3 and 2 labels): the float32 key of the old code
    # (ids * 2.0 + u, u in [0, 1)) could not order them at all past 2**23 sets
    rows = torch.tensor([10_000_000] * 3 + [10_000_001] * 2)
    firsts = []
    for seed in range(300):
        rank = random_ranks(rows, torch.Generator().manual_seed(seed))
        assert sorted(rank[:3].tolist()) == [0, 1, 2] and sorted(rank[3:].tolist()) == [0, 1]
        firsts.append(int(rank[0]))
    counts = torch.bincount(torch.tensor(firsts), minlength=3)
    assert (counts > 60).all(), counts  # each of 3 ranks ~100 times


def test_label_pool_covers_every_unseen_label():
    emb = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.95, 0.05], [-1.0, -1.0]])  # unseen 3 is nobody's nearest
    seen, unseen = torch.tensor([0, 1]), torch.tensor([2, 3])
    train_sets = torch.tensor([[1, 0], [0, 1], [1, 1]]).bool()
    pool = build_label_pool(train_sets, seen, emb, seen, unseen, 4, torch.Generator().manual_seed(0), 1.0, 1.0, 0.0)
    cover = pool.sum(0)
    assert cover[3] >= 1 and cover[3] == cover[2]  # as often as the least-covered covered unseen label
    assert torch.equal(column_counts(pool, rows=2), cover)  # the chunked count the pool uses


# ------------------------------------------------------------------------------ manual steps
def _bound(method_name, tmp_path, cache_dir):
    m, _ = bound_method([f"method={method_name}", "data=synthetic_ml"], tmp_path, cache_dir)
    batch = next(iter(MultiLabelBatchLoader(m.data, m.batch_plan, 0, lambda: 0, 0, torch.device("cpu"))))
    return m, batch


NETS = ("generator", "discriminator", "encoder", "seen_classifier")


@pytest.mark.parametrize("method", ["alf_clswgan", "clf_vaegan"])
def test_ml_critic_step_changes_only_critic(method, tmp_path, cache_dir):
    m, batch = _bound(method, tmp_path, cache_dir)
    x, cond = batch["x"][0], m.condition(batch["target"][0])
    nets = {n: getattr(m, n) for n in NETS if getattr(m, n, None) is not None}
    before = {n: snapshot(v) for n, v in nets.items()}
    with torch.no_grad():
        fake = m.generate(m.sample_noise(len(cond)), cond)
    m.manual_step("d", lambda: m.critic_loss(x, cond, fake)[0])
    assert changed(before["discriminator"], m.discriminator)
    for n, net in nets.items():
        if n != "discriminator":
            assert not changed(before[n], net), f"{n} changed during the critic step"


def test_ml_clswgan_generator_step_keeps_critic_and_frozen_classifier(tmp_path, cache_dir):
    m, batch = _bound("flf_clswgan", tmp_path, cache_dir)
    y = batch["target"][-1]
    before = {n: snapshot(getattr(m, n)) for n in ("generator", "discriminator", "seen_classifier")}
    m.manual_step("g", lambda: m.generator_loss(m.condition(y), y)[0])
    assert changed(before["generator"], m.generator)
    assert not changed(before["discriminator"], m.discriminator)
    assert not changed(before["seen_classifier"], m.seen_classifier)
    assert bool(m.classifier_ready) and m.seen_classifier.out_features == len(m.data.train_cols)


def test_ml_vaegan_encoder_generator_step_keeps_critic(tmp_path, cache_dir):
    m, batch = _bound("alf_vaegan", tmp_path, cache_dir)
    x, cond = batch["x"][-1], m.condition(batch["target"][-1])
    before = {n: snapshot(getattr(m, n)) for n in ("encoder", "generator", "discriminator")}
    m.manual_step(("e", "g"), lambda: m.vae_gan_loss(x, cond)[0])
    assert changed(before["encoder"], m.encoder) and changed(before["generator"], m.generator)
    assert not changed(before["discriminator"], m.discriminator)


def _capture_classifier_inputs(monkeypatch) -> dict:
    """Replace the final classifier's fit by one that records its inputs (``x``, ``targets``)."""
    import zsl_lightning.methods.generative as ml

    seen = {}

    def capture(x, targets, num_classes, **kw):
        seen["x"], seen["targets"] = x, targets
        return torch.nn.Linear(x.shape[1], num_classes)

    monkeypatch.setattr(ml, "fit_softmax_classifier", capture)
    return seen


def test_gzsl_classifier_data_follows_the_config(tmp_path, cache_dir, monkeypatch):
    m, _ = _bound("alf_vaegan", tmp_path, cache_dir)
    xr, yr = m.real_training_features(m.data)
    assert len(xr) == len(m.data.train) and yr.shape[1] == len(m.data.train_cols)
    m.gzsl_real_rows = 50
    xr, _ = m.real_training_features(m.data)
    assert len(xr) == 50

    # what the GZSL classifier is trained on: capture its inputs instead of fitting it
    seen = _capture_classifier_inputs(monkeypatch)
    cols, real = m.data.eval_gzsl_cols, m.data.train.x.flatten(1)
    n_syn = len(m.label_pool(m.data)) * m.syn_per_set
    m.gzsl_real, m.gzsl_real_rows = True, None
    m.fit_scorer(m.data, "gzsl", cols)
    assert len(seen["x"]) == n_syn + len(real)
    assert torch.equal(seen["x"][n_syn:], real)  # the paper: real seen features join the synthetic ones
    at = [cols.tolist().index(c) for c in m.data.train_cols.tolist()]
    assert torch.equal(seen["targets"][n_syn:, at], (m.data.train.y > 0).float())
    m.gzsl_real = False  # the released code: synthetic features only
    m.fit_scorer(m.data, "gzsl", cols)
    assert len(seen["x"]) == n_syn
    assert torch.cdist(seen["x"], real).min() > 1e-4  # no real training feature slipped in


def test_zsl_classifier_label_sets_follow_method_zsl_sets(tmp_path, cache_dir, monkeypatch):
    m, _ = _bound("flf_clswgan", tmp_path, cache_dir)
    seen = _capture_classifier_inputs(monkeypatch)
    pool, cols = m.label_pool(m.data), m.data.eval_zsl_cols
    has_seen = pool[:, m.data.seen_classes.cpu()].any(1)
    assert has_seen.any() and (~has_seen).any()
    m.fit_scorer(m.data, "zsl", cols)  # default: the released code's unseen-only sets
    assert len(seen["x"]) == int((~has_seen).sum()) * m.syn_per_set
    assert (seen["targets"].sum(1) > 0).all()  # every row has an unseen label
    m.zsl_sets = "all"
    m.fit_scorer(m.data, "zsl", cols)
    assert len(seen["x"]) == len(pool) * m.syn_per_set
    assert torch.equal(seen["targets"], pool[:, cols.cpu()].float().repeat_interleave(m.syn_per_set, 0))
    assert (seen["targets"].sum(1) == 0).sum() == int((has_seen & ~pool[:, cols.cpu()].any(1)).sum())
    cfg = shrink(compose_cfg(["method=flf_clswgan", "data=synthetic_ml", "method.zsl_sets=some"],
                             tmp_path / "bad", cache_dir))
    with open_dict(cfg):
        cfg.data_info = build_datamodule(cfg).info
    with pytest.raises(ConfigError, match="zsl_sets"):
        build_method(cfg)


def test_synthesize_sets_fills_one_tensor_like_the_plain_loop(tmp_path, cache_dir):
    m, _ = _bound("flf_clswgan", tmp_path, cache_dir)
    m.syn_per_set = 2
    sets = torch.zeros(5, len(m.data.class_embeddings), dtype=torch.bool)
    sets[torch.arange(5), torch.tensor([0, 3, 7, 1, 2])] = True
    sets[1, 4] = True
    torch.manual_seed(0)
    got = m.synthesize_sets(sets, chunk=3)
    torch.manual_seed(0)
    m.eval()
    y = sets.float().repeat_interleave(2, dim=0)  # set i -> rows 2i, 2i + 1
    want = torch.cat([m.generator(m.sample_noise(len(y[i : i + 3])), y[i : i + 3], m.data.class_embeddings)
                      for i in range(0, len(y), 3)])
    assert got.shape == (10, m.data.feature_dim) and torch.allclose(got, want.detach())


def test_gzsl_synthetic_and_real_rows_are_written_into_one_tensor(tmp_path, cache_dir, monkeypatch):
    """Synthesis in blocks straight into the classifier's tensor gives the very numbers of synthesising all sets
    at once and concatenating the real rows (blocks of 4 sets here, so several blocks run)."""
    import zsl_lightning.methods.generative as gen

    m, _ = _bound("flf_clswgan", tmp_path, cache_dir)
    monkeypatch.setitem(gen.SYNTHESIS_CHUNK, "multi", 4)
    m.syn_per_set, m.gzsl_real, m.gzsl_real_rows = 2, True, None
    pool, cols = m.label_pool(m.data), m.data.eval_gzsl_cols
    assert len(pool) > 3 * 4
    torch.manual_seed(0)
    x, targets = m.label_set_training_data(m.data, "gzsl", cols)
    torch.manual_seed(0)
    syn = m.synthesize_sets(pool, chunk=4)
    xr, yr = m.real_training_features(m.data)
    assert torch.equal(x, torch.cat([syn, xr.flatten(1)]))
    at = [cols.tolist().index(c) for c in m.data.train_cols.tolist()]
    want = torch.zeros(len(x), len(cols))
    want[: len(syn)] = pool[:, cols.cpu()].float().repeat_interleave(2, 0)
    want[len(syn) :, at] = (yr > 0).float()
    assert torch.equal(targets, want)


# ------------------------------------------------------------------------------ mixed precision
def _vae_terms_under_autocast(device: str, dtype: torch.dtype, monkeypatch):
    """The f-VAEGAN terms on a half-precision graph: BCE must run with autocast off, in float32."""
    import zsl_lightning.losses.vae as vae

    seen = {}
    real_bce = vae.F.binary_cross_entropy

    def spy(inp, target, *a, **kw):
        seen["autocast"] = torch.is_autocast_enabled(device)
        seen["dtypes"] = (inp.dtype, target.dtype)
        return real_bce(inp, target, *a, **kw)

    monkeypatch.setattr(vae.F, "binary_cross_entropy", spy)
    torch.manual_seed(0)
    dec, enc = torch.nn.Linear(6, 32).to(device), torch.nn.Linear(32, 8).to(device)
    x = torch.rand(16, 32, device=device)
    with torch.autocast(device, dtype=dtype):
        recon = torch.sigmoid(dec(torch.randn(16, 6, device=device)))
        mu, logvar = enc(x).chunk(2, dim=1)
        assert recon.dtype == dtype and mu.dtype == dtype  # the graph really is half precision
        bce, kl = vae.vae_bce_loss(recon, x), vae.gaussian_kl(mu, logvar)
    (bce + kl).backward()
    assert seen == {"autocast": False, "dtypes": (torch.float32, torch.float32)}
    assert bce.dtype == kl.dtype == torch.float32
    assert torch.isfinite(bce) and torch.isfinite(kl) and torch.isfinite(dec.weight.grad).all()
    exact = torch.nn.functional.binary_cross_entropy(recon.detach().float(), x, reduction="sum") / len(x)
    assert torch.allclose(bce.detach(), exact, rtol=1e-5)


def test_vae_losses_are_fp32_under_cpu_bf16_autocast(monkeypatch):
    _vae_terms_under_autocast("cpu", torch.bfloat16, monkeypatch)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (autocast refuses F.binary_cross_entropy there)")
def test_vae_losses_run_under_cuda_fp16_autocast(monkeypatch):
    _vae_terms_under_autocast("cuda", torch.float16, monkeypatch)


# ------------------------------------------------------------------------------ standard mode (Table 4)
def test_table4_standard_mode_tiny_fit(tmp_path, cache_dir):
    """experiment=mlzsl_table4 on tiny files in the Table-4 layout: the GAN trains on the concept labels,
    the classifier on real + synthetic features over them; results, selection and checkpoints speak of one
    task, ``std``, selected on the validation split."""
    import json

    from tests.data.test_multilabel_data import standard_layout
    from zsl_lightning.eval.multilabel_metrics import mean_average_precision
    from zsl_lightning.pipeline import run

    data = tmp_path / "data"
    _, _, y_te = standard_layout(data)
    out = tmp_path / "run"
    cfg = shrink(compose_cfg(["experiment=mlzsl_table4", f"paths.data_dir={data}", "eval.select=val",
                              "method.epochs=1", "eval.every=1", "eval.classifier.lr=1e-2",
                              "eval.classifier.batch_size=32", "eval.classifier.epochs=10"], out, cache_dir))
    assert cfg.data.mode == "standard" and cfg.method.generator._target_.endswith("CLF")
    res = run(cfg)
    assert res["selection"]["monitors"] == {"std": "std_mAP"} and set(res["selection"]["epochs"]) == {"std"}
    assert set(res["headline"]) == {"std_mAP", "std_mAP_labels", *(f"std_{m}@{k}" for m in ("P", "R", "F1")
                                                                   for k in (3, 5))}
    assert "held out" in res["selection"]["description"] and "pseudo-unseen" not in res["selection"]["description"]
    assert set(res["validation"]) == set(res["headline"])
    assert all(k.startswith("std_") for h in res["history"]["dev"] + res["history"]["test"] for k in h if k != "epoch")
    assert res["headline"]["std_mAP_labels"] == 5
    assert (out / "checkpoints" / "best_std.ckpt").is_file()
    assert json.loads((out / "results.json").read_text())["headline"] == res["headline"]
    # real features carry the (linear) concept labels: far above random scores on the same test images
    y = torch.as_tensor(y_te[(y_te > 0).any(1)])
    chance, _ = mean_average_precision(torch.rand(y.shape, generator=torch.Generator().manual_seed(0)), y)
    assert res["headline"]["std_mAP"] > 100 * chance + 20, (res["headline"], chance)
