"""The numerics contract: the integer arithmetic that the RTL and the golden model share.

Everything here is plain integer arithmetic on "arrays": numpy ``int64`` arrays (the
hardware blocks' ``model()``) or torch ``int64`` tensors (the compiler's golden model).
Only operators both libraries share are used (``+ - * >>``, indexing, ``.clip``), so
one description of the arithmetic serves both, and docs/numerics.md describes it.

The real FFT is described as a *plan*: a list of steps over ``k`` columns (the ``k``
real numbers of a block). :func:`run_plan` interprets a plan on integer arrays;
``circa.hw.fft`` turns the same plan into pipelined gates. Whether the plan computes a
DFT is checked against ``numpy.fft`` (tests/test_numerics.py), and whether the gates
compute the plan is checked in simulation, so neither side is tested against itself.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

BLOCK_SIZES = (2, 4, 8, 16, 32, 64)
MAX_OPERAND_WIDTH = 18  # one ECP5 MULT18X18D / DSP48 per real product
TWIDDLE_WIDTH = 18
TWIDDLE_FRAC = TWIDDLE_WIDTH - 1  # twiddles used are cos, sin of angles in (0, pi/2): |v| < 1


# -- the one rounding rule and saturation -------------------------------------------

def round_shift(v, s: int):
    """Divide by ``2**s``, rounding half up: add half an LSB, then arithmetic shift."""
    if s == 0:
        return v
    return (v + (1 << (s - 1))) >> s


def saturate(v, width: int):
    """Clamp to the signed two's-complement range of ``width`` bits."""
    return v.clip(-(1 << (width - 1)), (1 << (width - 1)) - 1)


def narrow(v, s: int, width: int):
    """The contract's narrowing: round-shift by ``s`` bits, then saturate to ``width``."""
    return saturate(round_shift(v, s), width)


def signed_range(width: int) -> tuple[int, int]:
    return -(1 << (width - 1)), (1 << (width - 1)) - 1


# -- halfcomplex layout ----------------------------------------------------------------
# A real block's spectrum has k/2+1 bins, of which 0 and k/2 are real: exactly k reals.
# They are kept in FFTW's halfcomplex (r2hc) order [r0, r1, ..., r_{k/2}, i_{k/2-1}, ..., i1].

def hc_re(k: int, m: int) -> int:
    """Position of Re X_m (0 <= m <= k/2) in a halfcomplex block."""
    return m


def hc_im(k: int, m: int) -> int:
    """Position of Im X_m (0 < m < k/2) in a halfcomplex block."""
    return k - m


def twiddle(n: int, m: int) -> tuple[int, int]:
    """``W_n^m = exp(-2j pi m / n)`` as integers ``(c, s)`` with ``TWIDDLE_FRAC`` fraction bits.

    Only used for ``0 < m < n/4``, where both parts are in (-1, 0) or (0, 1).
    """
    angle = -2 * math.pi * m / n
    scale = 1 << TWIDDLE_FRAC
    return math.floor(math.cos(angle) * scale + 0.5), math.floor(math.sin(angle) * scale + 0.5)


# -- FFT plans ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Butterfly:
    """Every output column is a signed sum of at most two input columns, then narrowed.

    ``terms[i]`` is a tuple of ``(sign, column)``; output ``i`` is
    ``narrow(sum(sign * x[column]), shifts[i], width)``.
    """
    terms: tuple[tuple[tuple[int, int], ...], ...]
    shifts: tuple[int, ...]
    width: int


@dataclass(frozen=True)
class Twiddle:
    """Complex rotations of column pairs; all other columns pass through unchanged.

    For each ``(col_re, col_im, c, s)``: ``(a + jb) * (c + js)``, each part
    ``narrow(., TWIDDLE_FRAC, width)``. ``width`` is the width of the columns (at most 18).
    """
    rotations: tuple[tuple[int, int, int, int], ...]
    width: int


@dataclass(frozen=True)
class Permute:
    """Output column ``i`` is input column ``order[i]`` (wiring only)."""
    order: tuple[int, ...]


def _bit_reverse(i: int, bits: int) -> int:
    return int(format(i, f"0{bits}b")[::-1], 2) if bits else 0


