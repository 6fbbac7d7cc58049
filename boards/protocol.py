"""The framed UART host protocol: the bit-exact model of :class:`circa.boards.bridge.HostBridge`.

See docs/host-protocol.md. One request frame carries one host-port command
(:class:`circa.hw.accel.Host`); the board answers every frame with one response frame::

    request   A5 | length (2, LE) | command (1) | addr (2, LE) lane (1) data (D, LE) | CRC (2, BE)
    response  5A | length (2, LE) | status  (1) | payload: nothing, or data (D, LE)  | CRC (2, BE)

``length`` counts the payload bytes (requests: ``3 + D``; responses: 0 or ``D``), ``D`` is
the host port's data width in bytes, and the CRC is CRC-16/CCITT-FALSE (poly 0x1021, init
0xFFFF, ``binascii.crc_hqx``) over length, command/status and payload, sent most significant
byte first so that the receiver's CRC register ends at zero on a good frame.
"""
from __future__ import annotations

import binascii
import enum
from dataclasses import dataclass

REQUEST_SYNC = 0xA5
RESPONSE_SYNC = 0x5A
INFO = 0x0F             #: command: the board answers with :func:`info_word` (never forwarded)
PROTOCOL_VERSION = 1


class Status(enum.IntEnum):
    """Response status byte. Anything but OK means the command was not executed."""
    OK = 0
    CRC = 1             # the frame's CRC did not match
    LENGTH = 2          # the length field is not the board's request length
    TRUNCATED = 3       # the line went idle in the middle of a frame
    COMMAND = 4         # unknown command byte


def data_bytes(data_width: int) -> int:
    return -(-data_width // 8)


def crc16(data: bytes) -> int:
    return binascii.crc_hqx(data, 0xFFFF)


def _frame(sync: int, code: int, payload: bytes) -> bytes:
    body = len(payload).to_bytes(2, "little") + bytes([code]) + payload
    return bytes([sync]) + body + crc16(body).to_bytes(2, "big")


def request(command: int, data_width: int) -> bytes:
    """The frame for one packed host-port command (``kind | addr << 4 | lane << 20 |
    data << 28``, as built by :func:`circa.sim.host.command`)."""
    kind, rest = command & 0xF, command >> 4
    payload = rest.to_bytes(3 + data_bytes(data_width), "little")  # addr, lane, data
    return _frame(REQUEST_SYNC, kind, payload)


def response(status: Status, data: int | None, data_width: int) -> bytes:
    payload = b"" if data is None else data.to_bytes(data_bytes(data_width), "little")
    return _frame(RESPONSE_SYNC, int(status), payload)


class FrameError(Exception):
    """A response frame that is malformed (the link, not the board, is at fault)."""


@dataclass
class Response:
    status: Status
    data: int | None


def parse_response(frame: bytes, data_width: int) -> Response:
    """Check one complete response frame (sync, length, CRC) and decode it."""
    if len(frame) < 6 or frame[0] != RESPONSE_SYNC:
        raise FrameError(f"bad response frame start {frame[:6].hex()}")
    length = int.from_bytes(frame[1:3], "little")
    if length not in (0, data_bytes(data_width)) or len(frame) != 6 + length:
        raise FrameError(f"bad response length {length} (frame of {len(frame)} bytes)")
    if crc16(frame[1:-2]) != int.from_bytes(frame[-2:], "big"):
        raise FrameError(f"response CRC mismatch in {frame.hex()}")
    try:
        status = Status(frame[3])
    except ValueError:
        raise FrameError(f"unknown response status {frame[3]}") from None
    return Response(status, int.from_bytes(frame[4:-2], "little") if length else None)


def info_word(config_id: int, data_width: int) -> int:
    """What INFO answers: protocol version (8 bits), data bytes (8), config id (32)."""
    return PROTOCOL_VERSION | (data_bytes(data_width) << 8) | ((config_id & 0xFFFF_FFFF) << 16)


def parse_info(word: int) -> tuple[int, int, int]:
    """``info_word`` -> (protocol version, data bytes, config id)."""
    return word & 0xFF, (word >> 8) & 0xFF, (word >> 16) & 0xFFFF_FFFF


def config_id(cfg) -> int:
    """A 32-bit fingerprint of an AccelConfig: the board and the Program must agree."""
    return binascii.crc32(repr(cfg).encode())
