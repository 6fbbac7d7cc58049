"""Shared fixtures."""
import pytest
from amaranth.hdl import Elaboratable, Fragment

from circa.hw import dsp


class ECP5(Elaboratable):
    """``dut`` elaborated as for an ECP5 board, for the simulator."""
    family = "ecp5"

    def __init__(self, dut):
        self.dut = dut

    def elaborate(self, platform):
        return Fragment.get(self.dut, self)


@pytest.fixture
def on_ecp5(monkeypatch):
    """``on_ecp5(dut)``: ``dut`` as built for the ECP5, each MULT18X18D primitive simulated
    by :class:`circa.hw.dsp.MULT18X18DModel`; ``on_ecp5.primitives`` lists their ports."""
    def model(**kwargs):
        wrap.primitives.append(kwargs)
        return dsp.MULT18X18DModel(**kwargs)

    def wrap(dut):
        return ECP5(dut)
    wrap.primitives = []
    monkeypatch.setattr(dsp, "mult18x18d", model)
    return wrap
