"""The UART host bridge: framed, checksummed requests in, host-port commands out.

Model and frame format: :mod:`circa.boards.protocol` (docs/host-protocol.md). The bridge
reads a whole request frame into a shift register while the CRC runs beside it; only a
frame whose length, CRC and command are right reaches the accelerator's ``host_cmd``
(so a corrupt or truncated frame is never executed). Every request gets one response:
OK (with the read data for READ_ACT, STATUS, COUNTER and INFO) or an error status. A line
that goes quiet for ``timeout`` cycles inside a frame ends it as TRUNCATED; after a
LENGTH error the bridge discards bytes until the line has been quiet that long.

Throughput: one byte per cycle in and out, so the UART is always the bound; a response
is never longer than its request, so a host may pipeline frames.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import crc, data, stream, wiring
from amaranth.lib.wiring import In, Out

from circa.boards import protocol as proto
from circa.hw.accel import Host

_RESPONDS = (Host.READ_ACT, Host.STATUS, Host.COUNTER)


def command_layout(data_width: int) -> data.StructLayout:
    return data.StructLayout({"kind": 4, "addr": 16, "lane": 8, "data": unsigned(data_width)})


class HostBridge(wiring.Component):
    """Byte streams (from a UART) <-> the accelerator's host port.

    Parameters: ``data_width`` of the host port, ``timeout`` in cycles, ``config_id``
    (answered by INFO). Ports: ``rx`` bytes in, ``tx`` bytes out, ``cmd`` / ``rsp`` to the
    accelerator's ``host_cmd`` / ``host_rsp``.
    """

    def __init__(self, data_width: int, *, timeout: int, config_id: int = 0):
        self._width, self._timeout, self._id = data_width, timeout, config_id
        super().__init__({
            "rx": In(stream.Signature(8)),
            "tx": Out(stream.Signature(8)),
            "cmd": Out(stream.Signature(command_layout(data_width))),
            "rsp": In(stream.Signature(unsigned(data_width))),
        })

    def elaborate(self, platform):
        m = Module()
        nbytes = proto.data_bytes(self._width)
        request_length = 3 + nbytes
        rx, tx, cmd, rsp = self.rx, self.tx, self.cmd, self.rsp

        m.submodules.rx_crc = rx_crc = crc.catalog.CRC16_CCITT_FALSE(data_width=8).create()
        m.submodules.tx_crc = tx_crc = crc.catalog.CRC16_CCITT_FALSE(data_width=8).create()
        m.d.comb += [rx_crc.data.eq(rx.payload), tx_crc.data.eq(tx.payload)]

        length = Signal(16)
        kind = Signal(8)
        body = Signal(8 * request_length)       # addr, lane, data: bytes shifted in from the top
        left = Signal(range(max(request_length, nbytes) + 1))
        quiet = Signal(range(self._timeout + 1))
        status = Signal(8)
        answer = Signal(8 * nbytes)            # response data, shifted out from the bottom
        with_data = Signal()

        byte = rx.valid & rx.ready
        with m.If(byte):
            m.d.sync += quiet.eq(0)
        with m.Elif(quiet != self._timeout):
            m.d.sync += quiet.eq(quiet + 1)
        timed_out = ~rx.valid & (quiet == self._timeout)

        m.d.comb += [cmd.p.kind.eq(kind), cmd.p.addr.eq(body[:16]), cmd.p.lane.eq(body[16:24]),
                     cmd.p.data.eq(body[24:])]

        def respond(code, value=None):
            m.d.sync += status.eq(code)
            if value is None:
                m.d.sync += with_data.eq(0)
            else:
                m.d.sync += [with_data.eq(1), answer.eq(value)]
            m.next = "R_SYNC"

        def receive(next_state, action=()):
            """Consume one byte of the frame body (into the CRC); give up on silence."""
            m.d.comb += [rx.ready.eq(1), rx_crc.valid.eq(rx.valid)]
            with m.If(rx.valid):
                m.d.sync += action
                m.next = next_state
            with m.Elif(timed_out):
                respond(proto.Status.TRUNCATED)

        with m.FSM():
            with m.State("SYNC"):
                m.d.comb += [rx.ready.eq(1), rx_crc.start.eq(1)]
                with m.If(rx.valid & (rx.payload == proto.REQUEST_SYNC)):
                    m.next = "LEN0"
            with m.State("LEN0"):
                receive("LEN1", length[:8].eq(rx.payload))
            with m.State("LEN1"):
                receive("CMD", length[8:].eq(rx.payload))
            with m.State("CMD"):
                with m.If(length != request_length):
                    respond(proto.Status.LENGTH)    # then drain (see R_CRC1)
                with m.Else():
                    receive("BODY", [kind.eq(rx.payload), left.eq(request_length)])
            with m.State("BODY"):
                receive("BODY", [body.eq(Cat(body[8:], rx.payload)), left.eq(left - 1)])
                with m.If(rx.valid & (left == 1)):
                    m.next = "CRC0"
            with m.State("CRC0"):
                receive("CRC1")
            with m.State("CRC1"):
                receive("CHECK")
            with m.State("CHECK"):                  # the CRC register settles this cycle
                with m.If(~rx_crc.match_detected):
                    respond(proto.Status.CRC)
                with m.Elif(kind == proto.INFO):
                    respond(proto.Status.OK, proto.info_word(self._id, self._width))
                with m.Elif(kind > max(Host)):
                    respond(proto.Status.COMMAND)
                with m.Else():
                    m.next = "EXECUTE"
            with m.State("EXECUTE"):
                m.d.comb += cmd.valid.eq(1)
                with m.If(cmd.ready):
                    with m.If(sum((kind == k).as_unsigned() for k in _RESPONDS) != 0):
                        m.next = "READ"
                    with m.Else():
                        respond(proto.Status.OK)
            with m.State("READ"):
                m.d.comb += rsp.ready.eq(1)
                with m.If(rsp.valid):
                    respond(proto.Status.OK, rsp.payload)

            # -- response: 5A, length, status, data, CRC (high byte first) -----------------
            def send(value, next_state, into_crc=True, action=()):
                m.d.comb += [tx.valid.eq(1), tx.payload.eq(value)]
                if into_crc:
                    m.d.comb += tx_crc.valid.eq(tx.ready)
                with m.If(tx.ready):
                    m.d.sync += action
                    m.next = next_state

            with m.State("R_SYNC"):
                m.d.comb += tx_crc.start.eq(1)
                send(proto.RESPONSE_SYNC, "R_LEN0", into_crc=False, action=left.eq(nbytes))
            with m.State("R_LEN0"):
                send(Mux(with_data, nbytes & 0xFF, 0), "R_LEN1")
            with m.State("R_LEN1"):
                send(Mux(with_data, nbytes >> 8, 0), "R_STATUS")
            with m.State("R_STATUS"):
                send(status, "R_DATA")
                with m.If(~with_data):
                    with m.If(tx.ready):
                        m.next = "R_CRC0"
            with m.State("R_DATA"):
                send(answer[:8], "R_DATA", action=[answer.eq(answer >> 8), left.eq(left - 1)])
                with m.If(tx.ready & (left == 1)):
                    m.next = "R_CRC0"
            with m.State("R_CRC0"):
                send(tx_crc.crc[8:], "R_CRC1", into_crc=False)
            with m.State("R_CRC1"):
                send(tx_crc.crc[:8], "SYNC", into_crc=False)
                with m.If(tx.ready & (status == proto.Status.LENGTH)):
                    m.next = "DRAIN"
            with m.State("DRAIN"):                  # discard the rest of a bad frame
                m.d.comb += rx.ready.eq(1)
                with m.If(timed_out):
                    m.next = "SYNC"
        return m
