"""ZeroNAS search space (Yan et al. 2021, Eqs. 2-3), derivation (Sec. 3.4), genotypes and derived networks."""

from __future__ import annotations

import math

import pytest
import torch
import yaml
from torch import nn

from zsl_lightning.errors import ConfigError, MissingFilesError
from zsl_lightning.nn.genotype import CANDIDATE_OPS, Genotype, draw_genotype
from zsl_lightning.nn.nas import MixedOp, SearchedNetwork, SearchNetwork, derive, make_op

Z, A, X = 3, 2, 7  # noise, attribute and feature dims of the tiny networks


def _softmax(values):
    e = [math.exp(v) for v in values]
    return [v / sum(e) for v in e]


def _search_g(**kw):
    torch.manual_seed(0)
    return SearchNetwork("generator", input_dims=(Z, A), widths=[4, 5], out_dim=X, **kw)


def test_ops_are_the_eight_candidates_in_paper_order():
    assert len(set(CANDIDATE_OPS)) == 8
    types = [type(m) for m in make_op("fc_relu_bn_drop", 4, 3)]
    assert types == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Dropout]
    lrelu = make_op("fc_lrelu", 4, 3)
    assert [type(m) for m in lrelu] == [nn.Linear, nn.LeakyReLU] and lrelu[1].negative_slope == 0.2
    assert make_op("fc_relu_drop", 4, 3)[-1].p == 0.5


def test_mixed_op_is_the_softmax_weighted_sum_of_its_ops():
    torch.manual_seed(0)
    op = MixedOp(4, 3).eval()
    for m in op.modules():  # non-trivial BN statistics, so BN ops differ from the plain ones
        if isinstance(m, nn.BatchNorm1d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    alpha = [1.0, 0.0, -1.0, 2.0, 0.5, 0.0, 0.3, -2.0]
    x = torch.randn(5, 4)
    w = _softmax(alpha)
    expected = sum(w[k] * op.ops[k](x) for k in range(8))
    torch.testing.assert_close(op(x, torch.tensor(alpha)), expected)
    # one dominant logit selects that op, and the first op is FC + ReLU computed by hand
    one_hot = torch.full((8,), -1e4)
    one_hot[0] = 0.0
    lin = op.ops[0][0]
    torch.testing.assert_close(op(x, one_hot), torch.relu(x @ lin.weight.T + lin.bias))


def test_node_is_the_beta_weighted_sum_of_its_edges():
    net = _search_g().eval()
    z, a = torch.randn(6, Z), torch.randn(6, A)
    states = [a, z, torch.cat([a, z], 1)]
    states.append(net.node_forward(0, states))
    beta = [0.5, -1.0, 2.0, 1.0]
    with torch.no_grad():
        net.betas[1].copy_(torch.tensor(beta))
    w = _softmax(beta)
    edges = [net.edges[1][i](states[i], net.alphas[1][i]) for i in range(4)]
    torch.testing.assert_close(net.node_forward(1, states), sum(w[i] * edges[i] for i in range(4)))
    # forward chains the nodes: the output is the last node over all five earlier states
    states.append(net.node_forward(1, states))
    torch.testing.assert_close(net(z, a), net.node_forward(2, states))
    assert net(z, a).shape == (6, X) and net.forward_with_hidden(z, a)[1].shape == (6, 5)


def test_linear_output_node_of_the_critic_has_no_op_choice():
    torch.manual_seed(0)
    net = SearchNetwork("discriminator", input_dims=(X, A), widths=[4], out_dim=1).eval()
    assert len(net.alphas) == 1 and len(net.betas) == 2
    assert all(isinstance(e, nn.Linear) for e in net.edges[-1])
    assert net(torch.randn(5, X), torch.randn(5, A)).shape == (5, 1)
    released = SearchNetwork("discriminator", input_dims=(X, A), widths=[4], out_dim=1, output_node="ops")
    assert len(released.alphas) == 2 and isinstance(released.edges[-1][0], MixedOp)


def _set_arch(net):
    """Hand-set β and α of the 3-node generator: node 0 has 3 in-edges, node 1 four, the output five."""
    betas = [[0.1, 0.9, 0.5], [2.0, -1.0, 0.0, 3.0], [0.0, 0.2, 0.1, -0.5, 0.3]]
    argmax = {(0, 1): 4, (0, 2): 3, (1, 0): 7, (1, 3): 1, (2, 1): 0, (2, 4): 6}
    with torch.no_grad():
        for j, b in enumerate(betas):
            net.betas[j].copy_(torch.tensor(b))
            net.alphas[j].zero_()
        for (j, i), k in argmax.items():
            net.alphas[j][i, k] = 1.0
    return net


def test_derive_keeps_top2_edges_and_argmax_ops():
    g = derive(_set_arch(_search_g()))
    assert g.nodes == [[(1, "fc_lrelu"), (2, "fc_relu_bn_drop")],
                       [(0, "fc_lrelu_bn_drop"), (3, "fc_relu_bn")],
                       [(1, "fc_relu"), (4, "fc_lrelu_drop")]]
    assert (g.kind, g.input_dims, g.widths, g.out_dim) == ("generator", (Z, A), (4, 5), X)
    # a node with fewer in-edges than top_k keeps them all; top_k=1 keeps the argmax of β
    net = _set_arch(_search_g())
    assert [src for src, _ in derive(net, top_k=4).nodes[0]] == [0, 1, 2]
    assert [[src for src, _ in node] for node in derive(net, top_k=1).nodes] == [[1], [3], [4]]


def test_derive_gives_fc_ops_on_a_linear_output_node():
    torch.manual_seed(0)
    net = SearchNetwork("discriminator", input_dims=(X, A), widths=[4], out_dim=1)
    with torch.no_grad():
        net.betas[1].copy_(torch.tensor([0.0, 1.0, -1.0, 2.0]))
    assert derive(net).nodes[1] == [(1, "fc"), (3, "fc")]


def test_genotype_yaml_round_trip(tmp_path):
    g = derive(_set_arch(_search_g(out_activation="sigmoid")))
    path = g.to_yaml(tmp_path / "genotype_g.yaml")
    assert yaml.safe_load(path.read_text())["nodes"][0] == [[1, "fc_lrelu"], [2, "fc_relu_bn_drop"]]
    back = Genotype.from_yaml(path)
    assert back == g and back.out_activation == "sigmoid"
    assert Genotype.from_yaml(back.to_yaml(tmp_path / "again.yaml")) == g


def test_genotype_rejects_an_edge_from_a_later_state(tmp_path):
    d = derive(_search_g()).to_dict()
    d["nodes"][0][0] = [3, "fc_relu"]
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(d))
    with pytest.raises(ConfigError, match="bad.yaml.*node 0"):
        Genotype.from_yaml(tmp_path / "bad.yaml")


