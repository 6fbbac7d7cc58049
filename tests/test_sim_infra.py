"""Tests of the generic simulation infrastructure (``circa.sim``).

The device under test is :class:`AddConst`, a pipelined stream component
adding a constant to each of 4 signed 8-bit lanes (wrapping), with
back-pressure.  It is exercised by the Amaranth simulator and, marked slow,
by cocotb under Verilator (``tests/cocotb_smoke.py``).
"""

import random
from pathlib import Path

import numpy as np
import pytest
from amaranth import Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from circa.sim import verilator as vl
from circa.sim.streams import pack, stream_get_n, stream_put_all, unpack

LANES, WIDTH, CONST = 4, 8, -3
COCOTB_MODULE = str(Path(__file__).parent / "cocotb_smoke.py")


class AddConst(wiring.Component):
    """Add ``const`` to every lane, through ``stages`` stallable registers."""

    def __init__(self, const=CONST, lanes=LANES, width=WIDTH, stages=2):
        self.const, self.stages = const, stages
        layout = data.ArrayLayout(signed(width), lanes)
        super().__init__({"i": In(stream.Signature(layout)),
                          "o": Out(stream.Signature(layout))})

    def elaborate(self, platform):
        m = Module()
        layout = self.i.payload.shape()
        valids = [Signal(name=f"s{k}_valid") for k in range(self.stages)]
        datas = [Signal(layout, name=f"s{k}_data") for k in range(self.stages)]
        readies = [Signal(name=f"s{k}_ready") for k in range(self.stages)]
        for k in range(self.stages):
            # A stage accepts when empty or when its content moves on.
            next_ready = readies[k + 1] if k + 1 < self.stages else self.o.ready
            m.d.comb += readies[k].eq(~valids[k] | next_ready)
            with m.If(readies[k]):
                if k == 0:
                    m.d.sync += valids[0].eq(self.i.valid)
                    for j in range(layout.length):
                        m.d.sync += datas[0][j].eq(self.i.payload[j] + self.const)
                else:
                    m.d.sync += [valids[k].eq(valids[k - 1]), datas[k].eq(datas[k - 1])]
        m.d.comb += [
            self.i.ready.eq(readies[0]),
            self.o.valid.eq(valids[-1]),
            self.o.payload.eq(datas[-1]),
        ]
        return m


def reference(x):
    """Expected AddConst output: lane-wise ``x + CONST`` wrapped to WIDTH bits."""
    y = (np.asarray(x, dtype=np.int64) + CONST) & ((1 << WIDTH) - 1)
    return np.where(y >= 1 << (WIDTH - 1), y - (1 << WIDTH), y)


def random_vectors(n, seed=0):
    rng = np.random.default_rng(seed)
    lo, hi = -(1 << (WIDTH - 1)), 1 << (WIDTH - 1)
    x = rng.integers(lo, hi, size=(n, LANES))
    x[0] = [lo, hi - 1, 0, lo + 1]  # include wrap-around corners
    return x


def test_pack_unpack_roundtrip():
    values = [-128, 127, -1, 5]
    word = pack(values, 8)
    assert word == 0x05_FF_7F_80  # element 0 in the least significant bits
    assert unpack(word, 8, 4) == values
    assert unpack(word, 8, 4, signed=False) == [128, 127, 255, 5]


@pytest.mark.parametrize("in_gap,out_gap", [(0.0, 0.0), (0.5, 0.5), (0.1, 0.8)])
def test_amaranth_sim_random_gaps(in_gap, out_gap):
    dut = AddConst()
    x = random_vectors(50)
    got = []

    async def producer(ctx):
        await stream_put_all(ctx, dut.i, [list(map(int, row)) for row in x],
                             rng=random.Random(1), gap=in_gap)

    async def consumer(ctx):
        got.extend(await stream_get_n(ctx, dut.o, len(x), rng=random.Random(2), gap=out_gap))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    assert np.array_equal(np.array([list(p) for p in got]), reference(x))


@pytest.fixture(scope="module")
def addconst_build():
    """Verilator build of AddConst (cached across runs in the circa cache)."""
    return vl.build(vl.verilog_of(AddConst(), "top"), "top")


def test_verilog_port_names():
    text = vl.verilog_of(AddConst(), "top")
    for port in ("clk", "rst", "i__valid", "i__ready", "o__valid", "o__ready"):
        assert f"put {port};" in text
    assert "input [31:0] i__payload;" in text
    assert "output [31:0] o__payload;" in text


@pytest.mark.slow
def test_verilator_cocotb_smoke(addconst_build, tmp_path):
    x = random_vectors(50, seed=3)
    params = dict(x=x, expected=reference(x), width=WIDTH, seed=7, in_gap=0.4, out_gap=0.4)
    res = vl.run(addconst_build, "top", COCOTB_MODULE, params=params, run_dir=tmp_path)
    assert res.passed, res.log_tail()
    assert res.tests == {"smoke": True}
    assert np.array_equal(res.data["y"], reference(x))
    assert res.data["cycles"] >= len(x)
    assert res.run_seconds > 0 and res.sim_time_ns > 0

    # A second build of the same design is a cache hit.
    again = vl.build(vl.verilog_of(AddConst(), "top"), "top")
    assert again.cached and again.dir == addconst_build.dir
    print(f"build {addconst_build.build_seconds:.1f}s, run {res.run_seconds:.2f}s, "
          f"{res.cycles_per_second:.0f} cycles/s")


@pytest.mark.slow
def test_verilator_failure_is_reported(addconst_build):
    x = random_vectors(8, seed=4)
    wrong = reference(x)
    wrong[5, 2] += 1
    res = vl.run(addconst_build, "top", COCOTB_MODULE,
                 params=dict(x=x, expected=wrong, width=WIDTH, seed=0, in_gap=0.0, out_gap=0.0))
    assert not res.passed
    assert res.tests == {"smoke": False}
    assert "first at 5" in res.failures["smoke"]
    assert np.array_equal(res.data["y"], reference(x))  # written before the assert


@pytest.mark.slow
def test_verilator_build_error(tmp_path):
    with pytest.raises(vl.BuildError, match="syntax error"):
        vl.build("module top(input clk); wire x = ; endmodule\n", "top", tmp_path / "bad")
