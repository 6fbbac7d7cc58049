"""8N1 UART receiver and transmitter, ``divisor`` clock cycles per bit.

Model: a byte ``b`` on the line is a 0 start bit, ``b``'s bits least significant first,
and a 1 stop bit, each held ``divisor`` cycles (:func:`line_bits`).
"""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out


def line_bits(byte: int) -> list[int]:
    """The ten line levels of one byte: start, data LSB first, stop."""
    return [0] + [(byte >> i) & 1 for i in range(8)] + [1]


class _UART(wiring.Component):
    def __init__(self, divisor: int):
        if not isinstance(divisor, int) or divisor < 4:
            raise ValueError(f"UART divisor {divisor!r} (clock cycles per bit) must be an "
                             "integer >= 4: lower the baud rate or raise the clock")
        self._divisor = divisor
        super().__init__()


class UARTRx(_UART):
    """Receiver. ``rx`` must already be synchronised to the clock domain.

    Samples each bit in its middle (the start bit is confirmed half a bit after the falling
    edge). A byte whose stop bit is 0 is dropped and the receiver waits for the line to go
    high. ``bytes.valid`` is high for one cycle per byte and ignores ``ready``: the consumer
    (a FIFO) must take it.
    """
    rx: In(1, init=1)
    bytes: Out(stream.Signature(8))

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(self._divisor))
        bit = Signal(range(8))
        shift = Signal(8)
        m.d.sync += self.bytes.valid.eq(0)
        with m.If(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~self.rx):
                    m.d.sync += timer.eq(self._divisor // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer == 0):
                    m.d.sync += [timer.eq(self._divisor - 1), bit.eq(0)]
                    m.next = "DATA"
                    with m.If(self.rx):                 # a glitch, not a start bit
                        m.next = "IDLE"
            with m.State("DATA"):
                with m.If(timer == 0):
                    m.d.sync += [timer.eq(self._divisor - 1), shift.eq(Cat(shift[1:], self.rx)),
                                 bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer == 0):
                    with m.If(self.rx):
                        m.d.sync += [self.bytes.payload.eq(shift), self.bytes.valid.eq(1)]
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "BREAK"                # framing error: wait for idle
            with m.State("BREAK"):
                with m.If(self.rx):
                    m.next = "IDLE"
        return m


class UARTTx(_UART):
    """Transmitter: takes a byte when idle and sends its ten bits; ``tx`` idles high."""
    bytes: In(stream.Signature(8))
    tx: Out(1, init=1)

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(self._divisor))
        left = Signal(range(11))                       # bits still to send
        shift = Signal(10, init=1)                     # {stop, data, start}, LSB goes out
        m.d.comb += [self.tx.eq(shift[0]), self.bytes.ready.eq(left == 0)]
        with m.If(self.bytes.valid & self.bytes.ready):
            m.d.sync += [shift.eq(Cat(0, self.bytes.payload, 1)), left.eq(10),
                         timer.eq(self._divisor - 1)]
        with m.Elif(left != 0):
            with m.If(timer == 0):
                m.d.sync += [shift.eq(Cat(shift[1:], 1)), left.eq(left - 1),
                             timer.eq(self._divisor - 1)]
            with m.Else():
                m.d.sync += timer.eq(timer - 1)
        return m
