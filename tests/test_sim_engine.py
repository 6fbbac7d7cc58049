"""End to end under Verilator: the generated engine equals the golden model on every word.

Pyramid level 3. Each configuration is one Verilator build (cached per design), running
two layers whose sizes are not multiples of k, 100 random vectors each, with random gaps
on input valid and output ready; and the trained digits model's layers.
"""
import numpy as np
import pytest
import torch

from circa.compiler import digits, golden
from circa.compiler.circulant import CirculantLinear
from circa.hw.circulant import EngineConfig, weight_images
from circa.sim.engine_rtl import Job, first_mismatch, run_jobs

pytestmark = pytest.mark.slow


def random_layer(rng, out_features, in_features, k):
    layer = CirculantLinear(in_features, out_features, k)
    with torch.no_grad():
        layer.w.copy_(torch.from_numpy(rng.normal(size=layer.w.shape) / np.sqrt(in_features)))
        layer.bias.zero_()
    return layer


def check_network(cfg, layers, x, gap):
    """Run every layer's MVMs in the RTL on the golden inputs; compare every word."""
    fmt = golden.Formats(k=cfg.k, data_width=cfg.data_width, weight_width=cfg.weight_width,
                         fft_width=cfg.fft_width, ifft_width=cfg.ifft_width)
    trace, inputs = [], x
    for layer in layers:
        trace.append(golden.mvm(layer, inputs, fmt))
        inputs = golden.finish(layer, trace[-1], fmt)
    image, bases = weight_images(cfg, [layer.wf for layer in layers])
    layer_inputs = [x] + [golden.finish(l, t, fmt) for l, t in zip(layers, trace)][:-1]
    jobs = [Job(golden.to_blocks(xi, l.q, cfg.k).numpy(), l.p, base, l.shift, l.out_shift)
            for l, xi, base in zip(layers, layer_inputs, bases)]
    run = run_jobs(cfg, image, jobs, gap=gap, seed=cfg.k + cfg.lanes)
    for n, (expected, actual) in enumerate(zip(trace, run.outputs)):
        mismatch = first_mismatch(expected.numpy(), actual)
        assert mismatch is None, f"layer {n}: {mismatch}"
    return run


@pytest.mark.parametrize("k, lanes", [(8, 1), (8, 3), (16, 2), (16, 4)])
def test_random_layers_bit_exact(k, lanes):
    rng = np.random.default_rng(k * 10 + lanes)
    model = torch.nn.Sequential(random_layer(rng, 37, 50, k), torch.nn.ReLU(),
                                random_layer(rng, 21, 37, k))
    x = torch.from_numpy(rng.uniform(-1, 1, size=(100, 50)))
    fmt = golden.Formats(k=k)
    layers, x_frac = golden.quantize_mlp(model, x, fmt)
    cfg = EngineConfig(k=k, lanes=lanes, max_q=8, weight_depth=64)
    run = check_network(cfg, layers, golden.quantize_input(x, x_frac, fmt), gap=0.25)
    # the outputs are not trivially saturated or zero
    y = run.outputs[0]
    assert np.abs(y).max() > 2**13 and (np.abs(y) < 2**15 - 1).mean() > 0.99


def test_digits_model_bit_exact():
    x_train, y_train, x_test, y_test = digits.load()
    model = digits.to_circulant(digits.train_mlp(), 16, x=x_train, y=y_train)
    fmt = golden.Formats(k=16)
    layers, x_frac = golden.quantize_mlp(model, x_train, fmt)
    cfg = EngineConfig(k=16, lanes=4, max_q=8, weight_depth=64)
    x = golden.quantize_input(x_test, x_frac, fmt)
    run = check_network(cfg, layers, x, gap=0.0)
    # the RTL's logits classify like the golden model's, and well
    logits = golden.finish(layers[-1], torch.from_numpy(run.outputs[-1]), fmt)
    assert torch.equal(logits, golden.run(layers, x, fmt)[-1])
    assert (logits.argmax(1) == y_test).float().mean() > 0.9
