"""Runner side of ``circa sim``: a Program on the generated accelerator, word by word
against the golden model.

The Verilated accelerator depends only on the AccelConfig (memories start empty), so one
build serves every Program compiled for that configuration; the Program is loaded through
the host port.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from circa.compiler import executor
from circa.compiler.program import Program
from circa.config import AccelConfig
from circa.hw.accel import COUNTERS, Accelerator
from circa.sim import host
from circa.sim import verilator as vl


@dataclass
class AccelRun:
    outputs: np.ndarray        # (n, steps, features) words read back from the scratchpad
    counters: list             # per sample: dict of the performance counters
    status: list               # per sample: (error, pc); error 2 means it hung
    build: vl.Build
    sim: vl.SimResult


@functools.lru_cache(maxsize=None)
def build(cfg: AccelConfig) -> vl.Build:
    """The Verilated accelerator for ``cfg``; converted once per process, built once per
    cache (the Verilog conversion alone takes seconds for a large configuration)."""
    return vl.build(vl.verilog_of(Accelerator(cfg), "accel"), "accel")


def run(program: Program, x, *, timeout: int = 1_000_000) -> AccelRun:
    """Run every input of ``x`` (float, the Program's input layout) on the RTL."""
    words = executor.quantize_inputs(program, x).numpy()
    built = build(program.config)
    params = {"load": host.load_program(program),
              "inputs": [host.write_inputs(program, w) for w in words],
              "reads": host.read_outputs(program), "counters": host.read_counters(),
              "timeout": timeout}
    result = vl.run(built, "accel", "circa.sim.cocotb_accel", params=params)
    if not result.passed:
        raise RuntimeError(f"the accelerator simulation failed:\n{result.log_tail()}")
    outputs = np.stack([host.unpack_outputs(program, r) for r in result.data["outputs"]]) \
        if result.data["outputs"] else np.zeros((0,))
    counters = [dict(zip(COUNTERS, c)) for c in result.data["counters"]]
    return AccelRun(outputs, counters, [tuple(s) for s in result.data["status"]], built, result)
