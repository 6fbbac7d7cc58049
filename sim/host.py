"""Host-port commands: how a Program and its inputs get into the accelerator.

A command is the ``host_cmd`` payload ``{kind 4, addr 16, lane 8, data}`` packed least
significant field first (Amaranth's StructLayout order), see :class:`circa.hw.accel.Host`.
The same command list drives the Amaranth simulator, cocotb, and (later) the UART bridge.
"""
from __future__ import annotations

import numpy as np

from circa.compiler import isa
from circa.compiler.program import Program
from circa.hw.accel import COUNTERS, Host
from circa.sim.streams import pack, unpack


def command(kind: Host, addr: int = 0, lane: int = 0, data: int = 0) -> int:
    return int(kind) | (addr << 4) | (lane << 20) | (int(data) << 28)


def _signed_field(value: int, bits: int) -> int:
    return int(value) & ((1 << bits) - 1)


def load_program(program: Program) -> list[int]:
    """Commands that load instructions, weights, tables and the initial scratchpad."""
    cfg = program.config
    e = cfg.engine
    r, c = cfg.sparse_block
    cmds = [command(Host.WRITE_IMEM, pc, data=isa.encode(ins))
            for pc, ins in enumerate(program.instructions)]
    cmds += [command(Host.WRITE_ACT, a, data=pack(word, e.data_width))
             for a, word in enumerate(program.scratchpad)]
    used = np.flatnonzero(np.abs(program.circulant_weights).sum(axis=(0, 2)))
    depth = int(used.max()) + 1 if len(used) else 0
    for lane in range(e.lanes):
        cmds += [command(Host.WRITE_CIRC, a, lane, pack(program.circulant_weights[lane, a],
                                                         e.weight_width)) for a in range(depth)]
    for a, (index, block) in enumerate(zip(program.sparse_index, program.sparse_blocks)):
        word = pack(index, 16) | (pack(block.reshape(-1), e.weight_width) << 32)
        cmds.append(command(Host.WRITE_SPARSE, a, data=word))
    segments = cfg.pwl_segments
    for t, table in enumerate(program.tables):
        for s, (slope, icept) in enumerate(zip(table.slope, table.icept)):
            cmds.append(command(Host.WRITE_TABLE, t * segments + s,
                                data=_signed_field(slope, cfg.pwl_slope_width)
                                | (_signed_field(icept, cfg.pwl_icept_width) << cfg.pwl_slope_width)))
        w = e.data_width
        scalars = (table.seg_shift | (table.shift << 6) | (_signed_field(table.lo, w) << 12)
                   | (_signed_field(table.hi, w) << (12 + w)))
        cmds.append(command(Host.WRITE_SCALARS, lane=t, data=scalars))
    return cmds


def write_inputs(program: Program, words: np.ndarray) -> list[int]:
    """Commands that write one input (``(steps, features)`` words) into its region."""
    region, k, w = program.input, program.config.k, program.config.engine.data_width
    cmds = []
    for t in range(region.steps):
        padded = np.zeros(region.blocks * k, dtype=np.int64)
        padded[:region.features] = words[t]
        for b in range(region.blocks):
            cmds.append(command(Host.WRITE_ACT, region.address + t * region.stride + b,
                                data=pack(padded[b * k:(b + 1) * k], w)))
    return cmds


def read_outputs(program: Program) -> list[int]:
    """Commands that read the output region, block by block."""
    out = program.output
    return [command(Host.READ_ACT, out.address + t * out.stride + b)
            for t in range(out.steps) for b in range(out.blocks)]


def read_counters() -> list[int]:
    return [command(Host.COUNTER, n) for n in range(len(COUNTERS))]


def unpack_outputs(program: Program, responses: list[int]) -> np.ndarray:
    """Responses of :func:`read_outputs` -> ``(steps, features)`` words."""
    out, k, w = program.output, program.config.k, program.config.engine.data_width
    values = np.array([unpack(r, w, k) for r in responses], dtype=np.int64)
    return values.reshape(out.steps, out.blocks * k)[:, :out.features]
