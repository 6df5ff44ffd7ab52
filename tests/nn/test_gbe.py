"""GBE-MLZSL network (Liu et al. 2023, Sec. III) and its VGG19 multi-scale backbone."""

import pytest
import torch
import torch.nn.functional as F

from zsl_lightning.errors import ConfigError, DataError, MissingFilesError
from zsl_lightning.nn.backbone import IMAGENET_MEAN, IMAGENET_STD, VGG19MultiScale, preprocess
from zsl_lightning.nn.gbe import GBE, GEM, GLA, LID, MLFEF, VARIANTS, Grouping, group_max_scores

TINY = (4, 4, 8, 8, 8)
# torchvision's vgg19 `features` state dict: (name, shape) of every conv, in order
_CONVS = [(0, 64, 3), (2, 64, 64), (5, 128, 64), (7, 128, 128), (10, 256, 128), (12, 256, 256),
          (14, 256, 256), (16, 256, 256), (19, 512, 256), (21, 512, 512), (23, 512, 512), (25, 512, 512),
          (28, 512, 512), (30, 512, 512), (32, 512, 512), (34, 512, 512)]
TORCHVISION_VGG19 = [item for i, o, c in _CONVS
                     for item in ((f"features.{i}.weight", (o, c, 3, 3)), (f"features.{i}.bias", (o,)))]


def tiny_feats(b=2, c=8):
    g = torch.Generator().manual_seed(0)
    return {s: torch.randn(b, c, s, s, generator=g).relu() for s in (28, 14, 7)}


# ---------------------------------------------------------------- GBE modules

def test_group_max_scores_eq13():
    s = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])
    w = torch.tensor([[3.0, 1.0], [-1.0, -1.0]])
    # label 0: max(3, 2) = 3; label 1: max(-1, -2) = -1
    torch.testing.assert_close(group_max_scores(s, w), torch.tensor([[3.0, -1.0]]))


def test_module_shapes_at_paper_sizes():
    torch.manual_seed(0)
    feats = {28: torch.randn(1, 512, 28, 28), 14: torch.randn(1, 512, 14, 14), 7: torch.randn(1, 512, 7, 7)}
    with torch.no_grad():
        fg = MLFEF(512, 512, 512)(feats[28], feats[14], feats[7])
        assert fg.shape == (1, 1536, 14, 14)
        groups = Grouping(1536, 25, 300)(fg)
        assert groups.shape == (1, 25, 300, 14, 14)
        assert LID(25, 300)(groups).shape == (1, 25, 300)
        assert LID(25, 300, patch_size=2).patches(groups).shape == (1, 25, 49, 4 * 300)
        assert GEM(512, 300)(feats[7]).shape == (1, 300)
        assert GLA(25, 600, 300)(torch.randn(1, 25, 600)).shape == (1, 25, 300)
        model = GBE()
        assert model(feats).shape == (1, 25, 300)
        assert model.scores(model(feats), torch.randn(925, 300)).shape == (1, 925)


@pytest.mark.parametrize("fusion", ["mul", "add"])
def test_mlfef_eqs_1_to_3(fusion):
    f = tiny_feats()
    m = MLFEF(8, 8, 5, fusion=fusion)
    out = m(f[28], f[14], f[7])
    g14 = m.filter14(f[14])
    g28 = F.max_pool2d(m.filter28(f[28]), 2)
    g7 = F.interpolate(m.filter7(f[7]), size=(14, 14), mode="bilinear", align_corners=False)
    op = (lambda a, b: a * b) if fusion == "mul" else (lambda a, b: a + b)
    torch.testing.assert_close(out, torch.cat([g14, op(g14, g7), op(g14, g28)], dim=1))


def test_lid_groups_are_independent():
    torch.manual_seed(0)
    lid = LID(3, 6)
    x = torch.randn(2, 3, 6, 4, 4)
    y = lid(x)
    x2 = x.clone()
    x2[:, 1] += torch.randn(2, 6, 4, 4)
    y2 = lid(x2)
    torch.testing.assert_close(y2[:, [0, 2]], y[:, [0, 2]])
    assert not torch.allclose(y2[:, 1], y[:, 1])


def test_gem_has_one_shared_one_hidden_layer_mlp():
    gem = GEM(16, 6, reduction=4)
    assert [m.out_features for m in gem.mlp if isinstance(m, torch.nn.Linear)] == [4, 16]
    calls = []
    gem.mlp.register_forward_hook(lambda *a: calls.append(1))
    gem(torch.randn(2, 16, 7, 7))
    assert len(calls) == 2  # the average- and the max-pooled vector through the same MLP


def test_gla_eq12_hand_value():
    gla = GLA(2, 2, 2, affinity="fixed")
    with torch.no_grad():
        gla.w_s.weight.copy_(torch.eye(2))
    v = torch.tensor([[[1.0, -4.0], [3.0, 0.0]]])
    # A_s = [[.75, .25], [.25, .75]]; A V = [[1.5, -3], [2.5, -1]]; LeakyReLU(0.2)
    torch.testing.assert_close(gla(v), torch.tensor([[[1.5, -0.6], [2.5, -0.2]]]))
    assert "affinity" not in dict(gla.named_parameters())
    assert "affinity" in dict(GLA(2, 2, 2).named_parameters())


