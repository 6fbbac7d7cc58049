"""hw/dsp.py: the two forms of a registered product (plain registers, the ECP5 primitive)
compute ``a * b`` with the stated latency, through enables, for every operand kind."""
import random

import pytest
from amaranth.hdl import Elaboratable, Module, Signal, signed, unsigned
from amaranth.sim import Simulator

from circa.hw.dsp import product


class Product(Elaboratable):
    def __init__(self, a_shape, b, registered_operands, enabled):
        self.a = Signal(a_shape)
        self.b = Signal(signed(18)) if b is None else b     # None: a signal, else a constant
        self.en = Signal() if enabled else None
        self.registered_operands = registered_operands
        self.p = None

    def elaborate(self, platform):
        m = Module()
        self.p = product(m, self.a, self.b, name="p", platform=platform,
                         registered_operands=self.registered_operands, en=self.en)
        return m


@pytest.mark.parametrize("form", ["plain", "ecp5"])
@pytest.mark.parametrize("a_shape,b", [(signed(18), None), (unsigned(17), None),
                                       (signed(12), -92682), (signed(18), 92681)],
                         ids=["signed", "unsigned", "negative-constant", "constant"])
@pytest.mark.parametrize("registered_operands", [False, True])
@pytest.mark.parametrize("enabled", [False, True])
def test_product_latency_and_value(form, a_shape, b, registered_operands, enabled, on_ecp5):
    dut = Product(a_shape, b, registered_operands, enabled)
    top = on_ecp5(dut) if form == "ecp5" else dut
    rng = random.Random(str((a_shape, b, registered_operands, enabled)))
    span = (-2 ** 17, 2 ** 17 - 1)
    a_range = (-2 ** (a_shape.width - 1), 2 ** (a_shape.width - 1) - 1) if a_shape.signed \
        else (0, 2 ** a_shape.width - 1)
    got, want = [], []

    async def bench(ctx):
        # The registers in software (from 0, as simulated): [product, operands], loaded
        # when enabled.
        pipe = [0, (0, 0)]
        for _ in range(200):
            a = rng.choice(a_range + (rng.randint(*a_range),))
            bv = b if isinstance(b, int) else rng.choice(span + (rng.randint(*span),))
            en = rng.random() < 0.7 if enabled else True
            ctx.set(dut.a, a)
            if not isinstance(b, int):
                ctx.set(dut.b, bv)
            if enabled:
                ctx.set(dut.en, en)
            await ctx.tick()
            if en:
                operands = pipe[1] if registered_operands else (a, bv)
                pipe = [operands[0] * operands[1], (a, bv)]
            got.append(ctx.get(dut.p))
            want.append(pipe[0])

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert got == want
    if form == "ecp5":
        assert len(on_ecp5.primitives) == 1
