"""Tests for circa.compiler.admm: projections, ADMM training, distillation.

The accuracy floors below are conservative; the measured figures come from
``circa bench-accuracy`` (docs/benchmarks.md).
"""

import copy

import numpy as np
import pytest
import torch

from circa.compiler import digits
from circa.compiler.admm import admm, circulant_projection, linear_projections, sparse_projection
from circa.compiler.circulant import expand
from circa.compiler.sparse import SparseLinear, n_keep, prune_blocks


def assert_exactly_circulant(w, k):
    """Every k x k block of ``w`` (out, in) is exactly circulant (bitwise, padding aside)."""
    w = w.detach().numpy()
    out_f, in_f = w.shape
    assert in_f % k == 0  # so the first row of every block lies inside the matrix
    p, q = -(-out_f // k), in_f // k
    # First row of block (i, j) is C[0, c] = w[i, j, (-c) mod k].
    first_rows = w[::k].reshape(p, q, k)
    cols = first_rows[..., (-np.arange(k)) % k]
    np.testing.assert_array_equal(expand(cols, out_f, in_f), w)


def assert_exactly_block_sparse(w, r, c, density):
    """At most n_keep(density) r x c blocks of ``w`` are nonzero; all others exactly zero."""
    w = w.detach().numpy()
    p, q = -(-w.shape[0] // r), -(-w.shape[1] // c)
    padded = np.pad(w, ((0, p * r - w.shape[0]), (0, q * c - w.shape[1])))
    nonzero = np.abs(padded.reshape(p, r, q, c)).sum(axis=(1, 3)) > 0
    assert nonzero.sum() <= n_keep(density, p * q)
    assert not (nonzero & ~prune_blocks(w, r, c, density)).any()


@pytest.fixture(scope="module")
def data():
    return digits.load()


@pytest.fixture(scope="module")
def mlp():
    return digits.train_mlp()


def to_sparse(model, r=4, c=4, density=0.25):
    """Copy of a Linear-ReLU-Linear model with block-pruned SparseLinear layers."""
    new = copy.deepcopy(model)
    for i in (0, 2):
        new[i] = SparseLinear.from_linear(new[i], r, c, density)
    return new


def test_projections_are_nearest_points():
    rng = np.random.default_rng(0)
    w = torch.as_tensor(rng.normal(size=(20, 24)))
    pc = circulant_projection(8)(w)
    assert_exactly_circulant(pc, 8)
    torch.testing.assert_close(circulant_projection(8)(pc), pc)  # idempotent
    # Orthogonal projection onto a subspace: the residual is orthogonal to it.
    other = expand(torch.as_tensor(rng.normal(size=(3, 3, 8))), 20, 24)
    assert abs(float(((w - pc) * other).sum())) < 1e-9
    assert abs(float(((w - pc) * pc).sum())) < 1e-9

    ps = sparse_projection(4, 4, 0.25)(w)
    assert_exactly_block_sparse(ps, 4, 4, 0.25)
    torch.testing.assert_close(sparse_projection(4, 4, 0.25)(ps), ps)
    kept = ps != 0
    torch.testing.assert_close(ps[kept], w[kept])  # kept blocks unchanged
    # No other choice of 8 blocks (n_keep(0.25, 5*6)) keeps more energy.
    energy = np.sort((w.numpy().reshape(5, 4, 6, 4) ** 2).sum(axis=(1, 3)).ravel())
    assert float((ps ** 2).sum()) == pytest.approx(float(energy[-8:].sum()))


def test_linear_projections_by_name(mlp):
    assert sorted(linear_projections(mlp, "circulant:8")) == ["0.weight", "2.weight"]
    assert linear_projections(mlp, "dense") == {}
    assert list(linear_projections(torch.nn.Linear(4, 4), "sparse:2x2:0.5")) == ["weight"]
    with pytest.raises(ValueError, match="cannot parse"):
        linear_projections(mlp, "circulant8")


@pytest.mark.parametrize("kwargs, match", [
    (dict(projections={"1.weight": lambda w: w}), r"unknown parameters \['1.weight'\]"),
    (dict(projections={"0.weight": 3}), "not callable"),
    (dict(projections={"0.weight": lambda w: w[:2]}), "must return a tensor of shape"),
    (dict(rounds=0), "rounds=0"),
    (dict(epochs_per_round=1.5), "epochs_per_round=1.5"),
    (dict(rho=0.0), "rho > 0"),
    (dict(rho_growth=0.5), "rho_growth >= 1"),
    (dict(y=torch.zeros(3, dtype=torch.long)), "x has 4 samples but y has 3"),
])
def test_admm_rejects_bad_arguments(kwargs, match):
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    args = dict(projections={"0.weight": circulant_projection(4)}, y=None)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        admm(model, args.pop("projections"), torch.zeros(4, 8), **args)


def test_admm_generic_lstm_regression_is_deterministic():
    """Any module, any parameter by name, any loss: an LSTM's input weights per gate."""
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(8, 8, batch_first=True)
    x = torch.randn(64, 5, 8)
    y = torch.randn(64, 5, 8)

    def per_gate(w):  # (4*H, in): project each gate's (H, in) matrix separately
        return torch.cat([circulant_projection(4)(g) for g in w.chunk(4)])

    class Out(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = lstm

        def forward(self, inp):
            return self.lstm(inp)[0]

    model = Out()
    before = copy.deepcopy(model.state_dict())
    kw = dict(loss_fn=torch.nn.functional.mse_loss, rounds=3, epochs_per_round=1, batch_size=16)
    log = []
    a = admm(model, {"lstm.weight_ih_l0": per_gate}, x, y, progress=log.append, **kw)
    b = admm(model, {"lstm.weight_ih_l0": per_gate}, x, y, **kw)
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name])  # input model untouched
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)  # deterministic
    for gate in a.lstm.weight_ih_l0.chunk(4):
        assert_exactly_circulant(gate, 4)
    assert not torch.equal(a.lstm.weight_hh_l0, lstm.weight_hh_l0)  # unconstrained ones train too
    assert [e["round"] for e in log] == [0, 1, 2] and log[-1]["rounds"] == 3
    assert log[1]["rho"] == pytest.approx(1.5e-2) and all(e["residual"] >= 0 for e in log)


