"""The scheduler: a quantized network -> a Program for an AccelConfig.

Scratchpad layout (in blocks of ``k`` activations), allocated in order:

* constants: every bias, once;
* the input: ``steps`` slices of ``ceil(features/k)`` blocks;
* per MLP layer, its output; per RNN layer, its hidden-state sequence with one extra
  leading slot that holds the zero initial state (slot ``t+1`` is ``h_t``), the cell state
  and the gate buffers.

An RNN layer is one loop over time steps. ``A1`` points at ``x_t``, ``A2`` at ``h_t``
(so ``h_{t-1}`` is ``A2 - blocks``), and both advance by ``ADDA`` at the end of the body.
All four LSTM gates (three for GRU) come from one MVM per input, so each input block is
transformed once and reused for every gate; the LSTM's MVM reads ``x_t`` and
``h_{t-1}`` as one concatenated input.
"""
from __future__ import annotations

import numpy as np

from circa.compiler import quantize as Q
from circa.compiler.isa import Instruction, Op
from circa.compiler.program import Program, Region
from circa.config import AccelConfig, weight_images


class _Builder:
    def __init__(self, cfg: AccelConfig):
        self.cfg, self.k = cfg, cfg.k
        self.code, self.tags = [], []
        self.words = 0
        self.constants = []            # (address, (blocks, k) ints)
        self.circulant = []            # weight spectra, in weight-memory order
        self.sparse_index, self.sparse_blocks = [], []
        self.mvm_base = {}             # matrix name -> weight / index base address
        self.tables, self.table_ids = [], {}
        self.masks = {}                # matrix name -> address of its row mask

    def alloc(self, blocks: int) -> int:
        address, self.words = self.words, self.words + blocks
        return address

    def constant(self, values: np.ndarray) -> int:
        address = self.alloc(len(values))
        self.constants.append((address, values))
        return address

    def emit(self, op, tag="", **fields):
        self.code.append(Instruction(op, **fields))
        self.tags.append(tag)

    def table(self, qnet, name) -> int:
        if name not in self.table_ids:
            self.table_ids[name] = len(self.tables)
            self.tables.append(qnet.tables[name])
        return self.table_ids[name]

    def add_matrix(self, mat: Q.Matrix):
        if mat.kind == "circulant":
            self.circulant.append(mat.wf)
        else:
            r, c = self.cfg.sparse_block
            if mat.block not in ((r, c), (self.k, self.k)) and mat.block != (0, 0):
                raise ValueError(f"{mat.name}: block-sparse blocks {mat.block[0]}x{mat.block[1]} "
                                 f"do not match the accelerator's sparse_block {r}x{c}")
            base = len(self.sparse_index)
            w = _blocked(mat.w_int, r, c)
            present = np.argwhere(np.abs(w).sum(axis=(1, 3)) != 0)      # row-major order
            self.sparse_index.append([len(present), 0])
            self.sparse_blocks.append(np.zeros((r, c), dtype=np.int64))
            for row, col in present:
                self.sparse_index.append([row, col])
                self.sparse_blocks.append(w[row, :, col, :])
            self.mvm_base[mat.name] = base

    def mvm(self, mat: Q.Matrix, dst, a, b=None, b_blocks=0, tag="", bias=None, biased=""):
        """``dst = mat . (a ++ b)`` (``+ bias``, a constant's address, added as the output
        is written: ``biased`` names that tensor); addresses are ``(register, offset)``.

        Adding the bias before clearing a partial block's padding rows gives the same
        words as after: the bias's padding is zero and saturation is per element.
        """
        b = b or (0, 0)
        q_a = mat.q - b_blocks
        common = dict(dst_reg=dst[0], dst=dst[1], a_reg=a[0], a=a[1], b_reg=b[0], b=b[1],
                      n=mat.p, m=q_a, m2=b_blocks, w=self.mvm_base[mat.name], s1=mat.shift,
                      c=0 if bias is None else bias + 1)
        out_tag = biased if bias is not None else tag
        op, extra = (Op.MVC, dict(s2=mat.out_shift)) if mat.kind == "circulant" else (Op.MVS, {})
        self.emit(op, "" if mat.needs_mask else out_tag, **common, **extra)
        if mat.needs_mask:      # clear the padding rows of partial circulant blocks
            if mat.name not in self.masks:
                self.masks[mat.name] = self.constant(mat.row_mask())
            self.vec(Op.VMUL, dst, dst, mat.p, b=_abs(self.masks[mat.name]), tag=out_tag)

    def vec(self, op, dst, a, n, b=(0, 0), tag="", **fields):
        self.emit(op, tag, dst_reg=dst[0], dst=dst[1], a_reg=a[0], a=a[1], b_reg=b[0],
                  b=b[1], n=n, **fields)


