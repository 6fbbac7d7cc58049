"""Tests for circa.compiler.sparse: block pruning, BSR storage, SparseLinear, schemes.

The digits check at the end asserts a conservative floor; measured figures come from
``circa bench-accuracy`` (docs/benchmarks.md).
"""

import math
from fractions import Fraction

import numpy as np
import pytest
import scipy.sparse
import torch

from circa.compiler import digits
from circa.compiler.sparse import (
    BSR, Scheme, SparseLinear, n_keep, parse_scheme, prune_blocks, to_bsr)


def scipy_dense(bsr):
    """Padded dense matrix of ``bsr`` built by scipy from the raw arrays."""
    ref = scipy.sparse.bsr_matrix((bsr.blocks, bsr.col_index, bsr.row_ptr), shape=bsr.padded_shape)
    assert ref.blocksize == (bsr.r, bsr.c)
    return ref.toarray()


@pytest.mark.parametrize("shape, r, c, density", [
    ((16, 16), 4, 4, 0.25),
    ((10, 13), 4, 3, 0.4),   # padding in both dimensions
    ((7, 5), 8, 8, 1.0),     # a single padded block
    ((33, 20), 2, 5, 0.1),
    ((12, 12), 1, 1, 0.5),   # element-wise pruning
])
def test_bsr_matches_scipy_and_density_bookkeeping(shape, r, c, density):
    rng = np.random.default_rng(sum(shape) + r + c)
    w = rng.normal(size=shape)
    mask = prune_blocks(w, r, c, density)
    p, q = math.ceil(shape[0] / r), math.ceil(shape[1] / c)
    assert mask.shape == (p, q) and mask.dtype == bool
    # ceil of the decimal density times the block count (0.4 * 15 is 6.000000000000001
    # in binary floating point; n_keep still keeps 6 blocks).
    assert mask.sum() == math.ceil(Fraction(str(density)) * p * q) == n_keep(density, p * q)

    bsr = to_bsr(w, r, c, mask)
    assert bsr.nnz == mask.sum() and bsr.blocks.shape == (bsr.nnz, r, c)
    assert bsr.row_ptr.shape == (p + 1,) and bsr.padded_shape == (p * r, q * c)
    assert bsr.density == pytest.approx(mask.sum() / (p * q))
    np.testing.assert_array_equal(bsr.mask(), mask)

    # scipy reads the same arrays as the same (padded) matrix.
    padded = scipy_dense(bsr)
    np.testing.assert_array_equal(padded[: shape[0], : shape[1]], bsr.dense())
    assert not padded[shape[0]:].any() and not padded[:, shape[1]:].any()
    np.testing.assert_array_equal(bsr.to_scipy().toarray(), padded)
    # scipy's own conversion of the masked dense matrix gives identical arrays
    # (it keeps a block iff it is nonzero; all kept blocks are nonzero here).
    elem = np.kron(mask, np.ones((r, c)))[: shape[0], : shape[1]].astype(bool)
    masked = np.where(elem, w, 0.0)
    np.testing.assert_array_equal(bsr.dense(), masked)
    theirs = scipy.sparse.bsr_matrix(np.pad(masked, ((0, p * r - shape[0]), (0, q * c - shape[1]))),
                                     blocksize=(r, c))
    theirs.sort_indices()
    np.testing.assert_array_equal(theirs.indptr, bsr.row_ptr)
    np.testing.assert_array_equal(theirs.indices, bsr.col_index)
    np.testing.assert_array_equal(theirs.data, bsr.blocks)

    x = rng.normal(size=shape[1])
    np.testing.assert_allclose(bsr.matvec(x), masked @ x, rtol=1e-12, atol=1e-12)
    xb = rng.normal(size=(3, 2, shape[1]))
    np.testing.assert_allclose(bsr.matvec(xb), xb @ masked.T, rtol=1e-12, atol=1e-12)


