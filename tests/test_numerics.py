"""The numerics contract against the math it implements (pyramid level 2)."""
import numpy as np
import pytest
import scipy.linalg
import torch

from circa import numerics as nx


def test_round_half_up_and_saturate():
    v = np.array([-6, -5, -3, -2, -1, 0, 1, 2, 3, 5, 6])
    # divide by 4, round half up: -1.5 -> -1, -1.25 -> -1, 0.5 -> 1, 1.25 -> 1, 1.5 -> 2
    assert nx.round_shift(v, 2).tolist() == [-1, -1, -1, 0, 0, 0, 0, 1, 1, 1, 2]
    assert nx.round_shift(v, 0).tolist() == v.tolist()
    assert nx.saturate(np.array([-200, -128, 127, 200]), 8).tolist() == [-128, -128, 127, 127]
    assert nx.round_shift(torch.tensor(v), 2).tolist() == nx.round_shift(v, 2).tolist()


def halfcomplex(spectrum):
    k = 2 * (spectrum.shape[-1] - 1)
    return np.concatenate([spectrum.real, spectrum.imag[..., 1:k // 2][..., ::-1]], -1)


def columns(x):
    return [x[..., n] for n in range(x.shape[-1])]


@pytest.mark.parametrize("k", nx.BLOCK_SIZES)
def test_rfft_plan_matches_numpy(k):
    rng = np.random.default_rng(k)
    x = rng.integers(-2**15, 2**15, size=(500, k))
    got = np.stack(nx.run_plan(nx.rfft_plan(k, 16, 18), columns(x)), -1)
    scale = 2.0 ** sum(nx.fft_stage_shifts(k, 16, 18))
    err = np.abs(got - halfcomplex(np.fft.rfft(x)) / scale).max()
    print(f"k = {k}: FFT max error {err:.2f} LSB")        # pytest -s shows the figures
    # rounding: at most half an LSB per stage, plus the twiddles' quantization
    assert err <= 0.5 * np.log2(k) + 0.5, err
    # the spectrum uses the output range: widths grow to 18 bits, no more
    assert np.abs(got).max() < 2**17


@pytest.mark.parametrize("k", nx.BLOCK_SIZES)
def test_irfft_plan_inverts(k):
    rng = np.random.default_rng(k)
    spec = halfcomplex(np.fft.rfft(rng.integers(-2**12, 2**12, size=(500, k))))
    spec = np.round(spec).astype(np.int64)
    got = np.stack(nx.run_plan(nx.irfft_plan(k, 18), columns(spec)), -1)
    zero = np.zeros((500, 1))
    im = np.concatenate([zero, spec[..., :k // 2:-1], zero], -1)
    ref = np.fft.irfft(spec[..., :k // 2 + 1] + 1j * im, n=k)
    assert np.abs(got - ref).max() <= 0.5 * np.log2(k) + 0.5


def test_trivial_twiddles_cost_no_multiplier():
    assert nx.plan_multipliers(nx.rfft_plan(4, 16, 18)) == 0
    # k=8: one rotation by W_8^1 in the last stage; k=16: two at n=8, three at n=16
    assert nx.plan_multipliers(nx.rfft_plan(8, 16, 18)) == 4
    assert nx.plan_multipliers(nx.rfft_plan(16, 16, 18)) == 4 * (2 + 3)


def test_stage_shifts_grow_then_halve():
    assert nx.fft_stage_shifts(16, 16, 18) == (0, 0, 1, 1)
    assert nx.fft_stage_shifts(8, 12, 18) == (0, 0, 0)


def quantize(v, frac, width=16):
    return np.clip(np.floor(v * 2.0**frac + 0.5), -2**(width - 1), 2**(width - 1) - 1).astype(np.int64)


@pytest.mark.parametrize("k", nx.BLOCK_SIZES)
def test_circulant_mvm_sqnr(k):
    """The integer contract at 16 bits is within 60 dB of the float ``W_circ @ x``."""
    rng = np.random.default_rng(k)
    p, q, n = 3, 5, 200
    w = rng.normal(size=(p, q, k)) / np.sqrt(q * k)
    x = rng.uniform(-1, 1, size=(n, q, k))
    dense = np.block([[scipy.linalg.circulant(w[i, j]) for j in range(q)] for i in range(p)])
    ref = (x.reshape(n, -1) @ dense.T).reshape(n, p, k)
    wf = halfcomplex(np.fft.rfft(w))
    fw = 15 - int(np.ceil(np.log2(np.abs(wf).max())))
    wi, xi = quantize(wf, fw), quantize(x, 15)
    kw = dict(k=k, data_width=16, fft_width=18, ifft_width=18)
    shift, out_shift = nx.circulant_shifts(xi, wi, **kw)
    y = nx.circulant_mvm(xi, wi, shift, out_shift, **kw)
    frac = 15 + fw - sum(nx.fft_stage_shifts(k, 16, 18)) - shift - out_shift
    err = y / 2.0**frac - ref
    sqnr = 10 * np.log10((ref**2).mean() / (err**2).mean())
    print(f"k = {k}: SQNR {sqnr:.1f} dB")
    assert sqnr >= 60, sqnr
    # the same contract on torch tensors (the golden model) gives the same words
    yt = nx.circulant_mvm(torch.from_numpy(xi), torch.from_numpy(wi), shift, out_shift, **kw)
    assert np.array_equal(yt.numpy(), y)


def test_circulant_shifts_avoid_saturation():
    rng = np.random.default_rng(1)
    x = rng.integers(-2**15, 2**15, size=(50, 4, 8))
    wf = rng.integers(-2**15, 2**15, size=(2, 4, 8))
    kw = dict(k=8, data_width=16, fft_width=18, ifft_width=18)
    shift, out_shift = nx.circulant_shifts(x, wf, **kw)
    y = nx.circulant_mvm(x, wf, shift, out_shift, **kw)
    assert np.abs(y).max() < 2**15 - 1
    # one bit less shift saturates somewhere
    y_tight = nx.circulant_mvm(x, wf, shift, max(out_shift - 1, 0), **kw)
    assert out_shift == 0 or np.abs(y_tight).max() >= 2**15 - 1
