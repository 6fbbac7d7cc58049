"""End to end under Verilator: the pyserial host runtime loads a Program over the simulated
UART, runs it and reads back every output word, equal to the golden model; bad frames on
the wire are reported and resent, never executed."""
import concurrent.futures
import socket
import time

import numpy as np
import pytest

from circa.boards import protocol as proto
from circa.boards.runtime import Board
from circa.boards.top import BoardCore
from circa.compiler import executor
from circa.hw.accel import Host, host_data_width
from circa.sim import verilator as vl
from circa.sim.host import command
from test_hw_accel import SMALL
from test_schedule import compile_model

DIVISOR = 8
WIDTH = host_data_width(SMALL)


class CorruptOnce:
    """A serial port that flips one bit of its ``nth`` write (a noisy line)."""

    def __init__(self, port, nth: int):
        self.port, self.nth = port, nth

    def write(self, data: bytes):
        self.nth -= 1
        if self.nth == 0:
            data = data[:8] + bytes([data[8] ^ 0x10]) + data[9:]
        return self.port.write(data)

    def __getattr__(self, name):
        return getattr(self.port, name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connect(port: int, cfg, seconds: float = 120) -> Board:
    deadline = time.monotonic() + seconds
    while True:
        try:
            return Board.open(f"socket://127.0.0.1:{port}", cfg, timeout=60)
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.mark.slow
def test_runtime_runs_a_program_over_the_uart():
    _, program, x = compile_model("lstm_proj", "circulant:8", SMALL)
    x = x[:2]
    core = BoardCore(SMALL, divisor=DIVISOR, timeout=40 * 10 * DIVISOR)
    built = vl.build(vl.verilog_of(core, "board"), "board")
    port = free_port()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        sim = pool.submit(vl.run, built, "board", "circa.sim.cocotb_uart",
                          params={"divisor": DIVISOR, "port": port})
        board = connect(port, SMALL)
        try:
            # a corrupt and a truncated frame: answered with an error, not executed
            write = proto.request(command(Host.WRITE_ACT, 0, data=0x5A5A), WIDTH)
            faults = []
            for bad in (write[:9] + bytes([write[9] ^ 1]) + write[10:], write[:len(write) // 2]):
                board.link.port.write(bad)
                faults.append(board.link._response().status)
            assert faults == [proto.Status.CRC, proto.Status.TRUNCATED]
            assert board.link.transact([command(Host.READ_ACT, 0)]) == [0]
            # loading with one frame corrupted on the wire: rejected, resent
            board.link.port = CorruptOnce(board.link.port, nth=5)
            board.load(program)
            assert board.link.rejected == 1
            outputs, counters = board.run(program, x)
        finally:
            board.link.port.close()
        result = sim.result()
    assert result.passed, result.log_tail()
    expected = executor.run(program, x)
    expected = expected if program.sequence_output else expected[:, None]
    assert np.array_equal(outputs, expected.numpy())
    assert all(c["cycles"] > 0 and c["instructions"] > 0 for c in counters)
