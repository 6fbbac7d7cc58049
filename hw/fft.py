"""Fully pipelined real FFT and inverse real FFT: one ``k``-sample block per cycle.

Both are built from a plan in :mod:`circa.numerics` (the same plan the golden model
interprets), one pipeline level per butterfly step and four per twiddle step (operands
and products, both in the multiplier block, :func:`circa.hw.dsp.product`; the products
again beside the sums; then sum/round/saturate).

Back-pressure stalls the whole pipeline: every register advances when the output is
empty or being taken (``advance = ~o.valid | o.ready``), and ``i.ready = advance``.
"""
from __future__ import annotations

import numpy as np
from amaranth.hdl import C, Cat, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from circa import numerics as nx
from circa.config import check_block_size, check_width
from circa.hw.dsp import product


def saturate(v, width: int):
    """``v`` clamped to ``signed(width)``. It fits when its bits from the target's sign bit
    up are all equal, so the test is a few LUTs, not two comparators' carry chains (these
    clamps follow an adder on many paths: Fmax)."""
    lo, hi = nx.signed_range(width)
    if v.shape().width < width or (v.shape().signed and v.shape().width == width):
        return v
    top = v[width - 1:]
    if v.shape().signed:
        return Mux(~top.any() | top.all(), v[:width].as_signed(), Mux(v[-1], lo, hi))
    return Mux(~top.any(), v[:width].as_signed(), hi)


def narrow_hw(v, s: int, width: int):
    """Gates for :func:`circa.numerics.narrow`; the clamp only where the value can overflow."""
    return saturate(nx.round_shift(v, s), width)


# :func:`circa.numerics.narrow` by a run-time shift ``s`` (round half up, saturate) is
# ``saturate_rounded(shift_round(shift_coarse(v, s), s, width), width)``, three steps so
# that a register can sit between each: ``round_shift(v, s) == (((v << 1) >> s) + 1) >> 1``
# for every ``s >= 0``, so one barrel shifter serves, with no special case for ``s == 0``.
# It shifts by ``s``'s multiple of 8 and then by the rest (an 8-way multiplexer each for a
# 6-bit shift), the rounding adder follows the second, and the saturation has a step of its
# own (a barrel shifter behind its shift's fanout, and a wide rounding adder followed by the
# saturation, were critical paths: Fmax).
#
# The rounding adder is only ``width + 2`` bits wide, not the sum's 40 or so: with
# ``t = (v << 1) >> s``, a ``t`` outside ``signed(width + 1)`` gives ``(t + 1) >> 1``
# outside ``signed(width)``, which saturates by ``t``'s sign alone; so the second step adds
# the rounding to ``t``'s low ``width + 1`` bits and flags, beside the adder, whether ``t``
# fits them (a sign-extension test, a few LUTs deep; the 42-bit carry chain before the IFFT
# ended 84 of the 407 paths within 1 ns of the k = 8 design's clock: Fmax).

def shift_coarse(v, s):
    """First step of a run-time narrowing: ``(v << 1) >> (s & ~7)``."""
    return (v << 1) >> Cat(C(0, 3), s[3:])


def shift_round(v, s, width: int):
    """Second step: the rest of the shift and the rounding, ``((v >> (s & 7)) + 1) >> 1``,
    on the low ``width + 1`` bits only: ``Cat(rounded, fits, negative)``, ``width + 3``
    bits, for :func:`saturate_rounded`."""
    t = v >> s[:3]
    if t.shape().width <= width + 1:
        short, fits = t, C(1, 1)
    else:
        short, top = t[:width + 1].as_signed(), t[width:]
        fits = (top.all() | ~top.any()) if t.shape().signed else ~top.any()
    negative = t[-1] if t.shape().signed else C(0, 1)
    rounded = (short + 1) >> 1          # signed(width + 1) holds it; narrower if t is
    top_bit = rounded[-1] if rounded.shape().signed else C(0, 1)
    extend = top_bit.replicate(max(0, width + 1 - len(rounded)))
    return Cat(Cat(rounded, extend)[:width + 1], fits, negative)


def saturate_rounded(r, width: int):
    """Third step: :func:`shift_round`'s result saturated to ``signed(width)``."""
    lo, hi = nx.signed_range(width)
    value, fits, negative = r[:width + 1].as_signed(), r[width + 1], r[width + 2]
    return Mux(fits, saturate(value, width), Mux(negative, lo, hi))


