"""Runner side: the block-circulant engine under cocotb + Verilator, checked word by word.

The Verilated model is built once per engine configuration and weight image (cached,
see :mod:`circa.sim.verilator`); a run executes a list of MVM jobs back to back.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from circa import numerics as nx
from circa.compiler import quantize as Q
from circa.config import EngineConfig, weight_images
from circa.hw.circulant import BlockCirculantEngine
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


def formats(cfg: EngineConfig) -> Q.Formats:
    return Q.Formats(k=cfg.k, data_width=cfg.data_width, weight_width=cfg.weight_width,
                     fft_width=cfg.fft_width, ifft_width=cfg.ifft_width)


@dataclass
class NetworkRun:
    run: EngineRun
    expected: list         # per layer: the golden model's MVM output blocks
    mismatches: list       # per layer: None or where the first differing word is
    logits: np.ndarray     # the network's output words, finished from the RTL's last MVM

    @property
    def bit_exact(self) -> bool:
        return all(m is None for m in self.mismatches)

    @property
    def words(self) -> int:
        return sum(e.size for e in self.expected)


def run_network(cfg: EngineConfig, qnet: Q.QuantNetwork, x, *, gap: float = 0.0,
                seed: int = 0) -> NetworkRun:
    """Run a quantized MLP's MVMs (block-circulant Dense layers) on the engine RTL and
    compare every word with the golden model.

    All the weights live in the engine's memories at once. Each layer's MVMs run on that
    layer's golden inputs (the host does bias and ReLU); when every layer is bit-exact,
    that is the same as chaining the RTL's own outputs.
    """
    layers = qnet.layers
    if qnet.kind != "mlp" or any(l.mat.kind != "circulant" for l in layers):
        raise ValueError("the engine alone runs MLPs of block-circulant layers; whole "
                         "networks need the accelerator")
    trace = {}
    qnet.golden(x, trace=trace)
    ar = Q.IntArith(qnet.fmt, qnet.fracs, qnet.tables)
    inputs = [ar.input(torch.as_tensor(np.asarray(x)), "input")] + [
        trace[l.name + (".relu" if l.relu else ".y")][0] for l in layers[:-1]]
    image, bases = weight_images(cfg, [l.mat.wf for l in layers])
    jobs = [Job(xi.numpy(), l.mat.p, base, l.mat.shift, l.mat.out_shift)
            for l, xi, base in zip(layers, inputs, bases)]
    run = run_jobs(cfg, image, jobs, gap=gap, seed=seed)
    expected = [trace[l.name + ".mvm"][0].numpy() for l in layers]
    mismatches = [first_mismatch(e, a) for e, a in zip(expected, run.outputs)]
    last = layers[-1]
    y = torch.from_numpy(run.outputs[-1])
    if last.mat.needs_mask:
        y = nx.vmul(y, torch.from_numpy(last.mat.row_mask()), 0, cfg.data_width)
    logits = nx.vadd(y, torch.from_numpy(last.bias), cfg.data_width)
    logits = Q.unblock(nx.relu(logits) if last.relu else logits, last.out_features).numpy()
    return NetworkRun(run, expected, mismatches, logits)
