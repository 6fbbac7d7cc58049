"""RTL == model for the pipelined real FFT and IFFT (pyramid level 1, Amaranth simulator)."""
import random

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.sim import Simulator

from circa import numerics as nx
from circa.hw.fft import (RealFFT, RealIFFT, saturate, saturate_rounded, shift_coarse,
                         shift_round)
from circa.sim.streams import stream_get_n, stream_put_all


def simulate(dut, blocks, gap, top=None):
    rng = random.Random(len(blocks))
    got = []

    async def producer(ctx):
        await stream_put_all(ctx, dut.i, [[int(v) for v in b] for b in blocks], rng=rng, gap=gap)

    async def consumer(ctx):
        got.extend(list(p) for p in await stream_get_n(ctx, dut.o, len(blocks), rng=rng, gap=gap))

    sim = Simulator(dut if top is None else top)
    sim.add_clock(1e-8)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    return np.array(got)


@pytest.mark.parametrize("make", [lambda k: RealFFT(k), lambda k: RealFFT(k, 12, 16),
                                  lambda k: RealIFFT(k)], ids=["fft", "fft12", "ifft"])
@pytest.mark.parametrize("k", [2, 4, 8, 16, 32])
def test_rtl_equals_model_with_backpressure(make, k):
    dut = make(k)
    rng = np.random.default_rng(k)
    lo = -2 ** (dut.in_width - 1)
    blocks = rng.integers(lo, -lo, size=(60, k))
    blocks[0], blocks[1] = lo, -lo - 1           # the extremes, where saturation matters
    assert np.array_equal(simulate(dut, blocks, gap=0.3), dut.model(blocks))


@pytest.mark.parametrize("make", [RealFFT, RealIFFT], ids=["fft", "ifft"])
@pytest.mark.parametrize("k", [8, 32])
def test_rtl_equals_model_on_ecp5(make, k, on_ecp5):
    """As built for an ECP5 board: every twiddle product a MULT18X18D with its registers."""
    dut = make(k)
    lo = -2 ** (dut.in_width - 1)
    blocks = np.random.default_rng(k).integers(lo, -lo, size=(40, k))
    assert np.array_equal(simulate(dut, blocks, gap=0.3, top=on_ecp5(dut)), dut.model(blocks))
    assert len(on_ecp5.primitives) == dut.multipliers > 0


def test_latency_is_exact():
    dut = RealFFT(16)
    seen = {}

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.i.p, [1] * 16)
        ctx.set(dut.i.valid, 1)
        await ctx.tick()
        ctx.set(dut.i.valid, 0)
        for cycle in range(1, 40):
            if ctx.get(dut.o.valid):
                seen["latency"] = cycle
                return
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen["latency"] == dut.latency


@pytest.mark.parametrize("kwargs, message", [
    (dict(k=12), "power of 2 from 2 to 64, not 12"),
    (dict(k=128), "not 128"),
    (dict(k=16, width=19), "FFT width must be an integer from 2 to 18"),
    (dict(k=16, in_width=20), "FFT input width must be an integer from 2 to 18"),
])
def test_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RealFFT(**kwargs)


@pytest.mark.parametrize("shape", [signed(7), unsigned(7), signed(5), unsigned(5), unsigned(4),
                                   signed(3)], ids=str)
def test_saturate_clamps_every_value(shape):
    """The sign-bit test clamps exactly like comparisons would, for every input value."""
    width = 5
    v = Signal(shape)
    out = Signal(signed(8))
    m = Module()
    m.d.comb += out.eq(saturate(v, width))
    lo, hi = -2 ** (width - 1), 2 ** (width - 1) - 1
    values = range(-2 ** (shape.width - 1), 2 ** (shape.width - 1)) if shape.signed \
        else range(2 ** shape.width)

    async def bench(ctx):
        for x in values:
            ctx.set(v, x)
            assert ctx.get(out) == min(max(x, lo), hi), x

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("shape", [signed(9), unsigned(9)], ids=str)
@pytest.mark.parametrize("width", [5, 9, 12])
def test_narrowing_steps_equal_the_contract(width, shape):
    """saturate_rounded(shift_round(shift_coarse(v, s), s)) is the contract's narrow(v, s)
    for every 9-bit value and every shift from 0 to 19 and 63 (both steps, carries, clamps,
    the short rounding adder's range flag), into widths narrower and wider than the value."""
    v, s = Signal(shape), Signal(6)
    out = Signal(signed(16))
    m = Module()
    m.d.comb += out.eq(saturate_rounded(shift_round(shift_coarse(v, s), s, width), width))

    async def bench(ctx):
        for shift in [*range(20), 63]:
            ctx.set(s, shift)
            for x in range(-256, 256) if shape.signed else range(512):
                ctx.set(v, x)
                assert ctx.get(out) == int(nx.narrow(np.int64(x), shift, width)), (x, shift)

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
