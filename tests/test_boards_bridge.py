"""The UART host bridge in Amaranth's simulator, at the byte level and at the pin level:
good frames reach the accelerator, corrupt / truncated / mis-sized / unknown ones never do."""
import random

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from circa.boards import protocol as proto
from circa.boards.bridge import HostBridge
from circa.boards.top import BoardCore, ecp5_pll
from circa.boards.uart import UARTRx, UARTTx, line_bits
from circa.hw.accel import Accelerator, Host, host_data_width
from circa.sim.host import command
from circa.sim.streams import stream_put
from test_hw_accel import SMALL

WIDTH = host_data_width(SMALL)
TIMEOUT = 60


def bridge_bench(script):
    """Run ``script(send, responses)`` against bridge + accelerator; ``send(bytes)`` feeds
    the bridge with random gaps, ``responses(n)`` waits for and parses n response frames."""
    m = Module()
    m.submodules.accel = accel = Accelerator(SMALL)
    m.submodules.bridge = bridge = HostBridge(WIDTH, timeout=TIMEOUT,
                                              config_id=proto.config_id(SMALL))
    wiring.connect(m, bridge.cmd, accel.host_cmd)
    wiring.connect(m, accel.host_rsp, bridge.rsp)
    sim = Simulator(m)
    sim.add_clock(1e-8)
    received = bytearray()
    rng = random.Random(1)

    finished = []

    async def collect(ctx):
        ctx.set(bridge.tx.ready, 1)
        while not finished:
            _, _, valid, byte = await ctx.tick().sample(bridge.tx.valid, bridge.tx.payload)
            if valid:
                received.append(byte)

    async def bench(ctx):
        async def send(frame, gap=0.3):
            for b in frame:
                await stream_put(ctx, bridge.rx, b, rng=rng, gap=gap)

        async def responses(n):
            out = []
            for _ in range(n):
                for _ in range(10_000):
                    if len(received) >= 4 and len(received) >= 6 + received[1]:
                        break
                    await ctx.tick()
                size = 6 + int.from_bytes(received[1:3], "little")
                answer = proto.parse_response(bytes(received[:size]), WIDTH)
                # the RTL's frame is the model's, byte for byte
                assert proto.response(answer.status, answer.data, WIDTH) == received[:size]
                out.append(answer)
                del received[:size]
            return out

        async def idle(cycles):
            await ctx.tick().repeat(cycles)

        await script(send, responses, idle)
        finished.append(True)

    sim.add_testbench(collect)
    sim.add_testbench(bench)
    sim.run()


def frame(cmd):
    return proto.request(cmd, WIDTH)


def test_good_frames_execute_and_answer_in_order():
    value = 0x1234_5678_9ABC_DEF0_0FED_CBA9

    async def script(send, responses, idle):
        # pipelined: four frames back to back, four answers in order
        await send(frame(proto.INFO) + frame(command(Host.WRITE_ACT, 3, data=value))
                   + frame(command(Host.READ_ACT, 3)) + frame(command(Host.STATUS)), gap=0)
        info, write, read, status = await responses(4)
        assert info.status == proto.Status.OK
        assert proto.parse_info(info.data) == (proto.PROTOCOL_VERSION, proto.data_bytes(WIDTH),
                                               proto.config_id(SMALL))
        assert (write.status, write.data) == (proto.Status.OK, None)
        assert (read.status, read.data) == (proto.Status.OK, value)
        assert status.status == proto.Status.OK and status.data & 1 == 0    # not done
    bridge_bench(script)


@pytest.mark.parametrize("fault", ["crc", "truncated", "length", "command"])
def test_bad_frames_are_reported_and_never_executed(fault):
    old, new = 0x1111, 0x2222
    good = frame(command(Host.WRITE_ACT, 5, data=new))
    bad = {"crc": good[:10] + bytes([good[10] ^ 0x40]) + good[11:],
           "truncated": good[:len(good) // 2],
           "length": good[:1] + (len(good) - 5).to_bytes(2, "little") + good[3:],
           "command": proto._frame(proto.REQUEST_SYNC, 12, good[4:-2])}[fault]
    expected = {"crc": proto.Status.CRC, "truncated": proto.Status.TRUNCATED,
                "length": proto.Status.LENGTH, "command": proto.Status.COMMAND}[fault]

    async def script(send, responses, idle):
        await send(frame(command(Host.WRITE_ACT, 5, data=old)))
        await send(bad)
        await idle(2 * TIMEOUT)
        first, second = await responses(2)
        assert first.status == proto.Status.OK and second.status == expected
        await send(frame(command(Host.READ_ACT, 5)))
        (read,) = await responses(1)
        assert read.data == old                     # the bad frame's write never happened
    bridge_bench(script)


def test_board_core_over_the_uart_pins():
    """Bits on the rx pin -> response bits on the tx pin, at 6 cycles per bit."""
    divisor = 6
    core = BoardCore(SMALL, divisor=divisor, timeout=40 * divisor)
    sim = Simulator(core)
    sim.add_clock(1e-8)
    request = frame(command(Host.WRITE_ACT, 2, data=77)) + frame(command(Host.READ_ACT, 2))
    got = bytearray()

    async def send(ctx):
        for byte in request:
            for level in line_bits(byte):
                ctx.set(core.rx, level)
                await ctx.tick().repeat(divisor)

    async def receive(ctx):                     # sample mid-bit, like a UART
        while len(got) < 6 + 6 + proto.data_bytes(WIDTH):
            await ctx.tick().until(core.tx == 0)        # start bit
            await ctx.tick().repeat(divisor // 2 + divisor)
            byte = 0
            for i in range(8):
                byte |= ctx.get(core.tx) << i
                await ctx.tick().repeat(divisor)
            got.append(byte)

    sim.add_testbench(receive)
    sim.add_testbench(send)
    sim.run()
    answers = [proto.parse_response(bytes(got[:6]), WIDTH),
               proto.parse_response(bytes(got[6:]), WIDTH)]
    assert [a.status for a in answers] == [proto.Status.OK] * 2
    assert answers[1].data == 77


def test_uart_rejects_too_small_divisor():
    with pytest.raises(ValueError, match="divisor"):
        UARTRx(2)
    with pytest.raises(ValueError, match="divisor"):
        UARTTx(3)


@pytest.mark.parametrize("fin, fout", [(25e6, 100e6), (25e6, 62.5e6), (100e6, 125e6)])
def test_ecp5_pll_settings_are_in_range(fin, fout):
    p = ecp5_pll(fin, fout)
    assert abs(p["freq_hz"] - fout) <= 0.01 * fout
    assert 400e6 <= p["freq_hz"] * p["CLKOP_DIV"] <= 800e6
    assert p["freq_hz"] == fin / p["CLKI_DIV"] * p["CLKFB_DIV"]
