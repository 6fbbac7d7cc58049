"""Board tops: the accelerator behind a UART host bridge, on a board's clock.

::

    uart.rx ─► sync ─► UARTRx ─► FIFO ─► HostBridge ─► slice ─► Accelerator.host_cmd
    uart.tx ◄───────── UARTTx ◄─ slice ◄─ HostBridge ◄─ slice ◄─ Accelerator.host_rsp
    leds    ◄─ done, error, heartbeat

:class:`BoardCore` is everything but the pins and the clock (simulated as it is under
cocotb); :class:`BoardTop` adds the board's clock, a PLL to ``freq_hz``, and the pins.
"""

from amaranth.hdl import (ClockDomain, ClockSignal, Elaboratable, Instance, Module,
                          ResetSignal, Signal, Value)
from amaranth.lib import cdc, fifo, io, wiring
from amaranth.lib.wiring import In, Out

from circa.boards import protocol as proto
from circa.boards.bridge import HostBridge
from circa.boards.uart import UARTRx, UARTTx
from circa.config import AccelConfig
from circa.hw.accel import Accelerator, host_data_width


class BoardCore(wiring.Component):
    """UART pins to the accelerator. ``divisor`` = clock / baud; ``timeout`` in cycles ends a
    frame whose sender went quiet (default: 100 byte times); ``slices``: register slices
    around the bridge (two host words of flip-flops each way, for Fmax on large designs)."""
    rx: In(1, init=1)
    tx: Out(1, init=1)
    done: Out(1)
    error: Out(1)

    def __init__(self, cfg: AccelConfig, images: dict | None = None, *, divisor: int,
                 timeout: int | None = None, slices: bool = True):
        self._cfg, self._images, self._divisor, self._slices = cfg, images, divisor, slices
        self._timeout = timeout or 1000 * divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        width = host_data_width(self._cfg)
        m.submodules.accel = accel = Accelerator(self._cfg, self._images)
        m.submodules.bridge = bridge = HostBridge(
            width, timeout=self._timeout, config_id=proto.config_id(self._cfg))
        m.submodules.uart_rx = uart_rx = UARTRx(self._divisor)
        m.submodules.uart_tx = uart_tx = UARTTx(self._divisor)
        # Bytes arrive while the bridge answers the previous frame: buffer two frames.
        m.submodules.rx_fifo = rx_fifo = fifo.SyncFIFOBuffered(
            width=8, depth=2 * (9 + proto.data_bytes(width)))
        m.submodules.rx_sync = cdc.FFSynchronizer(self.rx, uart_rx.rx, init=1)
        wiring.connect(m, uart_rx.bytes, rx_fifo.w_stream)
        wiring.connect(m, rx_fifo.r_stream, bridge.rx)
        # Register slices (two-word FIFOs: every output, `ready` too, from a register) around
        # the bridge: it sits by the UART pins, the host port's words come from the
        # scratchpad's lanes across the die, and the response register's loads and the CRC
        # behind the transmitter's `ready` were the k = 16 design's latest inputs (Fmax).
        # Commands and responses keep their order, so the host sees no difference.
        for name, source, sink in (("cmd_slice", bridge.cmd, accel.host_cmd),
                                   ("rsp_slice", accel.host_rsp, bridge.rsp),
                                   ("tx_slice", bridge.tx, uart_tx.bytes)):
            if self._slices:
                m.submodules[name] = stage = fifo.SyncFIFOBuffered(
                    width=len(Value.cast(source.payload)), depth=2)
                wiring.connect(m, source, stage.w_stream)
                source = stage.r_stream
            wiring.connect(m, source, sink)
        m.d.comb += [self.tx.eq(uart_tx.tx), self.done.eq(accel.done),
                     self.error.eq(accel.error)]
        return m


