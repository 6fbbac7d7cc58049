"""The main job: a digits LSTM from training to a bit-exact accelerator, a bitstream and a
comparison with the published FPGA baselines.

Steps (progress on stderr), everything written under ``out`` (default ``out/demo``):

1. train an LSTM classifier (8 -> 64 cells, projection 32, Linear head) on scikit-learn's
   digits as 8-step sequences of image rows; ``torch.save`` it (``model.pt``);
2. ``circa compile``: block-circulant at ``k`` with ADMM recovery training, 16-bit fixed
   point, scheduled for an accelerator whose memories fit the Program (``program/``);
3. start ``circa build --board ulx3s-85f`` in a second process (``build/``, log
   ``build.log``), unless ``quick``;
4. ``circa sim`` in Verilator on all 450 test images: every output word against the golden
   model, cycles from the RTL's counters;
5. the ESE LSTM's cycles per frame at k = 16 in Verilator (``circa compare``'s design,
   cached), unless ``quick``;
6. wait for the bitstream, write ``measure.json`` and print ``circa compare``'s table with
   this design, the cached ESE measurements and the published baselines (``compare.png``).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from circa import progress

BOARD = "ulx3s-85f"


def dense_macs(model) -> int:
    """Multiply-accumulates of the dense model per image: the LSTM's per step (gates over
    input and recurrent state, projection) times the steps, plus the head once."""
    rnn, steps = model.rnn, 8
    state = rnn.proj_size or rnn.hidden_size
    per_step = 4 * rnn.hidden_size * (rnn.input_size + state) + rnn.proj_size * rnn.hidden_size
    return per_step * steps + model.head.in_features * model.head.out_features


def run(k: int = 4, lanes: int = 1, seed: int = 0, quick: bool = False,
        out="out/demo") -> dict:
    """Run the demo and return its report (JSON-serialisable)."""
    from circa import compare
    from circa.compiler import digits
    from circa.compiler.compile import accel_config, compile_model

    accel_config(k=k, lanes=lanes)            # reject bad parameters before any work
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with progress.step("Training the float LSTM on scikit-learn's digits (rows as time steps)"):
        x_train, y_train, x_test, y_test = digits.load_sequences(seed)
        model = digits.train_rnn("lstm", hidden=64, proj_size=32, seed=seed)
        torch.save(model, out / "model.pt")
        np.savez(out / "train.npz", x=x_train.numpy(), y=y_train.numpy())
        np.save(out / "test_x.npy", x_test.numpy())
    compiled = compile_model(out / "model.pt", out / "program", train=out / "train.npz",
                             scheme=f"circulant:{k}", k=k, lanes=lanes, seed=seed)

    builder = None if quick else _start_build(out)
    try:
        sim, accuracy, ese_dirs = _measure(out, model, x_test, y_test, k, lanes, quick)
    except BaseException:
        if builder is not None:
            builder.kill()
        raise
    build = None
    if builder is not None:
        with progress.step(f"Waiting for the {BOARD} bitstream"):
            code = builder.wait()
        report = out / "build" / "build_report.json"
        if not report.exists():
            raise RuntimeError(f"the {BOARD} build failed (exit {code}); see {out / 'build.log'}")
        build = json.loads(report.read_text())
    table = compare.run([out, *ese_dirs, *compare.cached(exclude=ese_dirs)],
                        plot=out / "compare.png")
    return {"k": k, "lanes": lanes, "quick": quick, "out": str(out.absolute()),
            "compile": {key: compiled[key] for key in ("layers", "instructions", "accel_config")},
            "sim": sim, "words_compared": sim["words_compared"], "accuracy": accuracy,
            "build": build, "compare": table,
            "seconds": round(time.monotonic() - started, 1)}


def _start_build(out: Path) -> subprocess.Popen:
    """``circa build`` of the demo's Program in a second process (the other core)."""
    progress.info(f"Building the {BOARD} bitstream in a second process "
                  f"(log: {out / 'build.log'})")
    shutil.rmtree(out / "build", ignore_errors=True)       # no stale report
    with open(out / "build.log", "w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "circa.cli", "build", str(out / "program"), "--board",
             BOARD, "-o", str(out / "build")], stdout=subprocess.DEVNULL, stderr=log)


