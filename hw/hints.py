"""What synthesis must be told about the generated RTL, and the yosys commands that tell it.

**Replicated control registers** (Fmax). A per-beat control value that every lane reads
(a shift amount, a clamp bound, an op code) is one register with a fanout of ``k``
lanes' worth of LUTs. On a wide unit the lanes spread across the die and that one net's
routing sets the clock (16 ns of a 18 ns path at k = 8 on the ECP5, docs/fmax-history.md).
:func:`lane_copies` registers the value once per :data:`LANES_PER_COPY` lanes instead,
so that the placer can put each copy beside the lanes it feeds. Synthesis merges
registers with the same input (yosys ``opt_merge``), even when their wires are marked
``keep``; a ``keep`` on the flip-flop *cell* stops it: every copy is named with
:data:`REPLICA` and :data:`KEEP_REPLICAS` marks their cells. Units of ``k <=
LANES_PER_COPY`` lanes get one copy: nothing changes for small designs.

**Collision-free memories.** A read port that is not transparent returns the old word
when it reads the address being written in the same cycle; block RAMs do not promise
that across ports, so yosys adds bypass registers and a multiplexer after the RAM's
output (the slowest output in the design: an ECP5 block RAM's clock-to-out is 5.8 ns).
Where the design never does such a read, :func:`collision_free` says so.

``circa.boards`` runs :data:`SCRIPT` after reading the design (:data:`COLLISION_FREE`
states which memories are collision-free and why).
"""
from __future__ import annotations

from amaranth.hdl import Signal

REPLICA = "_replica"
LANES_PER_COPY = 4
#: yosys: mark the flip-flops driving any wire named ``*_replica*`` keep (through any
#: wires it is an alias of: a register that feeds a memory port takes the port's name)
KEEP_REPLICAS = f"setattr -set keep 1 w:*{REPLICA}* %ci*:+[Q] t:* %i"
#: memories whose read ports never use a word read at the address written that cycle:
#: the accelerator's scratchpad (hw/accel.py); the circulant engine's weights, written by
#: the host only while the accelerator is stopped, and its spectrum buffer, read back only
#: in the groups after the first, which write nothing (hw/circulant.py); the vector unit's
#: PWL tables, also written by the host only while the accelerator is stopped (the bypass
#: put one write-data register, shared by every lane, behind each table's block RAM)
COLLISION_FREE = ("act", "weights*", "spectra", "pwl*")


def collision_free(memory: str) -> str:
    """yosys: the read ports of every memory named ``memory`` may return anything when
    they read the address being written in the same cycle (no bypass logic)."""
    return f"setparam -set COLLISION_X_MASK 1 t:$memrd_v2 r:MEMID=\\{memory} %i"


SCRIPT = "\n".join([KEEP_REPLICAS, *map(collision_free, COLLISION_FREE)])


def lane_copies(register, name: str, values: list, k: int,
                per: int = LANES_PER_COPY) -> list[list]:
    """``values`` registered once per group of ``per`` lanes (once for ``k <=
    LANES_PER_COPY`` lanes: small designs are not routing-bound, and on the iCE40 every
    flip-flop costs a logic cell); ``[copies for lane 0, ..., k - 1]``.

    ``register(name, values) -> list of registers`` is the caller's pipeline register
    (so the copies stall with the pipeline)."""
    per = k if k <= LANES_PER_COPY else per
    groups = [register(f"{name}{REPLICA}{g}", values) for g in range(-(-k // per))]
    return [groups[lane // per] for lane in range(k)]


def registers(m):
    """A ``register(name, values)`` for :func:`lane_copies`: plain registers of ``m``'s sync
    domain, loaded every cycle (so a copy follows its value a cycle later)."""
    def register(name, values):
        regs = [Signal(v.shape(), name=f"{name}_{n}") for n, v in enumerate(values)]
        m.d.sync += [r.eq(v) for r, v in zip(regs, values)]
        return regs
    return register