def _subdfts(k: int, n: int):
    """Base column of each size-``n`` sub-DFT, and the sub-DFT's half and quarter sizes."""
    return [(o, n // 2, n // 4) for o in range(0, k, n)]


def fft_stage_shifts(k: int, in_width: int, width: int) -> tuple[int, ...]:
    """Per-stage right shifts of the forward FFT: grow one bit per stage until ``width``.

    A stage's butterflies add two values, so its output needs one more bit than its
    input. While that fits in ``width`` the stage keeps every bit (shift 0); after that
    each stage divides by two (shift 1) to stay at ``width``.
    """
    shifts, w = [], in_width
    for _ in range(int(math.log2(k))):
        if w + 1 <= width:
            w += 1
            shifts.append(0)
        else:
            shifts.append(1)
    return tuple(shifts)


def rfft_plan(k: int, in_width: int, width: int) -> list:
    """Plan of the forward real FFT: ``k`` real samples -> halfcomplex spectrum.

    Radix-2 decimation in time on real data: every sub-DFT of a real sequence is
    Hermitian, so a size-``n`` sub-DFT is kept as ``n`` reals (halfcomplex) and two of
    them combine into one of size ``2n`` with ``n/4 - 1`` complex rotations, none for
    the trivial twiddles 1 and -j. The output equals ``rfft(x) / 2**sum(shifts)`` up to
    rounding, with ``shifts = fft_stage_shifts(k, in_width, width)``.
    """
    bits = int(math.log2(k))
    plan: list = [Permute(tuple(_bit_reverse(i, bits) for i in range(k)))]
    w = in_width
    for stage, shift in enumerate(fft_stage_shifts(k, in_width, width)):
        n = 2 << stage
        rotations, terms = [], [None] * k
        for o, h, q in _subdfts(k, n):
            # E (even samples) is the halfcomplex block at o, O (odd samples) at o + h.
            terms[o] = ((1, o), (1, o + h))                      # X0 = E0 + O0
            terms[o + h] = ((1, o), (-1, o + h))                 # X_{n/2} = E0 - O0
            if q:                                                # X_{n/4} = E_{h/2} - j O_{h/2}
                terms[o + q] = ((1, o + q),)
                terms[o + n - q] = ((-1, o + h + q),)
            for m in range(1, q):
                rotations.append((o + h + m, o + n - m, *twiddle(n, m)))   # t = W^m O_m
                er, ei, tr, ti = o + m, o + h - m, o + h + m, o + n - m
                terms[o + m] = ((1, er), (1, tr))                # X_m = E_m + t
                terms[o + n - m] = ((1, ei), (1, ti))
                terms[o + h - m] = ((1, er), (-1, tr))           # X_{h-m} = conj(E_m - t)
                terms[o + h + m] = ((-1, ei), (1, ti))
        if rotations:
            plan.append(Twiddle(tuple(rotations), w))
        w = w + 1 - shift
        plan.append(Butterfly(tuple(terms), (shift,) * k, w))
    return plan


def irfft_plan(k: int, width: int) -> list:
    """Plan of the inverse real FFT: halfcomplex spectrum -> ``k`` real samples.

    Each forward stage undone: with ``a = X_m`` and ``b = conj(X_{n/2-m})``,
    ``E_m = (a + b) / 2`` and ``O_m = conj(W^m) (a - b) / 2``; the Nyquist pair needs
    no division (``E_{h/2} = Re X_{n/4}``, ``O_{h/2} = -Im X_{n/4}``). The halvings add up
    to exactly the inverse DFT's ``1/k``: the output is ``irfft(X)`` up to rounding. All
    columns stay ``width`` bits.
    """
    bits = int(math.log2(k))
    plan: list = []
    for stage in reversed(range(bits)):
        n = 2 << stage
        rotations, terms, shifts = [], [None] * k, [1] * k
        for o, h, q in _subdfts(k, n):
            terms[o] = ((1, o), (1, o + h))
            terms[o + h] = ((1, o), (-1, o + h))
            if q:
                terms[o + q] = ((1, o + q),)
                terms[o + h + q] = ((-1, o + n - q),)
                shifts[o + q] = shifts[o + h + q] = 0
            for m in range(1, q):
                xr, xi, yr, yi = o + m, o + n - m, o + h - m, o + h + m   # X_m, X_{h-m}
                terms[o + m] = ((1, xr), (1, yr))                # E_m = (a + b) / 2
                terms[o + h - m] = ((1, xi), (-1, yi))
                terms[o + h + m] = ((1, xr), (-1, yr))           # d = (a - b) / 2
                terms[o + n - m] = ((1, xi), (1, yi))
                c, s = twiddle(n, m)
                rotations.append((o + h + m, o + n - m, c, -s))  # O_m = conj(W^m) d
        plan.append(Butterfly(tuple(terms), tuple(shifts), width))
        if rotations:
            plan.append(Twiddle(tuple(rotations), width))
    plan.append(Permute(tuple(_bit_reverse(i, bits) for i in range(k))))
    return plan


def run_plan(plan: list, cols: list) -> list:
    """Interpret a plan on a list of ``k`` integer arrays (one per column)."""
    for step in plan:
        if isinstance(step, Permute):
            cols = [cols[i] for i in step.order]
        elif isinstance(step, Twiddle):
            cols = list(cols)
            for cr, ci, c, s in step.rotations:
                a, b = cols[cr], cols[ci]
                cols[cr] = narrow(a * c - b * s, TWIDDLE_FRAC, step.width)
                cols[ci] = narrow(a * s + b * c, TWIDDLE_FRAC, step.width)
        else:
            cols = [narrow(sum_terms(cols, t), s, step.width)
                    for t, s in zip(step.terms, step.shifts)]
    return cols


def sum_terms(cols, terms):
    """``sum(sign * cols[i])`` written with + and - only (works on any array or Value)."""
    (sign, i), *rest = terms
    acc = cols[i] if sign > 0 else -cols[i]
    for sign, i in rest:
        acc = acc + cols[i] if sign > 0 else acc - cols[i]
    return acc


def plan_multipliers(plan: list) -> int:
    """Real multipliers a fully parallel implementation of the plan needs."""
    return sum(4 * len(step.rotations) for step in plan if isinstance(step, Twiddle))


# -- block-circulant MVM contract --------------------------------------------------------

def spectrum_product(x, w, k: int):
    """Complex product of two halfcomplex blocks (exact, no rounding), as ``k`` columns.

    ``x`` and ``w`` are lists of ``k`` columns. Bins 0 and k/2 are real: one real
    product each; every other bin takes four.
    """
    out = [None] * k
    for m in (0, k // 2):
        out[m] = x[m] * w[m]
    for m in range(1, k // 2):
        r, i = hc_re(k, m), hc_im(k, m)
        out[r] = x[r] * w[r] - x[i] * w[i]
        out[i] = x[r] * w[i] + x[i] * w[r]
    return out


def stack(cols, axis: int = -1):
    """``numpy.stack`` or ``torch.stack``, whichever library the columns belong to."""
    if type(cols[0]).__module__.startswith("torch"):
        import torch
        return torch.stack(list(cols), dim=axis)
    import numpy as np
    return np.stack(cols, axis=axis)


def accumulator_width(fft_width: int, weight_width: int, max_q: int) -> int:
    """Bits that hold a sum of ``max_q`` complex products exactly (no overflow, no rounding)."""
    return fft_width + weight_width + 1 + max(1, (max_q - 1).bit_length())


def circulant_accumulate(x, wf, *, k: int, data_width: int, fft_width: int):
    """Exact accumulated spectra ``sum_j rfft(x_j) * wf_ij``: ``k`` columns of ``(..., p)``.

    ``x`` is ``(..., q, k)`` input blocks, ``wf`` is ``(p, q, k)`` weight spectra.
    """
    xs = run_plan(rfft_plan(k, data_width, fft_width), [x[..., n] for n in range(k)])
    ws = [wf[..., n] for n in range(k)]                             # k columns of (p, q)
    prods = spectrum_product([c[..., None, :] for c in xs], ws, k)  # k columns of (..., p, q)
    return [c.sum(-1) for c in prods]


def circulant_finish(acc, shift: int, out_shift: int, *, k: int, data_width: int,
                     ifft_width: int):
    """Accumulated spectra -> output blocks ``(..., p, k)``."""
    ys = run_plan(irfft_plan(k, ifft_width), [narrow(c, shift, ifft_width) for c in acc])
    return stack([narrow(c, out_shift, data_width) for c in ys])


def circulant_mvm(x, wf, shift: int, out_shift: int, *, k: int, data_width: int,
                  fft_width: int, ifft_width: int):
    """The block-circulant matrix-vector product, exactly as the engine computes it.

    Parameters
    ----------
    x : integer array ``(..., q, k)``, ``data_width``-bit input blocks.
    wf : integer array ``(p, q, k)``, weight spectra (halfcomplex, at most 18 bits).
    shift : right shift of the accumulated spectrum before the IFFT (to ``ifft_width``).
    out_shift : right shift of the IFFT's output (to ``data_width``).

    Returns
    -------
    integer array ``(..., p, k)`` of ``data_width``-bit output blocks:
    ``narrow(irfft(narrow(sum_j rfft(x_j) * wf_ij, shift, ifft_width)), out_shift, data_width)``.
    A spectrum's values can be up to ``k`` times larger than its block's, so the two
    shifts are separate: ``shift`` keeps the spectrum within ``ifft_width`` bits,
    ``out_shift`` places the output in ``data_width`` bits.
    """
    acc = circulant_accumulate(x, wf, k=k, data_width=data_width, fft_width=fft_width)
    return circulant_finish(acc, shift, out_shift, k=k, data_width=data_width,
                            ifft_width=ifft_width)


def bits_needed(v) -> int:
    """Signed width that holds every value of ``v`` (at least 1)."""
    lo, hi = int(v.min()), int(v.max())
    return max(lo.bit_length() if lo >= 0 else (-lo - 1).bit_length(), hi.bit_length()) + 1


def circulant_shifts(x, wf, *, k: int, data_width: int, fft_width: int, ifft_width: int):
    """The smallest ``(shift, out_shift)`` for which no value of ``x`` saturates.

    This is what calibration does: keep the most precision that the sample inputs allow.
    """
    acc = circulant_accumulate(x, wf, k=k, data_width=data_width, fft_width=fft_width)
    shift = max(0, max(bits_needed(c) for c in acc) - ifft_width)
    ys = run_plan(irfft_plan(k, ifft_width), [narrow(c, shift, ifft_width) for c in acc])
    return shift, max(0, max(bits_needed(c) for c in ys) - data_width)


# -- vector unit -----------------------------------------------------------------------------
# Element-wise on data_width-bit words; every result is narrowed to data_width.

def vadd(a, b, width: int):
    return saturate(a + b, width)


def vsub(a, b, width: int):
    return saturate(a - b, width)


def vmul(a, b, shift: int, width: int):
    """Product of two words (at most 18 bits each), rounded by ``shift`` bits."""
    return narrow(a * b, shift, width)


def vshl(a, shift: int, width: int):
    """``saturate(a << shift)``; shifts past ``width`` saturate alike (and stay in int64)."""
    return saturate(a * (1 << min(shift, width)), width)


def relu(a):
    return (a + abs(a)) >> 1


@dataclass(frozen=True)
class PWLTable:
    """A piecewise-linear function on ``data_width``-bit words (sigmoid, tanh).

    ``x`` is clamped to ``[lo, hi]``; its segment is ``(x_c >> seg_shift) + segments/2``
    (clamped to the table); ``y = narrow(slope[i] * x_c + icept[i], shift, width)``.
    Slopes are at most 18 bits (one multiplier); intercepts are in the product's format.
    """
    slope: tuple[int, ...]
    icept: tuple[int, ...]
    seg_shift: int
    shift: int
    lo: int
    hi: int

    @property
    def segments(self) -> int:
        return len(self.slope)


def pwl(table: PWLTable, x, width: int):
    """Evaluate a PWL table on an integer array (numpy or torch)."""
    xc = x.clip(table.lo, table.hi)
    index = ((xc >> table.seg_shift) + table.segments // 2).clip(0, table.segments - 1)
    if type(x).__module__.startswith("torch"):
        import torch
        slope, icept = torch.tensor(table.slope), torch.tensor(table.icept)
    else:
        import numpy as np
        slope, icept = np.array(table.slope, dtype=np.int64), np.array(table.icept, dtype=np.int64)
    return narrow(slope[index] * xc + icept[index], table.shift, width)
