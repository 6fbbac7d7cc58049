"""Replicated control registers: one copy per group of lanes (Fmax).

A per-beat control value that every lane reads (a shift amount, a clamp bound, an op
code) is one register with a fanout of ``k`` lanes' worth of LUTs. On a wide unit the
lanes spread across the die and that one net's routing sets the clock (16 ns of a 18 ns
path at k = 8 on the ECP5, docs/boards.md). :func:`lane_copies` registers the value once
per :data:`LANES_PER_COPY` lanes instead, so that the placer can put each copy beside
the lanes it feeds.

Synthesis merges registers with the same input (yosys ``opt_merge``), even when their
wires are marked ``keep``; a ``keep`` on the flip-flop *cell* stops it. Every copy is
named with :data:`REPLICA`, and :data:`KEEP_REPLICAS` is the yosys command that marks
their cells (``circa.boards`` runs it after reading the design). Units of ``k <=
LANES_PER_COPY`` lanes get one copy: nothing changes for small designs.
"""
from __future__ import annotations

REPLICA = "_replica"
LANES_PER_COPY = 4
#: yosys: mark the flip-flops driving any wire named ``*_replica*`` keep
KEEP_REPLICAS = f"setattr -set keep 1 w:*{REPLICA}* %ci1:+[Q] w:*{REPLICA}* %d"


def lane_copies(register, name: str, values: list, k: int) -> list[list]:
    """``values`` registered once per group of lanes; ``[copies for lane 0, ..., k - 1]``.

    ``register(name, values) -> list of registers`` is the caller's pipeline register
    (so the copies stall with the pipeline)."""
    groups = [register(f"{name}{REPLICA}{g}", values)
              for g in range(-(-k // LANES_PER_COPY))]
    return [groups[lane // LANES_PER_COPY] for lane in range(k)]
