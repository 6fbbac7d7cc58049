"""cocotb side of ``tests/test_sim_infra.py``: drive the AddConst stream component.

Run through :func:`circa.sim.verilator.run`; never collected by pytest.
Parameters (from :func:`~circa.sim.verilator.sim_params`):

``x``        int array (n, lanes) of input vectors
``expected`` int array (n, lanes) of expected outputs
``width``    lane width in bits
``seed``, ``in_gap``, ``out_gap``  random gap settings
"""

import random

import cocotb
import numpy as np
from cocotb.utils import get_sim_time

from circa.sim.streams import cocotb_port, cocotb_recv, cocotb_send, pack, unpack
from circa.sim.verilator import CLOCK_PERIOD_NS, sim_params, start_clock_and_reset, write_result


@cocotb.test()
async def smoke(dut):
    p = sim_params()
    x, expected, width = p["x"], p["expected"], p["width"]
    n, lanes = x.shape
    rng = random.Random(p["seed"])
    i, o = cocotb_port(dut, "i"), cocotb_port(dut, "o")
    i.valid.value = 0
    o.ready.value = 0
    await start_clock_and_reset(dut)

    t0 = get_sim_time("ns")
    sender = cocotb.start_soon(cocotb_send(dut.clk, i, [pack(row, width) for row in x],
                                           rng=rng, gap=p["in_gap"]))
    words = await cocotb_recv(dut.clk, o, n, rng=random.Random(p["seed"] + 1),
                              gap=p["out_gap"], timeout_cycles=100 * n)
    await sender
    cycles = int((get_sim_time("ns") - t0) // CLOCK_PERIOD_NS)

    y = np.array([unpack(w, width, lanes) for w in words], dtype=np.int64)
    write_result(y=y, cycles=cycles)
    mismatches = np.flatnonzero((y != expected).any(axis=1))
    assert mismatches.size == 0, (
        f"{mismatches.size} wrong outputs, first at {mismatches[0]}: "
        f"got {y[mismatches[0]]}, expected {expected[mismatches[0]]}")