def pipeline_register(m, name, valid, ready_up, ready_down, values):
    """One register stage on a valid/ready stream: drives ``ready_up`` (comb, from
    ``ready_down``) and returns ``(valid_out, registered values)``. Throughput one beat
    a cycle, latency one cycle."""
    out_valid = Signal(name=f"{name}_valid")
    regs = [Signal(v.shape(), name=f"{name}_{n}") for n, v in enumerate(values)]
    m.d.comb += ready_up.eq(~out_valid | ready_down)
    with m.If(ready_up):
        m.d.sync += [out_valid.eq(valid)] + [r.eq(v) for r, v in zip(regs, values)]
    return out_valid, regs


def narrow_stages(m, name, valid, ready_up, ready_down, values, shifts, width: int):
    """A run-time narrowing on a valid/ready stream, ``narrow(v, s, width)`` of each value by
    its shift (sampled with each beat), in three registered steps: :func:`shift_coarse`,
    :func:`shift_round`, :func:`saturate_rounded`. Returns ``(valid_out, values,
    inner_valid)``, the last high while a beat is in the first two registers (for a drain
    condition); latency three cycles, one beat a cycle."""
    ready_round, ready_sat = Signal(name=f"{name}_round_ready"), Signal(name=f"{name}_ready")
    # the rest of each shift travels with the beat: the second step reads a register of its
    # own stage, not the far-away source of the shift (a critical path at k = 8: Fmax)
    coarse_valid, staged = pipeline_register(
        m, f"{name}_coarse", valid, ready_up, ready_round,
        [shift_coarse(v, s) for v, s in zip(values, shifts)] + [s[:3] for s in shifts])
    coarse, rest = staged[:len(values)], staged[len(values):]
    rounded_valid, rounded = pipeline_register(
        m, f"{name}_rounded", coarse_valid, ready_round, ready_sat,
        [shift_round(v, s, width) for v, s in zip(coarse, rest)])
    out_valid, out = pipeline_register(m, name, rounded_valid, ready_sat, ready_down,
                                       [saturate_rounded(v, width) for v in rounded])
    return out_valid, out, coarse_valid | rounded_valid


def pipeline_latency(plan: list) -> int:
    """Register levels of a plan: one per butterfly step, four per twiddle step."""
    return sum({nx.Butterfly: 1, nx.Twiddle: 4}.get(type(step), 0) for step in plan)


