"""Benchmark: the ESE speech LSTM (input 153, 1024 cells, projection 512) on the whole
accelerator in Verilator: cycles per time step, where they go, and multiplier use.

The weights are random (torch's initialisation): cycles do not depend on their values,
and the model is compiled with the real flow (block-circulant projection, quantization,
scheduling). Every output word is still checked against the golden model.
"""
from __future__ import annotations

import numpy as np

from circa import progress


def multipliers(cfg) -> dict:
    """Real multipliers of an AccelConfig by block (our count of the generated RTL)."""
    from circa import numerics as nx
    e = cfg.engine
    fft = nx.plan_multipliers(nx.rfft_plan(cfg.k, e.data_width, e.fft_width))
    ifft = nx.plan_multipliers(nx.irfft_plan(cfg.k, e.ifft_width))
    r, c = cfg.sparse_block
    sparse = r * c if cfg.sparse_engine else 0
    vector = cfg.vector_words
    return {"mac": e.mac_multipliers, "fft": fft, "ifft": ifft, "vector": vector,
            "sparse": sparse, "total": e.mac_multipliers + fft + ifft + vector + sparse}


def fit_85f(cfg) -> dict:
    """``circa build``'s pre-flight check of ``cfg`` against the ECP5-85F."""
    from circa.boards import build
    from circa.boards.targets import LFE5U_85F
    est = build.estimate(cfg, LFE5U_85F)
    return {"brams": est["brams"], "multipliers": est["multipliers"],
            "fits": est["brams"] <= LFE5U_85F.brams
            and est["multipliers"] <= LFE5U_85F.multipliers}


def design(k: int = 16, lanes: int = 2, weight_bits: int = 16, pwl_segments: int = 32,
           steps: int = 4, seed: int = 0, vector_width: int | None = None):
    """The ESE LSTM compiled for ``k`` and ``lanes`` (and a vector unit ``vector_width``
    words wide, default k): ``(qnet, program, cfg, x)`` with the configuration's memories
    fitted to the Program (what a bitstream for it holds)."""
    import torch
    from torch import nn

    from circa.compiler import compress
    from circa.compiler.compile import fitted_config, quantize_and_schedule
    from circa.config import AccelConfig, EngineConfig

    torch.manual_seed(seed)
    model = nn.LSTM(153, 1024, proj_size=512, batch_first=True)
    x = np.random.default_rng(seed).normal(size=(4, steps, 153)) * 0.5
    q_gates = -(-153 // k) + 512 // k
    depth = -(-4096 // k // lanes) * q_gates + -(-512 // k // lanes) * (1024 // k)
    cfg = AccelConfig(EngineConfig(k=k, lanes=lanes, weight_width=weight_bits,
                                   max_q=max(q_gates, 1024 // k), weight_depth=depth),
                      sparse_block=(4, 4), act_depth=4096, imem_depth=64, sparse_depth=16,
                      pwl_segments=pwl_segments, vector_width=vector_width)
    with progress.step(f"Compiling the ESE LSTM at k = {k} (projection, quantization)"):
        schemes = compress.plan(model, f"circulant:{k}", k)
        compressed = compress.compress(model, schemes, torch.as_tensor(x, dtype=torch.float32),
                                       train=False)
        qnet, program = quantize_and_schedule(compressed, schemes, cfg, x)
        cfg = fitted_config(cfg, program)
        qnet, program = quantize_and_schedule(compressed, schemes, cfg, x)
    return qnet, program, cfg, x


def run(k: int = 16, lanes: int = 2, steps: int = 4, seed: int = 0, weight_bits: int = 16,
        pwl_segments: int = 32, out=None, vector_width: int | None = None) -> dict:
    """Run the design in Verilator; ``out``: also save its Program there (for a build)."""
    from circa.compiler import executor
    from circa.sim import accel_rtl

    qnet, program, cfg, x = design(k, lanes, weight_bits, pwl_segments, steps, seed,
                                   vector_width)
    if out is not None:
        program.save(out)
    with progress.step(f"Building the accelerator ({lanes} lanes) and running {steps} steps"):
        rtl = accel_rtl.run(program, x[:1])
    expected = executor.run(program, x[:1]).numpy()
    counters = rtl.counters[0]
    mvm_bound = steps * sum(-(-m.p // lanes) * m.q for m in (qnet.layers[0].gates,
                                                               qnet.layers[0].projection))
    e = cfg.engine
    weight_bits = lanes * e.weight_depth * k * e.weight_width
    mults = multipliers(cfg)
    return {
        "k": k, "lanes": lanes, "vector_width": cfg.vector_words, "steps": steps,
        "weight_width": e.weight_width,
        "pwl_segments": cfg.pwl_segments,
        "bit_exact": bool(np.array_equal(rtl.outputs, expected)) and rtl.status[0][0] == 0,
        "cycles_per_step": counters["cycles"] / steps,
        "mvm_bound_per_step": mvm_bound / steps,
        "over_mvm_bound": round(counters["cycles"] / mvm_bound - 1, 3),
        "circulant_busy_per_step": counters["circulant_busy"] / steps,
        "vector_busy_per_step": counters["vector_busy"] / steps,
        "mac_utilisation_during_mvm": round(mvm_bound / counters["circulant_busy"], 3),
        "mac_utilisation_overall": round(mvm_bound / counters["cycles"], 3),
        "multipliers": mults,
        "weight_bits": weight_bits,
        "ecp5_85f": fit_85f(cfg),
        "verilator_build_seconds": round(rtl.build.build_seconds, 1),
        "verilator_wall_seconds": round(rtl.sim.run_seconds, 1),
    }


def render(report: dict) -> str:
    r, m = report, report["multipliers"]
    return "\n".join([
        f"ESE LSTM (153 -> 1024 cells -> 512), k = {r['k']}, {r['lanes']} lanes, vector "
        f"unit {r.get('vector_width', r['k'])} words, "
        f"{r['steps']} steps, bit-exact: {'yes' if r['bit_exact'] else 'NO'}",
        f"  {r['cycles_per_step']:.0f} cycles per time step; MVM-only bound "
        f"{r['mvm_bound_per_step']:.0f} ({r['over_mvm_bound']:+.1%})",
        f"  circulant engine busy {r['circulant_busy_per_step']:.0f}, vector unit busy "
        f"{r['vector_busy_per_step']:.0f} cycles per step",
        f"  MAC utilisation: {r['mac_utilisation_during_mvm']:.1%} during MVM, "
        f"{r['mac_utilisation_overall']:.1%} overall",
        f"  multipliers: {m['total']} (MAC {m['mac']}, FFT {m['fft']}, IFFT {m['ifft']}, "
        f"vector {m['vector']}, sparse {m['sparse']}); weight memory "
        f"{r['weight_bits'] / 1e6:.2f} Mbit",
        f"  ECP5-85F: {r['ecp5_85f']['brams']} of 208 block RAMs, fits: "
        f"{'yes' if r['ecp5_85f']['fits'] else 'no'}",
        f"  Verilator: build {r['verilator_build_seconds']} s, run {r['verilator_wall_seconds']} s",
    ])
