"""Benchmark: cycles per MVM of a large block-circulant layer, measured in Verilator.

``circa bench`` builds the engine for each lane count with a random ``size x size``
layer in its weight memories, runs a few MVMs under cocotb, and reads the engine's own
cycle counters. The ideal is ``p*q/lanes`` cycles: every MAC multiplier busy every cycle.
"""
from __future__ import annotations

import numpy as np

from circa import progress


def run(k: int = 16, size: int = 1024, lanes=(1, 2, 4, 8), vectors: int = 3,
        seed: int = 0) -> dict:
    from circa import numerics as nx
    from circa.config import EngineConfig, weight_images
    from circa.hw.circulant import model
    from circa.sim.engine_rtl import Job, first_mismatch, run_jobs

    for n_lanes in lanes:                    # reject bad parameters before any work
        EngineConfig(k=k, lanes=n_lanes)
    blocks = -(-size // k)
    rng = np.random.default_rng(seed)
    wf = rng.integers(-2**15, 2**15, size=(blocks, blocks, k))
    x = rng.integers(-2**15, 2**15, size=(vectors, blocks, k))
    rows = []
    for n_lanes in lanes:
        cfg = EngineConfig(k=k, lanes=n_lanes, max_q=blocks,
                           weight_depth=-(-blocks // n_lanes) * blocks)
        shift, out_shift = nx.circulant_shifts(x, wf, k=k, data_width=cfg.data_width,
                                               fft_width=cfg.fft_width, ifft_width=cfg.ifft_width)
        image, (base,) = weight_images(cfg, [wf])
        with progress.step(f"{size} x {size}, k = {k}, {n_lanes} lanes: build and simulate"):
            engine_run = run_jobs(cfg, image, [Job(x, blocks, base, shift, out_shift)])
        cycles = engine_run.counters[0][:, 0]
        ideal = blocks * blocks / n_lanes
        rows.append({
            "lanes": n_lanes,
            "mac_multipliers": cfg.mac_multipliers,
            "cycles_per_mvm": float(cycles.mean()),
            "ideal_cycles": ideal,
            "mac_utilisation": round(ideal / float(cycles.mean()), 4),
            "bit_exact": first_mismatch(model(cfg, x, wf, shift, out_shift),
                                        engine_run.outputs[0]) is None,
            "verilator_build_seconds": round(engine_run.build.build_seconds, 1),
            "sim_cycles_per_second": round(engine_run.sim.cycles_per_second),
        })
    return {"k": k, "size": size, "p": blocks, "q": blocks, "vectors": vectors, "rows": rows}


def render(report: dict) -> str:
    lines = [f"{report['size']} x {report['size']} block-circulant MVM, k = {report['k']} "
             f"({report['p']} x {report['q']} blocks), {report['vectors']} MVMs each",
             f"{'lanes':>5} {'mults':>6} {'cycles/MVM':>11} {'ideal':>8} {'util':>7} "
             f"{'exact':>6} {'build s':>8} {'cycles/s':>9}"]
    for r in report["rows"]:
        lines.append(f"{r['lanes']:>5} {r['mac_multipliers']:>6} {r['cycles_per_mvm']:>11.0f} "
                     f"{r['ideal_cycles']:>8.0f} {r['mac_utilisation']:>7.1%} "
                     f"{'yes' if r['bit_exact'] else 'NO':>6} {r['verilator_build_seconds']:>8} "
                     f"{r['sim_cycles_per_second']:>9}")
    return "\n".join(lines)
