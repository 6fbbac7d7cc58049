"""Quantization and the golden model of whole networks (MLP, LSTM with projection, GRU).

One description of each layer's computation (:func:`dense_layer`, :func:`lstm_step`,
:func:`gru_step`) runs on two arithmetics:

* :class:`FloatArith` executes it in float64 and records the range of every named
  tensor on calibration inputs;
* :class:`IntArith` executes it with the numerics contract (``circa.numerics``) on torch
  ``int64`` tensors, with the power-of-two formats chosen from those ranges. This is the
  golden model: the hardware must equal it word for word.

Activations are kept in *block space*: ``(n, blocks, k)``, every segment (a layer's
input, a gate, the hidden state) zero-padded to a multiple of ``k`` so that it starts on
a block boundary, as in the accelerator's scratchpad. Pads stay zero through every layer:
a circulant MVM's padding rows are cleared by a mask, and every other operation maps
zero pads to zero pads (sigmoid's 0.5 only ever multiplies a zero).

Formats (fraction bits ``f``, value = int * 2**-f, ``data_width`` bits):

* network input, MVM outputs, LSTM gate pre-activations ``z`` and cell state ``c``: the
  largest ``f`` that holds the calibration range (pre-activations capped at 8: sigmoid and
  tanh are flat beyond);
* sigmoid/tanh outputs and the LSTM/GRU hidden state without projection:
  ``act_frac = data_width - 2`` (range [-2, 2)).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from circa import numerics as nx
from circa.compiler import circulant, frontend, pwl

PREACT_LIMIT = 8.0          # |pre-activation| beyond which sigmoid and tanh are flat


@dataclass(frozen=True)
class Formats:
    """The datapath the network is quantized for (the accelerator's widths)."""
    k: int = 16
    data_width: int = 16
    weight_width: int = 16
    fft_width: int = 18
    ifft_width: int = 18
    pwl_segments: int = 32

    @property
    def act_frac(self) -> int:
        return self.data_width - 2

    def mvm_kwargs(self):
        return dict(k=self.k, data_width=self.data_width, fft_width=self.fft_width,
                    ifft_width=self.ifft_width)


def blocks_of(n: int, k: int) -> int:
    return -(-n // k)


def frac_for(maxabs: float, width: int) -> int:
    """Largest fraction bits (at most ``width - 1``: the range [-1, 1)) for which
    ``maxabs`` rounds within ``width`` signed bits."""
    if maxabs <= 0:
        return width - 1
    f = math.floor(math.log2((2 ** (width - 1) - 0.5) / maxabs))
    while math.floor(maxabs * 2.0**f + 0.5) > 2 ** (width - 1) - 1:
        f -= 1
    return min(f, width - 1)


# -- structured matrices ---------------------------------------------------------------------

@dataclass
class Matrix:
    """One MVM: a matrix made of segments, each segment zero-padded to whole blocks.

    ``parts[i][j]`` is the float ``(out_segments[i], in_segments[j])`` weight; in block
    space the matrix is ``(p*k, q*k)``. ``kind`` is ``"circulant"`` (stored as weight
    spectra) or ``"sparse"`` (block-sparse with ``block = (r, c)``; dense is every block).
    Integer fields are filled by :func:`IntArith.quantize_matrix`.
    """
    name: str
    kind: str
    parts: list
    out_segments: tuple
    in_segments: tuple
    k: int
    block: tuple = (0, 0)
    # quantized:
    wf: np.ndarray | None = None          # circulant: (p, q, k) halfcomplex spectra
    w_int: np.ndarray | None = None       # sparse: (p*k, q*k) ints, zero outside blocks
    w_frac: int = 0
    in_fracs: tuple = ()
    x_frac: int = 0
    y_frac: int = 0
    shift: int = 0
    out_shift: int = 0

    @property
    def p(self) -> int:
        return sum(blocks_of(n, self.k) for n in self.out_segments)

    @property
    def q(self) -> int:
        return sum(blocks_of(n, self.k) for n in self.in_segments)

    @property
    def needs_mask(self) -> bool:
        """A circulant block computes all its ``k`` rows; where a segment ends inside a
        block, the padding rows must be cleared (``VMUL`` by :meth:`row_mask`)."""
        return self.kind == "circulant" and any(n % self.k for n in self.out_segments)

    def row_mask(self) -> np.ndarray:
        """``(p, k)``: 1 on real rows, 0 on padding rows."""
        return np.concatenate([np.arange(blocks_of(n, self.k) * self.k) < n
                               for n in self.out_segments]).astype(np.int64).reshape(-1, self.k)

    def padded(self) -> np.ndarray:
        """The float matrix in block space, ``(p*k, q*k)``."""
        k = self.k
        rows = []
        for i, out_n in enumerate(self.out_segments):
            row = []
            for j, in_n in enumerate(self.in_segments):
                part = np.zeros((blocks_of(out_n, k) * k, blocks_of(in_n, k) * k))
                part[:out_n, :in_n] = self.parts[i][j]
                row.append(part)
            rows.append(np.concatenate(row, 1))
        return np.concatenate(rows, 0)

    def circulant_full(self) -> np.ndarray:
        """The block-space matrix ``(p*k, q*k)`` the circulant MVM computes: every block a
        full circulant, so rows past a segment's end (its padding) are not zero."""
        k = self.k
        return np.concatenate([np.concatenate([
            circulant.expand(circulant.project(self.parts[i][j], k), blocks_of(out_n, k) * k,
                             blocks_of(in_n, k) * k)
            for j, in_n in enumerate(self.in_segments)], 1)
            for i, out_n in enumerate(self.out_segments)], 0)

    def spectra(self, scales) -> np.ndarray:
        """Float weight spectra ``(p, q, k)``; input segment ``j`` scaled by ``scales[j]``."""
        rows = []
        for i in range(len(self.out_segments)):
            rows.append(np.concatenate([circulant.spectrum(circulant.project(
                self.parts[i][j] * scales[j], self.k)) for j in range(len(self.in_segments))], 1))
        return np.concatenate(rows, 0)


def nn_pad_blocks(x, k):
    """``(n, features)`` -> ``(n, blocks, k)``, zero-padded."""
    pad = blocks_of(x.shape[-1], k) * k - x.shape[-1]
    return torch.nn.functional.pad(x, (0, pad)).reshape(x.shape[0], -1, k)


def unblock(x, features: int):
    """``(n, blocks, k)`` -> ``(n, features)``."""
    return x.reshape(x.shape[0], -1)[:, :features]


# -- the two arithmetics -------------------------------------------------------------------

class FloatArith:
    """Float64 execution that records ``max |value|`` of every named tensor."""

    def __init__(self, fmt: Formats):
        self.fmt = fmt
        self.ranges: dict[str, float] = {}

    def _record(self, name, v):
        self.ranges[name] = max(self.ranges.get(name, 0.0), float(v.abs().max()) if v.numel() else 0.0)
        return v

    def input(self, x, name):
        return self._record(name, nn_pad_blocks(torch.as_tensor(x, dtype=torch.float64), self.fmt.k))

    def mvm(self, mat: Matrix, xs: list, name: str):
        x = torch.cat(xs, 1).reshape(xs[0].shape[0], -1)
        y = (x @ torch.from_numpy(mat.padded()).T).reshape(x.shape[0], -1, self.fmt.k)
        if mat.kind == "circulant":   # the accumulated spectrum is the output block's rfft
            # of the full circulant blocks (padding rows of a partial block included)
            full = (x @ torch.from_numpy(mat.circulant_full()).T).reshape(x.shape[0], -1, self.fmt.k)
            spectrum = torch.fft.rfft(full, dim=-1)
            self._record(name + ".spectrum", torch.cat([spectrum.real, spectrum.imag], -1))
        return self._record(name, y)

    def bias(self, y, b, name):
        return self._record(name, y + torch.from_numpy(b))

    def add(self, a, b, name):
        return self._record(name, a + b)

    def sub(self, a, b, name):
        return self._record(name, a - b)

    def mul(self, a, b, name, a_name, b_name):
        return self._record(name, a * b)

    def relu(self, a, name):
        return a.clamp(min=0)

    def pwl(self, a, name, table):
        return (torch.sigmoid if table.endswith("sigmoid") else torch.tanh)(a)


class IntArith:
    """The golden model's arithmetic: the numerics contract on torch int64 tensors.

    ``fracs`` maps tensor names to fraction bits; ``trace`` (if a dict) receives every
    named tensor, for locating the first divergence from the hardware.
    """

    def __init__(self, fmt: Formats, fracs: dict, tables: dict, trace: dict | None = None):
        self.fmt, self.fracs, self.tables, self.trace = fmt, fracs, tables, trace

    def _keep(self, name, v):
        if self.trace is not None:
            self.trace.setdefault(name, []).append(v)
        return v

    def input(self, x, name):
        x = torch.as_tensor(x, dtype=torch.float64)
        q = nx.saturate(torch.floor(x * 2.0 ** self.fracs[name] + 0.5).long(), self.fmt.data_width)
        return nn_pad_blocks(q, self.fmt.k)

    def mvm(self, mat: Matrix, xs: list, name: str):
        x = torch.cat(xs, 1)
        if mat.kind == "circulant":
            y = nx.circulant_mvm(x, torch.from_numpy(mat.wf), mat.shift, mat.out_shift,
                                 **self.fmt.mvm_kwargs())
        else:
            flat = x.reshape(x.shape[0], -1) @ torch.from_numpy(mat.w_int).T
            y = nx.narrow(flat, mat.shift, self.fmt.data_width).reshape(x.shape[0], -1, self.fmt.k)
        self._keep(name, y)
        if mat.needs_mask:      # a partial circulant block's padding rows are not zero
            y = self._keep(name + ".mask", nx.vmul(y, torch.from_numpy(mat.row_mask()), 0,
                                                   self.fmt.data_width))
        return y

    def bias(self, y, b, name):
        return self._keep(name, nx.vadd(y, torch.from_numpy(b), self.fmt.data_width))

    def add(self, a, b, name):
        return self._keep(name, nx.vadd(a, b, self.fmt.data_width))

    def sub(self, a, b, name):
        return self._keep(name, nx.vsub(a, b, self.fmt.data_width))

    def mul(self, a, b, name, a_name, b_name):
        """``a * b`` rounded into ``name``'s format (the operands are named tensors)."""
        shift = self.fracs[a_name] + self.fracs[b_name] - self.fracs[name]
        return self._keep(name, nx.vmul(a, b, shift, self.fmt.data_width))

    def relu(self, a, name):
        return self._keep(name, nx.relu(a))

    def pwl(self, a, name, table):
        return self._keep(name, nx.pwl(self.tables[table], a, self.fmt.data_width))


# -- quantized layers ------------------------------------------------------------------------

@dataclass
class Dense:
    name: str
    mat: Matrix
    bias: np.ndarray          # (p, k) float; quantized: ints in y format
    relu: bool
    out_features: int


@dataclass
class LSTM:
    name: str
    hidden: int
    proj: int
    gates: Matrix             # out segments: i, f, g, o (each hidden); in: input, recurrent
    bias: np.ndarray          # (p, k)
    projection: Matrix | None

    @property
    def out_features(self):
        return self.proj or self.hidden


@dataclass
class GRU:
    name: str
    hidden: int
    w_i: Matrix               # out segments r, z, n; in: input
    w_h: Matrix               # out segments r, z, n; in: hidden
    b_i: np.ndarray
    b_h: np.ndarray

    @property
    def out_features(self):
        return self.hidden


def _gate_slices(hidden, k, gates):
    hb = blocks_of(hidden, k)
    return [slice(g * hb, (g + 1) * hb) for g in range(gates)]


def dense_layer(ar, L: Dense, x):
    y = ar.bias(ar.mvm(L.mat, [x], L.name + ".mvm"), L.bias, L.name + ".y")
    return ar.relu(y, L.name + ".relu") if L.relu else y


def lstm_step(ar, L: LSTM, x, h, c):
    """One time step on arithmetic ``ar``: returns the new ``(h, c)``."""
    n = L.name
    z = ar.bias(ar.mvm(L.gates, [x, h], n + ".gates"), L.bias, n + ".z")
    si, sf, sg, so = _gate_slices(L.hidden, ar.fmt.k, 4)
    i = ar.pwl(z[:, si], n + ".i", n + ".sigmoid")
    f = ar.pwl(z[:, sf], n + ".f", n + ".sigmoid")
    g = ar.pwl(z[:, sg], n + ".g", n + ".tanh_z")
    o = ar.pwl(z[:, so], n + ".o", n + ".sigmoid")
    c = ar.add(ar.mul(f, c, n + ".fc", n + ".f", n + ".c"),
               ar.mul(i, g, n + ".ig", n + ".i", n + ".g"), n + ".c")
    m = ar.mul(o, ar.pwl(c, n + ".tc", n + ".tanh_c"), n + ".m", n + ".o", n + ".tc")
    h = ar.mvm(L.projection, [m], n + ".h") if L.projection is not None else m
    return h, c


def gru_step(ar, L: GRU, x, h):
    """One time step on arithmetic ``ar``: returns the new ``h``."""
    n = L.name
    gi = ar.bias(ar.mvm(L.w_i, [x], n + ".gi"), L.b_i, n + ".gib")
    gh = ar.bias(ar.mvm(L.w_h, [h], n + ".gh"), L.b_h, n + ".ghb")
    sr, sz, sn = _gate_slices(L.hidden, ar.fmt.k, 3)
    rz = ar.add(gi[:, sr.start:sz.stop], gh[:, sr.start:sz.stop], n + ".rz")
    rz = ar.pwl(rz, n + ".rzs", n + ".sigmoid")
    r, z = rz[:, sr], rz[:, sz]
    hn = ar.add(gi[:, sn], ar.mul(r, gh[:, sn], n + ".rh", n + ".rzs", n + ".ghb"), n + ".npre")
    nn_ = ar.pwl(hn, n + ".n", n + ".tanh")
    d = ar.sub(h, nn_, n + ".d")
    return ar.add(nn_, ar.mul(z, d, n + ".zd", n + ".rzs", n + ".d"), n + ".h")


# -- the network -----------------------------------------------------------------------------

@dataclass
class QuantNetwork:
    """A quantized network and everything the golden model and the scheduler need."""
    fmt: Formats
    kind: str                          # "mlp" or "rnn"
    input_features: int
    layers: list                       # Dense / LSTM / GRU, in order
    head_on_last_step: bool
    fracs: dict = field(default_factory=dict)
    tables: dict = field(default_factory=dict)

    @property
    def output_features(self) -> int:
        return self.layers[-1].out_features

    @property
    def output_frac(self) -> int:
        last = self.layers[-1]
        if isinstance(last, Dense):
            return self.fracs[last.name + ".y"]
        return self.fracs[last.name + ".h"]

    def execute(self, ar, x):
        """Run the network on arithmetic ``ar``. ``x``: (n, features) or (n, T, features)."""
        if self.kind == "mlp":
            h = ar.input(x, "input")
            for layer in self.layers:
                h = dense_layer(ar, layer, h)
            return h
        n, steps = x.shape[0], x.shape[1]
        seq = [ar.input(x[:, t], "input") for t in range(steps)]
        head = []
        for layer in self.layers:
            if isinstance(layer, Dense):
                head.append(layer)
                continue
            zeros = lambda features: nn_pad_blocks(
                torch.zeros(n, features, dtype=seq[0].dtype), self.fmt.k)
            h = zeros(layer.out_features)
            c = zeros(layer.hidden)
            out = []
            for x_t in seq:
                if isinstance(layer, LSTM):
                    h, c = lstm_step(ar, layer, x_t, h, c)
                else:
                    h = gru_step(ar, layer, x_t, h)
                out.append(h)
            seq = out
        if not head:
            return torch.stack(seq, 1)             # (n, T, blocks, k)
        h = seq[-1]
        for layer in head:
            h = dense_layer(ar, layer, h)
        return h

    def golden(self, x_float, trace: dict | None = None) -> torch.Tensor:
        """The golden model on float inputs (quantized with the input format): int words,
        ``(n, out)`` or ``(n, T, out)``, in format ``output_frac``."""
        ar = IntArith(self.fmt, self.fracs, self.tables, trace)
        y = self.execute(ar, torch.as_tensor(np.asarray(x_float)))
        if y.dim() == 4:
            return y.reshape(y.shape[0], y.shape[1], -1)[..., :self.output_features]
        return unblock(y, self.output_features)

    def dequantize(self, y_int) -> np.ndarray:
        return np.asarray(y_int, dtype=np.float64) * 2.0 ** -self.output_frac


# -- building and quantizing -----------------------------------------------------------------

def _matrix(name, kind, parts, out_segments, in_segments, k, block=(0, 0)):
    return Matrix(name, kind, parts, tuple(out_segments), tuple(in_segments), k, block)


def _bias_blocks(parts, segments, k):
    """Concatenate bias segments, each padded to whole blocks: ``(p, k)``."""
    out = []
    for b, n in zip(parts, segments):
        padded = np.zeros(blocks_of(n, k) * k)
        if b is not None:
            padded[:n] = b
        out.append(padded)
    return np.concatenate(out).reshape(-1, k)


def build(network: frontend.Network, kinds: dict, fmt: Formats) -> QuantNetwork:
    """Arrange an imported (already compressed) network into block space.

    ``kinds`` maps a layer name to ``("circulant",)`` or ``("sparse", (r, c))``.
    """
    k, layers = fmt.k, []
    ir = [layer for layer in network.layers]
    for n, layer in enumerate(ir):
        if isinstance(layer, frontend.ReLU):
            continue
        kind, *block = kinds.get(layer.name, ("sparse", (k, k)))
        block = tuple(block[0]) if block else (0, 0)
        name = f"L{len(layers)}"
        if isinstance(layer, frontend.Dense):
            relu = n + 1 < len(ir) and isinstance(ir[n + 1], frontend.ReLU)
            mat = _matrix(name + ".mvm", kind, [[layer.weight]], [layer.weight.shape[0]],
                          [layer.weight.shape[1]], k, block)
            layers.append(Dense(name, mat, _bias_blocks([layer.bias], [layer.weight.shape[0]], k),
                                relu, layer.weight.shape[0]))
        elif isinstance(layer, frontend.LSTM):
            H, P = layer.hidden_size, layer.proj_size
            R = P or H
            gates = [slice(g * H, (g + 1) * H) for g in range(4)]
            parts = [[layer.w_ih[s], layer.w_hh[s]] for s in gates]
            mat = _matrix(name + ".gates", kind, parts, [H] * 4, [layer.input_size, R], k, block)
            b = sum(v for v in (layer.b_ih, layer.b_hh) if v is not None)
            bias = _bias_blocks([None if isinstance(b, int) else b[s] for s in gates], [H] * 4, k)
            proj = (_matrix(name + ".h", kind, [[layer.w_hr]], [P], [H], k, block) if P else None)
            layers.append(LSTM(name, H, P, mat, bias, proj))
        elif isinstance(layer, frontend.GRU):
            H = layer.hidden_size
            gates = [slice(g * H, (g + 1) * H) for g in range(3)]
            w_i = _matrix(name + ".gi", kind, [[layer.w_ih[s]] for s in gates], [H] * 3,
                          [layer.input_size], k, block)
            w_h = _matrix(name + ".gh", kind, [[layer.w_hh[s]] for s in gates], [H] * 3, [H], k, block)
            b_i = _bias_blocks([None if layer.b_ih is None else layer.b_ih[s] for s in gates], [H] * 3, k)
            b_h = _bias_blocks([None if layer.b_hh is None else layer.b_hh[s] for s in gates], [H] * 3, k)
            layers.append(GRU(name, H, w_i, w_h, b_i, b_h))
    return QuantNetwork(fmt, network.kind, network.input_features, layers,
                        network.head_on_last_step)


def _quantize_matrix(mat: Matrix, in_fracs, y_frac, ranges, fmt: Formats):
    """Choose weights, shifts and output format of one MVM (inputs in ``in_fracs``)."""
    x_frac = in_fracs[0]
    scales = [2.0 ** (x_frac - f) for f in in_fracs]     # align every input segment's format
    mat.in_fracs, mat.x_frac = tuple(in_fracs), x_frac
    if mat.kind == "circulant":
        mat.wf, mat.w_frac = circulant.quantize(mat.spectra(scales), fmt.weight_width)
        gain = x_frac + mat.w_frac - sum(nx.fft_stage_shifts(fmt.k, fmt.data_width, fmt.fft_width))
        spectrum_frac = frac_for(ranges[mat.name + ".spectrum"], fmt.ifft_width)
        mat.shift = max(0, gain - spectrum_frac)
        mat.out_shift = max(0, gain - mat.shift - y_frac)
        mat.y_frac = gain - mat.shift - mat.out_shift
    else:
        padded = mat.padded()
        col = np.concatenate([np.full(blocks_of(n, fmt.k) * fmt.k, s)
                              for n, s in zip(mat.in_segments, scales)])
        mat.w_int, mat.w_frac = circulant.quantize(padded * col, fmt.weight_width)
        mat.shift = max(0, x_frac + mat.w_frac - y_frac)
        mat.y_frac = x_frac + mat.w_frac - mat.shift
        mat.out_shift = 0
    return mat.y_frac


def quantize(qnet: QuantNetwork, calib: np.ndarray) -> QuantNetwork:
    """Choose every format, shift and table from calibration inputs, then quantize."""
    fmt, act = qnet.fmt, qnet.fmt.act_frac
    floats = FloatArith(fmt)
    qnet.execute(floats, torch.as_tensor(np.asarray(calib), dtype=torch.float64))
    r = floats.ranges
    fr = {"input": frac_for(r["input"], fmt.data_width)}

    def fit_frac(*names, cap=None):
        m = max(r.get(name, 0.0) for name in names)
        return frac_for(min(m, cap) if cap else m, fmt.data_width)

    def table(name, function, in_frac):
        # slopes 2 bits wider than the data, as the outputs need, 18 at most
        qnet.tables[name] = pwl.fit(function, in_frac, act, width=fmt.data_width,
                                    slope_bits=min(18, fmt.data_width + 2),
                                    segments=fmt.pwl_segments)

    x_frac = fr["input"]
    seq_frac = x_frac
    for layer in qnet.layers:
        n = layer.name
        if isinstance(layer, Dense):
            want = fit_frac(n + ".mvm", n + ".y")
            y = _quantize_matrix(layer.mat, [x_frac], want, r, fmt)
            layer.bias = np.floor(np.asarray(layer.bias) * 2.0**y + 0.5).astype(np.int64)
            fr[n + ".mvm"] = fr[n + ".y"] = fr[n + ".relu"] = y
            x_frac = y
        elif isinstance(layer, LSTM):
            # The projection first: its output format (possibly coarser than the range of
            # h asks for, when the spectrum needs more headroom) is the recurrent input's.
            h_frac = (act if layer.projection is None else
                      _quantize_matrix(layer.projection, [act], fit_frac(n + ".h"), r, fmt))
            z = _quantize_matrix(layer.gates, [seq_frac, h_frac],
                                 fit_frac(n + ".gates", n + ".z", cap=PREACT_LIMIT), r, fmt)
            layer.bias = np.floor(layer.bias * 2.0**z + 0.5).astype(np.int64)
            c = fit_frac(n + ".c", n + ".fc", n + ".ig")
            fr.update({n + ".gates": z, n + ".z": z, n + ".c": c, n + ".fc": c, n + ".ig": c,
                       n + ".m": act, n + ".i": act, n + ".f": act, n + ".g": act,
                       n + ".o": act, n + ".tc": act})
            table(n + ".sigmoid", "sigmoid", z)
            table(n + ".tanh_z", "tanh", z)
            table(n + ".tanh_c", "tanh", c)
            fr[n + ".h"] = h_frac
            seq_frac = x_frac = h_frac
        else:   # GRU: both MVMs produce one common format g
            g = fit_frac(n + ".gi", n + ".gh", n + ".gib", n + ".ghb", n + ".rz", n + ".npre",
                         n + ".rh", cap=PREACT_LIMIT)
            gi = _quantize_matrix(layer.w_i, [seq_frac], g, r, fmt)
            gh = _quantize_matrix(layer.w_h, [act], g, r, fmt)
            if gi != g or gh != g:
                g = min(gi, gh)
                _quantize_matrix(layer.w_i, [seq_frac], g, r, fmt)
                _quantize_matrix(layer.w_h, [act], g, r, fmt)
                if layer.w_i.y_frac != g or layer.w_h.y_frac != g:
                    raise ValueError(f"{n}: cannot give both GRU MVMs one output format")
            layer.b_i = np.floor(layer.b_i * 2.0**g + 0.5).astype(np.int64)
            layer.b_h = np.floor(layer.b_h * 2.0**g + 0.5).astype(np.int64)
            fr.update({n + s: g for s in (".gi", ".gh", ".gib", ".ghb", ".rz", ".rh", ".npre")})
            fr.update({n + s: act for s in (".rzs", ".n", ".d", ".zd", ".h")})
            table(n + ".sigmoid", "sigmoid", g)
            table(n + ".tanh", "tanh", g)
            seq_frac = x_frac = act
    qnet.fracs = fr
    return qnet
