"""Tests for circa.compiler.circulant (fast, numpy/scipy/torch only)."""

import numpy as np
import pytest
import scipy.linalg
import torch

from circa.compiler.circulant import (
    ALLOWED_K, CirculantLinear, expand, from_halfcomplex, project, quantize,
    spectrum, to_halfcomplex)


def block_circulant_scipy(w):
    """Reference dense matrix from first columns w (p, q, k) via scipy."""
    return np.block([[scipy.linalg.circulant(w[i, j]) for j in range(w.shape[1])]
                     for i in range(w.shape[0])])


@pytest.mark.parametrize("k", ALLOWED_K)
def test_expand_matches_scipy_and_exact_blocks_project_to_themselves(k):
    w = np.random.default_rng(k).normal(size=(2, 3, k))
    dense = block_circulant_scipy(w)
    np.testing.assert_array_equal(expand(w, 2 * k, 3 * k), dense)
    np.testing.assert_allclose(project(dense, k), w, rtol=0, atol=1e-12)


def test_projection_is_idempotent_and_keeps_kind():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(21, 13))
    w = project(a, 8)
    assert w.shape == (3, 2, 8) and isinstance(w, np.ndarray)
    np.testing.assert_allclose(project(expand(w, 21, 13), 8), w, atol=1e-12)   # idempotent
    wt = project(torch.tensor(a, dtype=torch.float32), 8)
    assert torch.is_tensor(wt) and wt.dtype == torch.float32
    np.testing.assert_allclose(wt.numpy(), w, atol=1e-6)
    assert project(np.arange(16).reshape(4, 4), 4).dtype == np.float64


def test_projection_is_frobenius_nearest_least_squares():
    # Least squares over the (p*q*k)-dim block-circulant subspace, on the real entries
    # only: the padding is cropped away, so it must not pull the diagonals toward zero.
    rng = np.random.default_rng(2)
    k, out_f, in_f = 4, 7, 6
    a = rng.normal(size=(out_f, in_f))
    p, q = 2, 2
    basis = np.stack([block_circulant_scipy(e.reshape(p, q, k))[:out_f, :in_f].ravel()
                      for e in np.eye(p * q * k)], axis=1)
    coef = np.linalg.lstsq(basis, a.ravel(), rcond=None)[0]
    w = project(a, k)
    np.testing.assert_allclose(w.ravel(), coef, atol=1e-12)
    residual = a - expand(w, out_f, in_f)
    np.testing.assert_allclose(basis.T @ residual.ravel(), 0, atol=1e-12)