class PlanPipeline(wiring.Component):
    """A plan of :mod:`circa.numerics` as a stall-all pipeline.

    Ports
    -----
    i : stream of ``ArrayLayout(signed(in_width), k)``, one block per beat.
    o : stream of ``ArrayLayout(signed(out_width), k)``.

    Latency ``self.latency`` cycles; throughput one block per cycle.
    """

    def __init__(self, plan: list, k: int, in_width: int, out_width: int):
        self._plan = plan
        self._k = k
        self._in_width = in_width
        self._out_width = out_width
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(signed(in_width), k))),
            "o": Out(stream.Signature(data.ArrayLayout(signed(out_width), k))),
        })

    k = property(lambda self: self._k)
    in_width = property(lambda self: self._in_width)
    out_width = property(lambda self: self._out_width)
    plan = property(lambda self: self._plan)

    @property
    def latency(self) -> int:
        """Cycles from an accepted input to its output, with the output always ready."""
        return pipeline_latency(self._plan)

    @property
    def multipliers(self) -> int:
        return nx.plan_multipliers(self._plan)

    def model(self, x: np.ndarray) -> np.ndarray:
        """Bit-exact model: ``(..., k)`` ints in, ``(..., k)`` ints out."""
        x = np.asarray(x, dtype=np.int64)
        return np.stack(nx.run_plan(self._plan, [x[..., i] for i in range(self._k)]), -1)

    def elaborate(self, platform):
        m = Module()
        advance = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]

        valid = self.i.valid

        def stage(values, width):
            """One pipeline level: register each value (as ``signed(width)`` or its own shape)."""
            nonlocal valid
            regs = []
            for n, v in enumerate(values):
                r = Signal(signed(width) if width else v.shape(), name=f"p{stage.level}_{n}")
                with m.If(advance):
                    m.d.sync += r.eq(v)
                regs.append(r)
            v_next = Signal(name=f"p{stage.level}_valid")
            with m.If(advance):
                m.d.sync += v_next.eq(valid)
            valid = v_next
            stage.level += 1
            return regs
        stage.level = 0

        def rotation_product(col, constant, name):
            """A column times a twiddle constant, in the multiplier's operand register (level
            1) and product register (level 2), hw/dsp.py. The column is a register or the
            input, never logic: the multipliers sit in a few rows of the die, and a
            butterfly's sum and narrowing in front of a far multiplier's input was the k = 8
            design's critical path (Fmax)."""
            return product(m, col, constant, name=name, platform=platform,
                           registered_operands=True, en=advance)

        cols = [self.i.p[n] for n in range(self._k)]
        for step in self._plan:
            if isinstance(step, nx.Permute):
                cols = [cols[n] for n in step.order]
            elif isinstance(step, nx.Twiddle):
                # Levels 1 and 2: the four real products of each rotation, each through a
                # multiplier's operand and product registers; the other columns in plain
                # registers.
                products = []
                for n, (cr, ci, c, s) in enumerate(step.rotations):
                    a, b = cols[cr], cols[ci]
                    products.append([rotation_product(v, t, f"tw{stage.level}_{n}_{i}")
                                     for i, (v, t) in enumerate([(a, c), (b, s), (a, s), (b, c)])])
                passed = [n for n in range(self._k) if n not in
                          {col for rot in step.rotations for col in rot[:2]}]
                regs = stage(stage([cols[n] for n in passed], None), None)
                # Level 3: the products registered again, in the fabric beside the sums: the
                # route from a multiplier to the sum and rounding was the k = 8 design's
                # critical path (Fmax).
                flat = stage([p for four in products for p in four] + regs, None)
                products = [flat[4 * n:4 * n + 4] for n in range(len(products))]
                regs = flat[4 * len(products):]
                # Level 4: sum the products, round and saturate back to the column width.
                rotated = dict(zip(passed, regs))
                for (cr, ci, c, s), (ac, bs, as_, bc) in zip(step.rotations, products):
                    rotated[cr] = narrow_hw(ac - bs, nx.TWIDDLE_FRAC, step.width)
                    rotated[ci] = narrow_hw(as_ + bc, nx.TWIDDLE_FRAC, step.width)
                cols = stage([rotated[n] for n in range(self._k)], step.width)
            else:
                cols = stage([narrow_hw(nx.sum_terms(cols, t), s, step.width)
                              for t, s in zip(step.terms, step.shifts)], step.width)

        for n in range(self._k):
            m.d.comb += self.o.p[n].eq(cols[n])
        m.d.comb += self.o.valid.eq(valid)
        return m


class RealFFT(PlanPipeline):
    """Real-input FFT: ``k`` real samples -> halfcomplex spectrum (``k`` reals).

    Parameters
    ----------
    k : block size, 2..64, a power of 2.
    in_width : input sample width (signed).
    width : largest internal width (at most 18: columns are multiplier operands).

    The output is ``rfft(x) / 2**scale_log2`` in FFTW halfcomplex order, rounded by the
    contract, ``out_width = min(in_width + log2 k, width)`` bits. Stages grow one bit each
    until ``width``, then halve (``stage_shifts``).
    """

    def __init__(self, k: int, in_width: int = 16, width: int = 18):
        check_block_size(k)
        check_width("FFT width", width)
        check_width("FFT input width", in_width, hi=width)
        plan = nx.rfft_plan(k, in_width, width)
        self._stage_shifts = nx.fft_stage_shifts(k, in_width, width)
        super().__init__(plan, k, in_width, plan[-1].width)

    stage_shifts = property(lambda self: self._stage_shifts)
    scale_log2 = property(lambda self: sum(self._stage_shifts))


class RealIFFT(PlanPipeline):
    """Inverse real FFT: halfcomplex spectrum -> ``k`` real samples, ``irfft`` (the 1/k
    included, as one halving per stage) rounded by the contract, ``width`` bits throughout.
    """

    def __init__(self, k: int, width: int = 18):
        check_block_size(k)
        check_width("IFFT width", width)
        super().__init__(nx.irfft_plan(k, width), k, width, width)

