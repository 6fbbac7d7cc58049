"""Piecewise-linear activation tables (sigmoid, tanh) for the hardware's PWL unit.

:func:`fit` builds a :class:`circa.numerics.PWLTable`; :func:`circa.numerics.pwl` is the
exact integer evaluation the RTL implements::

    xc    = clip(x, lo, hi)
    index = clip((xc >> seg_shift) + segments // 2, 0, segments - 1)
    y     = narrow(slope[index] * xc + icept[index], shift, width)

How a table is fitted:

1. The real input range covered is the function's default range (sigmoid [-8, 8],
   tanh [-4, 4]) or ``x_range``, intersected with what ``width``-bit words with
   ``in_frac`` fraction bits can represent; ``lo``/``hi`` are its integer bounds.
   ``seg_shift`` is the smallest shift for which the ``segments`` uniform segments
   ``[(i - segments/2) << seg_shift, (i - segments/2 + 1) << seg_shift)`` cover
   ``[lo, hi]`` (``hi`` may equal the right end of the last segment: the index clamp
   puts it in the last segment).  The segments are symmetric about 0, so a one-sided
   ``x_range`` wastes the other half.
2. A *continuous* piecewise-linear function (its values ``v_i`` at the breakpoints) is
   fitted minimax (a small linear programme, scipy's HiGHS) on a grid of input words
   over the whole representable range, *including* the clamped tails beyond
   ``[lo, hi]``, where the unit outputs the end value: so the end values land between
   the function at the range end and its asymptote (sigmoid 0 and 1, tanh -1 and 1).
   For sigmoid and tanh the values are constrained non-decreasing.
3. Quantisation keeps continuity and monotonicity exactly: with ``P = fs + in_frac``
   product fraction bits, ``V_i = round(v_i * 2**P)``, the integer slope of segment
   ``i`` is ``(V_{i+1} - V_i) / len`` truncated toward zero, and
   ``icept_i = V_i - slope_i * b_i`` (so each segment starts exactly at ``V_i`` and
   ends within one slope step of ``V_{i+1}``, on the same side).  ``fs`` is the largest
   value for which every slope fits ``slope_bits`` signed bits (capped so that
   ``P <= 48``); ``shift = P - out_frac`` must be >= 0 (else ``ValueError``).
   Round-half-up narrowing is monotone, so monotone ``V`` gives monotone output words.

Measured :func:`max_error` (``python -m circa.compiler.pwl`` prints it; real units,
every input word; each fit takes ~60-140 ms on 2 CPU cores).  ``width=16``, ``out_frac=14``; "range" is the real input range covered:

=========  ========  ============  ============  ============  ============
function   in_frac   range         32 segments   64 segments   128 segments
=========  ========  ============  ============  ============  ============
sigmoid    8         [-8, 8]       1.517e-3      3.98e-4       1.83e-4
sigmoid    10        [-8, 8]       1.518e-3      4.03e-4       1.83e-4
sigmoid    11        [-8, 8]       1.520e-3      4.04e-4       1.83e-4
sigmoid    12        [-8, 8)       1.520e-3      4.04e-4       1.24e-4
sigmoid    13        [-4, 4)       4.04e-4       1.24e-4       5.4e-5
tanh       8         [-4, 4]       3.000e-3      7.76e-4       3.66e-4
tanh       10        [-4, 4]       3.007e-3      7.76e-4       3.66e-4
tanh       11        [-4, 4]       3.007e-3      7.76e-4       3.66e-4
tanh       12        [-4, 4]       3.011e-3      7.79e-4       3.66e-4
tanh       13        [-4, 4)       3.011e-3      7.79e-4       2.18e-4
=========  ========  ============  ============  ============  ============

``width=12, in_frac=8, out_frac=10``: sigmoid 1.91e-3 / 8.25e-4 (32 / 64 segments),
tanh 3.35e-3 / 1.23e-3 (output rounding alone is 4.9e-4 there).  tests/test_pwl.py
asserts bounds slightly above these.  At sigmoid in_frac 13 the 16-bit words only reach
+-4, so 32 segments cover half the usual range and the error drops accordingly.  From
~64 segments on the error is dominated by the range cut-off (sigmoid: ``1 - s(8)`` =
3.4e-4, tanh: ``1 - tanh(4)`` = 6.7e-4, both split by the fit) plus output rounding
(half an LSB: 3.1e-5 at ``out_frac=14``), so more segments need a wider ``x_range``.
All tables above give non-decreasing outputs over every word; the end outputs are
within a few LSBs of the asymptotes (sigmoid 3 / 16381 of 0 / 16384).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from circa.numerics import PWLTable, pwl

__all__ = ["FUNCTIONS", "fit", "max_error", "reference"]

# name -> (float64 function, default real input range, monotone non-decreasing)
FUNCTIONS: dict[str, tuple[Callable, tuple[float, float], bool]] = {
    "sigmoid": (lambda x: 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float64))), (-8.0, 8.0), True),
    "tanh": (lambda x: np.tanh(np.asarray(x, dtype=np.float64)), (-4.0, 4.0), True),
}

_MAX_PRODUCT_FRAC = 48  # fs + in_frac cap: keeps slope * x + icept far inside int64
_GRID_POINTS = 2048     # fitting grid (plus breakpoints) over the representable range


def reference(function) -> Callable:
    """The float64 function for a name in :data:`FUNCTIONS` (or the callable itself)."""
    if callable(function):
        return lambda x: np.asarray(function(np.asarray(x, dtype=np.float64)), dtype=np.float64)
    if function not in FUNCTIONS:
        raise ValueError(f"function={function!r}: must be one of {sorted(FUNCTIONS)} or a callable")
    return FUNCTIONS[function][0]


def _check_int(name, value, low, high):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise ValueError(f"{name}={value!r}: must be an integer in {low}..{high}")


def _check_formats(width, in_frac, out_frac):
    _check_int("width", width, 2, 18)
    _check_int("in_frac", in_frac, 0, width - 1)
    _check_int("out_frac", out_frac, 0, width - 1)


def fit(function, in_frac: int, out_frac: int, *, width: int = 16, segments: int = 32,
        x_range: tuple[float, float] | None = None, slope_bits: int = 18) -> PWLTable:
    """Fit a :class:`PWLTable` for ``function`` ("sigmoid", "tanh", or a callable with
    ``x_range``) on ``width``-bit words: inputs with ``in_frac``, outputs with
    ``out_frac`` fraction bits.  See the module docstring for the method."""
    _check_formats(width, in_frac, out_frac)
    if isinstance(segments, bool) or not isinstance(segments, (int, np.integer)) \
            or not 4 <= segments <= 256 or segments & (segments - 1):
        raise ValueError(f"segments={segments!r}: must be a power of two in 4..256")
    _check_int("slope_bits", slope_bits, 2, 32)
    f = reference(function)
    if callable(function):
        if x_range is None:
            raise ValueError("x_range=None: a callable function needs an explicit x_range (lo, hi)")
        monotone = False
    else:
        monotone = True
        if x_range is None:
            x_range = FUNCTIONS[function][1]
    a, b = (float(v) for v in x_range)
    if not (math.isfinite(a) and math.isfinite(b) and a < b):
        raise ValueError(f"x_range={x_range!r}: must be finite (lo, hi) with lo < hi")

    wmin, wmax = -(1 << (width - 1)), (1 << (width - 1)) - 1
    lo = max(wmin, math.ceil(a * 2 ** in_frac))
    hi = min(wmax, math.floor(b * 2 ** in_frac))
    if lo >= hi:
        raise ValueError(f"x_range={x_range!r}: covers fewer than two {width}-bit words "
                         f"with in_frac={in_frac}")
    half = segments // 2
    reach = max(-lo, hi, 1)
    seg_shift = max(0, math.ceil(math.log2(reach / half)))
    while (half << seg_shift) < reach:  # guard against float log2 rounding
        seg_shift += 1
    length = 1 << seg_shift
    bps = (np.arange(segments + 1, dtype=np.int64) - half) * length  # breakpoints b_0..b_S

    # -- continuous minimax fit on a grid of words (the tails are clamped to lo / hi) --
    # dense over [lo, hi] (every word if few), coarse over the clamped tails
    inside = np.arange(lo, hi + 1, max(1, (hi - lo + 1) // _GRID_POINTS), dtype=np.int64)
    tails = np.arange(wmin, wmax + 1, max(1, (wmax - wmin + 1) // 256), dtype=np.int64)
    inner = bps[(bps >= lo) & (bps <= hi)]
    grid = np.unique(np.concatenate([inside, tails, inner, inner - 1, [wmin, wmax, lo, hi]]))
    grid = grid.clip(wmin, wmax)
    xc = grid.clip(lo, hi)
    seg = ((xc >> seg_shift) + half).clip(0, segments - 1)
    w = (xc - bps[seg]) / length
    target = f(grid * 2.0 ** -in_frac)
    v = _minimax(seg, w, target, segments, monotone)
    used_lo, used_hi = int(seg.min()), int(seg.max()) + 1  # breakpoints that matter
    v[:used_lo] = v[used_lo]
    v[used_hi + 1:] = v[used_hi]

    # -- quantise: one fs for the whole table ------------------------------------------
    limit = (1 << (slope_bits - 1)) - 1
    real_slope = np.abs(np.diff(v)) / (length * 2.0 ** -in_frac)
    peak = float(real_slope.max())
    fs = _MAX_PRODUCT_FRAC - in_frac
    if peak > 0:
        fs = min(fs, math.floor(math.log2(limit / peak)) + 1)
    while True:
        slope, icept = _quantise(v, bps, fs + in_frac)
        if max(abs(s) for s in slope) <= limit:
            break
        fs -= 1
    shift = fs + in_frac - out_frac
    if shift < 0:
        raise ValueError(
            f"out_frac={out_frac}: needs shift = fs + in_frac - out_frac >= 0, but slopes up "
            f"to {peak:.4g} fit slope_bits={slope_bits} only with fs <= {fs} (in_frac={in_frac}); "
            f"use out_frac <= {fs + in_frac} or more slope_bits")
    return PWLTable(slope=tuple(slope), icept=tuple(icept), seg_shift=seg_shift, shift=shift,
                    lo=int(lo), hi=int(hi))


def _quantise(v, bps, frac):
    """Integer slopes/intercepts in the product format with ``frac`` fraction bits."""
    V = [int(x) for x in np.floor(v * 2.0 ** frac + 0.5)]
    length = int(bps[1] - bps[0])
    slope, icept = [], []
    for i in range(len(V) - 1):
        d = V[i + 1] - V[i]
        s = d // length if d >= 0 else -((-d) // length)  # toward zero: stays on V_{i+1}'s side
        slope.append(s)
        icept.append(V[i] - s * int(bps[i]))
    return slope, icept


def _minimax(seg, w, target, segments, monotone):
    """Breakpoint values ``v`` of the continuous fit ``(1-w) v[seg] + w v[seg+1]``.

    Two linear programmes: first the smallest overall max error ``t*``; then, keeping every
    segment's error bound ``t_i <= t*``, minimise ``sum t_i`` so that segments with slack
    (the LP's optimum is not unique there) are fitted tightly too, not just within ``t*``.
    """
    from scipy.optimize import linprog
    from scipy.sparse import csr_matrix, hstack, vstack

    n, nv = len(target), segments + 1
    rows = np.repeat(np.arange(n), 2)
    A = csr_matrix((np.stack([1.0 - w, w], axis=1).ravel(),
                    (rows, np.stack([seg, seg + 1], axis=1).ravel())), shape=(n, nv))
    if monotone:  # v_i - v_{i+1} <= 0
        k = np.arange(segments)
        D = csr_matrix((np.r_[np.ones(segments), -np.ones(segments)], (np.r_[k, k], np.r_[k, k + 1])),
                       shape=(segments, nv))
    free = (None, None)

    def solve(T, nt, t_bound):
        """min sum(t) s.t. |A v - target| <= T t, with t (nt entries) bounded by t_bound."""
        blocks = [hstack([A, -T]), hstack([-A, -T])]
        b_ub = [target, -target]
        if monotone:
            blocks.append(hstack([D, csr_matrix((segments, nt))]))
            b_ub.append(np.zeros(segments))
        c = np.r_[np.zeros(nv), np.ones(nt)]
        res = linprog(c, A_ub=vstack(blocks).tocsr(), b_ub=np.concatenate(b_ub),
                      bounds=[free] * nv + [(0, t_bound)] * nt, method="highs")
        if res.status != 0:
            raise RuntimeError(f"PWL minimax fit failed: {res.message}")
        return res

    first = solve(csr_matrix(np.ones((n, 1))), 1, None)
    T = csr_matrix((np.ones(n), (np.arange(n), seg)), shape=(n, segments))
    try:
        res = solve(T, segments, first.fun * (1 + 1e-6) + 1e-9)
    except RuntimeError:    # the solver's tolerance can make the tightening infeasible
        res = first
    return np.asarray(res.x[:nv], dtype=np.float64)


def max_error(table: PWLTable, function, in_frac: int, out_frac: int, width: int = 16) -> float:
    """Max |pwl(table, x) - function(x)| in real units over every ``width``-bit word."""
    _check_formats(width, in_frac, out_frac)
    f = reference(function)
    x = np.arange(-(1 << (width - 1)), 1 << (width - 1), dtype=np.int64)
    y = pwl(table, x, width)
    return float(np.max(np.abs(y * 2.0 ** -out_frac - f(x * 2.0 ** -in_frac))))


if __name__ == "__main__":      # python -m circa.compiler.pwl: the table above, measured
    for name in FUNCTIONS:
        for in_frac in (8, 10, 11, 12, 13):
            errors = [max_error(fit(name, in_frac, 14, segments=s), name, in_frac, 14)
                      for s in (32, 64, 128)]
            print(f"{name:8} in_frac {in_frac:2}: " + "  ".join(f"{e:.3e}" for e in errors))
