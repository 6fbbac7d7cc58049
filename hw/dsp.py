"""Registered products, with their registers inside the FPGA's multiplier block.

:func:`product` is ``a * b`` through one register (the product) or two (the operands,
then the product), the registers a DSP block carries. On the ECP5 it instantiates the
MULT18X18D with those registers enabled, because yosys's ``synth_ecp5`` maps every
product onto a MULT18X18D with its registers bypassed and leaves them in the fabric,
where nextpnr may place them far from the multiplier: a path then has routing on both
sides of the multiplier. nextpnr times the registered modes (docs/fmax-history.md: the
k = 8 and k = 16 builds before and after).

Elsewhere (simulation, the iCE40, Xilinx) the registers are plain reset-less flip-flops;
the two forms compute the same values cycle for cycle (``tests/test_hw_dsp.py`` runs the
ECP5 form against :class:`MULT18X18DModel`, a model of the primitive's documented
behaviour in the modes used here).
"""
from __future__ import annotations

from amaranth.hdl import ClockSignal, Elaboratable, Instance, Module, Signal, Value, signed

OPERAND_BITS, PRODUCT_BITS = 18, 36     # MULT18X18D: signed 18 x 18 -> 36


def _fits(v: Value) -> bool:
    shape = v.shape()
    return shape.width <= OPERAND_BITS - (0 if shape.signed else 1)


def product(m: Module, a, b, *, name: str, platform, registered_operands: bool,
            en=None) -> Signal:
    """``a * b`` (the shape Amaranth gives it) after ``2`` register levels if
    ``registered_operands`` (operands, then product), else ``1`` (product). The registers
    load when ``en`` (every cycle if ``None``) and have no reset: they carry data whose
    validity the caller tracks. ``a`` and ``b`` are values or ints (a constant operand is
    registered too, so that every multiplier is in the same, fully registered mode)."""
    a, b = Value.cast(a), Value.cast(b)
    prod = Signal((a * b).shape(), name=name, reset_less=True)
    if getattr(platform, "family", "").lower() == "ecp5" and _fits(a) and _fits(b):
        regs = "CLK0" if registered_operands else "NONE"
        a18, b18 = Signal(signed(OPERAND_BITS)), Signal(signed(OPERAND_BITS))
        p36 = Signal(signed(PRODUCT_BITS))
        m.d.comb += [a18.eq(a), b18.eq(b), prod.eq(p36)]
        m.submodules[name] = mult18x18d(
            p_REG_INPUTA_CLK=regs, p_REG_INPUTB_CLK=regs, p_REG_OUTPUT_CLK="CLK0",
            i_CLK0=ClockSignal(), i_CE0=1 if en is None else en, i_RST0=0,
            i_SIGNEDA=1, i_SIGNEDB=1, i_SOURCEA=0, i_SOURCEB=0,
            **{f"i_A{n}": a18[n] for n in range(OPERAND_BITS)},
            **{f"i_B{n}": b18[n] for n in range(OPERAND_BITS)},
            **{f"i_C{n}": 0 for n in range(OPERAND_BITS)},
            **{f"o_P{n}": p36[n] for n in range(PRODUCT_BITS)})
        return prod
    if registered_operands:
        ra = Signal(a.shape(), name=f"{name}_a", reset_less=True)
        rb = Signal(b.shape(), name=f"{name}_b", reset_less=True)
        _load(m, en, [ra.eq(a), rb.eq(b)])
        a, b = ra, rb
    _load(m, en, prod.eq(a * b))
    return prod


def _load(m: Module, en, statements):
    if en is None:
        m.d.sync += statements
    else:
        with m.If(en):
            m.d.sync += statements


def mult18x18d(**kwargs) -> Elaboratable:
    """The ECP5 multiplier primitive (tests substitute :class:`MULT18X18DModel`)."""
    return Instance("MULT18X18D", **kwargs)


class MULT18X18DModel(Elaboratable):
    """MULT18X18D in the modes :func:`product` uses: signed A and B (``SIGNEDA``/``SIGNEDB``
    high), operands from the A/B pins, input registers on ``CLK0`` or none, output register
    on ``CLK0``, all enabled by ``CE0``; ``RST0`` low (Lattice TN1267, sysDSP usage guide:
    ``P = A * B``, 36 bits, through the enabled registers)."""

    def __init__(self, **kwargs):
        self.kwargs = kwargs

    def elaborate(self, platform):
        kw, m = self.kwargs, Module()
        assert kw["i_SIGNEDA"] == kw["i_SIGNEDB"] == 1, "signed operands only"
        assert kw["p_REG_OUTPUT_CLK"] == "CLK0"
        assert kw["p_REG_INPUTA_CLK"] == kw["p_REG_INPUTB_CLK"] in ("CLK0", "NONE")
        a, b = Signal(signed(OPERAND_BITS)), Signal(signed(OPERAND_BITS))
        m.d.comb += [a[n].eq(kw[f"i_A{n}"]) for n in range(OPERAND_BITS)]
        m.d.comb += [b[n].eq(kw[f"i_B{n}"]) for n in range(OPERAND_BITS)]
        if kw["p_REG_INPUTA_CLK"] == "CLK0":
            ra, rb = Signal(signed(OPERAND_BITS)), Signal(signed(OPERAND_BITS))
            with m.If(kw["i_CE0"]):
                m.d.sync += [ra.eq(a), rb.eq(b)]
            a, b = ra, rb
        p = Signal(signed(PRODUCT_BITS))
        with m.If(kw["i_CE0"]):
            m.d.sync += p.eq(a * b)
        m.d.comb += [kw[f"o_P{n}"].eq(p[n]) for n in range(PRODUCT_BITS)]
        return m
