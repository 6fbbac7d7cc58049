"""The quantized golden model against the float model it approximates (pyramid level 2)."""
import numpy as np
import pytest
import torch
from torch import nn

from circa.compiler import compress, frontend
from circa.compiler import quantize as Q
from circa.compiler.frontend import RNNClassifier


def models():
    torch.manual_seed(0)
    return {
        "mlp": nn.Sequential(nn.Linear(20, 40), nn.ReLU(), nn.Linear(40, 10)),
        "lstm_proj": nn.LSTM(8, 32, batch_first=True, proj_size=16),
        "lstm2": nn.LSTM(8, 20, num_layers=2),
        "gru2": nn.GRU(8, 24, num_layers=2, batch_first=True),
        "classifier": RNNClassifier(nn.GRU(8, 32, batch_first=True),
                                    nn.Sequential(nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 5))),
    }


def inputs(name, n=48):
    g = torch.Generator().manual_seed(1)
    if name == "mlp":
        return torch.randn(n, 20, generator=g).numpy()
    x = torch.randn(n, 6, 8, generator=g) * 0.7
    return (x.transpose(0, 1) if name == "lstm2" else x).numpy()


@pytest.mark.parametrize("scheme", ["dense", "circulant:8", "sparse:4x4:0.5"])
@pytest.mark.parametrize("name", list(models()))
def test_golden_close_to_float(name, scheme):
    model, x = models()[name], inputs(name)
    schemes = compress.plan(model, scheme, 8)
    model = compress.compress(model, schemes, x, train=False)
    network = frontend.import_model(model)
    kinds = {n: ("circulant",) if s.kind == "circulant" else ("sparse", (4, 4))
             for n, s in schemes.items()}
    xb = x if network.batch_first else x.swapaxes(0, 1)      # the IR is batch-first
    qnet = Q.quantize(Q.build(network, kinds, Q.Formats(k=8)), xb)
    reference = frontend.run_float(network, xb)
    y = qnet.dequantize(qnet.golden(xb))
    assert y.shape == reference.shape
    # relative to the output's range, or to 1 for hidden states (tanh-bounded): the PWL
    # sigmoid and tanh (max error 1.5e-3 and 3e-3) dominate, accumulated over time steps
    error = np.abs(y - reference).max() / max(np.abs(reference).max(), 1.0)
    assert error < 0.02, error
    # the golden model is deterministic integer arithmetic: same words twice
    assert torch.equal(qnet.golden(xb), qnet.golden(xb))


def test_formats_follow_calibration():
    assert Q.frac_for(1.0, 16) == 14          # 1.0 needs one integer bit
    assert Q.frac_for(0.99, 16) == 15
    assert Q.frac_for(1e-9, 16) == 15         # capped: [-1, 1)
    assert Q.frac_for(100.0, 16) == 8