@pytest.mark.parametrize("out_f,in_f,k", [(10, 64, 8), (5, 3, 4), (33, 70, 16), (1, 1, 64)])
def test_expand_project_round_trip_with_padding(out_f, in_f, k):
    rng = np.random.default_rng(3)
    p, q = -(-out_f // k), -(-in_f // k)
    w = rng.normal(size=(p, q, k))
    full = expand(w, p * k, q * k)
    np.testing.assert_array_equal(full, block_circulant_scipy(w))
    cropped = expand(w, out_f, in_f)
    assert cropped.shape == (out_f, in_f)
    np.testing.assert_array_equal(cropped, full[:out_f, :in_f])
    np.testing.assert_allclose(project(full, k), w, atol=1e-12)
    # Cropping loses the diagonals with no entry inside the matrix; the others come back.
    inside = project(np.ones((out_f, in_f)), k) > 0
    np.testing.assert_allclose(project(cropped, k), np.where(inside, w, 0), atol=1e-12)
    # Torch path gives the same results and stays differentiable.
    wt = torch.tensor(w, requires_grad=True)
    et = expand(wt, out_f, in_f)
    np.testing.assert_array_equal(et.detach().numpy(), cropped)
    et.sum().backward()
    assert wt.grad.shape == w.shape


def test_expand_rejects_mismatched_shape():
    with pytest.raises(ValueError, match="does not match"):
        expand(np.zeros((2, 2, 4)), 9, 8)


@pytest.mark.parametrize("k", ALLOWED_K)
def test_halfcomplex_round_trip(k):
    x = np.random.default_rng(k).normal(size=(3, 2, k))
    spec = np.fft.rfft(x, axis=-1)
    hc = to_halfcomplex(spec)
    assert hc.shape == x.shape
    np.testing.assert_allclose(hc[..., : k // 2 + 1], spec.real)
    np.testing.assert_allclose(hc[..., k // 2 + 1:], spec.imag[..., k // 2 - 1:0:-1])
    np.testing.assert_allclose(from_halfcomplex(hc), spec, atol=1e-12)
    np.testing.assert_allclose(spectrum(x), hc)


def test_halfcomplex_layout_k4():
    # rfft([0,1,2,3]) = [6, -2+2j, -2]
    np.testing.assert_allclose(spectrum(np.arange(4.0)), [6, -2, -2, 2])


def test_circulant_product_is_spectral_product():
    k = 8
    rng = np.random.default_rng(4)
    w, x = rng.normal(size=k), rng.normal(size=k)
    y = scipy.linalg.circulant(w) @ x
    np.testing.assert_allclose(np.fft.irfft(np.fft.rfft(w) * np.fft.rfft(x), n=k), y, atol=1e-12)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("in_f,out_f,k", [(64, 128, 8), (13, 10, 4), (50, 20, 16)])
def test_circulant_linear_forward_matches_dense(in_f, out_f, k, bias):
    torch.manual_seed(0)
    layer = CirculantLinear(in_f, out_f, k, bias=bias).double()
    x = torch.randn(5, 3, in_f, dtype=torch.float64)
    dense = expand(layer.w, out_f, in_f)
    ref = x @ dense.T + (layer.bias if bias else 0)
    torch.testing.assert_close(layer(x), ref)
    torch.testing.assert_close(layer.to_linear()(x), ref)


def test_from_linear_projects_and_gradients_flow():
    torch.manual_seed(0)
    lin = torch.nn.Linear(20, 12)
    layer = CirculantLinear.from_linear(lin, 4)
    torch.testing.assert_close(layer.w, project(lin.weight.detach(), 4))
    torch.testing.assert_close(layer.bias, lin.bias)
    layer(torch.randn(2, 20)).sum().backward()
    assert layer.w.grad is not None and layer.w.grad.shape == (3, 5, 4)


def test_quantize_rounding_and_scale():
    ints, f = quantize(np.array([0.5, -1.0, 0.26]), 8)
    # max|v| = 1 -> 1 * 2**6 = 64 <= 127 but 128 > 127
    assert f == 6
    np.testing.assert_array_equal(ints, [32, -64, 17])
    # round half up: 0.5 -> 1, -0.5 -> 0, -1.5 -> -1 at frac_bits 0
    ints, f = quantize([0.5, -0.5, -1.5, 2.5], 4)
    assert f == 1
    np.testing.assert_array_equal(ints, [1, -1, -3, 5])
    ints, f = quantize([3.5, -0.5, -2.5], 4)  # max 3.5 -> 7 at f=1
    assert f == 1
    np.testing.assert_array_equal(ints, [7, -1, -5])
    ints, f = quantize([1.25, -0.75], 3)  # hi=3; 1.25*2=2.5 -> 3 fits, 1.25*4 = 5 doesn't
    assert f == 1
    np.testing.assert_array_equal(ints, [3, -1])
    ints, f = quantize([-0.25, 0.125], 2)  # hi = 1
    assert f == 2 and ints.dtype == np.int64
    np.testing.assert_array_equal(ints, [-1, 1])  # 0.5 rounds half up to 1


def test_quantize_large_values_and_saturation_bounds():
    ints, f = quantize([1000.0, -3.0], 4)
    assert f == -8 and ints.tolist() == [4, 0]
    for bits in (2, 8, 16, 32):
        v = np.random.default_rng(bits).normal(size=100) * 10
        ints, f = quantize(v, bits)
        assert ints.min() >= -(2 ** (bits - 1)) and ints.max() <= 2 ** (bits - 1) - 1
        assert np.abs(ints).max() > (2 ** (bits - 1) - 1) / 2  # scale is the largest that fits
        assert np.max(np.abs(ints * 2.0 ** -f - v)) <= 2.0 ** -f / 2 + 1e-12


def test_quantize_zero_and_torch():
    ints, f = quantize(np.zeros((2, 3)), 8)
    assert f == 0 and ints.shape == (2, 3) and not ints.any()
    ints, f = quantize(torch.tensor([0.25, -0.5]), 8)  # 0.5 * 2**8 = 128 > 127
    assert f == 7 and ints.tolist() == [32, -64]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_quantize_rejects_non_finite(bad):
    with pytest.raises(ValueError, match="NaN or infinite"):
        quantize([1.0, bad], 8)


@pytest.mark.parametrize("bits", [1, 33, 0, 8.0, True])
def test_quantize_rejects_bad_bits(bits):
    with pytest.raises(ValueError, match="between 2 and 32"):
        quantize([1.0], bits)


@pytest.mark.parametrize("k", [0, 1, 6, 12, 128, 8.0, True])
def test_bad_block_size(k):
    with pytest.raises(ValueError, match=r"k=.*not supported.*\[2, 4, 8, 16, 32, 64\]"):
        project(np.zeros((8, 8)), k)
    with pytest.raises(ValueError, match="not supported"):
        CirculantLinear(8, 8, k)


def test_non_finite_weights_rejected():
    a = np.ones((8, 8))
    a[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        project(a, 4)
    lin = torch.nn.Linear(8, 8)
    with torch.no_grad():
        lin.weight[0, 0] = float("inf")
    with pytest.raises(ValueError, match="NaN or infinite"):
        CirculantLinear.from_linear(lin, 4)
