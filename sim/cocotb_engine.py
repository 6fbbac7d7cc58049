"""cocotb side: run MVM jobs on the block-circulant engine under Verilator.

Runs inside the simulator (see :func:`circa.sim.engine_rtl.run_jobs`); never collected by
pytest. Parameters from :func:`~circa.sim.verilator.sim_params`:

``k``, ``data_width``  engine block size and word width
``jobs``   list of ``{"base", "p", "q", "shift", "out_shift"}``, one matrix each
``x<n>``   int array ``(vectors, q, k)``: the inputs of job ``n``
``seed``, ``gap``  probability of an idle cycle on input valid and output ready

Writes back ``y<n>`` ``(vectors, p, k)`` and ``counters<n>`` ``(vectors, 2)``: the
engine's ``cycles`` and ``mac_cycles`` of each MVM. Comparison happens on the runner side.
"""
import random

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge, ReadOnly

from circa.sim.streams import cocotb_port, cocotb_recv, cocotb_send, pack, unpack
from circa.sim.verilator import sim_params, start_clock_and_reset, write_result


async def control(dut, job, vectors, counters):
    """Start one MVM after another, as soon as the engine is idle."""
    for _ in range(vectors):
        await FallingEdge(dut.clk)
        dut.p.value, dut.q.value, dut.base.value = job["p"], job["q"], job["base"]
        dut.shift.value, dut.out_shift.value = job["shift"], job["out_shift"]
        dut.start.value = 1
        await FallingEdge(dut.clk)
        dut.start.value = 0
        await ReadOnly()
        while int(dut.busy.value):
            await FallingEdge(dut.clk)
            await ReadOnly()
        counters.append((int(dut.cycles.value), int(dut.mac_cycles.value)))


@cocotb.test()
async def engine_jobs(dut):
    params = sim_params()
    k, width, gap = params["k"], params["data_width"], params["gap"]
    rng = random.Random(params["seed"])
    i_x, o_y = cocotb_port(dut, "i_x"), cocotb_port(dut, "o_y")
    for signal in (i_x.valid, o_y.ready, dut.start, dut.w_en):
        signal.value = 0
    await start_clock_and_reset(dut)

    results = {}
    for n, job in enumerate(params["jobs"]):
        x = params[f"x{n}"]
        vectors, p = len(x), job["p"]
        counters = []
        ctrl = cocotb.start_soon(control(dut, job, vectors, counters))
        sender = cocotb.start_soon(cocotb_send(
            dut.clk, i_x, [pack(block, width) for block in x.reshape(-1, k)], rng=rng, gap=gap))
        words = await cocotb_recv(dut.clk, o_y, vectors * p, rng=rng, gap=gap,
                                  timeout_cycles=1000 + 100 * vectors * p * job["q"])
        await sender
        await ctrl
        results[f"y{n}"] = np.array([unpack(w, width, k) for w in words],
                                    dtype=np.int64).reshape(vectors, p, k)
        results[f"counters{n}"] = np.array(counters, dtype=np.int64)
    write_result(**results)