def _tiny_genotype():
    # node 0 (4 units) is dead: the output reads node 1 and [a; z]
    return Genotype(kind="generator", input_dims=(Z, A), widths=(4, 5), out_dim=X, out_activation="none",
                    nodes=[[(0, "fc_relu"), (1, "fc_lrelu")], [(0, "fc_relu"), (1, "fc_lrelu")],
                           [(2, "fc_relu"), (4, "fc_lrelu")]])


def test_searched_network_sums_the_kept_ops_and_skips_dead_nodes(tmp_path):
    torch.manual_seed(0)
    net = SearchedNetwork(_tiny_genotype().to_yaml(tmp_path / "g.yaml")).eval()
    assert sorted(net.ops.keys()) == ["1_0", "1_1", "2_2", "2_4"]  # node 0 is not built
    z, a = torch.randn(5, Z), torch.randn(5, A)
    h = net.ops["1_0"](a) + net.ops["1_1"](z)
    expected = net.ops["2_2"](torch.cat([a, z], 1)) + net.ops["2_4"](h)
    out, hidden = net.forward_with_hidden(z, a)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(hidden, h)
    lin = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert all(m.bias.abs().sum() == 0 for m in lin) and 0.005 < lin[0].weight.std() < 0.05  # N(0, 0.02)


def test_searched_network_from_a_hydra_config_node(tmp_path):
    from omegaconf import OmegaConf

    from zsl_lightning.pipeline import instantiate_user_node as instantiate  # unwraps Hydra's wrapper

    path = _tiny_genotype().to_yaml(tmp_path / "genotype_g.yaml")
    cfg = OmegaConf.create({"_target_": "zsl_lightning.nn.nas.SearchedNetwork", "genotype": str(path),
                            "kind": "generator", "input_dims": [Z, A], "out_dim": X, "out_activation": "sigmoid"})
    g = instantiate(cfg)
    out = g(torch.randn(4, Z), torch.randn(4, A))
    assert out.shape == (4, X) and bool(((out > 0) & (out < 1)).all())
    with pytest.raises(ConfigError, match=r"input_dims \[3, 9\].*genotype_g.yaml"):
        instantiate(cfg, input_dims=[Z, 9])
    with pytest.raises(ConfigError, match="out_dim"):
        instantiate(cfg, out_dim=X + 1)
    with pytest.raises(ConfigError, match="discriminator"):
        instantiate(cfg, kind="discriminator")
    with pytest.raises(MissingFilesError, match="nope.yaml"):
        instantiate(cfg, genotype=str(tmp_path / "nope.yaml"))
    # a genotype given inline as a config node
    inline = instantiate(cfg, genotype=_tiny_genotype().to_dict())
    assert inline(torch.randn(4, Z), torch.randn(4, A)).shape == (4, X)


def test_arch_and_weight_parameters_partition_all_parameters():
    net = _search_g()
    arch, weights = net.arch_parameters(), net.weight_parameters()
    assert {id(p) for p in arch}.isdisjoint({id(p) for p in weights})
    assert len(arch) + len(weights) == len(list(net.parameters()))
    assert [tuple(p.shape) for p in arch] == [(3, 8), (4, 8), (5, 8), (3,), (4,), (5,)]
    assert all(p.abs().max() < 1e-2 for p in arch)  # 1e-3 · N(0, 1)


@pytest.mark.parametrize("stepped", ["arch", "weights"])
def test_each_optimiser_moves_only_its_own_parameters(stepped):
    net = _search_g()
    groups = {"arch": net.arch_parameters(), "weights": net.weight_parameters()}
    opt = torch.optim.Adam(groups[stepped], lr=1e-2)
    before = {k: [p.detach().clone() for p in ps] for k, ps in groups.items()}
    opt.zero_grad()
    net(torch.randn(8, Z), torch.randn(8, A)).pow(2).mean().backward()
    opt.step()
    for k, ps in groups.items():
        changed = [not torch.equal(p, q) for p, q in zip(ps, before[k], strict=True)]
        assert any(changed) if k == stepped else not any(changed)


def test_draw_genotype_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    torch.manual_seed(0)
    d = derive(SearchNetwork("discriminator", input_dims=(X, A), widths=[4, 3], out_dim=1))
    path = draw_genotype(_tiny_genotype(), d, tmp_path / "fig3.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
