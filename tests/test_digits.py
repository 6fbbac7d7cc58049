"""End-to-end check on scikit-learn's digits: float MLP and circulant conversion.

The accuracy floors are conservative; measured figures: ``circa bench-accuracy``.
"""

import pytest
import torch

from circa.compiler import digits
from circa.compiler.circulant import CirculantLinear


@pytest.fixture(scope="module")
def data():
    return digits.load()


@pytest.fixture(scope="module")
def mlp():
    return digits.train_mlp()


def test_load_split(data):
    x_tr, y_tr, x_te, y_te = data
    assert x_tr.shape == (1347, 64) and x_te.shape == (450, 64)
    assert x_tr.dtype == torch.float32 and y_tr.dtype == torch.int64
    assert 0.0 <= float(x_tr.min()) and float(x_tr.max()) == 1.0
    assert torch.bincount(y_te).min() >= 43  # stratified: 43-46 per class
    assert torch.equal(digits.load()[0], x_tr)  # deterministic


def test_mlp_accuracy(mlp, data):
    _, _, x_te, y_te = data
    assert digits.accuracy(mlp, x_te, y_te) >= 0.95


def test_train_is_deterministic(mlp):
    again = digits.train_mlp()
    for a, b in zip(mlp.parameters(), again.parameters()):
        assert torch.equal(a, b)


def test_circulant_k8_recovers(mlp, data):
    x_tr, y_tr, x_te, y_te = data
    base = digits.accuracy(mlp, x_te, y_te)
    circ = digits.to_circulant(mlp, 8, x=x_tr, y=y_tr)
    assert sum(isinstance(m, CirculantLinear) for m in circ.modules()) == 2
    assert not any(isinstance(m, torch.nn.Linear) for m in circ.modules())
    assert all(isinstance(m, torch.nn.Linear) for m in (mlp[0], mlp[2]))  # original untouched
    acc = digits.accuracy(circ, x_te, y_te)
    assert acc >= base - 0.04, (acc, base)
    # The materialised dense model computes the same function.
    dense = torch.nn.Sequential(circ[0].to_linear(), torch.nn.ReLU(), circ[2].to_linear())
    torch.testing.assert_close(dense(x_te), circ(x_te), atol=1e-4, rtol=1e-4)