def _abs(address):
    return (0, address)


def schedule(qnet: Q.QuantNetwork, cfg: AccelConfig, steps: int = 1) -> Program:
    """Schedule ``qnet`` (quantized, for inputs of ``steps`` time steps) onto ``cfg``."""
    fmt, k = qnet.fmt, cfg.k
    if fmt.k != k or fmt.data_width != cfg.engine.data_width:
        raise ValueError(f"the network was quantized for k = {fmt.k}, {fmt.data_width}-bit "
                         f"data, the accelerator has k = {k}, {cfg.engine.data_width}-bit")
    B = _Builder(cfg)
    blocks = lambda n: Q.blocks_of(n, k)
    for layer in qnet.layers:       # weights: memory order follows layer order
        for mat in matrices(layer):
            B.add_matrix(mat)
    images, bases = weight_images(cfg.engine, B.circulant)
    circ = iter(bases)
    for layer in qnet.layers:
        for mat in matrices(layer):
            if mat.kind == "circulant":
                B.mvm_base[mat.name] = next(circ)

    biases = {}
    for layer in qnet.layers:
        for name, values in _biases(layer):
            biases[name] = B.constant(np.asarray(values, dtype=np.int64).reshape(-1, k))
    in_blocks = blocks(qnet.input_features)
    x_region = Region(B.alloc(in_blocks * steps), in_blocks, steps, in_blocks,
                      qnet.input_features, qnet.fracs["input"])
    x, x_stride = x_region.address, in_blocks
    act = fmt.act_frac
    last_step = x_region.address + (steps - 1) * in_blocks      # where the head reads
    output = None
    for layer in qnet.layers:
        n = layer.name
        if isinstance(layer, Q.Dense):
            source = x if qnet.kind == "mlp" else last_step
            y = B.alloc(layer.mat.p)
            B.mvm(layer.mat, _abs(y), _abs(source), bias=biases[n], biased=n + ".y")
            if layer.relu:
                B.vec(Op.VRELU, _abs(y), _abs(y), layer.mat.p, tag=n + ".relu")
            x = last_step = y
            output = Region(y, layer.mat.p, 1, layer.mat.p, layer.out_features,
                            qnet.fracs[n + ".y"])
            continue
        hb = blocks(layer.out_features)          # recurrent state blocks (proj or hidden)
        gb = blocks(layer.hidden)                # one gate's blocks
        hseq = B.alloc(hb * (steps + 1))
        B.vec(Op.VSUB, _abs(hseq), _abs(hseq), hb, b=_abs(hseq))       # h_{-1} = 0
        B.emit(Op.SETA, dst_reg=1, w=x)
        B.emit(Op.SETA, dst_reg=2, w=hseq + hb)
        xt, ht, hprev = (1, 0), (2, 0), (2, -hb)
        if isinstance(layer, Q.LSTM):
            c, z, t1, t2 = B.alloc(gb), B.alloc(4 * gb), B.alloc(gb), B.alloc(gb)
            m = B.alloc(gb) if layer.projection is not None else None
            sig, tz, tc = (B.table(qnet, n + s) for s in (".sigmoid", ".tanh_z", ".tanh_c"))
            cf = qnet.fracs[n + ".c"]
            B.vec(Op.VSUB, _abs(c), _abs(c), gb, b=_abs(c))             # c_{-1} = 0
            B.emit(Op.LOOP, n=steps)
            B.mvm(layer.gates, _abs(z), xt, b=hprev, b_blocks=hb, bias=biases[n],
                  biased=n + ".z")
            B.vec(Op.VSIG, _abs(z), _abs(z), 2 * gb, w=sig, tag=n + ".i,f")
            B.vec(Op.VTANH, _abs(z + 2 * gb), _abs(z + 2 * gb), gb, w=tz, tag=n + ".g")
            B.vec(Op.VSIG, _abs(z + 3 * gb), _abs(z + 3 * gb), gb, w=sig, tag=n + ".o")
            B.vec(Op.VMUL, _abs(t1), _abs(z + gb), gb, b=_abs(c), s1=act, tag=n + ".fc")
            B.vec(Op.VMUL, _abs(t2), _abs(z), gb, b=_abs(z + 2 * gb), s1=2 * act - cf,
                  tag=n + ".ig")
            B.vec(Op.VADD, _abs(c), _abs(t1), gb, b=_abs(t2), tag=n + ".c")
            B.vec(Op.VTANH, _abs(t1), _abs(c), gb, w=tc, tag=n + ".tc")
            B.vec(Op.VMUL, _abs(m) if m is not None else ht, _abs(z + 3 * gb), gb, b=_abs(t1),
                  s1=act, tag=n + ".m")
            if m is not None:
                B.mvm(layer.projection, ht, _abs(m), tag=n + ".h")
        else:
            g = qnet.fracs[n + ".gib"]
            gi, gh, rz, t = B.alloc(3 * gb), B.alloc(3 * gb), B.alloc(2 * gb), B.alloc(gb)
            d = B.alloc(gb)
            sig, th = B.table(qnet, n + ".sigmoid"), B.table(qnet, n + ".tanh")
            B.emit(Op.LOOP, n=steps)
            B.mvm(layer.w_i, _abs(gi), xt, bias=biases[n + ".i"], biased=n + ".gib")
            B.mvm(layer.w_h, _abs(gh), hprev, bias=biases[n + ".h"], biased=n + ".ghb")
            B.vec(Op.VADD, _abs(rz), _abs(gi), 2 * gb, b=_abs(gh), tag=n + ".rz")
            B.vec(Op.VSIG, _abs(rz), _abs(rz), 2 * gb, w=sig, tag=n + ".rzs")
            B.vec(Op.VMUL, _abs(t), _abs(rz), gb, b=_abs(gh + 2 * gb), s1=act + g - g,
                  tag=n + ".rh")
            B.vec(Op.VADD, _abs(t), _abs(gi + 2 * gb), gb, b=_abs(t), tag=n + ".npre")
            B.vec(Op.VTANH, _abs(t), _abs(t), gb, w=th, tag=n + ".n")
            B.vec(Op.VSUB, _abs(d), hprev, gb, b=_abs(t), tag=n + ".d")
            B.vec(Op.VMUL, _abs(d), _abs(rz + gb), gb, b=_abs(d), s1=act, tag=n + ".zd")
            B.vec(Op.VADD, ht, _abs(t), gb, b=_abs(d), tag=n + ".h")
        B.emit(Op.ADDA, dst_reg=1, n=x_stride & 0xFFF)
        B.emit(Op.ADDA, dst_reg=2, n=hb & 0xFFF)
        B.emit(Op.ENDL)
        x, x_stride = hseq + hb, hb
        last_step = hseq + steps * hb
        output = Region(hseq + hb, hb, steps, hb, layer.out_features, qnet.fracs[n + ".h"])
    B.emit(Op.HALT)

    scratchpad = np.zeros((max(B.words, 1), k), dtype=np.int64)
    for address, values in B.constants:
        scratchpad[address:address + len(values)] = values
    r, c = cfg.sparse_block
    program = Program(
        cfg, B.code, B.tags, images,
        np.array(B.sparse_index, dtype=np.int64).reshape(-1, 2),
        np.array(B.sparse_blocks, dtype=np.int64).reshape(-1, r, c),
        scratchpad, B.tables, x_region, output,
        sequence_output=qnet.kind == "rnn" and not qnet.head_on_last_step)
    program.validate()
    return program