def test_admm_sparse_beats_one_shot_on_digits(mlp, data):
    x_tr, y_tr, x_te, y_te = data
    one_shot = to_sparse(mlp)
    one_shot_bare = digits.accuracy(one_shot, x_te, y_te)
    digits.fit(one_shot, x_tr, y_tr, 20, lr=1e-2)
    one_shot_rec = digits.accuracy(one_shot, x_te, y_te)

    log = []
    model = admm(mlp, linear_projections(mlp, "sparse:4x4:0.25"), x_tr, y_tr, progress=log.append)
    for layer in (model[0], model[2]):
        assert_exactly_block_sparse(layer.weight, 4, 4, 0.25)
    assert log[-1]["residual"] < 0.05  # W and Z agreed before the hard projection
    bare = digits.accuracy(model, x_te, y_te)
    retrained = to_sparse(model)  # keeps exactly ADMM's blocks (the nonzero ones)
    for layer, admm_layer in ((retrained[0], model[0]), (retrained[2], model[2])):
        torch.testing.assert_close(layer.masked_weight(), admm_layer.weight, rtol=0, atol=0)
    digits.fit(retrained, x_tr, y_tr, 20, lr=1e-2)
    rec = digits.accuracy(retrained, x_te, y_te)
    assert bare >= 0.90 and bare > one_shot_bare + 0.3, (bare, one_shot_bare)
    assert rec >= 0.93 and one_shot_rec >= 0.92, (rec, one_shot_rec)


def test_admm_circulant_beats_one_shot_on_digits(mlp, data):
    x_tr, y_tr, x_te, y_te = data
    one_shot_bare = digits.accuracy(digits.to_circulant(mlp, 8, epochs=0), x_te, y_te)  # 0.260
    one_shot_rec = digits.accuracy(digits.to_circulant(mlp, 8, x=x_tr, y=y_tr), x_te, y_te)  # 0.971

    model = admm(mlp, linear_projections(mlp, "circulant:8"), x_tr, y_tr)
    for layer in (model[0], model[2]):
        assert_exactly_circulant(layer.weight, 8)
    bare = digits.accuracy(model, x_te, y_te)
    recovered = digits.to_circulant(model, 8, x=x_tr, y=y_tr)
    rec = digits.accuracy(recovered, x_te, y_te)
    assert bare >= 0.75 and bare > one_shot_bare + 0.5, (bare, one_shot_bare)
    assert rec >= 0.93 and one_shot_rec >= 0.93, (rec, one_shot_rec)
    # Recovery starts from ADMM's weights: the projection in to_circulant is exact.
    start = digits.to_circulant(model, 8, epochs=0)
    for i in (0, 2):
        torch.testing.assert_close(start[i].weight(), model[i].weight, rtol=0, atol=1e-6)


@pytest.mark.parametrize("scheme, floor_bare", [("sparse:4x4:0.25", 0.90), ("circulant:8", 0.30)])
def test_admm_distillation_without_labels(mlp, data, scheme, floor_bare):
    """Only calibration inputs: match the float model's logits (MSE)."""
    x_tr, y_tr, x_te, y_te = data
    model = admm(mlp, linear_projections(mlp, scheme), x_tr)
    if scheme.startswith("sparse"):
        for layer in (model[0], model[2]):
            assert_exactly_block_sparse(layer.weight, 4, 4, 0.25)
    else:
        for layer in (model[0], model[2]):
            assert_exactly_circulant(layer.weight, 8)
    bare = digits.accuracy(model, x_te, y_te)
    assert bare >= floor_bare, bare
    # Distillation toward the float model tracks its predictions.
    with torch.no_grad():
        agree = (model(x_te).argmax(-1) == mlp(x_te).argmax(-1)).float().mean().item()
    assert agree >= floor_bare, agree
