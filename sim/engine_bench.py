"""Amaranth-simulator driver of the MVM engines (fast, for unit tests).

Both engines share one interface: ``start`` with ``p``, ``q``, ``base``, ``shift`` (and
for the circulant engine ``out_shift``), ``q`` blocks in on ``i_x``, ``p`` blocks out on
``o_y``, ``busy`` and the ``cycles``/``mac_cycles`` counters.
"""
from __future__ import annotations

import random

import numpy as np
from amaranth.sim import Simulator

from circa.config import EngineConfig, weight_images
from circa.hw.circulant import BlockCirculantEngine
from circa.sim.streams import stream_get_n, stream_put_all


def run_mvms(dut, jobs, *, gap: float = 0.0, seed: int = 0, before=None, top=None):
    """Run ``jobs = [(x (n, q, k), ports)]``: one MVM per vector of ``x``, started with
    the engine inputs ``ports`` (a dict with at least ``p``).

    ``before(ctx)``, if given, runs first (e.g. loading weights through the write port).
    ``top``, if given, is the design simulated, ``dut`` within it (e.g. built for a board).
    ``gap`` is the probability of an idle cycle on input valid and output ready. Returns
    the outputs of each job ``(n, p, k)`` and the ``(cycles, mac_cycles)`` of every MVM.
    """
    k = jobs[0][0].shape[-1]
    rng = random.Random(seed)
    outputs, counters = [], []

    async def control(ctx):
        if before is not None:
            await before(ctx)
        for x, ports in jobs:
            for _ in x:
                for name, value in {**ports, "q": x.shape[1]}.items():
                    ctx.set(getattr(dut, name), value)
                ctx.set(dut.start, 1)
                await ctx.tick()
                ctx.set(dut.start, 0)
                await ctx.tick().until(~dut.busy)
                counters.append((ctx.get(dut.cycles), ctx.get(dut.mac_cycles)))

    async def producer(ctx):
        blocks = [[int(v) for v in b] for x, _ in jobs for b in x.reshape(-1, k)]
        await stream_put_all(ctx, dut.i_x, blocks, rng=rng, gap=gap)

    async def consumer(ctx):
        total = sum(len(x) * ports["p"] for x, ports in jobs)
        outputs.extend(list(b) for b in await stream_get_n(ctx, dut.o_y, total, rng=rng, gap=gap))

    sim = Simulator(dut if top is None else top)
    sim.add_clock(1e-8)
    sim.add_testbench(control)
    sim.add_testbench(producer, background=True)
    sim.add_testbench(consumer)
    sim.run()
    flat = np.array(outputs, dtype=np.int64).reshape(-1, k)
    result, at = [], 0
    for x, ports in jobs:
        result.append(flat[at:at + len(x) * ports["p"]].reshape(len(x), ports["p"], k))
        at += len(x) * ports["p"]
    return result, counters


def run_engine(cfg: EngineConfig, wf: np.ndarray, x: np.ndarray, shift: int, out_shift: int,
               *, gap: float = 0.0, seed: int = 0, wrap=None):
    """Block-circulant MVMs of every vector in ``x (n, q, k)`` with weight spectra
    ``wf (p, q, k)`` (the memory's initial contents, as on a board after configuration).
    ``wrap(engine)``, if given, is the design simulated (:func:`run_mvms`'s ``top``).
    Returns ``(y (n, p, k), counters)``."""
    image, (base,) = weight_images(cfg, [wf])
    dut = BlockCirculantEngine(cfg, image)
    ports = dict(p=wf.shape[0], base=base, shift=shift, out_shift=out_shift)
    (y,), counters = run_mvms(dut, [(x, ports)], gap=gap, seed=seed,
                              top=None if wrap is None else wrap(dut))
    return y, counters