def _measure(out: Path, model, x_test, y_test, k: int, lanes: int, quick: bool):
    """Verilator on every test image, the accuracies, ``measure.json``; the ESE LSTM's
    cycles unless ``quick``."""
    from circa import compare
    from circa.boards.build import rtl_version
    from circa.compiler import digits, executor, frontend
    from circa.compiler.program import Program
    from circa.sim.simulate import simulate

    sim = simulate(out / "program", out / "test_x.npy", out / "test_y.npy")
    program = Program.load(out / "program")
    labels = y_test.numpy()
    golden = executor.run(program, x_test.numpy()).numpy()
    compressed = frontend.load_model(out / "program" / "compressed.pt")
    accuracy = {
        "float": round(digits.accuracy(model, x_test, y_test), 4),
        "compressed": round(digits.accuracy(compressed, x_test, y_test), 4),
        "quantized": round(float((golden.argmax(-1) == labels).mean()), 4),
        "rtl": round(float((np.load(out / "test_y.npy").argmax(-1) == labels).mean()), 4)}

    cfg = program.config
    measure = {"name": f"circa digits LSTM k={k} (demo)",
               "workload": "digits LSTM (8 -> 64 cells -> 32, 8 steps, head 32 -> 10), "
                           "one image",
               "dense_macs_per_frame": dense_macs(model),
               "cycles_per_frame": sim["cycles_per_inference"], "bit_exact": sim["bit_exact"],
               "weight_bits": cfg.engine.lanes * cfg.engine.weight_depth * cfg.k
               * cfg.engine.weight_width,
               "k": k, "lanes": lanes, "weight_width": cfg.engine.weight_width,
               "accuracy": accuracy["rtl"], "rtl": rtl_version(), "command": "circa demo"}
    (out / "measure.json").write_text(json.dumps(measure, indent=2) + "\n")

    ese_dirs = []
    if not quick:
        name = "circa-ese-k16"
        with progress.step(f"Measuring the ESE LSTM's cycles at k = 16 (cached in "
                           f"{compare.cache_dir() / name})"):
            ese_dirs.append(compare.measure(name, compare.cache_dir() / name, build=False,
                                            **compare.DESIGNS[name]))
    return sim, accuracy, ese_dirs


def render(report: dict) -> str:
    from circa import compare
    from circa.boards import build as builder
    acc, sim = report["accuracy"], report["sim"]
    lines = [f"digits LSTM, block-circulant k = {report['k']}, {report['lanes']} lane(s), "
             f"16-bit: {report['out']}"]
    for layer in report["compile"]["layers"]:
        lines.append(f"  {layer['layer']:>6} {layer['type']:<6} {layer['scheme']:<14} "
                     f"{layer['params_dense']:>6} -> {layer['params_stored']:>5} weights "
                     f"({layer['compression']}x)")
    lines += [
        f"  bit-exact in Verilator: {'YES' if sim['bit_exact'] else 'NO'} "
        f"({report['words_compared']} words over {sim['samples']} images, "
        f"{sim['mismatches']} differ)",
        f"  {sim['cycles_per_inference']:.0f} cycles per image",
        f"  accuracy: float {acc['float']:.2%}, compressed {acc['compressed']:.2%}, "
        f"quantized {acc['quantized']:.2%}, RTL {acc['rtl']:.2%}",
    ]
    if report["build"]:
        lines += ["", builder.render(report["build"])]
    else:
        lines += ["", "bitstream: skipped (--quick)"]
    lines += ["", compare.render(report["compare"]), "",
              f"demo finished in {report['seconds']:.0f} s"]
    return "\n".join(lines)


def summary_ok(report: dict) -> bool:
    return bool(report["sim"]["bit_exact"]) and report["accuracy"]["rtl"] == \
        report["accuracy"]["quantized"]
