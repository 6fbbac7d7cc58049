"""Benchmark: accuracy of compressed and quantized networks on scikit-learn's digits.

``circa bench-accuracy`` trains three float models (an MLP on flat 64-pixel images, an
LSTM with projection and a GRU on the images as 8 rows of 8 pixels), compresses each to
every scheme with the compiler (``compress.plan`` + ``compress.compress``: ADMM training
on the labels, then exact projection), recovers accuracy by projected fine-tuning (Adam,
every structured weight projected back onto its set after each step), then quantizes it
(``quantize.build`` + ``quantize.quantize``, calibrated on the training inputs) and runs
the integer golden model on the 450 test images.

Columns: ``admm`` is the model straight out of ``compress.compress``; ``compressed`` is
after the fine-tuning (this is the model that is quantized); ``q16``/``q12`` are the
golden model's accuracies at 16- and 12-bit data and weights.
"""
from __future__ import annotations

import math
import time

import torch
from torch import nn

from circa import progress

SCHEMES = ("circulant:4", "circulant:8", "circulant:16", "sparse:4x4:0.25")
MODELS = ("mlp", "lstm", "gru")
WIDTHS = (16, 12)
SPARSE_K = 8                 # Formats.k for sparse schemes (the 4x4 blocks divide it)

#: Training settings: float epochs, ADMM rounds (3 epochs each), recovery epochs.
SETTINGS = {
    False: {"float_epochs": {"mlp": 30, "lstm": 40, "gru": 40}, "admm_rounds": 8,
            "recovery_epochs": 20, "recovery_lr": 3e-2},
    True: {"float_epochs": {"mlp": 15, "lstm": 20, "gru": 20}, "admm_rounds": 3,
           "recovery_epochs": 8, "recovery_lr": 3e-2},
}

DESCRIPTIONS = {
    "mlp": "MLP 64 -> 128 -> 10 on flat images",
    "lstm": "LSTM(8, hidden 64, proj 32) + Linear(32, 10) on 8 rows x 8 pixels",
    "gru": "GRU(8, hidden 64) + Linear(64, 10) on 8 rows x 8 pixels",
}


def _data(name, seed):
    from circa.compiler import digits
    return digits.load(seed) if name == "mlp" else digits.load_sequences(seed)


def _train_float(name, epochs, seed):
    from circa.compiler import digits
    if name == "mlp":
        return digits.train_mlp(hidden=128, epochs=epochs, seed=seed)
    if name == "lstm":
        return digits.train_rnn("lstm", hidden=64, proj_size=32, epochs=epochs, seed=seed)
    return digits.train_rnn("gru", hidden=64, epochs=epochs, seed=seed)