def ecp5_pll(fin_hz: float, fout_hz: float) -> dict:
    """EHXPLLL dividers for ``fout`` from ``fin`` (PFD 3.125-400 MHz, VCO 400-800 MHz),
    the closest achievable frequency first, then the VCO nearest mid-range, 600 MHz:
    ``{"CLKI_DIV", "CLKFB_DIV", "CLKOP_DIV", "freq_hz"}``. The same dividers as Trellis's
    ecppll (tested), except that a frequency more than 1 % off is refused."""
    best = None
    for clki in range(1, 129):
        pfd = fin_hz / clki
        if not 3.125e6 <= pfd <= 400e6:
            continue
        for clkfb in range(1, 81):
            out = pfd * clkfb
            for clkop in range(1, 129):
                if 400e6 <= out * clkop <= 800e6:
                    error = (abs(out - fout_hz), abs(out * clkop - 600e6))   # VCO mid-range
                    if best is None or error < best[0]:
                        best = (error, dict(CLKI_DIV=clki, CLKFB_DIV=clkfb, CLKOP_DIV=clkop,
                                            freq_hz=out))
    if best is None or best[0][0] > 0.01 * fout_hz:
        raise ValueError(f"the ECP5 PLL cannot make {fout_hz / 1e6:g} MHz from "
                         f"{fin_hz / 1e6:g} MHz; choose another --freq")
    return best[1]


def ice40_pll(fin_hz: float, fout_hz: float) -> dict:
    """SB_PLL40 dividers (feedback SIMPLE) for ``fout`` from ``fin`` (PFD 10-133 MHz, VCO
    533-1066 MHz, output 16-275 MHz, loop filter by PFD), the closest achievable frequency
    first: ``{"DIVR", "DIVF", "DIVQ", "FILTER_RANGE", "freq_hz"}``. The same dividers as
    IceStorm's icepll (tested), except that icepll also offers outputs below 16 MHz."""
    best = None
    for divr in range(16):
        pfd = fin_hz / (divr + 1)
        if not 10e6 <= pfd <= 133e6:
            continue
        for divf in range(128):
            vco = pfd * (divf + 1)
            if not 533e6 <= vco <= 1066e6:
                continue
            for divq in range(1, 7):
                out = vco / 2 ** divq
                error = abs(out - fout_hz)
                if 16e6 <= out <= 275e6 and (best is None or error < best[0]):
                    filter_range = 1 + sum(pfd >= f * 1e6 for f in (17, 26, 44, 66, 101))
                    best = (error, dict(DIVR=divr, DIVF=divf, DIVQ=divq,
                                        FILTER_RANGE=filter_range, freq_hz=out))
    if best is None or best[0] > 0.01 * fout_hz:
        raise ValueError(f"the iCE40 PLL cannot make {fout_hz / 1e6:g} MHz from "
                         f"{fin_hz / 1e6:g} MHz (it makes 16 to 275 MHz); choose another --freq")
    return best[1]