EXPECTED_MODULES = {
    "a": {"grouping"}, "b": {"mlfef", "grouping"}, "c": {"mlfef", "grouping", "lid"},
    "d": {"mlfef", "grouping", "gem"}, "e": {"mlfef", "grouping", "lid", "gla"},
    "f": {"mlfef", "grouping", "gem", "gla"}, "ours": {"mlfef", "grouping", "lid", "gem", "gla"},
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_table3_variant_runs_exactly_its_modules(name):
    model = GBE.variant(name, in_channels=8, word_dim=6, n_groups=3)
    ran = set()
    for child_name, child in model.named_children():
        child.register_forward_hook(lambda *a, n=child_name: ran.add(n))
    feats = {14: tiny_feats()[14]} if name == "a" else tiny_feats()
    assert model(feats).shape == (2, 3, 6)
    assert ran == EXPECTED_MODULES[name]
    built = {n for n in ("mlfef", "lid", "gem", "gla") if getattr(model, n) is not None} | {"grouping"}
    assert built == EXPECTED_MODULES[name]


def test_single_scale_gem_reads_pool5_of_the_14x14_map():
    f = tiny_feats()
    torch.manual_seed(0)
    single = GBE(in_channels=8, word_dim=6, n_groups=3, use_mlfef=False, single_scale=True)
    multi = GBE(in_channels=8, word_dim=6, n_groups=3, use_mlfef=False)
    multi.load_state_dict(single.state_dict())
    pooled = {14: f[14], 7: F.max_pool2d(f[14], 2)}
    torch.testing.assert_close(single({14: f[14], 7: f[7]}), multi(pooled))
    with pytest.raises(ConfigError, match="use_mlfef"):
        GBE(single_scale=True)
    with pytest.raises(ConfigError):
        GBE.variant("g")


def test_gbe_accepts_string_keys():
    f = tiny_feats()
    model = GBE(in_channels=8, word_dim=6, n_groups=3)
    torch.testing.assert_close(model({str(k): v for k, v in f.items()}), model(f))


# ---------------------------------------------------------------- backbone

def test_backbone_scales_for_224_input():
    bb = VGG19MultiScale(None, widths=TINY)
    out = bb(torch.randn(1, 3, 224, 224))
    assert {k: tuple(v.shape) for k, v in out.items()} == {28: (1, 8, 28, 28), 14: (1, 8, 14, 14), 7: (1, 8, 7, 7)}
    assert (out[14] >= 0).all() and (out[28] >= 0).all()  # after ReLU
    torch.testing.assert_close(out[7], F.max_pool2d(out[14], 2))  # pool5
    assert bb.out_channels == {28: 8, 14: 8, 7: 8}


def test_backbone_names_match_torchvision_without_allocating():
    with torch.device("meta"):
        bb = VGG19MultiScale(None)
    assert [(k, tuple(v.shape)) for k, v in bb.state_dict().items()] == TORCHVISION_VGG19


def test_full_size_torchvision_state_dict_loads():
    bb = VGG19MultiScale(None)
    state = {k: torch.randn(shape) for k, shape in TORCHVISION_VGG19}
    state["classifier.0.weight"] = torch.zeros(3, 2)  # ignored
    bb.load_vgg_state_dict(state)
    torch.testing.assert_close(bb.features[34].bias, state["features.34.bias"])
    torch.testing.assert_close(bb.features[0].weight, state["features.0.weight"])


def test_weights_file_round_trip_and_bad_files(tmp_path):
    src = VGG19MultiScale(None, widths=TINY)
    state = dict(src.state_dict(), **{"classifier.6.bias": torch.zeros(2)})
    path = tmp_path / "vgg.pth"
    torch.save(state, path)
    bb = VGG19MultiScale(str(path), widths=TINY)
    torch.testing.assert_close(bb.features[25].weight, src.features[25].weight)

    bad = dict(state)
    bad["features.1.weight"] = bad.pop("features.0.weight")
    bad["features.2.bias"] = torch.zeros(5)
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(DataError) as err:
        VGG19MultiScale(tmp_path / "bad.pth", widths=TINY)
    msg = str(err.value)
    assert "features.0.weight" in msg and "features.1.weight" in msg and "features.2.bias" in msg

    with pytest.raises(MissingFilesError) as err:
        VGG19MultiScale(tmp_path / "nope" / "vgg19-dcbb9e9d.pth", widths=TINY)
    msg = str(err.value)
    assert "vgg19-dcbb9e9d.pth" in msg and "data.backbone.weights=" in msg and "torchvision" in msg


@pytest.mark.parametrize("trainable", [False, True])
def test_frozen_backbone_does_not_change_and_trainable_does(trainable):
    torch.manual_seed(0)
    bb = VGG19MultiScale(None, widths=TINY, trainable=trainable)
    head = GBE(in_channels=8, word_dim=6, n_groups=3)
    bb.train()
    head.train()
    assert bb.training is trainable
    before = {k: v.clone() for k, v in bb.state_dict().items()}
    params = [p for p in list(bb.parameters()) + list(head.parameters()) if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.1)
    S = head(bb(torch.randn(2, 3, 64, 64)))
    S.square().mean().backward()
    opt.step()
    changed = [k for k, v in bb.state_dict().items() if not torch.equal(v, before[k])]
    if trainable:
        assert changed
    else:
        assert changed == [] and not any(p.requires_grad for p in bb.parameters())


def test_preprocess_uint8_and_float_agree():
    img = torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)
    want = ((1 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    torch.testing.assert_close(preprocess(img), want)
    torch.testing.assert_close(preprocess(img.float() / 255), want)
    with pytest.raises(ValueError):
        preprocess(torch.zeros(2, 2, 3))
