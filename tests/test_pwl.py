"""PWL activation tables: accuracy on every input word, monotonicity, saturation, and the
numpy / torch evaluations agreeing word for word.

Measured max errors (compiler/pwl.py has the full table), width 16, out_frac 14:
sigmoid 1.52e-3 (32 segments) / 4.04e-4 (64), tanh 3.01e-3 / 7.79e-4; width 12
(in_frac 8, out_frac 10): sigmoid 1.91e-3 / 8.25e-4, tanh 3.35e-3 / 1.23e-3.
The bounds below are slightly above.  ~3-5 s for this file.
"""

import functools

import numpy as np
import pytest
import torch

from circa.compiler import pwl as P
from circa.numerics import PWLTable, pwl

OUT_FRAC = 14
BOUND = {  # (function, segments) -> asserted max error, width 16
    ("sigmoid", 32): 1.6e-3, ("sigmoid", 64): 4.2e-4,
    ("tanh", 32): 3.1e-3, ("tanh", 64): 8.0e-4,
}
BOUND_W12 = {("sigmoid", 32): 2.0e-3, ("sigmoid", 64): 8.7e-4,
             ("tanh", 32): 3.5e-3, ("tanh", 64): 1.3e-3}
ASYMPTOTES = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}


@functools.lru_cache(maxsize=None)
def table(function, in_frac, out_frac=OUT_FRAC, width=16, segments=32):
    return P.fit(function, in_frac, out_frac, width=width, segments=segments)


def words(width):
    return np.arange(-(1 << (width - 1)), 1 << (width - 1), dtype=np.int64)


def check_table(t, function, in_frac, out_frac, width, bound):
    f = P.reference(function)
    x = words(width)
    y = pwl(t, x, width)
    real = y * 2.0 ** -out_frac
    err = P.max_error(t, function, in_frac, out_frac, width)
    assert err == pytest.approx(np.abs(real - f(x * 2.0 ** -in_frac)).max())
    assert err < bound
    # hardware constraints
    assert isinstance(t, PWLTable) and t.segments in (32, 64)
    assert all(-(1 << 17) <= s < (1 << 17) for s in t.slope)
    assert all(isinstance(v, int) for v in t.slope + t.icept)
    assert t.shift >= 0 and t.seg_shift >= 0
    assert (t.segments // 2) << t.seg_shift >= max(-t.lo, t.hi)
    # monotone over every word
    assert np.all(np.diff(y) >= 0)
    # flat beyond [lo, hi], and the extremes near the asymptotes (or the function there)
    assert np.all(y[x <= t.lo] == y[0]) and np.all(y[x >= t.hi] == y[-1])
    a_lo, a_hi = ASYMPTOTES[function]
    assert round(a_lo * 2 ** out_frac) <= y.min() and y.max() <= round(a_hi * 2 ** out_frac)
    x_lo, x_hi = x[0] * 2.0 ** -in_frac, x[-1] * 2.0 ** -in_frac
    assert abs(real[0] - f(x_lo)) < bound and abs(real[-1] - f(x_hi)) < bound
    default = P.FUNCTIONS[function][1]
    if x_lo < default[0] and x_hi > default[1]:  # clamped tails exist: outputs saturate
        assert abs(real[0] - a_lo) < bound and abs(real[-1] - a_hi) < bound
    # torch evaluates the same words
    yt = pwl(t, torch.from_numpy(x), width)
    assert yt.dtype == torch.int64 and np.array_equal(yt.numpy(), y)


@pytest.mark.parametrize("segments", [32, 64])
@pytest.mark.parametrize("in_frac", [8, 10, 11, 12, 13])
@pytest.mark.parametrize("function", ["sigmoid", "tanh"])
def test_width16(function, in_frac, segments):
    t = table(function, in_frac, segments=segments)
    check_table(t, function, in_frac, OUT_FRAC, 16, BOUND[function, segments])


@pytest.mark.parametrize("segments", [32, 64])
@pytest.mark.parametrize("function", ["sigmoid", "tanh"])
def test_width12(function, segments):
    t = table(function, 8, 10, width=12, segments=segments)
    check_table(t, function, 8, 10, 12, BOUND_W12[function, segments])


def test_ranges_and_formats():
    t = table("sigmoid", 8)  # [-8, 8] fits in 16-bit words with 8 fraction bits
    assert (t.lo, t.hi, t.seg_shift) == (-2048, 2048, 7)
    assert t.shift == 19 + 8 - OUT_FRAC  # sigmoid slopes <= 1/4: fs = 19
    t = table("sigmoid", 13)  # only [-4, 4) representable
    assert (t.lo, t.hi, t.seg_shift) == (-32768, 32767, 11)
    t = table("tanh", 10, segments=64)
    assert (t.lo, t.hi, t.seg_shift) == (-4096, 4096, 7)
    assert max(t.slope) < (1 << 17) <= 2 * max(t.slope)  # fs is the largest that fits
    t = P.fit("tanh", 10, OUT_FRAC, slope_bits=12)
    assert all(abs(s) < (1 << 11) for s in t.slope)
    assert P.max_error(t, "tanh", 10, OUT_FRAC) < 3.2e-3


def test_callables():
    hard = P.fit(lambda v: np.clip(v, -1, 1), 12, 14, x_range=(-1, 1), segments=4)
    assert P.max_error(hard, lambda v: np.clip(v, -1, 1), 12, 14) < 2 ** -15 + 1e-6
    dec = lambda v: -np.tanh(v)  # noqa: E731 -- decreasing: still monotone words
    t = P.fit(dec, 11, 14, x_range=(-4, 4))
    assert np.all(np.diff(pwl(t, words(16), 16)) <= 0)
    assert P.max_error(t, dec, 11, 14) < 3.1e-3


@pytest.mark.parametrize("kwargs, name", [
    (dict(function="relu"), "function"),
    (dict(function="tanh", segments=3), "segments"),
    (dict(function="tanh", segments=2), "segments"),
    (dict(function="tanh", segments=48), "segments"),
    (dict(function="tanh", segments=512), "segments"),
    (dict(function="tanh", in_frac=16), "in_frac"),
    (dict(function="tanh", in_frac=-1), "in_frac"),
    (dict(function="tanh", out_frac=16), "out_frac"),
    (dict(function="tanh", width=12, out_frac=12), "out_frac"),
    (dict(function="tanh", width=1, in_frac=0, out_frac=0), "width"),
    (dict(function="tanh", width=19), "width"),
    (dict(function=np.tanh), "x_range"),
    (dict(function="tanh", in_frac=0, out_frac=15, slope_bits=4), "out_frac"),  # shift < 0
])
def test_errors(kwargs, name):
    args = dict(function="tanh", in_frac=10, out_frac=14) | kwargs
    with pytest.raises(ValueError, match=name):
        P.fit(args.pop("function"), args.pop("in_frac"), args.pop("out_frac"), **args)


def test_max_error_checks_formats():
    with pytest.raises(ValueError, match="width"):
        P.max_error(table("tanh", 8), "tanh", 8, 14, width=20)
    with pytest.raises(ValueError, match="function"):
        P.max_error(table("tanh", 8), "gelu", 8, 14)
