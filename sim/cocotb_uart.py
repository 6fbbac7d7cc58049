"""cocotb side: a simulated board whose UART is a TCP socket, so the real host runtime
(:class:`circa.boards.runtime.Board`, pyserial ``socket://127.0.0.1:PORT``) drives it.

Runs inside the simulator (see tests/test_boards_runtime.py); never collected by pytest.
Bytes from the socket become bits on ``rx`` and the bits on ``tx`` become bytes on the
socket, ``divisor`` clock cycles per bit, like a USB-UART. The test ends when the host
closes the port. Parameters: ``divisor``, ``port``.
"""
import socket

import cocotb
from cocotb.triggers import ClockCycles, FallingEdge

from circa.boards.uart import line_bits
from circa.sim.verilator import sim_params, start_clock_and_reset


async def tx_to_socket(dut, conn, divisor):
    """Sample the board's tx line in the middle of each bit; forward bytes to the host."""
    while True:
        await FallingEdge(dut.tx)
        await ClockCycles(dut.clk, divisor + divisor // 2)
        byte = 0
        for i in range(8):
            byte |= int(dut.tx.value) << i
            await ClockCycles(dut.clk, divisor)
        conn.sendall(bytes([byte]))


@cocotb.test()
async def board_on_a_socket(dut):
    params = sim_params()
    divisor = params["divisor"]
    dut.rx.value = 1
    await start_clock_and_reset(dut)
    server = socket.create_server(("127.0.0.1", params["port"]))
    server.setblocking(False)
    while True:                                 # the host connects when it is ready
        try:
            conn, _ = server.accept()
            break
        except BlockingIOError:
            await ClockCycles(dut.clk, 1000)
    conn.setblocking(False)
    cocotb.start_soon(tx_to_socket(dut, conn, divisor))
    while True:
        try:
            data = conn.recv(4096)
        except BlockingIOError:
            await ClockCycles(dut.clk, 4 * divisor)
            continue
        if not data:                            # the host closed the port
            break
        for byte in data:
            for level in line_bits(byte):
                dut.rx.value = level
                await ClockCycles(dut.clk, divisor)
    conn.close()
    server.close()
