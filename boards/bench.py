"""``circa bench-fpga``: Fmax and utilisation of generated accelerators on a board.

For each block size k: an LSTM (153 inputs as in ESE, 256 cells, projection 128; random
weights, since timing and resources do not depend on their values) is compiled with
``32 / k`` lanes unless told (the same MAC multipliers for every k), its memories fitted to the
Program, and built with ``circa build``. Figures come from nextpnr's report (for the
``kcu105``: yosys ``synth_xilinx`` cell counts, no place-and-route, no Fmax).

The clock is :data:`GOAL_MHZ` unless asked otherwise, and it is also place and route's
timing target: nextpnr weighs a path by how close it comes to the worst one only while
the worst misses the target, and weighs every path the same once they all meet it
(``TimingAnalyser::compute_criticality``), so a design built for a slow clock is placed
for wire length alone and its Fmax understates what the RTL can do (docs/fmax-history.md).
"""
from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from circa import progress
from circa.boards import build

#: the issue's Fmax goal on the ULX3S-85F, MHz: the clock and timing target of these builds
GOAL_MHZ = 100.0


def program_dir(k: int, root: Path, vector_width: int | None = None,
                lanes: int | None = None) -> Path:
    import numpy as np
    import torch
    from torch import nn

    from circa.compiler import compress
    from circa.compiler.compile import accel_config, fitted_config, quantize_and_schedule
    torch.manual_seed(0)
    model = nn.LSTM(153, 256, proj_size=128, batch_first=True)
    x = np.random.default_rng(0).normal(size=(4, 2, 153)) * 0.5
    schemes = compress.plan(model, f"circulant:{k}", k)
    model = compress.compress(model, schemes, torch.as_tensor(x, dtype=torch.float32),
                              train=False)
    cfg = accel_config(k=k, lanes=max(1, 32 // k) if lanes is None else lanes,
                       vector_width=min(vector_width, k) if vector_width else None)
    _, program = quantize_and_schedule(model, schemes, cfg, x)
    _, program = quantize_and_schedule(model, schemes, fitted_config(cfg, program), x)
    out = root / f"lstm-k{k}"
    program.save(out)
    return out


def run(ks=(8, 16), board: str = "ulx3s-85f", freq_mhz: float | None = GOAL_MHZ,
        router: str = "router1", tmg_ripup: bool = False, seeds=(1,),
        pnr_minutes: float | None = None, vector_width: int | None = None,
        timing_margin: float = 0, lanes: int | None = None) -> dict:
    """One synthesis per block size, placed and routed with each nextpnr seed (a seed sweep,
    side by side: placement alone moves the large designs' Fmax by 10 MHz or more,
    docs/fmax-history.md); a row per seed. The seeds share one netlist, so their utilisation is
    the same; the late inputs are the fastest seed's, the seconds the whole sweep's. A seed
    stopped after ``pnr_minutes``, or whose nextpnr failed, gives a row with no figures and
    its ``error``. ``vector_width``: words the vector unit takes a cycle (at most k);
    ``lanes``: output blocks in parallel (default ``32 / k``);
    ``timing_margin``: see :func:`circa.boards.build.build`."""
    build.check_router(router, tmg_ripup, pnr_minutes)
    seeds, rows = list(dict.fromkeys(seeds)), []
    with tempfile.TemporaryDirectory(prefix="circa-bench-fpga-") as tmp:
        for k in ks:
            with progress.step(f"Compiling the k = {k} LSTM"):
                directory = program_dir(k, Path(tmp), vector_width, lanes)
            stopped = {"k": k, "board": board, "fmax_mhz": None, "target_mhz": freq_mhz}
            try:
                report = build.build(directory, board, freq_mhz=freq_mhz, router=router,
                                     tmg_ripup=tmg_ripup, seed=seeds,
                                     out=Path(tmp) / f"build-k{k}", pnr_minutes=pnr_minutes,
                                     timing_margin=timing_margin)
            except build.NotRouted as error:
                rows += [{**stopped, "seed": seed, "error": why}
                         for seed, why in error.unrouted.items()]
                continue
            nextpnr = report.get("nextpnr", {})     # none on the kcu105: synthesis only
            by_seed = nextpnr.get("fmax_by_seed", {seed: report["fmax_mhz"] for seed in seeds})
            for seed, fmax in by_seed.items():
                if nextpnr and fmax is None:
                    rows.append({**stopped, "seed": seed, "error": nextpnr["unrouted"][seed]})
                    continue
                rows.append({"k": k, "seed": seed, **{key: report.get(key) for key in (
                    "board", "device", "target_mhz", "luts", "ffs", "dsps", "brams")},
                    "fmax_mhz": fmax,
                    "timing_met": None if fmax is None else fmax >= report["target_mhz"],
                    **({key: report[key] for key in ("late_endpoints", "latest_arrivals")}
                       if seed == nextpnr.get("seed") else {}),
                    "config": report["config"],
                    "seconds": report.get("seconds") or {"total": report["synthesis"]["seconds"]}})
    return {"rows": rows, "fmax_over_seeds": spread(rows)}


def spread(rows: list) -> dict:
    """Per block size: the builds, how many routed, and their lowest, median and highest
    Fmax (seeds move the same design's Fmax by 10 MHz or more)."""
    out = {}
    for k in dict.fromkeys(r["k"] for r in rows):
        fmax = sorted(r["fmax_mhz"] for r in rows if r["k"] == k and r["fmax_mhz"] is not None)
        out[k] = {"builds": sum(r["k"] == k for r in rows), "routed": len(fmax),
                  **({"min": fmax[0], "median": statistics.median(fmax), "max": fmax[-1]}
                     if fmax else {})}
    return out


def render(report: dict) -> str:
    lines = [f"{'k':>3} {'seed':>4} {'board':<11} {'Fmax MHz':>9} {'target':>7} {'LUTs':>7} "
             f"{'FFs':>7} {'DSPs':>5} {'BRAMs':>6} {'build s':>8}"]
    for r in report["rows"]:
        if "error" in r:
            lines.append(f"{r['k']:>3} {r['seed']:>4} {r['board']:<11} not routed: {r['error']}")
            continue
        fmax = "-" if r["fmax_mhz"] is None else f"{r['fmax_mhz']:.1f}"
        lines.append(f"{r['k']:>3} {r['seed']:>4} {r['board']:<11} {fmax:>9} "
                     f"{r['target_mhz']:>7g} {r['luts']:>7} {r['ffs']:>7} {r['dsps']:>5} "
                     f"{r['brams']:>6} {r['seconds']['total']:>8.0f}")
    for k, f in report["fmax_over_seeds"].items():
        if f["builds"] > 1 and f["routed"]:
            lines.append(f"k = {k}: {f['routed']} of {f['builds']} seeds routed, Fmax "
                         f"{f['min']:.1f} to {f['max']:.1f} MHz, median {f['median']:.1f}")
    return "\n".join(lines)
