"""A FIFO between two ends of the die: each side counts for itself.

A FIFO's level takes both sides' enables, so a write by one unit and a read decided by
another, far away, meet in it within a cycle. In the k = 8 builds that round trip was the
critical path twice: the engine's spectra FIFO, then the accelerator's input FIFO
(docs/fmax-history.md). :class:`SplitFIFO` keeps no level. Its words sit in LUT RAM,
written at the write side's place and read (combinationally) at the read side's; the
write side counts free places from a register of the reads, the read side stored words
from a register of the writes. A count that lags the other side only delays: it never
overfills the FIFO nor reads a place before it is written.

The write side claims a place before it writes it (``claim``, only while ``can_claim``),
any number of cycles ahead (a pipeline in front of the FIFO: an FFT, a block RAM read),
and writes its claims in order (``w_en``, ``w_data``). A place read at cycle t can be
claimed again at t + 3; a word written at t can be read at t + 2.
"""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out


class SplitFIFO(wiring.Component):
    """A FIFO of ``depth`` words of ``shape`` with no level (module docstring).

    Ports
    -----
    claim : In(1), claim a place (only while ``can_claim``).
    can_claim : Out(1), a register: two places are unclaimed, so a claim this cycle
        (counted the next) leaves one.
    w_en, w_data : write the oldest claim's word.
    r_rdy : Out(1), a register: the head is valid.
    r_en : In(1), take the head (ignored unless ``r_rdy``).
    r_data : Out(shape), the head, from LUT RAM.
    """

    def __init__(self, shape, depth: int):
        self._depth = depth
        super().__init__({"claim": In(1), "can_claim": Out(1, init=1),
                          "w_en": In(1), "w_data": In(shape),
                          "r_rdy": Out(1), "r_en": In(1), "r_data": Out(shape)})

    depth = property(lambda self: self._depth)

    def elaborate(self, platform):
        m, depth = Module(), self._depth
        m.submodules.storage = storage = memory.Memory(
            shape=self.w_data.shape(), depth=depth, init=[])
        write, read = storage.write_port(), storage.read_port(domain="comb")
        write_at, read_at = Signal(range(depth)), Signal(range(depth))
        take = Signal()
        m.d.comb += [take.eq(self.r_en & self.r_rdy),
                     write.en.eq(self.w_en), write.addr.eq(write_at), write.data.eq(self.w_data),
                     read.addr.eq(read_at), self.r_data.eq(read.data)]
        with m.If(self.w_en):
            m.d.sync += write_at.eq(Mux(write_at == depth - 1, 0, write_at + 1))
        with m.If(take):
            m.d.sync += read_at.eq(Mux(read_at == depth - 1, 0, read_at + 1))

        # write side: places neither claimed nor holding a word; a claim and a read are
        # counted a cycle late, from registers (the read comes from across the die)
        credits = Signal(range(depth + 1), init=depth)
        claimed, freed = Signal(), Signal()
        m.d.sync += [claimed.eq(self.claim), freed.eq(take),
                     credits.eq(credits - claimed + freed),
                     self.can_claim.eq(credits - claimed >= 2)]

        # read side: words stored, from a register of the writes. The read decision only
        # selects between values made from registers (take -> count -> r_rdy through a
        # carry chain was a k = 8 build's critical path: Fmax).
        wrote, stored = Signal(), Signal(range(depth + 1))
        stored_plus = Signal.like(stored)
        m.d.comb += stored_plus.eq(stored + wrote)
        m.d.sync += [wrote.eq(self.w_en),
                     stored.eq(Mux(take, stored_plus - 1, stored_plus)),
                     self.r_rdy.eq((stored_plus >= 2) | (stored_plus != 0) & ~take)]
        return m
