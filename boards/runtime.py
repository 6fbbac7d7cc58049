"""Host runtime: drive a board's accelerator over its UART (pyserial).

::

    board = Board.open("/dev/ttyUSB0", program.config, baud=1_000_000)
    board.load(program)                        # instructions, weights, tables, scratchpad
    y, counters = board.run(program, x)        # quantize, write, START, wait, read back

Any pyserial URL works (``socket://host:port`` is how the tests reach the simulated board).
Frames are pipelined ``window`` deep; a frame the board rejects (CRC, length, truncated) is
sent again up to ``retries`` times, and a link that stays bad raises :class:`LinkError`
naming the command and the board's answer.
"""
from __future__ import annotations

import time

import numpy as np

from circa.boards import protocol as proto
from circa.compiler import executor
from circa.compiler.program import Program
from circa.config import AccelConfig
from circa.hw.accel import COUNTERS, Host, host_data_width
from circa.sim import host

_READS = (Host.READ_ACT, Host.STATUS, Host.COUNTER, proto.INFO)


class LinkError(RuntimeError):
    """The board did not answer, or kept rejecting a frame."""


class Link:
    """Request/response frames over a pyserial port for a host port ``data_width`` wide."""

    def __init__(self, port, data_width: int, *, window: int = 1, retries: int = 3,
                 quiet_s: float = 0.02):
        self.port, self.width = port, data_width
        self.window, self.retries, self.quiet_s = window, retries, quiet_s
        self.rejected = 0                      # frames the board answered with an error

    def _read(self, n: int) -> bytes:
        got = self.port.read(n)
        if len(got) != n:
            raise LinkError(f"the board sent {len(got)} of {n} expected bytes and then went "
                            "quiet: check the port, the baud rate and that the bitstream is "
                            "loaded")
        return got

    def _response(self) -> proto.Response:
        head = self._read(4)
        length = int.from_bytes(head[1:3], "little")
        frame = head + self._read(length + 2) if head[0] == proto.RESPONSE_SYNC else head
        try:
            return proto.parse_response(frame, self.width)
        except proto.FrameError as e:
            raise LinkError(f"garbled response from the board: {e}") from None

    def _resync(self):
        """Let the board finish discarding a bad frame, then forget what is in flight."""
        time.sleep(self.quiet_s)
        self.port.reset_input_buffer()

    def transact(self, commands: list[int]) -> list[int | None]:
        """Send packed host-port commands; return each one's read data (None for writes)."""
        results: list[int | None] = []
        i, attempts = 0, 0
        while i < len(commands):
            batch = commands[i:i + self.window]
            self.port.write(b"".join(proto.request(c, self.width) for c in batch))
            for n, command in enumerate(batch):
                answer = self._response()
                if answer.status != proto.Status.OK:
                    self.rejected += 1
                    attempts += 1
                    if attempts > self.retries:
                        raise LinkError(f"the board rejected command {_describe(command)} "
                                        f"{attempts} times ({answer.status.name})")
                    self._resync()
                    break
                attempts = 0
                results.append(answer.data if (command & 0xF) in _READS else None)
                i += 1
        return results

    def info(self) -> tuple[int, int, int]:
        """(protocol version, data bytes, config id) of the bitstream on the board."""
        return proto.parse_info(self.transact([proto.INFO])[0])


def _describe(command: int) -> str:
    kind = command & 0xF
    name = Host(kind).name if kind in set(Host) else ("INFO" if kind == proto.INFO else kind)
    return f"{name} (addr {(command >> 4) & 0xFFFF})"


class Board:
    """A board running circa's bitstream for ``cfg``."""

    def __init__(self, port, cfg: AccelConfig, **link_options):
        self.cfg = cfg
        self.link = Link(port, host_data_width(cfg), **link_options)

    @classmethod
    def open(cls, url: str, cfg: AccelConfig, *, baud: int = 1_000_000, timeout: float = 2.0,
             **link_options) -> "Board":
        import serial
        try:
            port = serial.serial_for_url(url, baudrate=baud, timeout=timeout)
        except serial.SerialException as e:
            raise LinkError(f"cannot open {url}: {e}") from None
        return cls(port, cfg, **link_options)

    def check(self):
        """Refuse a board whose bitstream was built for another AccelConfig."""
        version, nbytes, ident = self.link.info()
        if version != proto.PROTOCOL_VERSION or ident != proto.config_id(self.cfg):
            raise LinkError(f"the board runs protocol {version}, config id {ident:#010x}; "
                            f"this Program needs protocol {proto.PROTOCOL_VERSION}, config id "
                            f"{proto.config_id(self.cfg):#010x}: rebuild the bitstream with "
                            "`circa build` for this Program's directory")

    def load(self, program: Program):
        if program.config != self.cfg:
            raise ValueError("the Program was compiled for another AccelConfig than the board's")
        self.check()
        self.link.transact(host.load_program(program))

    def status(self) -> tuple[bool, bool, int]:
        word = self.link.transact([host.command(Host.STATUS)])[0]
        return bool(word & 1), bool(word & 2), (word >> 16) & 0xFFFF

    def run(self, program: Program, x, *, timeout_s: float = 10.0):
        """Run every input of ``x`` (float, the Program's input layout). Returns the output
        words ``(n, steps, features)`` and per input a dict of the performance counters."""
        words = executor.quantize_inputs(program, x).numpy()
        outputs, counters = [], []
        for sample in words:
            self.link.transact(host.write_inputs(program, sample) + [host.command(Host.START)])
            deadline = time.monotonic() + timeout_s
            while True:
                done, error, pc = self.status()
                if done:
                    break
                if time.monotonic() > deadline:
                    raise LinkError(f"the run did not finish within {timeout_s} s (pc {pc})")
            if error:
                tag = program.tags[pc] if pc < len(program.tags) else "?"
                raise LinkError(f"the accelerator stopped with an error at pc {pc} ({tag})")
            outputs.append(host.unpack_outputs(
                program, self.link.transact(host.read_outputs(program))))
            counters.append(dict(zip(COUNTERS, self.link.transact(host.read_counters()))))
        return np.stack(outputs), counters
