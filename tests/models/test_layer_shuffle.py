"""Stochastic layer-wise shuffle (Huang et al., ICML 2025) in Vim: schedule, draws, exact undo, eval, gradients."""
import pytest
import timm
import torch

import vssm  # noqa: F401
from vssm.layers.drop import layer_shuffle_permutation, layer_shuffle_rates


def _vim(rate, seed=0, **kw):
    torch.manual_seed(seed)
    return timm.create_model("test_vim", num_classes=5, shuffle_rate=rate, **kw)


def test_schedule_rises_linearly_with_depth():
    assert layer_shuffle_rates(0.5, 5) == pytest.approx([0.0, 0.125, 0.25, 0.375, 0.5])
    assert layer_shuffle_rates(0.1, 1) == [0.0]
    m = _vim(0.4)
    n = len(m.layers)
    assert m.shuffle_probs == pytest.approx([0.4 * i / (n - 1) for i in range(n)])
    for bad in (-0.1, 1.5, "0.5", True):
        with pytest.raises(ValueError, match=r"shuffle_rate: got .*allowed: a number in \[0, 1\]"):
            layer_shuffle_rates(bad, 4)


def test_draws_follow_the_probability_and_are_permutations():
    torch.manual_seed(0)
    n, p = 4000, 0.3
    draws = [layer_shuffle_permutation(p, 7, torch.device("cpu"), True) for _ in range(n)]
    hits = [d for d in draws if d is not None]
    assert abs(len(hits) / n - p) < 4 * (p * (1 - p) / n) ** 0.5
    assert all(sorted(d.tolist()) == list(range(7)) for d in hits)
    assert len({tuple(d.tolist()) for d in hits}) > 100  # fresh permutations, not one fixed shuffle
    assert all(layer_shuffle_permutation(1.0, 7, torch.device("cpu"), False) is None for _ in range(50))  # eval
    state = torch.get_rng_state()
    assert layer_shuffle_permutation(0.0, 7, torch.device("cpu"), True) is None
    assert torch.equal(state, torch.get_rng_state())  # nothing drawn where the probability is 0


def test_eval_output_is_unchanged_by_the_rate():
    x = torch.randn(2, 3, 32, 32)
    ref, shuf = _vim(0.0).eval(), _vim(1.0).eval()
    assert torch.equal(ref(x), shuf(x))


def _manual_forward(model, x, seed):
    """The model's forward in train mode, with each layer's draw re-made by hand from the same seed."""
    torch.manual_seed(seed)
    tokens, H, W = model._embed(x)
    for i, layer in enumerate(model.layers):
        order, inverse = model._token_orders(model.scans[i], H, W, x.device)
        p = model.shuffle_probs[i]
        perm = torch.randperm(tokens.shape[1]) if p > 0 and torch.rand(1).item() < p else None
        if perm is None:
            tokens = layer(tokens, order, inverse)
        else:
            out = layer(tokens[:, perm], order, inverse)
            undone = torch.empty_like(out)
            undone[:, perm] = out  # token perm[j] went to slot j: put it back
            tokens = undone
    return model.forward_head(model._final_norm(tokens))


def test_shuffled_layers_run_on_permuted_tokens_and_are_put_back_exactly():
    model = _vim(1.0).train()  # no dropout / drop path in test_vim: train mode differs only by the shuffle
    x = torch.randn(2, 3, 32, 32)
    for seed in (1, 2, 3):
        torch.manual_seed(seed)
        y = model(x)
        torch.testing.assert_close(y, _manual_forward(model, x, seed), rtol=0, atol=0)
    torch.manual_seed(1)
    y1 = model(x)
    with torch.no_grad():
        plain = _vim(0.0).train()
        plain.load_state_dict(model.state_dict())
        y0 = plain(x)
    assert (y1 - y0).abs().max() > 1e-4  # the shuffle changes what the scans see (the mixers are order-dependent)


def test_a_token_wise_layer_is_unchanged_by_the_shuffle():
    """With every mixer made token-wise (zero output projection), the model is permutation-equivariant, so putting
    the tokens back must give exactly the unshuffled result."""
    model = _vim(1.0).train()
    with torch.no_grad():
        for layer in model.layers:
            layer.mixer.out_proj.weight.zero_()
    plain = _vim(0.0).train()
    plain.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 32, 32)
    torch.manual_seed(4)
    torch.testing.assert_close(model(x), plain(x), rtol=1e-6, atol=1e-6)


def test_gradients_flow_through_shuffled_layers():
    model = _vim(1.0).train()
    x = torch.randn(2, 3, 32, 32, requires_grad=True)
    torch.manual_seed(5)
    model(x).square().sum().backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
    assert not missing, missing
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    # the same gradients as the hand-made forward with the same draws
    g_model = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    _manual_forward(model, x.detach(), 5).square().sum().backward()
    for a, b in zip(g_model, (p.grad for p in model.parameters())):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_only_plain_sequence_models_take_it():
    with pytest.raises(TypeError, match="shuffle_rate"):
        timm.create_model("test_vmamba", shuffle_rate=0.5)