def test_pruning_keeps_largest_blocks_and_breaks_ties_row_major():
    w = np.zeros((4, 6))
    w[2:, 4:] = 5.0  # block (1, 2): largest
    w[:2, 2:4] = -3.0  # block (0, 1): second
    mask = prune_blocks(w, 2, 2, 2 / 6)
    np.testing.assert_array_equal(mask, [[False, True, False], [False, False, True]])
    # All norms equal: the first blocks in row-major order win, every time.
    ones = np.ones((4, 6))
    expect = np.array([[True, True, True], [True, False, False]])
    np.testing.assert_array_equal(prune_blocks(ones, 2, 2, 0.6), expect)  # ceil(3.6) = 4
    np.testing.assert_array_equal(prune_blocks(torch.ones(4, 6), 2, 2, 0.6), expect)
    # Global budget: a block row may lose all its blocks (documented, not forced).
    w = np.ones((4, 4))
    w[:2] = 10.0
    np.testing.assert_array_equal(prune_blocks(w, 2, 2, 0.5), [[True, True], [False, False]])
    bsr = to_bsr(w, 2, 2, prune_blocks(w, 2, 2, 0.5))
    assert bsr.row_ptr.tolist() == [0, 2, 2]
    np.testing.assert_array_equal(bsr.matvec(np.ones(4))[2:], 0.0)


def test_n_keep_rounding():
    assert n_keep(0.07, 100) == 7  # 0.07 * 100 == 7.000000000000001 in floating point
    assert n_keep(0.25, 64) == 16 and n_keep(0.26, 64) == 17
    assert n_keep(1e-6, 10) == 1 and n_keep(1.0, 10) == 10


@pytest.mark.parametrize("call, match", [
    (lambda: prune_blocks(np.ones((4, 4)), 0, 2, 0.5), "block rows r=0"),
    (lambda: prune_blocks(np.ones((4, 4)), 2, 2.5, 0.5), "block columns c=2.5"),
    (lambda: prune_blocks(np.ones((4, 4)), 2, 2, 0.0), "0 < density <= 1"),
    (lambda: prune_blocks(np.ones((4, 4)), 2, 2, 1.5), "0 < density <= 1"),
    (lambda: prune_blocks(np.ones((4, 4)), 2, 2, float("nan")), "0 < density <= 1"),
    (lambda: prune_blocks(np.ones(4), 2, 2, 0.5), "2-D"),
    (lambda: prune_blocks(np.full((4, 4), np.inf), 2, 2, 0.5), "NaN or infinite"),
    (lambda: to_bsr(np.ones((4, 4)), 2, 2, np.ones((3, 2), bool)), r"\(2, 2\) block grid"),
    (lambda: BSR(np.ones((1, 2, 2)), [0], [0, 1, 0], (4, 4), 2, 2), "row_ptr"),
    (lambda: BSR(np.ones((2, 2, 2)), [1, 0], [0, 2, 2], (4, 4), 2, 2), "ascending"),
    (lambda: BSR(np.ones((1, 2, 2)), [2], [0, 1, 1], (4, 4), 2, 2), "col_index"),
    (lambda: to_bsr(np.ones((4, 4)), 2, 2, np.ones((2, 2), bool)).matvec(np.ones(3)), r"\(\.\.\., 4\)"),
])
def test_rejects_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_sparse_linear_is_masked_dense_and_keeps_structure():
    torch.manual_seed(0)
    lin = torch.nn.Linear(13, 10)
    layer = SparseLinear.from_linear(lin, 4, 3, 0.4)
    mask = prune_blocks(lin.weight, 4, 3, 0.4)
    torch.testing.assert_close(layer.mask, torch.as_tensor(mask))
    elem = torch.as_tensor(np.kron(mask, np.ones((4, 3)))[:10, :13], dtype=torch.float32)
    x = torch.randn(5, 13)
    torch.testing.assert_close(layer(x), x @ (lin.weight * elem).T + lin.bias)
    dense = layer.to_linear()
    assert isinstance(dense, torch.nn.Linear)
    torch.testing.assert_close(dense(x), layer(x))
    bsr = layer.bsr()
    np.testing.assert_array_equal(bsr.dense(), (lin.weight * elem).detach().numpy())
    np.testing.assert_allclose(bsr.matvec(x.numpy()) + lin.bias.detach().numpy(),
                               layer(x).detach().numpy(), rtol=1e-5, atol=1e-6)
    # Training never revives pruned blocks: their gradient is zero.
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    layer(x).square().sum().backward()
    assert not layer.weight.grad[elem == 0].any()
    opt.step()
    assert not layer.masked_weight()[elem == 0].any()
    assert layer.state_dict()["mask"].dtype == torch.bool  # the mask is saved with the model


