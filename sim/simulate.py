"""``circa sim``: run a compiled Program on the generated accelerator, every input, and
compare every output word with the golden model.

The reference is the ISA-level executor, which ``circa compile`` checked against the
golden model (and tests/test_schedule.py checks on every model kind). On a mismatch the
first diverging instruction, its layer tensor and time step are located by re-running
that input in Amaranth's simulator beside the executor.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from circa import progress
from circa.compiler import executor
from circa.compiler.program import Program


def simulate(directory, inputs, outputs=None, *, backend: str = "verilator",
             limit: int | None = None) -> dict:
    program = Program.load(directory)
    meta_file = Path(directory) / "report.json"
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    batch_first = meta.get("batch_first", True)
    try:
        x = np.load(inputs, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read --inputs {inputs}: {error}") from None
    if x.ndim == 3 and not batch_first:
        x = x.swapaxes(0, 1)                 # the Program takes (n, steps, features)
    if limit:
        x = x[:limit]
    words = executor.quantize_inputs(program, x)          # shape check, before simulating
    if backend not in ("verilator", "amaranth"):
        raise ValueError(f"--backend must be verilator or amaranth, not {backend!r}")
    started = time.monotonic()
    with progress.step(f"Running {len(words)} inputs on the accelerator ({backend})"):
        if backend == "verilator":
            from circa.sim import accel_rtl
            run = accel_rtl.run(program, x)
            got, counters, status = run.outputs, run.counters, run.status
            extra = {"build_seconds": round(run.build.build_seconds, 1),
                     "build_cached": run.build.cached,
                     "sim_cycles_per_second": round(run.sim.cycles_per_second)}
        else:
            from circa.sim import accel_amaranth
            got, counters, status = accel_amaranth.run(program, x)
            extra = {}
    with progress.step("Comparing with the golden model"):
        expected = executor.run(program, x).numpy()
        expected = expected if program.sequence_output else expected[:, None]
        n = min(len(got), len(expected))
        mismatched = [i for i in range(n) if not np.array_equal(got[i], expected[i])]
    errors = [(i, s) for i, s in enumerate(status) if s[0]]
    report = {
        "bit_exact": not mismatched and not errors and n == len(x),
        "samples": int(len(x)), "words_compared": int(sum(e.size for e in expected[:n])),
        "mismatches": int(sum(
            int((got[i] != expected[i]).sum()) for i in mismatched)),
        "samples_mismatched": len(mismatched),
        "cycles_per_inference": float(np.mean([c["cycles"] for c in counters])) if counters else None,
        "utilisation": {engine: round(float(np.mean([c[engine + "_busy"] / c["cycles"]
                                                     for c in counters])), 4)
                        for engine in ("circulant", "sparse", "vector")} if counters else {},
        "instructions_per_inference": float(np.mean([c["instructions"] for c in counters]))
        if counters else None,
        "backend": backend, "wall_seconds": round(time.monotonic() - started, 1), **extra,
    }
    if errors:
        i, (code, pc) = errors[0]
        report["error"] = (f"input {i}: the accelerator {'hung' if code == 2 else 'stopped on an illegal instruction'} "
                           f"at pc {pc}")
    if mismatched:
        from circa.sim import accel_amaranth
        with progress.step(f"Locating the first divergence (input {mismatched[0]})"):
            report["first_divergence"] = accel_amaranth.locate_divergence(program, x[mismatched[0]])
    if outputs is not None and n:
        y = got[:n].astype(np.float64) * 2.0 ** -program.output.frac
        if not program.sequence_output:
            y = y[:, 0]
        elif not batch_first:
            y = y.swapaxes(0, 1)
        np.save(outputs, y)
        report["outputs"] = str(outputs)
    return report


def render(report: dict) -> str:
    lines = [f"bit-exact: {'YES' if report['bit_exact'] else 'NO'} ({report['samples']} inputs, "
             f"{report['mismatches']} words differ)"]
    if report.get("error"):
        lines.append(f"  {report['error']}")
    if report.get("first_divergence"):
        d = report["first_divergence"]
        lines.append(f"  first divergence: instruction {d['pc']} ({d['instruction']}), tensor "
                     f"{d['tensor']}, time step {d['step']}, block {d['block']} element "
                     f"{d['element']}: expected {d['expected']}, got {d['got']}")
    if report.get("cycles_per_inference") is not None:
        u = report["utilisation"]
        lines.append(f"  {report['cycles_per_inference']:.0f} cycles per inference; busy: "
                     f"circulant {u['circulant']:.0%}, sparse {u['sparse']:.0%}, "
                     f"vector {u['vector']:.0%}")
    return "\n".join(lines)
