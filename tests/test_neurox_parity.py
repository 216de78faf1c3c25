"""Parity with NeuroX 1.0.9 itself (skipped when neurox is not importable).

The benchmark environment has it (``pip install --no-deps neurox==1.0.9``); the dev
environment does not, and the hand-checked examples in test_lca.py cover the same rules.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch

lp = pytest.importorskip("neurox.interpretation.linear_probe")

from pipeline.probing.lca import neuron_ordering, top_neurons  # noqa: E402
from pipeline.probing.solver import elastic_net_grad  # noqa: E402


def neurox_probe(W: np.ndarray) -> torch.nn.Module:
    """A NeuroX LinearProbe holding ``W: [neurons, classes]`` (NeuroX stores [classes, neurons])."""
    probe = lp.LinearProbe(W.shape[0], W.shape[1])
    with torch.no_grad():
        probe.linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
    return probe


@pytest.mark.parametrize("shape, ties", [((5, 2), False), ((60, 3), True), ((384, 44), False), ((700, 9), True),
                                         ((2688, 42), False)])
def test_ordering_equals_neurox(shape: tuple[int, int], ties: bool) -> None:
    rng = np.random.default_rng(shape[0])
    W = rng.standard_normal(shape).astype(np.float32)
    if ties:  # many exactly equal |w| (and zeros): tie handling must match too
        W = (np.round(W * 2) / 2).astype(np.float32)
    class_to_idx = {f"c{i}": i for i in range(shape[1])}
    with contextlib.redirect_stderr(io.StringIO()):
        nx_order, nx_cutoffs = lp.get_neuron_ordering(neurox_probe(W), class_to_idx)
    order, cutoffs = neuron_ordering(W)
    assert order.tolist() == [int(i) for i in nx_order]
    assert cutoffs == nx_cutoffs
    for pct in (0.0, 0.25, 0.5, 0.9, 1.0):
        nx_union, nx_per = lp.get_top_neurons(neurox_probe(W), pct, class_to_idx)
        union, per = top_neurons(W, pct, class_names=list(class_to_idx))
        assert union.tolist() == [int(i) for i in nx_union]
        for name in class_to_idx:
            np.testing.assert_array_equal(per[name], nx_per[name])


def test_bottom_neurons_equal_neurox() -> None:
    W = np.random.default_rng(3).standard_normal((120, 5)).astype(np.float32)
    class_to_idx = {f"c{i}": i for i in range(5)}
    with contextlib.redirect_stderr(io.StringIO()):
        nx_bottom = lp.get_fixed_number_of_bottom_neurons(neurox_probe(W), 17, class_to_idx)
    assert neuron_ordering(W)[0][-17:].tolist() == [int(i) for i in nx_bottom]


def test_penalty_and_loss_equal_neurox() -> None:
    """Our gradient == autograd of NeuroX's own loss (its l1_penalty / l2_penalty functions)."""
    torch.manual_seed(0)
    n, D, C = 32, 6, 4
    x, y = torch.randn(1, n, D), torch.randint(0, C, (n,))
    W, b = torch.randn(1, D, C), torch.randn(1, 1, C)
    W.grad, b.grad = torch.zeros_like(W), torch.zeros_like(b)
    elastic_net_grad(x, y, W, b, 0.01, 0.02)
    probe = lp.LinearProbe(D, C)
    with torch.no_grad():
        probe.linear.weight.copy_(W[0].T)
        probe.linear.bias.copy_(b[0, 0])
    weights = list(probe.parameters())[0]
    loss = torch.nn.CrossEntropyLoss()(probe(x[0]), y) + 0.01 * lp.l1_penalty(weights) + 0.02 * lp.l2_penalty(weights)
    loss.backward()
    torch.testing.assert_close(W.grad[0], probe.linear.weight.grad.T, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(b.grad[0, 0], probe.linear.bias.grad, rtol=1e-4, atol=1e-6)
