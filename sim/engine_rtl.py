"""Runner side: the block-circulant engine under cocotb + Verilator, checked word by word.

The Verilated model is built once per engine configuration and weight image (cached,
see :mod:`circa.sim.verilator`); a run executes a list of MVM jobs back to back.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from circa.hw.circulant import BlockCirculantEngine, EngineConfig
from circa.sim import verilator as vl


@dataclass(frozen=True)
class Job:
    """MVMs of every vector in ``x (vectors, q, k)`` by the matrix at weight address ``base``."""
    x: np.ndarray
    p: int
    base: int
    shift: int
    out_shift: int

    @property
    def q(self) -> int:
        return self.x.shape[1]


@dataclass
class EngineRun:
    outputs: list          # per job: (vectors, p, k) ints
    counters: list         # per job: (vectors, 2) engine cycles and MAC cycles of each MVM
    build: vl.Build
    sim: vl.SimResult


def run_jobs(cfg: EngineConfig, image: np.ndarray, jobs: list[Job], *, gap: float = 0.0,
             seed: int = 0) -> EngineRun:
    """Build (or reuse) the engine with weight ``image`` and run ``jobs`` in Verilator."""
    for job in jobs:
        cfg.check_matrix(job.p, job.q, job.shift, job.out_shift)
    engine = BlockCirculantEngine(cfg, image)
    build = vl.build(vl.verilog_of(engine, "engine"), "engine")
    params = {"k": cfg.k, "data_width": cfg.data_width, "seed": seed, "gap": gap,
              "jobs": [dict(base=j.base, p=j.p, q=j.q, shift=j.shift, out_shift=j.out_shift)
                       for j in jobs]}
    params.update({f"x{n}": np.asarray(j.x, dtype=np.int64) for n, j in enumerate(jobs)})
    result = vl.run(build, "engine", "circa.sim.cocotb_engine", params=params)
    if not result.passed:
        raise RuntimeError(f"the engine simulation failed:\n{result.log_tail()}")
    return EngineRun([result.data[f"y{n}"] for n in range(len(jobs))],
                     [result.data[f"counters{n}"] for n in range(len(jobs))], build, result)


def first_mismatch(expected: np.ndarray, actual: np.ndarray) -> str | None:
    """``None`` if equal, else where the first differing word is: vector, block, element."""
    if expected.shape != actual.shape:
        return f"shape {actual.shape}, expected {expected.shape}"
    diff = np.argwhere(expected != actual)
    if not len(diff):
        return None
    vector, block, element = diff[0]
    return (f"{len(diff)} words differ; first: vector {vector}, output block {block}, "
            f"element {element}: expected {expected[vector, block, element]}, "
            f"got {actual[vector, block, element]}")
