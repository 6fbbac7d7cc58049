"""Compression of whole models: a scheme per layer, projection, then recovery training.

The result is the same kind of torch model (nn.Sequential, nn.LSTM, nn.GRU,
RNNClassifier) with structured weights materialised, so anyone can run and compare it.

Schemes (``compiler/sparse.py: parse_scheme``): ``circulant:K``, ``sparse:RxC:DENSITY``,
``dense``. RNN weights are compressed gate by gate (each gate's rows are a segment that
starts on a block boundary in the accelerator), and the input and recurrent matrices
separately.
"""
from __future__ import annotations

import copy
import re

import torch
from torch import nn

from circa.compiler import admm as admm_lib
from circa.compiler import frontend, train
from circa.compiler.sparse import Scheme, parse_scheme


class _SequenceOutput(nn.Module):
    """A bare RNN's output sequence, for training (torch RNNs return a tuple)."""

    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn

    def forward(self, x):
        return self.rnn(x)[0]


def default_scheme(out_features: int, in_features: int, k: int) -> Scheme:
    """Block-circulant at the accelerator's ``k`` when both sides span at least two
    blocks (then it stores ``k`` times fewer weights); dense otherwise."""
    if min(out_features, in_features) >= 2 * k:
        return Scheme("circulant", k=k)
    return Scheme("dense")


def _projection(scheme: Scheme):
    if scheme.kind == "circulant":
        return admm_lib.circulant_projection(scheme.k)
    if scheme.kind == "sparse":
        return admm_lib.sparse_projection(scheme.r, scheme.c, scheme.density)
    return None


def _by_gates(base, gates: int):
    """Apply ``base`` to each of ``gates`` equal row segments of a weight."""
    if base is None or gates == 1:
        return base

    def project(weight):
        return torch.cat([base(part) for part in weight.chunk(gates, 0)], 0)
    return project


def layer_parameters(model: nn.Module) -> dict:
    """IR layer name -> list of ``(parameter name, gates, (out, in))`` it owns."""
    network = frontend.import_model(model)
    params = dict(model.named_parameters())
    out = {}
    for layer in network.layers:
        if isinstance(layer, frontend.Dense):
            prefix = "" if layer.name == "model" else layer.name + "."
            out[layer.name] = [(prefix + "weight", 1)]
        elif isinstance(layer, (frontend.LSTM, frontend.GRU)):
            module, index = re.fullmatch(r"(?:(.*)\.)?l(\d+)", layer.name).groups()
            prefix = module + "." if module else ""
            gates = 4 if isinstance(layer, frontend.LSTM) else 3
            names = [(f"{prefix}weight_ih_l{index}", gates), (f"{prefix}weight_hh_l{index}", gates)]
            if f"{prefix}weight_hr_l{index}" in params:
                names.append((f"{prefix}weight_hr_l{index}", 1))
            out[layer.name] = names
    return {name: [(p, g, tuple(params[p].shape)) for p, g in plist] for name, plist in out.items()}


def plan(model: nn.Module, schemes: dict | str | None, k: int) -> dict:
    """Scheme of every layer: one scheme for all (``str``), per layer (``dict`` of layer
    name -> scheme string, others by the default rule), or the default rule (``None``)."""
    layers = layer_parameters(model)
    chosen = {}
    for name, params in layers.items():
        given = schemes if isinstance(schemes, str) else (schemes or {}).get(name)
        if given is not None:
            chosen[name] = parse_scheme(given) if isinstance(given, str) else given
        else:
            out_f, in_f = params[0][2]
            chosen[name] = default_scheme(out_f // params[0][1], in_f, k)
        scheme = chosen[name]
        if scheme.kind == "circulant" and scheme.k != k:
            raise ValueError(f"layer {name!r}: scheme circulant:{scheme.k} does not match the "
                             f"accelerator's block size k = {k}; use circulant:{k}")
    unknown = set(schemes) - set(layers) if isinstance(schemes, dict) else set()
    if unknown:
        raise ValueError(f"the scheme names layers {sorted(unknown)} that are not in the model; "
                         f"its layers are {sorted(layers)}")
    return chosen


def projections(model: nn.Module, schemes: dict) -> dict:
    """Parameter name -> projection onto its layer's structured set (dense: none)."""
    out = {}
    for name, params in layer_parameters(model).items():
        base = _projection(schemes[name])
        for param, gates, _ in params:
            if base is not None:
                out[param] = _by_gates(base, gates)
    return out


def compress(model: nn.Module, schemes: dict, x, y=None, *, train: bool = True,
             rounds: int = 8, epochs_per_round: int = 3, finetune_epochs: int = 20,
             seed: int = 0, progress=None):
    """Compress ``model`` to ``schemes`` (layer name -> Scheme).

    With ``train``, recovery is ADMM-regularised training toward the structured set
    (ADMM-NN, E-RNN), an exact projection, then ``finetune_epochs`` of projected
    fine-tuning (every structured weight projected back after each step: on this scale
    ADMM alone leaves circulant k = 8 at 47-76 % on digits, see docs/benchmarks.md); on
    labels ``y`` if given, else by distillation from the original model on the inputs
    ``x``. Without ``train``, one-shot projection. Returns a new model; ``model`` is
    untouched.
    """
    proj = projections(model, schemes)
    if train and proj:
        bare_rnn = isinstance(model, (nn.LSTM, nn.GRU))
        trainee = _SequenceOutput(model) if bare_rnn else model
        names = {("rnn." + n if bare_rnn else n): f for n, f in proj.items()}
        x = torch.as_tensor(x, dtype=torch.float32)
        teacher = None if y is not None else trainee
        trained = admm_lib.admm(trainee, names, x, y, teacher=teacher, rounds=rounds,
                                epochs_per_round=epochs_per_round, seed=seed, progress=progress)
        if finetune_epochs:
            recover(trained, names, x, y, teacher=teacher, epochs=finetune_epochs, seed=seed)
        return trained.rnn if bare_rnn else trained
    result = copy.deepcopy(model)
    with torch.no_grad():
        for name, param in result.named_parameters():
            if name in proj:
                param.copy_(proj[name](param))
    return result


def recover(model: nn.Module, projections_by_name: dict, x, y=None, *, teacher=None,
            epochs: int = 20, lr: float = 3e-2, batch_size: int = 128, seed: int = 0):
    """Fine-tune ``model`` in place, projecting every structured weight back onto its set
    after each Adam step, so it stays exactly block-circulant / block-sparse. The loss is
    cross-entropy on labels ``y``, else MSE to ``teacher``'s outputs on ``x``."""
    params = dict(model.named_parameters())
    x = torch.as_tensor(x, dtype=torch.float32)
    if y is None:
        with torch.no_grad():
            targets = teacher(x).detach()
        loss_fn = nn.functional.mse_loss
    else:
        targets, loss_fn = torch.as_tensor(y).long(), nn.functional.cross_entropy

    def project():
        with torch.no_grad():
            for name, projection in projections_by_name.items():
                params[name].copy_(projection(params[name]))

    return train.fit(model, x, targets, loss_fn, epochs, lr=lr, batch_size=batch_size,
                     seed=seed, after_step=project)
