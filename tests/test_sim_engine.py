"""End to end under Verilator: the generated engine equals the golden model on every word.

Pyramid level 3. Each configuration is one Verilator build (cached per design), running
two layers whose sizes are not multiples of k, 100 random vectors each, with random gaps
on input valid and output ready; and the trained digits model's layers.
"""

import numpy as np
import pytest
import torch

from circa.compiler import frontend
from circa.compiler import quantize as Q
from circa.compiler.circulant import expand
from circa.config import EngineConfig
from circa.sim.engine_rtl import run_network

pytestmark = pytest.mark.slow


def random_mlp(rng, k):
    """37 -> 21 -> ... with dimensions that are not multiples of k, exactly block-circulant."""
    model = torch.nn.Sequential(torch.nn.Linear(50, 37), torch.nn.ReLU(), torch.nn.Linear(37, 21))
    with torch.no_grad():
        for layer in (model[0], model[2]):
            w = rng.normal(size=(-(-layer.out_features // k), -(-layer.in_features // k), k))
            layer.weight.copy_(torch.from_numpy(
                expand(w / np.sqrt(layer.in_features), layer.out_features, layer.in_features)))
            layer.bias.zero_()
    return model


def check_network(cfg, qnet, x, gap):
    net = run_network(cfg, qnet, x, gap=gap, seed=cfg.k + cfg.lanes)
    for n, mismatch in enumerate(net.mismatches):
        assert mismatch is None, f"layer {n}: {mismatch}"
    return net


@pytest.mark.parametrize("k, lanes", [(8, 1), (8, 3), (16, 2), (16, 4)])
def test_random_layers_bit_exact(k, lanes):
    rng = np.random.default_rng(k * 10 + lanes)
    network = frontend.import_model(random_mlp(rng, k))
    x = rng.uniform(-1, 1, size=(100, 50))
    qnet = Q.quantize(Q.build(network, {"0": ("circulant",), "2": ("circulant",)},
                              Q.Formats(k=k)), x)
    cfg = EngineConfig(k=k, lanes=lanes, max_q=8, weight_depth=64)
    net = check_network(cfg, qnet, x, gap=0.25)
    # the outputs are not trivially saturated or zero
    y = net.run.outputs[0]
    assert np.abs(y).max() > 2**13 and (np.abs(y) < 2**15 - 1).mean() > 0.99