def weight_counts(model, schemes) -> tuple[int, int]:
    """``(stored, dense)`` weight counts of the weight matrices (biases excluded).

    Circulant: one length-``k`` vector per ``k x k`` block of each gate segment, padded
    to whole blocks. Sparse: ``r*c`` per kept block (counted on the weights). Dense: all.
    """
    from circa.compiler import compress
    params = dict(model.named_parameters())
    stored = dense = 0
    for layer, plist in compress.layer_parameters(model).items():
        scheme = schemes[layer]
        for pname, gates, (out_f, in_f) in plist:
            dense += out_f * in_f
            for part in params[pname].detach().chunk(gates, 0):
                rows, cols = part.shape
                if scheme.kind == "circulant":
                    k = scheme.k
                    stored += math.ceil(rows / k) * math.ceil(cols / k) * k
                elif scheme.kind == "sparse":
                    r, c = scheme.r, scheme.c
                    padded = nn.functional.pad(part, (0, -cols % c, 0, -rows % r))
                    blocks = padded.reshape(padded.shape[0] // r, r, -1, c).abs().sum((1, 3))
                    stored += int((blocks > 0).sum()) * r * c
                else:
                    stored += rows * cols
    return stored, dense


def _kinds(schemes) -> dict:
    kinds = {}
    for layer, s in schemes.items():
        if s.kind == "circulant":
            kinds[layer] = ("circulant",)
        elif s.kind == "sparse":
            kinds[layer] = ("sparse", (s.r, s.c))
        # dense: quantize.build's default, every block of a sparse matrix
    return kinds


def _accuracy_int(qnet, x, y) -> float:
    return float((qnet.golden(x.numpy()).argmax(-1) == y).float().mean())


def _one(model, scheme, k, data, cfg, seed, widths, per_layer=None) -> dict:
    from circa.compiler import compress, digits, frontend, quantize
    x_tr, y_tr, x_te, y_te = data
    schemes = compress.plan(model, per_layer if per_layer is not None else scheme, k=k)
    admm_model = compress.compress(model, schemes, x_tr, y_tr, train=True,
                                   rounds=cfg["admm_rounds"], finetune_epochs=0, seed=seed)
    admm_acc = digits.accuracy(admm_model, x_te, y_te)
    compressed = compress.recover(admm_model, compress.projections(admm_model, schemes), x_tr,
                                  y_tr, epochs=cfg["recovery_epochs"], lr=cfg["recovery_lr"],
                                  seed=seed)
    stored, dense = weight_counts(compressed, schemes)
    network = frontend.import_model(compressed)
    quant = {}
    for width in widths:
        qnet = quantize.build(network, _kinds(schemes),
                              quantize.Formats(k=k, data_width=width, weight_width=width))
        quantize.quantize(qnet, x_tr.numpy())
        quant[str(width)] = round(_accuracy_int(qnet, x_te, y_te), 4)
    return {
        "layers": {layer: str(s) for layer, s in schemes.items()},
        "dense_layers": sorted(layer for layer, s in schemes.items() if s.kind == "dense"),
        "stored_weights": stored, "dense_weights": dense,
        "compression": round(dense / stored, 2),
        "admm_accuracy": round(admm_acc, 4),
        "compressed_accuracy": round(digits.accuracy(compressed, x_te, y_te), 4),
        "quantized_accuracy": quant,
    }


def run(models=MODELS, schemes=SCHEMES, quick: bool = False, widths=WIDTHS,
        seed: int = 0) -> dict:
    from circa.compiler import compress, digits
    from circa.compiler.sparse import parse_scheme
    bad = sorted(set(models) - set(MODELS))
    if bad:
        raise ValueError(f"unknown models {bad}; choose from {list(MODELS)}")
    parsed = {s: parse_scheme(s) for s in schemes}          # reject bad schemes early
    cfg = SETTINGS[bool(quick)]
    started = time.monotonic()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = []
    try:
        for name in models:
            data = _data(name, seed)
            with progress.step(f"{name}: train float model ({cfg['float_epochs'][name]} epochs)"):
                model = _train_float(name, cfg["float_epochs"][name], seed)
            float_acc = digits.accuracy(model, data[2], data[3])
            rows = []
            for scheme in schemes:
                s = parsed[scheme]
                k = s.k if s.kind == "circulant" else SPARSE_K
                row = {"scheme": scheme, "k": k, "error": None}
                t0 = time.monotonic()
                with progress.step(f"{name}: {scheme} (ADMM, recovery, quantize {widths})"):
                    try:
                        row.update(_one(model, scheme, k, data, cfg, seed, widths))
                    except Exception as error:   # noqa: BLE001 - reported, then fall back
                        row["error"] = f"{type(error).__name__}: {error}"
                        progress.console.print(f"[yellow]{name} {scheme}: {row['error']}; "
                                               f"retrying with small layers dense[/yellow]")
                        # the scheme on layers spanning >= 2 blocks, the default rule elsewhere
                        big = {layer: scheme for layer, plist in
                               compress.layer_parameters(model).items()
                               if min(plist[0][2][0] // plist[0][1], plist[0][2][1]) >= 2 * k}
                        row.update(_one(model, scheme, k, data, cfg, seed, widths, big))
                row["seconds"] = round(time.monotonic() - t0, 1)
                rows.append(row)
            goal = [r for r in rows if r["scheme"] == "circulant:8" and "quantized_accuracy" in r]
            out.append({
                "model": name, "description": DESCRIPTIONS[name],
                "float_accuracy": round(float_acc, 4), "rows": rows,
                # the goal: circulant k = 8, 16-bit, at most 1 point below float
                "goal_met": (goal[0]["quantized_accuracy"].get("16", -1) >= float_acc - 0.01
                             if goal and "16" in goal[0]["quantized_accuracy"] else None),
            })
    finally:
        torch.set_num_threads(threads)
    return {"data": "scikit-learn digits, 1347 train / 450 test images (stratified, seed "
                    f"{seed})", "seed": seed, "quick": bool(quick), "settings": {
                        **{key: v for key, v in cfg.items()}, "widths": list(widths),
                        "sparse_k": SPARSE_K},
            "models": out, "seconds": round(time.monotonic() - started, 1)}


def render(report: dict) -> str:
    widths = report["settings"]["widths"]
    pct = lambda v: "  --  " if v is None else f"{100 * v:5.1f}%"
    lines = [f"Accuracy on {report['data']}" + ("  [quick]" if report["quick"] else ""),
             f"{'model':<5} {'scheme':<16} {'float':>6} {'admm':>6} {'compr.':>6} "
             + " ".join(f"{'q' + str(w):>6}" for w in widths)
             + f" {'stored':>7} {'dense':>6} {'ratio':>6}  dense layers / notes"]
    for m in report["models"]:
        for r in m["rows"]:
            q = r.get("quantized_accuracy", {})
            notes = ", ".join(r.get("dense_layers", [])) or "-"
            if r["error"]:
                notes += f"  (first try failed: {r['error']})"
            lines.append(
                f"{m['model']:<5} {r['scheme']:<16} {pct(m['float_accuracy'])} "
                f"{pct(r.get('admm_accuracy'))} {pct(r.get('compressed_accuracy'))} "
                + " ".join(pct(q.get(str(w))) for w in widths)
                + f" {r.get('stored_weights', 0):>7} {r.get('dense_weights', 0):>6} "
                f"{r.get('compression', 0):>5}x  {notes}")
    lines.append("Goal (circulant k = 8, 16-bit within 1 point of float): " + "; ".join(
        f"{m['model']} {'met' if m['goal_met'] else 'NOT met' if m['goal_met'] is not None else 'n/a'}"
        for m in report["models"]))
    lines.append(f"{report['seconds']:.0f} s")
    return "\n".join(lines)
