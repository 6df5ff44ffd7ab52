"""VS-Boost's losses and small networks on hand-computed values (Eqs. 3-7 of Li et al. 2023)."""

import math

import pytest
import torch

from zsl_lightning.errors import ConfigError
from zsl_lightning.losses.metric import (
    relational_bce,
    relational_metric_loss,
    semantic_infonce,
    similarity_target,
)
from zsl_lightning.nn.vs_boost import FeatureEncoder, RelationNet


# ----------------------------------------------------------------------------- Eq. (3)
def test_infonce_matches_hand_computation():
    # ã = [1, 0]; candidates a = [1,0] (positive), [0,1], [1,1]; τ = 0.5 → logits [2, 0, 2]
    # L = −log(e² / (e² + e⁰ + e²)) = log(2e² + 1) − 2
    emb = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    loss = semantic_infonce(torch.tensor([[1.0, 0.0]]), torch.tensor([0]), emb, temperature=0.5)
    assert loss.item() == pytest.approx(math.log(2 * math.e**2 + 1) - 2, abs=1e-6)  # 0.758624
    assert loss.item() == pytest.approx(0.758624, abs=1e-5)


def test_infonce_averages_over_the_batch_and_uses_the_target_row():
    emb = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    pred = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    # row 2: ã = [0, 2], τ = 1, target = class 1 → logits [0, 2, 2]: −log(e²/(1 + 2e²))
    second = math.log(1 + 2 * math.e**2) - 2
    first = math.log(2 * math.e + 1) - 1  # τ = 1 for row 1: logits [1, 0, 1]
    loss = semantic_infonce(pred, torch.tensor([0, 1]), emb, temperature=1.0)
    assert loss.item() == pytest.approx((first + second) / 2, abs=1e-6)


def test_infonce_cosine_variant():
    # normalised: ã = [0.6, 0.8]; candidates [1, 0] and [0, 1] (from [0, 2]); τ = 1, target 1
    # L = −log(e^0.8 / (e^0.6 + e^0.8)) = log(1 + e^(−0.2))
    loss = semantic_infonce(torch.tensor([[3.0, 4.0]]), torch.tensor([1]), torch.tensor([[1.0, 0.0], [0.0, 2.0]]),
                            temperature=1.0, normalize=True)
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-0.2)), abs=1e-6)  # 0.598139


def test_infonce_temperature_must_be_positive():
    with pytest.raises(ConfigError, match="temperature"):
        semantic_infonce(torch.ones(1, 2), torch.tensor([0]), torch.ones(2, 2), temperature=0.0)


# ----------------------------------------------------------------------------- ζ of Eq. (5)
def test_similarity_target_clamps_or_rescales_cosine():
    a = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [2.0, 2.0]])
    b = torch.tensor([[1.0, 1.0], [-3.0, 0.0], [0.0, 5.0], [1.0, 1.0]])
    # cosines: 1/√2, −1, 0, 1
    clamp = similarity_target(a, b, "clamp")
    rescale = similarity_target(a, b, "rescale")
    assert clamp.tolist() == pytest.approx([1 / math.sqrt(2), 0.0, 0.0, 1.0], abs=1e-6)
    assert rescale.tolist() == pytest.approx([(1 + 1 / math.sqrt(2)) / 2, 0.0, 0.5, 1.0], abs=1e-6)
    assert float(clamp.max()) <= 1.0 and float(rescale.max()) <= 1.0
    with pytest.raises(ConfigError, match="similarity_target"):
        similarity_target(a, b, "abs")


# ----------------------------------------------------------------------------- Eqs. (4)-(7)
def test_relation_net_is_sigmoid_of_weighted_elementwise_product():
    f = RelationNet(2)
    with torch.no_grad():
        f.fc.weight.copy_(torch.tensor([[1.0, 2.0]]))
        f.fc.bias.fill_(0.5)
    hi, hj = torch.tensor([[1.0, 1.0]]), torch.tensor([[2.0, 3.0]])
    # w·(h_i ∘ h_j) + b = 1·2 + 2·3 + 0.5 = 8.5
    assert f(hi, hj).item() == pytest.approx(8.5)
    assert f.probability(hi, hj).item() == pytest.approx(1 / (1 + math.exp(-8.5)))
    assert f(hj, hi).item() == pytest.approx(8.5)  # symmetric in its two arguments


def test_relational_bce_matches_eq5():
    xi = torch.tensor([0.5, 0.75, 0.75])
    zeta = torch.tensor([0.3, 1.0, 0.2])
    loss = relational_bce(torch.logit(xi), zeta)
    expected = [
        math.log(2),  # −(0.3 log .5 + 0.7 log .5)
        -math.log(0.75),  # 0.287682
        -(0.2 * math.log(0.75) + 0.8 * math.log(0.25)),  # 1.166572
    ]
    assert loss.tolist() == pytest.approx(expected, abs=1e-6)


def test_relational_bce_is_stable_when_the_sigmoid_saturates():
    loss = relational_bce(torch.tensor([60.0, -60.0]), torch.tensor([0.0, 1.0]))
    assert torch.isfinite(loss).all()
    assert loss.tolist() == pytest.approx([60.0, 60.0], rel=1e-4)


def test_relational_bce_gradient_is_eq6_and_minimum_is_at_zeta():
    for xi0, zeta in ((0.75, 0.2), (0.1, 0.9), (0.4, 0.4)):
        xi = torch.tensor(xi0, dtype=torch.float64, requires_grad=True)
        relational_bce(torch.log(xi / (1 - xi)), torch.tensor(zeta, dtype=torch.float64)).backward()
        assert xi.grad.item() == pytest.approx((xi0 - zeta) / (xi0 * (1 - xi0)), rel=1e-9)
    grid = torch.linspace(0.01, 0.99, 99, dtype=torch.float64)
    losses = relational_bce(torch.logit(grid), torch.full_like(grid, 0.37))
    assert grid[losses.argmin()].item() == pytest.approx(0.37, abs=0.011)


def test_relational_metric_loss_is_mean_of_positive_plus_negative_terms():
    # anchor 1: F(h,h+) = 0.75 with ζ = 1, F(h,h−) = 0.5 with ζ = 0.3
    # anchor 2: F(h,h+) = 0.5 with ζ = 1, F(h,h−) = 0.75 with ζ = 0.2
    lp = torch.logit(torch.tensor([0.75, 0.5]))
    ln = torch.logit(torch.tensor([0.5, 0.75]))
    loss = relational_metric_loss(lp, torch.tensor([1.0, 1.0]), ln, torch.tensor([0.3, 0.2]))
    a1 = -math.log(0.75) + math.log(2)
    a2 = math.log(2) + 1.166572
    assert loss.item() == pytest.approx((a1 + a2) / 2, abs=1e-5)


# ----------------------------------------------------------------------------- E
def test_feature_encoder_is_one_linear_layer_with_leaky_relu():
    e = FeatureEncoder(2)
    assert e.out_dim == 2 and sum(p.numel() for p in e.parameters()) == 2 * 2 + 2
    with torch.no_grad():
        e.linear.weight.copy_(torch.eye(2))
        e.linear.bias.zero_()
    assert e(torch.tensor([[-1.0, 2.0]]))[0].tolist() == pytest.approx([-0.2, 2.0])
    assert FeatureEncoder(6, out_dim=3)(torch.zeros(4, 6)).shape == (4, 3)
