"""Quantized block-circulant MLP and its golden model (PyTorch integer tensors).

A quantized layer computes, on ``data_width``-bit integers::

    y = relu?( saturate( circulant_mvm(x, wf, shift, out_shift) + bias ) )

with :func:`circa.numerics.circulant_mvm` being exactly what the engine computes. Every
tensor has a power-of-two format (``frac`` fraction bits): the engine's output has
``x.frac + wf_frac - fft_scale - shift - out_shift`` of them, and the bias is quantized
to that format so the add is a plain integer add. At this stage the bias add and ReLU
run on the host (in this golden model); the vector unit takes them over later.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from circa import numerics as nx
from circa.compiler.circulant import CirculantLinear, quantize, spectrum


@dataclass(frozen=True)
class Formats:
    """Widths of the datapath the model is quantized for (an engine's, see EngineConfig)."""
    k: int = 16
    data_width: int = 16
    weight_width: int = 16
    fft_width: int = 18
    ifft_width: int = 18

    def mvm_kwargs(self):
        return dict(k=self.k, data_width=self.data_width, fft_width=self.fft_width,
                    ifft_width=self.ifft_width)


@dataclass
class QuantLayer:
    """One quantized block-circulant layer.

    ``wf`` is ``(p, q, k)`` weight spectra (halfcomplex ints, ``wf_frac`` fraction
    bits); ``bias`` is ``(out_features,)`` ints in the output format ``y_frac``.
    """
    in_features: int
    out_features: int
    wf: np.ndarray
    wf_frac: int
    bias: np.ndarray
    x_frac: int
    y_frac: int
    shift: int
    out_shift: int
    relu: bool

    @property
    def p(self) -> int:
        return self.wf.shape[0]

    @property
    def q(self) -> int:
        return self.wf.shape[1]


def to_blocks(x, q: int, k: int):
    """``(n, features)`` -> zero-padded ``(n, q, k)`` input blocks (numpy or torch)."""
    pad = q * k - x.shape[-1]
    if torch.is_tensor(x):
        return nn.functional.pad(x, (0, pad)).reshape(*x.shape[:-1], q, k)
    return np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, pad)]).reshape(*x.shape[:-1], q, k)


def mvm(layer: QuantLayer, x: torch.Tensor, fmt: Formats) -> torch.Tensor:
    """The engine's part of a layer: ``(n, in)`` ints -> ``(n, p, k)`` output blocks."""
    return nx.circulant_mvm(to_blocks(x, layer.q, fmt.k), torch.from_numpy(layer.wf),
                            layer.shift, layer.out_shift, **fmt.mvm_kwargs())


def finish(layer: QuantLayer, y_blocks: torch.Tensor, fmt: Formats) -> torch.Tensor:
    """The host's part: crop, add the bias, saturate, ReLU. ``(n, p, k)`` -> ``(n, out)``."""
    y = y_blocks.reshape(*y_blocks.shape[:-2], -1)[..., :layer.out_features]
    y = nx.saturate(y + torch.from_numpy(layer.bias), fmt.data_width)
    return y.clamp(min=0) if layer.relu else y


def run(layers: list[QuantLayer], x: torch.Tensor, fmt: Formats) -> list[torch.Tensor]:
    """Golden model of the whole network: each layer's engine output blocks ``(n, p, k)``
    and the final output ``(n, out)``: ``[mvm_0, ..., mvm_last, output]``."""
    trace = []
    for layer in layers:
        y = mvm(layer, x, fmt)
        trace.append(y)
        x = finish(layer, y, fmt)
    return trace + [x]


def quantize_input(x, frac: int, fmt: Formats) -> torch.Tensor:
    x = torch.as_tensor(x, dtype=torch.float64)
    return nx.saturate(torch.floor(x * 2.0**frac + 0.5).long(), fmt.data_width)


def quantize_mlp(model: nn.Sequential, calib: torch.Tensor, fmt: Formats):
    """Quantize a ``Sequential`` of :class:`CirculantLinear` (each optionally followed by
    ``ReLU``) using calibration inputs ``calib (n, in_features)``.

    Returns ``(layers, x_frac)``: the quantized layers and the input's format. Shifts are
    the smallest for which no calibration value saturates, for the most precision.
    """
    modules = list(model)
    x_frac = quantize(calib, fmt.data_width)[1]
    x = quantize_input(calib, x_frac, fmt)
    layers = []
    for n, module in enumerate(modules):
        if isinstance(module, nn.ReLU):
            continue
        if not isinstance(module, CirculantLinear) or module.k != fmt.k:
            raise ValueError(f"layer {n} is {type(module).__name__}"
                             f"{'(k=%d)' % module.k if isinstance(module, CirculantLinear) else ''}"
                             f"; this flow takes CirculantLinear layers with k={fmt.k} and ReLU")
        relu = n + 1 < len(modules) and isinstance(modules[n + 1], nn.ReLU)
        wf, wf_frac = quantize(spectrum(module.w.detach().numpy()), fmt.weight_width)
        blocks = to_blocks(x, wf.shape[1], fmt.k)
        shift, out_shift = nx.circulant_shifts(blocks, torch.from_numpy(wf), **fmt.mvm_kwargs())
        bias_f = (module.bias.detach().double().numpy() if module.bias is not None
                  else np.zeros(module.out_features))
        fft_scale = sum(nx.fft_stage_shifts(fmt.k, fmt.data_width, fmt.fft_width))
        while True:   # one more bit of out_shift until y + bias fits too
            y_frac = x_frac + wf_frac - fft_scale - shift - out_shift
            bias = np.floor(bias_f * 2.0**y_frac + 0.5).astype(np.int64)
            layer = QuantLayer(module.in_features, module.out_features, wf, wf_frac, bias,
                               x_frac, y_frac, shift, out_shift, relu)
            y = mvm(layer, x, fmt).reshape(len(x), -1)[:, :module.out_features]
            lo, hi = nx.signed_range(fmt.data_width)
            total = y + torch.from_numpy(bias)
            if (total.min() >= lo and total.max() <= hi) or out_shift == fmt.ifft_width - 1:
                break
            out_shift += 1
        layers.append(layer)
        x, x_frac = finish(layer, mvm(layer, x, fmt), fmt), y_frac
    return layers, quantize(calib, fmt.data_width)[1]
