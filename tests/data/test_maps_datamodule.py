"""Feature-map datamodules (data=synthetic_maps | nuswide_maps): packing, sources, splits, streaming, errors."""

import numpy as np
import pytest
import torch

from tests.maps_helpers import C28, C, S, U, write_biam, write_cached, write_images
from zsl_lightning.data.maps_benchmark import MapsDataModule
from zsl_lightning.data.maps_store import pack_maps, packed_dim, unpack_maps
from zsl_lightning.errors import ConfigError, DataError, MissingFilesError


def test_pack_unpack_round_trip_and_order():
    layout = ((28, 2), (14, 3), (7, 3))
    maps = {s: torch.randn(4, c, s, s) for s, c in layout}
    x = pack_maps(maps, layout)
    assert x.shape == (4, 2 * 784 + 3 * 196 + 3 * 49) == (4, packed_dim(layout))
    # scale after scale, each map flattened C-major: the first value of the 14 x 14 block is maps[14][:, 0, 0, 0]
    assert torch.equal(x[:, 2 * 784], maps[14][:, 0, 0, 0])
    back = unpack_maps(x, layout)
    assert all(torch.equal(back[s], maps[s]) for s, _ in layout)
    with pytest.raises(DataError, match="needs"):
        unpack_maps(x[:, :-1], layout)


def _dm(root, **kw):
    return MapsDataModule(root=str(root), name="NUS-TINY", max_positives=None, val_image_fraction=0.25,
                          val_label_fraction=0.34, **kw)


def test_cached_layout_info_and_splits(tmp_path):
    dm = _dm(write_cached(tmp_path), source="cached")
    info = dm.info
    assert info["maps_layout"] == [[28, C28], [14, C], [7, C]] and info["single_scale"] is False
    assert info["feature_shape"] == [C28 * 784 + C * 245] and info["embedding_dim"] == 300
    test = dm.split("test")
    assert len(test.train) == 20 and len(test.eval_zsl) == len(test.eval_gzsl) == 10
    assert test.eval_zsl_cols.tolist() == list(range(S, S + U))
    x, y = next(test.eval_zsl.chunks(64))
    assert y.shape == (10, U) and x.shape == (10, *info["feature_shape"])
    dev = dm.split("dev")  # the last 25% of the training rows validate; 2 of 6 seen labels are pseudo-unseen
    assert len(dev.eval_zsl) == 5 and len(dev.unseen_classes) == 2 and len(dev.train_cols) == S - 2
    assert set(dev.unseen_classes.tolist()) <= set(range(S))


def test_dev_never_reads_test_rows(tmp_path):
    dm = _dm(write_cached(tmp_path, nan_test_row=3), source="cached")
    dev = dm.split("dev")
    for store in (dev.train, dev.eval_zsl, dev.eval_gzsl):
        list(store.chunks(8))
    with pytest.raises(DataError, match="NaN/inf"):
        dm.split("test")


def test_streamed_equals_in_memory(tmp_path):
    root = write_cached(tmp_path)
    mem, stream = _dm(root, in_memory=True).split("dev"), _dm(root, in_memory=False, chunk_rows=4).split("dev")
    assert mem.train.in_memory and not stream.train.in_memory
    xs, ys = zip(*stream.train_chunks(), strict=True)
    assert torch.equal(torch.cat(xs), mem.train.x) and torch.equal(torch.cat(ys), mem.train.y)


def test_biam_is_single_scale_and_says_why(tmp_path):
    dm = _dm(write_biam(tmp_path), source="biam")
    info = dm.info
    assert info["single_scale"] is True and "conv5_4" in info["single_scale_reason"]
    assert info["maps_layout"] == [[14, 512]] and dm.notes["single_scale"] is True
    x, y = next(dm.split("test").eval_gzsl.chunks(4))
    assert x.shape == (4, 512 * 196) and y.shape == (4, S + U)


def test_images_layout_gives_uint8_images(tmp_path):
    dm = _dm(write_images(tmp_path), source="images", image_size=32, backbone={"weights": None})
    assert dm.info["input"] == "images" and dm.info["feature_shape"] == [3, 32, 32]
    x, y = next(dm.split("test").train_chunks())
    assert x.dtype == torch.uint8 and x.shape == (10, 3, 32, 32) and y.shape == (10, S)


def test_pooled_view_is_mean_and_max_per_channel(tmp_path):
    root = write_cached(tmp_path)
    maps, pooled = _dm(root).split("test"), _dm(root, view="pooled").split("test")
    m = unpack_maps(maps.train.x[:2], ((28, C28), (14, C), (7, C)))
    assert pooled.feature_shape == (2 * (C28 + 2 * C),)
    assert torch.allclose(pooled.train.x[:2, :C28], m[28].mean(dim=(2, 3)))
    assert torch.allclose(pooled.train.x[:2, C28 + 2 * C : 2 * C28 + 2 * C], m[28].amax(dim=(2, 3)))


def test_missing_and_bad_inputs(tmp_path):
    with pytest.raises(MissingFilesError, match="maps/train.h5"):
        _dm(tmp_path / "nothing").load()
    root = write_images(tmp_path / "img")
    with pytest.raises(MissingFilesError, match="vgg19-dcbb9e9d.pth"):
        _dm(root, source="images", backbone={"weights": str(tmp_path / "vgg19-dcbb9e9d.pth")}).load()
    with pytest.raises(ConfigError, match="data.source"):
        _dm(root, source="webdataset")
    bad = write_cached(tmp_path / "bad")
    (bad / "maps" / "test.h5").write_bytes(b"not hdf5")
    with pytest.raises(DataError, match="test.h5"):
        _dm(bad).load()


def test_synthetic_maps_config(tmp_path, cache_dir):
    from tests.helpers import compose_cfg
    from zsl_lightning.pipeline import build_datamodule

    cfg = compose_cfg(["method=gbe", "data=synthetic_maps"], tmp_path, cache_dir)
    info = build_datamodule(cfg).info
    assert info["maps_layout"] == [[28, 16], [14, 16], [7, 16]] and info["num_seen"] == 150
    assert np.prod(info["feature_shape"]) == 16 * (784 + 196 + 49)
