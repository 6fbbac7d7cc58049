"""``circa compile``: a saved PyTorch model -> a compressed, quantized Program directory.

Steps: load the model safely; choose a compression scheme per layer; compress with
recovery training (labels from ``--train``, else distillation on ``--calib``); quantize,
calibrated on the sample inputs; schedule onto the AccelConfig; check the ISA-level
executor against the golden model; write everything into the output directory, which is
built in a temporary directory next to it and moved into place, so it is complete or
absent.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import tomllib
from pathlib import Path

import numpy as np
import torch

from circa import progress
from circa.compiler import compress, executor, frontend, schedule
from circa.compiler import quantize as Q
from circa.config import AccelConfig, EngineConfig


def accel_config(k: int = 16, lanes: int = 4, bits: int = 16, weight_depth: int = 2048,
                 act_depth: int = 4096, sparse_block: tuple | None = None,
                 vector_width: int | None = None) -> AccelConfig:
    """The compiler's default accelerator; ``sparse_block`` defaults to 4 x 4 (k x k for
    k < 4), ``vector_width`` to k (words the vector unit takes a cycle). FFT words are 4
    bits wider than the data, up to 18 (the per-stage shifts absorb the FFT's growth;
    narrower data needs no 18-bit FFT)."""
    if not isinstance(bits, int) or not 8 <= bits <= 18:
        raise ValueError(f"--bits must be an integer from 8 to 18, not {bits!r}")
    if sparse_block is None:
        sparse_block = (min(4, k), min(4, k)) if isinstance(k, int) else (4, 4)
    fft = min(18, bits + 4)
    return AccelConfig(EngineConfig(k=k, lanes=lanes, data_width=bits, weight_width=bits,
                                    fft_width=fft, ifft_width=fft,
                                    max_q=min(256, weight_depth), weight_depth=weight_depth),
                       sparse_block=sparse_block, act_depth=act_depth, imem_depth=1024,
                       sparse_depth=8192, vector_width=vector_width)


def _bits(tables_values) -> int:
    """Signed bits that hold every value of every table (2 at least)."""
    return max([2] + [int(v).bit_length() + 1 for values in tables_values for v in values])


def fitted_config(cfg: AccelConfig, program) -> AccelConfig:
    """``cfg`` with every memory cut to what ``program`` uses (powers of two, at least 16
    deep; weights beyond 1024 deep in whole 1024-word rows of block RAM; PWL entries as
    wide as its tables' values), so its bitstream fits the smallest board it can."""
    from circa.compiler.isa import Op
    pow2 = lambda n: max(16, 1 << (max(n, 1) - 1).bit_length())
    rows = lambda n: pow2(n) if n <= 1024 else -(-n // 1024) * 1024
    mvms = [i for i in program.instructions if i.op in (Op.MVC, Op.MVS)]
    e = cfg.engine
    depth = max((i.w + -(-i.n // e.lanes) * (i.m + i.m2) for i in mvms if i.op == Op.MVC),
                default=1)
    engine = dataclasses.replace(e, weight_depth=rows(depth),
                                 max_q=pow2(max((i.m + i.m2 for i in mvms), default=1)))
    return dataclasses.replace(cfg, engine=engine, act_depth=pow2(len(program.scratchpad)),
                               imem_depth=pow2(len(program.instructions)),
                               sparse_depth=pow2(len(program.sparse_index)),
                               tables=len(program.tables),
                               pwl_slope_width=_bits(t.slope for t in program.tables),
                               pwl_icept_width=_bits(t.icept for t in program.tables),
                               sparse_engine=any(i.op == Op.MVS for i in mvms))


def _load_array(path, what):
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read {what} file {path}: {error}") from None
    return data


def _sample_inputs(network: frontend.Network, x: np.ndarray, name: str) -> np.ndarray:
    """Check the shape of sample inputs and return them batch-first, float64."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.number) or not np.isfinite(x).all():
        raise ValueError(f"{name} must hold finite numbers")
    f = network.input_features
    if network.kind == "mlp":
        if x.ndim != 2 or x.shape[1] != f:
            raise ValueError(f"{name} has shape {x.shape}; the model takes (n, {f})")
        return x.astype(np.float64)
    layout = "(n, steps, {f})" if network.batch_first else "(steps, n, {f})"
    if x.ndim != 3 or x.shape[2] != f:
        raise ValueError(f"{name} has shape {x.shape}; the model takes {layout.format(f=f)} "
                         f"(batch_first={network.batch_first})")
    return (x if network.batch_first else x.swapaxes(0, 1)).astype(np.float64)


def _schemes(model, scheme: str | None, scheme_file, k: int) -> dict:
    if scheme and scheme_file:
        raise ValueError("give --scheme or --scheme-file, not both")
    if scheme_file:
        try:
            table = tomllib.loads(Path(scheme_file).read_text())
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise ValueError(f"cannot read scheme file {scheme_file}: {error}") from None
        layers = table.get("layers", {})
        if not isinstance(layers, dict) or not all(isinstance(v, str) for v in layers.values()):
            raise ValueError(f"{scheme_file}: expected a [layers] table of layer = \"scheme\", "
                             f"e.g. [layers]\n\"0\" = \"circulant:16\"")
        return compress.plan(model, layers, k)
    return compress.plan(model, scheme, k)


def _kinds(schemes: dict, cfg: AccelConfig) -> dict:
    kinds = {}
    for name, s in schemes.items():
        if s.kind == "circulant":
            kinds[name] = ("circulant",)
        elif s.kind == "sparse":
            if (s.r, s.c) != tuple(cfg.sparse_block):
                raise ValueError(f"layer {name!r}: sparse blocks {s.r}x{s.c} do not match the "
                                 f"accelerator's sparse_block "
                                 f"{cfg.sparse_block[0]}x{cfg.sparse_block[1]}")
            kinds[name] = ("sparse", (s.r, s.c))
        else:
            kinds[name] = ("sparse", tuple(cfg.sparse_block))
        if kinds[name][0] == "sparse" and not cfg.sparse_engine:
            raise ValueError(f"layer {name!r} ({s.kind}) runs on the block-sparse engine, which "
                             f"this AccelConfig leaves out (sparse_engine = False); build with "
                             f"the engine or compress the layer as circulant")
    return kinds


def quantize_and_schedule(compressed, schemes: dict, cfg: AccelConfig, x_cal):
    """A compressed model, its schemes and batch-first sample inputs ->
    ``(QuantNetwork, Program)`` for ``cfg``."""
    network = frontend.import_model(compressed)
    e = cfg.engine
    fmt = Q.Formats(k=cfg.k, data_width=e.data_width, weight_width=e.weight_width,
                    fft_width=e.fft_width, ifft_width=e.ifft_width,
                    pwl_segments=cfg.pwl_segments)
    qnet = Q.quantize(Q.build(network, _kinds(schemes, cfg), fmt), x_cal)
    steps = 1 if qnet.kind == "mlp" else x_cal.shape[1]
    return qnet, schedule.schedule(qnet, cfg, steps)


def _report(schemes, qnet: Q.QuantNetwork, program, cfg: AccelConfig, network) -> dict:
    layers = []
    lanes = cfg.engine.lanes
    for (name, scheme), layer in zip(schemes.items(), qnet.layers):
        mats = schedule.matrices(layer)
        dense = sum(sum(np.asarray(part).size for row in m.parts for part in row) for m in mats)
        stored = sum(m.wf.size if m.kind == "circulant" else
                     int((m.w_int.reshape(-1) != 0).sum()) for m in mats)
        cycles = sum(schedule.estimated_cycles(m, cfg) for m in mats)
        layers.append({"layer": name, "type": type(layer).__name__, "scheme": str(scheme),
                       "params_dense": dense, "params_stored": stored,
                       "compression": round(dense / max(stored, 1), 2),
                       "estimated_mvm_cycles_per_step": cycles})
    return {"layers": layers, "instructions": len(program.instructions),
            "scratchpad_words": len(program.scratchpad),
            "input": {"steps": program.input.steps, "features": program.input.features,
                      "frac": program.input.frac},
            "output": {"features": program.output.features, "frac": program.output.frac,
                       "sequence": program.sequence_output},
            "bits": cfg.engine.data_width, "k": cfg.k, "lanes": lanes,
            "model_kind": network.kind, "batch_first": bool(network.batch_first)}


def compile_model(model_path, out_dir, *, scheme: str | None = None, scheme_file=None,
                  bits: int = 16, calib=None, train=None, no_train: bool = False,
                  k: int = 16, lanes: int = 4, seed: int = 0,
                  vector_width: int | None = None) -> dict:
    """Compile the model file into ``out_dir``; returns the report (also report.json)."""
    cfg = accel_config(k=k, lanes=lanes, bits=bits, vector_width=vector_width)
    if calib is None and train is None:
        raise ValueError("compile needs sample inputs for calibration: --calib FILE.npy "
                         "(inputs) or --train FILE.npz (with arrays x and y)")
    with progress.step(f"Loading {model_path}"):
        module = frontend.load_model(model_path)
        network = frontend.import_model(module)
    x = y = None
    if train is not None:
        data = _load_array(train, "--train")
        if not hasattr(data, "files") or not {"x", "y"} <= set(data.files):
            raise ValueError(f"--train {train} must be an .npz file with arrays x and y")
        x, y = _sample_inputs(network, data["x"], "--train x"), torch.as_tensor(data["y"]).long()
        if len(y) != len(x):
            raise ValueError(f"--train has {len(x)} inputs but {len(y)} labels")
    if calib is not None:
        x_cal = _sample_inputs(network, _load_array(calib, "--calib"), "--calib")
    else:
        x_cal = x
    schemes = _schemes(module, scheme, scheme_file, k)
    _kinds(schemes, cfg)                         # refuse a scheme the hardware lacks, early
    train_x = x if x is not None else x_cal
    torch_layout = lambda a: torch.as_tensor(a if network.batch_first or network.kind == "mlp"
                                             else a.swapaxes(0, 1), dtype=torch.float32)
    with progress.step("Compressing" + ("" if no_train else
                                        " with ADMM recovery training"
                                        + (" on labels" if y is not None else " (distillation)"))):
        compressed = compress.compress(module, schemes, torch_layout(train_x), y,
                                       train=not no_train, seed=seed)
    with progress.step(f"Quantizing to {bits} bits and scheduling"):
        qnet, program = quantize_and_schedule(compressed, schemes, cfg, x_cal)
        cfg = fitted_config(cfg, program)
        qnet, program = quantize_and_schedule(compressed, schemes, cfg, x_cal)
        net_c = frontend.import_model(compressed)
    with progress.step("Checking the ISA-level executor against the golden model"):
        sample = x_cal[:64]
        if not torch.equal(executor.run(program, sample), qnet.golden(sample)):
            raise RuntimeError("internal error: the scheduled program differs from the golden "
                               "model; please report it with the model")
    report = _report(schemes, qnet, program, cfg, network)
    report["accel_config"] = dataclasses.asdict(cfg)
    if y is not None:
        reference = frontend.run_float(net_c, x)
        logits = qnet.dequantize(qnet.golden(x))
        report["train_accuracy"] = {
            "float_compressed": float((reference.argmax(-1) == y.numpy()).mean()),
            "quantized": float((logits.argmax(-1) == y.numpy()).mean())}
    out = Path(out_dir).absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        program.save(work)
        torch.save(compressed, work / "compressed.pt")
        (work / "report.json").write_text(json.dumps(report, indent=1))
        if out.exists():
            shutil.rmtree(out)
        work.rename(out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    report["directory"] = str(out)
    return report


def render(report: dict) -> str:
    lines = [f"compiled to {report['directory']}: {report['instructions']} instructions, "
             f"{report['scratchpad_words']} scratchpad words, k = {report['k']}, "
             f"{report['lanes']} lanes, {report['bits']} bits"]
    for layer in report["layers"]:
        lines.append(f"  {layer['layer']:>8} {layer['type']:<6} {layer['scheme']:<16} "
                     f"{layer['params_dense']:>8} -> {layer['params_stored']:>7} weights "
                     f"({layer['compression']}x), ~{layer['estimated_mvm_cycles_per_step']} "
                     f"MVM cycles/step")
    if "train_accuracy" in report:
        acc = report["train_accuracy"]
        lines.append(f"  training-set accuracy: compressed float {acc['float_compressed']:.2%}, "
                     f"quantized {acc['quantized']:.2%}")
    return "\n".join(lines)