class BoardTop(Elaboratable):
    """The accelerator on a board: ``platform``'s default clock, through the family's PLL
    (ECP5 EHXPLLL, iCE40 SB_PLL40_PAD) to ``freq_hz`` when the board's clock differs, a UART
    at ``baud``, LEDs 0-2 show done, error and a heartbeat. ``freq_hz`` after construction
    is the frequency actually made."""

    PLLS = {"ecp5": ecp5_pll, "ice40": ice40_pll}

    def __init__(self, cfg: AccelConfig, images: dict | None = None, *, platform,
                 freq_hz: float, baud: int):
        self.cfg, self.images, self.baud = cfg, images, baud
        fin = platform.default_clk_frequency
        self.pll, self.family = None, platform.family.lower()   # "ecp5", "ice40"
        if abs(freq_hz - fin) > 1:
            if self.family not in self.PLLS:
                raise ValueError(f"{type(platform).__name__} runs at its {fin / 1e6:g} MHz "
                                 f"clock; --freq {freq_hz / 1e6:g} MHz needs a PLL circa does "
                                 "not drive for this family yet")
            self.pll = self.PLLS[self.family](fin, freq_hz)
            freq_hz = self.pll["freq_hz"]
        self.freq_hz = freq_hz
        self.divisor = round(freq_hz / baud)
        if abs(freq_hz / self.divisor - baud) > 0.02 * baud:
            raise ValueError(f"{baud} baud is more than 2 % off at {freq_hz / 1e6:g} MHz "
                             f"(divisor {self.divisor}); choose another --baud")

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = ClockDomain("sync")
        pad = platform.request(platform.default_clk, dir="-")
        sys_clk = Signal()                      # constrainable (a ClockSignal is not)
        m.d.comb += ClockSignal("sync").eq(sys_clk)
        p, locked = self.pll, Signal()
        if p is None:
            m.submodules.clk_buf = clk = io.Buffer("i", pad)
            m.d.comb += sys_clk.eq(clk.i)
        elif self.family == "ecp5":
            m.submodules.clk_buf = clk = io.Buffer("i", pad)
            m.submodules.pll = Instance(
                "EHXPLLL",
                p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
                p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA",
                p_CLKI_DIV=p["CLKI_DIV"], p_CLKFB_DIV=p["CLKFB_DIV"],
                p_CLKOP_DIV=p["CLKOP_DIV"], p_CLKOP_ENABLE="ENABLED",
                p_CLKOP_CPHASE=p["CLKOP_DIV"] - 1, p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP",
                i_CLKI=clk.i, i_CLKFB=sys_clk, o_CLKOP=sys_clk,
                i_RST=0, i_STDBY=0, i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=0,
                i_PHASESTEP=0, i_PHASELOADREG=0, i_PLLWAKESYNC=0, i_ENCLKOP=0,
                o_LOCK=locked)
        else:   # the iCE40's PLL takes its clock straight from the pad (no input buffer)
            m.submodules.pll = Instance(
                "SB_PLL40_PAD", p_FEEDBACK_PATH="SIMPLE", p_PLLOUT_SELECT="GENCLK",
                p_DIVR=p["DIVR"], p_DIVF=p["DIVF"], p_DIVQ=p["DIVQ"],
                p_FILTER_RANGE=p["FILTER_RANGE"],
                i_PACKAGEPIN=pad.io, i_RESETB=1, i_BYPASS=0,
                o_PLLOUTGLOBAL=sys_clk, o_LOCK=locked)
        if p is not None:
            # Reset until the PLL locks, released in step with the clock ("por" holds only
            # the synchronizer). On the ECP5 it reaches every flip-flop's LSR pin through a
            # global network (DCCA): as a fabric net of some 20,000 loads it was the most
            # congested net of the k = 16 design (nextpnr promotes only the clock itself).
            m.domains.por = ClockDomain("por", local=True)
            m.d.comb += ClockSignal("por").eq(sys_clk)
            m.submodules.reset_sync = cdc.ResetSynchronizer(~locked, domain="por")
            rst = Signal()
            m.d.comb += ResetSignal("sync").eq(rst)
            if self.family == "ecp5":
                m.submodules.reset_buf = Instance("DCCA", i_CLKI=ResetSignal("por"), i_CE=1,
                                                  o_CLKO=rst)
            else:                               # nextpnr-ice40 promotes resets itself
                m.d.comb += rst.eq(ResetSignal("por"))
            # nextpnr-ecp5 derives the PLL output's constraint from the pin's ("Derived
            # frequency constraint" in its log); one on sys_clk would name a net that synthesis
            # merges into the PLL's output, and nextpnr would warn and ignore it
            if self.family != "ecp5":
                platform.add_clock_constraint(sys_clk, self.freq_hz)   # (the pin has its own)

        # (no register slices on the iCE40: the UP5K's LSTM leaves no logic cells for them)
        m.submodules.core = core = BoardCore(self.cfg, self.images, divisor=self.divisor,
                                             timeout=int(self.freq_hz // 100),   # 10 ms
                                             slices=self.family != "ice40")
        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx = rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = tx = io.Buffer("o", uart.tx)
        m.d.comb += [core.rx.eq(rx.i), tx.o.eq(core.tx)]
        beat = Signal(range(int(self.freq_hz)))
        alive = Signal()
        m.d.sync += beat.eq(beat + 1)
        with m.If(beat == int(self.freq_hz) - 1):
            m.d.sync += [beat.eq(0), alive.eq(~alive)]
        for n, value in enumerate((core.done, core.error, alive)):
            if ("led", n) in platform.resources:
                m.submodules[f"led{n}"] = led = io.Buffer("o", platform.request("led", n,
                                                                                  dir="-"))
                m.d.comb += led.o.eq(value)
        return m
