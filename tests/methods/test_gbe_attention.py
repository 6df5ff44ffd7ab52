"""callbacks=gbe_attention (Liu et al. 2023 Fig. 7): the LID hook leaves GBE's output unchanged and the callback
writes a PNG grid and its JSON note from the selected epoch."""

import json
from types import SimpleNamespace

import torch

from tests.helpers import bound_method, compose_cfg

SMALL = ["method=gbe", "data=synthetic_maps", "data.generator.num_train=240", "data.generator.num_test=80",
         "debug=fast", "method.model.n_groups=3"]


def _trainer(tmp_path, epoch):  # what the callback reads of a Trainer; current_epoch is 0-based during an epoch
    return SimpleNamespace(current_epoch=epoch, is_global_zero=True, default_root_dir=str(tmp_path), loggers=[])


def test_hook_records_attention_without_changing_output(tmp_path, cache_dir):
    m, _ = bound_method(SMALL, tmp_path, cache_dir, split="test", width=None)
    m.eval()
    x = m.data.eval_zsl.x[:3]
    lid = m.model.lid
    with torch.no_grad():
        plain = m(x)
        lid.record_attention = True
        hooked = m(x)
    attn = lid.last_attention
    h, w = (s // lid.patch_size for s in m.features(x)[14].shape[-2:])  # the patch grid
    assert torch.equal(plain, hooked)
    assert attn.shape == (3, 3, h * w, h * w)  # (B, n, T, T)
    assert torch.allclose(attn.sum(-1), torch.ones(3, 3, h * w), atol=1e-5)  # softmax over keys (Eq. 5)
    assert not torch.allclose(attn, torch.full_like(attn, 1.0 / (h * w)))  # not trivially uniform


def test_callback_writes_png_and_note_at_selected_epoch(tmp_path, cache_dir):
    from zsl_lightning.callbacks_plots import GBEAttentionMaps

    m, _ = bound_method(SMALL, tmp_path, cache_dir, split="test", width=None)
    m.train()
    m.context.selected_epochs = {"zsl": 2}
    png = tmp_path / "plots" / "gbe_attention_test.png"
    cb = GBEAttentionMaps(images=2, labels=3, pool=16)
    cb.on_train_epoch_end(_trainer(tmp_path, 0), m)
    assert not png.exists()
    cb.on_train_epoch_end(_trainer(tmp_path, 1), m)  # end of epoch 2, the one selected for ZSL
    assert png.is_file() and png.stat().st_size > 1000
    note = json.loads(png.with_suffix(".json").read_text())
    assert note["epoch"] == 2 and note["weights"] == "epoch selected for zsl"
    assert len(note["rows"]) == 2 and len(note["labels"]) == 2 and len(note["labels"][0]) == 3
    unseen = set(m.data.eval_zsl_cols.tolist())
    assert all(c in unseen for row in note["labels"] for c in row)
    assert all(0 <= g < 3 for row in note["groups"] for g in row)
    assert m.training and not m.model.lid.record_attention and m.model.lid.last_attention is None

    # the maps: attention received per position, a distribution over the grid
    x = m.data.eval_zsl.x[:2]
    h, w = (s // m.model.lid.patch_size for s in m.features(x)[14].shape[-2:])
    _, maps, _ = cb.attention(m, x)
    assert maps.shape == (2, 3, h, w) and torch.allclose(maps.sum(dim=(2, 3)), torch.ones(2, 3), atol=1e-5)


def test_run_with_callbacks_gbe_attention(tmp_path, cache_dir):
    """End to end: `callbacks=gbe_attention` is instantiated by the pipeline and draws in the test phase
    (without debug=fast, which turns callbacks off; sizes shrunk by hand)."""
    from zsl_lightning.pipeline import run

    out = tmp_path / "run"
    tiny = [o for o in SMALL if o != "debug=fast"] + [
        "method.model.fef_channels=16", "method.model.ffn_hidden=64", "method.model.patch_size=2",
        "callbacks=gbe_attention", "method.epochs=1", "eval.every=1",
        "trainer.enable_progress_bar=false", "print_config=false"]
    run(compose_cfg(tiny, out, cache_dir))
    pngs = list(out.rglob("gbe_attention_test.png"))
    assert len(pngs) == 1 and pngs[0].stat().st_size > 1000
    assert json.loads(pngs[0].with_suffix(".json").read_text())["epoch"] == 1