def _blocked(w_int, r, c):
    """``(rows, cols)`` ints -> ``(rows/r, r, cols/c, c)`` blocks."""
    return w_int.reshape(w_int.shape[0] // r, r, w_int.shape[1] // c, c)


def estimated_cycles(mat: Q.Matrix, cfg: AccelConfig) -> int:
    """Cycles of one MVM by the engines' timing (docs/architecture.md): circulant
    ``ceil(p/L) * max(q, L + 7)`` plus about 23 cycles of pipeline; sparse one block a
    cycle after loading the ``q`` input blocks."""
    lanes = cfg.engine.lanes
    if mat.kind == "circulant":
        return -(-mat.p // lanes) * max(mat.q, lanes + 7) + 23
    nnz = np.count_nonzero(np.abs(_blocked(mat.w_int, *cfg.sparse_block)).sum(axis=(1, 3)))
    return mat.q + int(nnz) + 7


def matrices(layer):
    """The MVM matrices of a quantized layer, in weight-memory order."""
    if isinstance(layer, Q.Dense):
        return [layer.mat]
    if isinstance(layer, Q.LSTM):
        return [layer.gates] + ([layer.projection] if layer.projection is not None else [])
    return [layer.w_i, layer.w_h]


def _biases(layer):
    if isinstance(layer, (Q.Dense, Q.LSTM)):
        return [(layer.name, layer.bias)]
    return [(layer.name + ".i", layer.b_i), (layer.name + ".h", layer.b_h)]
