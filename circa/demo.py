"""The main job: a digits classifier, compressed, quantized, and run bit-exact on the RTL.

Steps (each reported on stderr): train an MLP on scikit-learn's digits; replace its
``nn.Linear`` layers by block-circulant ones and recover accuracy by training; quantize
to 16-bit fixed point; generate the block-circulant engine; run every test image's MVMs
in Verilator and compare every output word with the golden model.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from circa import progress


def run(k: int = 16, lanes: int = 4, seed: int = 0) -> dict:
    """Run the demo and return its report (JSON-serialisable)."""
    from circa.compiler import digits, frontend
    from circa.compiler import quantize as Q
    from circa.config import EngineConfig
    from circa.sim.engine_rtl import formats, run_network

    EngineConfig(k=k, lanes=lanes)          # reject bad parameters before any work
    report: dict = {"k": k, "lanes": lanes}
    with progress.step("Training the float MLP on scikit-learn's digits"):
        x_train, y_train, x_test, y_test = digits.load(seed)
        mlp = digits.train_mlp(seed=seed)
    with progress.step(f"Compressing to block-circulant, k = {k}, with recovery training"):
        circ = digits.to_circulant(mlp, k, x=x_train, y=y_train, seed=seed)

    weights = sum(m.weight.numel() for m in mlp if hasattr(m, "weight"))
    stored = sum(m.w.numel() for m in circ if hasattr(m, "w"))
    depth = sum(-(-m.w.shape[0] // lanes) * m.w.shape[1] for m in circ if hasattr(m, "w"))
    max_q = max(m.w.shape[1] for m in circ if hasattr(m, "w"))
    cfg = EngineConfig(k=k, lanes=lanes, max_q=max_q, weight_depth=depth)
    with progress.step("Quantizing to 16-bit fixed point (calibrated on the training set)"):
        structured = torch.nn.Sequential(*[m.to_linear() if hasattr(m, "to_linear") else m
                                           for m in circ])
        network = frontend.import_model(structured)
        qnet = Q.quantize(Q.build(network, {name: ("circulant",) for name in ("0", "2")},
                                  formats(cfg)), x_train.numpy())
        quant_logits = qnet.golden(x_test.numpy()).numpy()

    started = time.monotonic()
    with progress.step(f"Generating the engine and running {len(x_test)} images in Verilator"):
        net = run_network(cfg, qnet, x_test.numpy())
    labels = y_test.numpy()
    cycles = [int(c[:, 0].mean()) for c in net.run.counters]
    layers = [layer.mat for layer in qnet.layers]
    useful = sum(layer.p * layer.q for layer in layers)
    report.update({
        "bit_exact": net.bit_exact,
        "words_compared": net.words,
        "mismatches": [m for m in net.mismatches if m],
        "images": len(labels),
        "layers": [{"in": l.in_segments[0], "out": l.out_segments[0], "p": l.p, "q": l.q,
                    "shift": l.shift, "out_shift": l.out_shift, "cycles_per_mvm": c,
                    "mac_utilisation": round(l.p * l.q / (lanes * c), 3)}
                   for l, c in zip(layers, cycles)],
        "cycles_per_inference": sum(cycles),
        "mac_utilisation": round(useful / (lanes * sum(cycles)), 3),
        "mac_multipliers": cfg.mac_multipliers,
        "weights_dense": weights,
        "weights_stored": stored,
        "accuracy": {
            "float": round(digits.accuracy(mlp, x_test, y_test), 4),
            "circulant": round(digits.accuracy(circ, x_test, y_test), 4),
            "quantized": round(float((quant_logits.argmax(1) == labels).mean()), 4),
            "rtl": round(float((net.logits.argmax(1) == labels).mean()), 4),
        },
        "verilator": {"build_seconds": round(net.run.build.build_seconds, 1),
                      "build_cached": net.run.build.cached,
                      "sim_cycles_per_second": round(net.run.sim.cycles_per_second),
                      "wall_seconds": round(time.monotonic() - started, 1)},
    })
    return report


def render(report: dict) -> str:
    acc = report["accuracy"]
    lines = [
        f"block-circulant MLP on digits, k = {report['k']}, {report['lanes']} lanes "
        f"({report['mac_multipliers']} MAC multipliers)",
        f"  weights: {report['weights_dense']} dense -> {report['weights_stored']} stored "
        f"({report['weights_dense'] / report['weights_stored']:.1f}x smaller)",
        f"  bit-exact: {'YES' if report['bit_exact'] else 'NO'} "
        f"({report['words_compared']} words compared over {report['images']} images)",
    ]
    lines += [f"    mismatch: {m}" for m in report["mismatches"]]
    for n, layer in enumerate(report["layers"]):
        lines.append(f"  layer {n}: {layer['in']} -> {layer['out']} ({layer['p']} x {layer['q']} "
                     f"blocks): {layer['cycles_per_mvm']} cycles per MVM, MAC utilisation "
                     f"{layer['mac_utilisation']:.0%}")
    lines += [
        f"  cycles per inference: {report['cycles_per_inference']} "
        f"(MAC utilisation {report['mac_utilisation']:.0%})",
        f"  accuracy: float {acc['float']:.2%}, circulant {acc['circulant']:.2%}, "
        f"quantized {acc['quantized']:.2%}, RTL {acc['rtl']:.2%}",
        f"  Verilator: build {report['verilator']['build_seconds']} s"
        f"{' (cached)' if report['verilator']['build_cached'] else ''}, "
        f"{report['verilator']['sim_cycles_per_second']} cycles/s under cocotb",
    ]
    return "\n".join(lines)


def summary_ok(report: dict) -> bool:
    return bool(report["bit_exact"]) and np.isclose(report["accuracy"]["rtl"],
                                                    report["accuracy"]["quantized"])