@pytest.mark.parametrize("text, scheme", [
    ("dense", Scheme("dense")),
    (" Dense ", Scheme("dense")),
    ("circulant:4", Scheme("circulant", k=4)),
    ("circulant:64", Scheme("circulant", k=64)),
    ("sparse:4x4:0.25", Scheme("sparse", r=4, c=4, density=0.25)),
    ("sparse:1X16:1", Scheme("sparse", r=1, c=16, density=1.0)),
    ("sparse:8x2:.5", Scheme("sparse", r=8, c=2, density=0.5)),
    ("sparse:2x2:1e-1", Scheme("sparse", r=2, c=2, density=0.1)),
])
def test_parse_scheme_accepts(text, scheme):
    parsed = parse_scheme(text)
    assert parsed == scheme
    assert parse_scheme(str(parsed)) == parsed  # str() is the canonical form


@pytest.mark.parametrize("text, match", [
    ("circulant:12", "K=12 is not supported"),
    ("circulant", "cannot parse"),
    ("circulant:8:1", "cannot parse"),
    ("circulant:-8", "cannot parse"),
    ("sparse:4x4", "cannot parse"),
    ("sparse:4:0.25", "cannot parse"),
    ("sparse:0x4:0.25", "must be positive"),
    ("sparse:4x4:0", "outside"),
    ("sparse:4x4:1.5", "outside"),
    ("sparse:4x4:nan", "cannot parse"),
    ("sparse:4x4:25%", "cannot parse"),
    ("lowrank:4", "cannot parse"),
    ("", "cannot parse"),
    (8, "must be a string"),
])
def test_parse_scheme_rejects(text, match):
    with pytest.raises(ValueError, match=match) as info:
        parse_scheme(text)
    assert "sparse:RxC:DENSITY" in str(info.value) and "circulant:K" in str(info.value)


def test_scheme_validates_fields():
    with pytest.raises(ValueError, match="needs exactly the fields"):
        Scheme("circulant")
    with pytest.raises(ValueError, match="needs exactly the fields"):
        Scheme("dense", k=8)
    with pytest.raises(ValueError, match="not supported"):
        Scheme("circulant", k=6)
    with pytest.raises(ValueError, match="unknown scheme kind"):
        Scheme("lowrank")


def test_digits_sparse_4x4_quarter_density_recovers():
    x_tr, y_tr, x_te, y_te = digits.load()
    mlp = digits.train_mlp()
    base = digits.accuracy(mlp, x_te, y_te)  # measured 0.969
    pruned = torch.nn.Sequential(SparseLinear.from_linear(mlp[0], 4, 4, 0.25), torch.nn.ReLU(),
                                 SparseLinear.from_linear(mlp[2], 4, 4, 0.25))
    assert [int(m.mask.sum()) for m in (pruned[0], pruned[2])] == [128, 24]  # 25 % of 16x32 / 3x32 blocks
    one_shot = digits.accuracy(pruned, x_te, y_te)  # measured 0.424
    digits.fit(pruned, x_tr, y_tr, 20, lr=1e-2)
    acc = digits.accuracy(pruned, x_te, y_te)  # measured 0.956
    assert acc >= 0.92 and acc >= base - 0.04 and acc > one_shot, (acc, base, one_shot)
    for layer, mask in ((pruned[0], pruned[0].mask), (pruned[2], pruned[2].mask)):
        assert layer.bsr().nnz == int(mask.sum())  # the structure survived retraining
        np.testing.assert_array_equal(layer.bsr().mask(), mask.numpy())
