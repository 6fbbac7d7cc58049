"""Amaranth-simulator driver of the block-circulant engine (fast, for unit tests).

:func:`run_engine` loads no weights through the port: the weight image is the memory's
initial contents, as on a board after configuration.
"""
from __future__ import annotations

import random

import numpy as np
from amaranth.sim import Simulator

from circa.config import EngineConfig, weight_images
from circa.hw.circulant import BlockCirculantEngine
from circa.sim.streams import stream_get_n, stream_put_all


def run_engine(cfg: EngineConfig, wf: np.ndarray, x: np.ndarray, shift: int, out_shift: int,
               *, gap: float = 0.0, seed: int = 0):
    """Run MVMs of every vector in ``x (n, q, k)`` with weight spectra ``wf (p, q, k)``.

    Returns ``(y, counters)``: outputs ``(n, p, k)`` and the ``(cycles, mac_cycles)`` of
    each MVM. ``gap`` is the probability of an idle cycle on input valid and output ready.
    """
    p, q, k = wf.shape
    n = len(x)
    image, (base,) = weight_images(cfg, [wf])
    dut = BlockCirculantEngine(cfg, image)
    rng = random.Random(seed)
    outputs, counters = [], []

    async def control(ctx):
        for _ in range(n):
            ctx.set(dut.p, p)
            ctx.set(dut.q, q)
            ctx.set(dut.base, base)
            ctx.set(dut.shift, shift)
            ctx.set(dut.out_shift, out_shift)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            await ctx.tick().until(~dut.busy)
            counters.append((ctx.get(dut.cycles), ctx.get(dut.mac_cycles)))

    async def producer(ctx):
        blocks = [[int(v) for v in b] for b in x.reshape(-1, k)]
        await stream_put_all(ctx, dut.i_x, blocks, rng=rng, gap=gap)

    async def consumer(ctx):
        got = await stream_get_n(ctx, dut.o_y, n * p, rng=rng, gap=gap)
        outputs.extend(list(b) for b in got)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(control)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    return np.array(outputs, dtype=np.int64).reshape(n, p, k), counters
