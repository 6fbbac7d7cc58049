"""The block-sparse (BSR) matrix-vector engine: ``y = narrow(W x, shift)``.

``W`` is stored as its non-zero ``r x c`` blocks (``AccelConfig.sparse_block``); a dense
layer is the case with every block present. There is no per-element index decoding: one
index entry names a whole block, and the engine multiplies one block per cycle.

Memory images (docs/isa.md, ``compiler/executor.py: sparse_matrix``): a matrix at base
address ``b`` occupies ``b .. b + nnz``::

    index[b]       = [nnz, 0]                     blocks[b]     unused
    index[b + e]   = [block_row, block_col]       blocks[b + e] = W[block_row*r : +r,
                     (row-major order, e = 1..nnz)                  block_col*c : +c]

Dataflow (one ``r x c`` block per cycle, a stall-all pipeline after the walk's issue)::

    i_x ─► input buffer[j] (q words of k)
                    │ word col*c // k
    issue ptr ─► index[ptr] ─► (row, col) ─┬─► input buffer ─► select c of k ─┐
                                           └─► blocks[ptr] ──────────────────┴► r*c products
                                                                                 │
    o_y ◄─ round, saturate ◄─ shift ◄─ k row sums (one output block) ◄─ r row sums

Because entries are row-major, output block ``i`` (block rows ``i*k/r .. (i+1)*k/r - 1``)
is complete as soon as an entry of a later block row reaches the accumulators (or the
walk ends); it is then narrowed (three registered steps) and the accumulators restart.
So the engine needs only ``k`` accumulators whatever the matrix size.
"""
from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Mux, Module, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from circa import numerics as nx
from circa.config import AccelConfig
from circa.hw.dsp import product
from circa.hw.fft import narrow_stages

__all__ = ["BlockSparseEngine", "model", "sparse_dense", "sparse_images", "check_images",
           "check_matrix", "acc_width", "max_p"]


# -- parameters shared by the generator and the model --------------------------------------

def max_p(cfg: AccelConfig) -> int:
    """Most output blocks of one MVM: a result cannot be larger than the scratchpad."""
    return cfg.act_depth


def acc_width(cfg: AccelConfig) -> int:
    """Bits of a row sum of up to ``max_q * k`` products, exact (no overflow, no rounding)."""
    e = cfg.engine
    return e.data_width + e.weight_width + max(1, (e.max_q * cfg.k - 1).bit_length())


def _field_limits(cfg: AccelConfig) -> tuple[int, int]:
    """Largest values of the index's two columns: ``nnz`` or a block row; a block column."""
    r, c = cfg.sparse_block
    return max(max_p(cfg) * cfg.k // r, cfg.sparse_depth) - 1, cfg.engine.max_q * cfg.k // c - 1


def check_images(cfg: AccelConfig, index, blocks) -> tuple[np.ndarray, np.ndarray]:
    """Validate the index and block images; return them as ``int64`` arrays."""
    r, c = cfg.sparse_block
    index, blocks = np.asarray(index), np.asarray(blocks)
    if index.shape != (cfg.sparse_depth, 2):
        raise ValueError(f"sparse index image must have shape {(cfg.sparse_depth, 2)} "
                         f"(sparse_depth, 2), not {index.shape}; pad it with zeros")
    if blocks.shape != (cfg.sparse_depth, r, c):
        raise ValueError(f"sparse block image must have shape {(cfg.sparse_depth, r, c)} "
                         f"(sparse_depth, r, c), not {blocks.shape}; pad it with zeros")
    for name, a in (("index", index), ("block", blocks)):
        if a.size and not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"sparse {name} image must hold integers, not {a.dtype}")
    index, blocks = index.astype(np.int64), blocks.astype(np.int64)
    row_max, col_max = _field_limits(cfg)
    if index.size and (index.min() < 0 or index[:, 0].max() > row_max
                       or index[:, 1].max() > col_max):
        raise ValueError(f"sparse index entries must be [nnz or block_row, block_col] with "
                         f"0 <= first <= {row_max} and 0 <= block_col <= {col_max}, found "
                         f"values in [{index.min()}, {index.max()}]")
    lo, hi = nx.signed_range(cfg.engine.weight_width)
    if blocks.size and (blocks.min() < lo or blocks.max() > hi):
        raise ValueError(f"sparse block weights must fit in {cfg.engine.weight_width} signed "
                         f"bits [{lo}, {hi}], found [{blocks.min()}, {blocks.max()}]")
    return index, blocks


def check_matrix(cfg: AccelConfig, index, base: int, p: int, q: int, shift: int = 0):
    """Raise ``ValueError`` unless the matrix at ``base`` is a valid ``p x q``-block MVM."""
    k, (r, c) = cfg.k, cfg.sparse_block
    if not isinstance(p, (int, np.integer)) or not 1 <= p <= max_p(cfg):
        raise ValueError(f"p = {p} output blocks does not fit: at most act_depth = "
                         f"{max_p(cfg)} output blocks")
    if not isinstance(q, (int, np.integer)) or not 1 <= q <= cfg.engine.max_q:
        raise ValueError(f"q = {q} input blocks ({q * k if isinstance(q, int) else q} inputs) "
                         f"does not fit: the input buffer holds max_q = {cfg.engine.max_q} "
                         f"blocks; build the engine with a larger max_q or a larger k")
    if not 0 <= shift < acc_width(cfg):
        raise ValueError(f"shift must be from 0 to {acc_width(cfg) - 1}, not {shift}")
    if not 0 <= base < cfg.sparse_depth:
        raise ValueError(f"base must be from 0 to {cfg.sparse_depth - 1}, not {base}")
    nnz = int(index[base, 0])
    if base + 1 + nnz > cfg.sparse_depth:
        raise ValueError(f"the matrix at base {base} has nnz = {nnz} blocks, past the end of "
                         f"the sparse memory (sparse_depth = {cfg.sparse_depth})")
    rows, cols = index[base + 1:base + 1 + nnz, 0], index[base + 1:base + 1 + nnz, 1]
    if nnz and (rows.max() >= p * k // r or cols.max() >= q * k // c):
        raise ValueError(f"the matrix at base {base} has a block at (row {rows.max()}, col "
                         f"{cols.max()}) (at most), outside a {p} x {q}-block matrix of "
                         f"{p * k // r} x {q * k // c} blocks of {r} x {c}")
    keys = rows * (q * k // c) + cols
    if np.any(np.diff(rows) < 0) or len(np.unique(keys)) != nnz:
        raise ValueError(f"the matrix at base {base}: entries must be in row-major order "
                         f"(block rows non-decreasing) and name each block once")


def sparse_dense(cfg: AccelConfig, index, blocks, base: int, p: int, q: int) -> np.ndarray:
    """The block-sparse matrix at ``base`` as a dense ``(p*k, q*k)`` integer matrix.

    Exactly ``compiler/executor.py: sparse_matrix``, in numpy (``circa.hw`` has no torch).
    """
    index, blocks = check_images(cfg, index, blocks)
    check_matrix(cfg, index, base, p, q)
    k, (r, c) = cfg.k, cfg.sparse_block
    w = np.zeros((p * k, q * k), dtype=np.int64)
    for entry in range(base + 1, base + 1 + int(index[base, 0])):
        row, col = (int(v) for v in index[entry])
        w[row * r:(row + 1) * r, col * c:(col + 1) * c] = blocks[entry]
    return w


def sparse_images(cfg: AccelConfig, matrices) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Lay out dense integer matrices ``(p*k, q*k)`` one after another, as the compiler does
    (``compiler/schedule.py``: a block is stored iff it has a non-zero weight). Returns the
    images ``(sparse_depth, 2)`` and ``(sparse_depth, r, c)`` and each matrix's base."""
    k, (r, c) = cfg.k, cfg.sparse_block
    index, blocks, bases = [], [], []
    for w in matrices:
        w = np.asarray(w, dtype=np.int64)
        if w.ndim != 2 or w.shape[0] % k or w.shape[1] % k:
            raise ValueError(f"a matrix must be (p*k, q*k) with k = {k}, not {w.shape}")
        grid = w.reshape(w.shape[0] // r, r, w.shape[1] // c, c)
        present = np.argwhere(np.abs(grid).sum(axis=(1, 3)) != 0)      # row-major order
        bases.append(len(index))
        index.append([len(present), 0])
        blocks.append(np.zeros((r, c), dtype=np.int64))
        for row, col in present:
            index.append([row, col])
            blocks.append(grid[row, :, col, :])
    if len(index) > cfg.sparse_depth:
        raise ValueError(f"the matrices need {len(index)} sparse entries, more than "
                         f"sparse_depth = {cfg.sparse_depth}")
    idx = np.zeros((cfg.sparse_depth, 2), dtype=np.int64)
    blk = np.zeros((cfg.sparse_depth, r, c), dtype=np.int64)
    if index:
        idx[:len(index)] = index
        blk[:len(blocks)] = np.stack(blocks)
    check_images(cfg, idx, blk)
    return idx, blk, bases


def model(cfg: AccelConfig, x, index, blocks, base: int, p: int, shift: int) -> np.ndarray:
    """Bit-exact model of the engine: ``narrow(W @ x, shift, data_width)``.

    Parameters
    ----------
    x : integer array ``(..., q, k)`` of ``data_width``-bit input blocks.
    index, blocks : the memory images (``(sparse_depth, 2)``, ``(sparse_depth, r, c)``).
    base, p, shift : the matrix's base address, its output blocks, the right shift.

    Returns
    -------
    integer array ``(..., p, k)``: row sums exact, then the contract's round half up and
    saturation to ``data_width`` bits. Rows without any block are 0.
    """
    x = np.asarray(x)
    k, dw = cfg.k, cfg.engine.data_width
    if x.ndim < 2 or x.shape[-1] != k:
        raise ValueError(f"inputs must have shape (..., q, {k}), not {x.shape}")
    q = x.shape[-2]
    x = x.astype(np.int64)
    lo, hi = nx.signed_range(dw)
    if x.size and (x.min() < lo or x.max() > hi):
        raise ValueError(f"inputs must fit in {dw} signed bits [{lo}, {hi}], "
                         f"found [{x.min()}, {x.max()}]")
    check_matrix(cfg, np.asarray(index), base, p, q, shift)
    w = sparse_dense(cfg, index, blocks, base, p, q)
    y = x.reshape(*x.shape[:-2], q * k) @ w.T
    return nx.narrow(y, shift, dw).reshape(*x.shape[:-2], p, k)


# -- the generator ----------------------------------------------------------------------------

class BlockSparseEngine(wiring.Component):
    """Block-sparse (BSR) MVM engine, one ``r x c`` weight block per cycle.

    Parameters
    ----------
    cfg : AccelConfig. Uses ``k``, ``sparse_block = (r, c)``, ``sparse_depth``,
        ``engine.data_width``, ``engine.weight_width``, ``engine.max_q`` and ``act_depth``
        (the largest ``p``).
    index, blocks : initial memory images, ``(sparse_depth, 2)`` and
        ``(sparse_depth, r, c)`` ints (zeros if None); see the module docstring.

    Ports
    -----
    i_x : stream of ``ArrayLayout(signed(data_width), k)``: the ``q`` input blocks.
    o_y : stream of ``ArrayLayout(signed(data_width), k)``: the ``p`` output blocks, in
        order, ``narrow(W x, shift, data_width)``.
    start, p, q, base, shift : a pulse on ``start`` (while not ``busy``) begins an MVM of the
        ``p x q``-block matrix at ``base`` (``1 <= q <= max_q``, ``1 <= p <= act_depth``).
    busy : high from the cycle after ``start`` until the last output block is taken.
    w_en, w_addr, w_index, w_block : host write port of both memories at one address;
        ``w_index`` is ``StructLayout({"row", "col"})`` (``row`` holds ``nnz`` at a base),
        ``w_block`` is ``ArrayLayout(ArrayLayout(signed(weight_width), c), r)``.
    cycles, mac_cycles : cycles of the last/current MVM, and cycles a block was multiplied.

    Latency and throughput
    ----------------------
    The input blocks are buffered first (one per cycle), then the ``nnz`` entries are walked
    one per cycle. Without stalls an MVM takes ``q + nnz + 8 + E`` cycles, where ``E`` is
    the number of output blocks with no entry (each costs a cycle to emit; if the first
    entry is past output block 0, one of the leading empty blocks is emitted for free), or
    ``q + p + 3`` if ``nnz == 0``; ``mac_cycles == nnz``. The 8 are the pipeline (4), the
    last block's emission and the three narrowing registers. Emitting a block otherwise overlaps
    the accumulation of the next block's first entry, so a dense layer runs at one block
    per cycle. Multipliers: ``r * c``, operands
    ``data_width x weight_width`` bits (both at most 18).
    """

    def __init__(self, cfg: AccelConfig, index=None, blocks=None):
        if not isinstance(cfg, AccelConfig):
            raise TypeError(f"cfg must be an AccelConfig, not {cfg!r}")
        r, c = cfg.sparse_block
        if index is None:
            index = np.zeros((cfg.sparse_depth, 2), dtype=np.int64)
        if blocks is None:
            blocks = np.zeros((cfg.sparse_depth, r, c), dtype=np.int64)
        self._cfg = cfg
        self._index, self._blocks = check_images(cfg, index, blocks)
        e = cfg.engine
        row_max, col_max = _field_limits(cfg)
        self._entry = data.StructLayout({"row": unsigned(row_max.bit_length()),
                                         "col": unsigned(max(1, col_max.bit_length()))})
        self._block = data.ArrayLayout(data.ArrayLayout(signed(e.weight_width), c), r)
        vector = data.ArrayLayout(signed(e.data_width), cfg.k)
        super().__init__({
            "i_x": In(stream.Signature(vector)),
            "o_y": Out(stream.Signature(vector)),
            "start": In(1),
            "p": In(range(max_p(cfg) + 1)),
            "q": In(range(e.max_q + 1)),
            "base": In(range(cfg.sparse_depth)),
            "shift": In(range(acc_width(cfg))),
            "busy": Out(1),
            "w_en": In(1),
            "w_addr": In(range(cfg.sparse_depth)),
            "w_index": In(self._entry),
            "w_block": In(self._block),
            "cycles": Out(32),
            "mac_cycles": Out(32),
        })

    cfg = property(lambda self: self._cfg)
    acc_width = property(lambda self: acc_width(self._cfg))
    max_p = property(lambda self: max_p(self._cfg))

    # Pipeline: issue -> S1 (index read) -> S2 (input word and weights read) -> S3
    # (products) -> S4 (row sums) -> accumulate / emit -> shift by 8s -> shift by the rest
    # -> round and saturate.

    def model(self, x, base: int, p: int, shift: int, index=None, blocks=None) -> np.ndarray:
        """Bit-exact model on this engine's initial images (or the given ones)."""
        return model(self._cfg, x, self._index if index is None else index,
                     self._blocks if blocks is None else blocks, base, p, shift)

    def cycles_for(self, index, base: int, p: int, q: int) -> int:
        """``cycles`` of an MVM without stalls (see the class docstring)."""
        k, r = self._cfg.k, self._cfg.sparse_block[0]
        index = np.asarray(index)
        nnz = int(index[base, 0])
        if nnz == 0:
            return q + p + 3
        out_blocks = index[base + 1:base + 1 + nnz, 0] // (k // r)
        empty = p - len(np.unique(out_blocks))
        return q + nnz + 8 + empty - (1 if out_blocks[0] > 0 else 0)

    def elaborate(self, platform):
        cfg, k = self._cfg, self._cfg.k
        r, c = cfg.sparse_block
        e = cfg.engine
        rows_per_out = k // r                   # block rows per output block (power of 2)
        cols_per_word = k // c                  # block columns per input word (power of 2)
        row_sh, col_sh = rows_per_out.bit_length() - 1, cols_per_word.bit_length() - 1
        m = Module()

        # -- memories ------------------------------------------------------------------------
        index_mem = memory.Memory(shape=self._entry, depth=cfg.sparse_depth,
                                  init=[{"row": int(a), "col": int(b)} for a, b in self._index])
        block_mem = memory.Memory(shape=self._block, depth=cfg.sparse_depth,
                                  init=[[[int(v) for v in row] for row in blk]
                                        for blk in self._blocks])
        xbuf = memory.Memory(shape=self.i_x.p.shape(), depth=e.max_q, init=[])
        m.submodules.index_mem, m.submodules.block_mem = index_mem, block_mem
        m.submodules.xbuf = xbuf
        for mem, value in ((index_mem, self.w_index), (block_mem, self.w_block)):
            wr = mem.write_port()
            m.d.comb += [wr.en.eq(self.w_en), wr.addr.eq(self.w_addr), wr.data.eq(value)]
        index_rd, block_rd = index_mem.read_port(), block_mem.read_port()
        xbuf_wr, xbuf_rd = xbuf.write_port(), xbuf.read_port()

        # -- run parameters and phase ----------------------------------------------------------
        p = Signal.like(self.p)
        q = Signal.like(self.q)
        shift = Signal.like(self.shift)
        loading = Signal()      # taking the q input blocks
        walking = Signal()      # walking the entries, then emitting the last output blocks
        m.d.comb += self.busy.eq(loading | walking)

        # -- load: i_x -> input buffer ---------------------------------------------------------
        x_count = Signal(range(e.max_q + 1))
        m.d.comb += [self.i_x.ready.eq(loading),
                     xbuf_wr.en.eq(self.i_x.valid & loading),
                     xbuf_wr.addr.eq(x_count), xbuf_wr.data.eq(self.i_x.p)]

        # The header [nnz, 0] is read while idle, from the `base` input, so it is waiting
        # on the index read port (held: enable low) during the whole load. The walk then
        # starts with no extra cycle.
        remaining = Signal(range(cfg.sparse_depth + 1))    # entries not yet issued
        ptr = Signal(range(cfg.sparse_depth + 1))
        with m.If(loading):
            m.d.sync += remaining.eq(index_rd.data.row)
            with m.If(self.i_x.valid):
                m.d.sync += x_count.eq(x_count + 1)
                with m.If(x_count == q - 1):
                    m.d.sync += [loading.eq(0), walking.eq(1)]

        # -- walk: a stall-all pipeline; every register moves on `advance` ---------------------
        advance = Signal()
        issue = Signal()
        m.d.comb += issue.eq(walking & (remaining != 0))
        with m.If(walking & advance & issue):
            m.d.sync += [ptr.eq(ptr + 1), remaining.eq(remaining - 1)]
        m.d.comb += [index_rd.addr.eq(Mux(self.busy, ptr, self.base)),
                     index_rd.en.eq(~self.busy | (walking & advance))]

        def stage(value, name):
            reg = Signal.like(value, name=name) if isinstance(value, Signal) else \
                Signal(value.shape(), name=name)
            with m.If(advance):
                m.d.sync += reg.eq(value)
            return reg

        # S1: the entry (row, col) is on the index read port. The weights are read one cycle
        # later than the index (address ptr1) so that they arrive together with the input
        # word, whose address depends on the entry.
        v1, ptr1 = stage(issue, "v1"), stage(ptr, "ptr1")
        entry = index_rd.data
        m.d.comb += [block_rd.addr.eq(ptr1), block_rd.en.eq(advance),
                     xbuf_rd.addr.eq(entry.col >> col_sh), xbuf_rd.en.eq(advance)]

        # S2: input word x[col*c // k] and the block's weights; pick the c inputs at offset
        # (col % (k/c)) * c of the word (a k/c-way mux, no per-element decoding).
        v2, row2 = stage(v1, "v2"), stage(entry.row, "row2")
        off2 = stage(entry.col[:col_sh], "off2") if col_sh else None
        word = xbuf_rd.data
        xs = []
        for j in range(c):
            if cols_per_word == 1:
                xs.append(word[j])
                continue
            sel = Signal(signed(e.data_width), name=f"xsel{j}")
            with m.Switch(off2):
                for o in range(cols_per_word):
                    with m.Case(o):
                        m.d.comb += sel.eq(word[o * c + j])
            xs.append(sel)

        # S3: r*c products, each in a multiplier's product register (hw/dsp.py).
        v3, row3 = stage(v2, "v3"), stage(row2, "row3")
        prods = [[product(m, xs[j], block_rd.data[i][j], name=f"prod{i}_{j}", platform=platform,
                          registered_operands=False, en=advance) for j in range(c)]
                 for i in range(r)]

        # S4: the r row sums of the block, exact.
        v4, row4 = stage(v3, "v4"), stage(row3, "row4")
        sums = [stage(sum(prods[i][1:], prods[i][0]), f"sum{i}") for i in range(r)]

        # -- accumulate and emit ---------------------------------------------------------------
        # `cur` is the output block being accumulated in k exact row sums. An entry of the
        # same output block is added. An entry of a later output block first emits `cur`
        # (into the narrowing pipeline) and clears the sums; if it belongs to the very next
        # block it is added in that same cycle, otherwise it waits while the empty blocks in
        # between are emitted as zeros. When the walk is over and the pipeline is empty
        # (`flush`), the remaining output blocks are emitted the same way.
        #
        # For Fmax, no comparison with `cur` is on the emit/add decision: the S4 entry's place
        # relative to `cur` (`ahead`: a later block, `after`: the very next one) and `pending`
        # (cur < p) are flags computed a cycle early, from registers, for both outcomes of
        # this cycle's `emit` (which only picks one), and the sums are added in parallel with
        # the decision, which only selects.
        acc_shape = signed(acc_width(cfg))
        acc = [Signal(acc_shape, name=f"acc{n}") for n in range(k)]
        cur = Signal(range(max_p(cfg) + 1))
        pending, ahead, after = Signal(), Signal(), Signal()
        blk3, blk4 = row3 >> row_sh, row4 >> row_sh
        local4 = row4[:row_sh] if row_sh else None
        flush = walking & (remaining == 0) & ~v1 & ~v2 & ~v3 & ~v4
        room = Signal()                         # the narrowing pipeline takes a block
        emit, add, consume = Signal(), Signal(), Signal()
        m.d.comb += [
            emit.eq(pending & room & ((v4 & ahead) | flush)),
            # An entry behind `cur` cannot happen with row-major entries; such an entry is
            # added to the current block rather than hanging the engine. Past p, entries
            # are dropped.
            add.eq(v4 & pending & (~ahead | (emit & after))),
            consume.eq(v4 & (~pending | ~ahead | (emit & after))),
            advance.eq(~v4 | consume),
        ]

        def place(blk, base):                   # (blk > base, blk == base + 1)
            return [blk > base, blk == base + 1]

        with m.If(advance):
            m.d.sync += Cat(ahead, after).eq(Mux(emit, Cat(*place(blk3, cur + 1)),
                                                 Cat(*place(blk3, cur))))
        with m.Elif(emit):
            m.d.sync += Cat(ahead, after).eq(Cat(*place(blk4, cur + 1)))
        with m.If(emit):
            m.d.sync += [cur.eq(cur + 1), pending.eq(cur + 1 < p)]
        for n in range(k):
            g, i = divmod(n, r)
            hit = add & ((local4 == g) if row_sh else 1)
            with m.If(emit):
                m.d.sync += acc[n].eq(Mux(hit, sums[i], 0))
            with m.Elif(hit):
                m.d.sync += acc[n].eq(acc[n] + sums[i])

        # Narrowing in three registered steps: the barrel shift in two, round and saturate.
        out_valid, outs, narrowing = narrow_stages(m, "out", emit, room, self.o_y.ready,
                                                   acc, [shift] * k, e.data_width)
        m.d.comb += [self.o_y.valid.eq(out_valid)] + [self.o_y.p[n].eq(v)
                                                      for n, v in enumerate(outs)]

        # The MVM ends when every output block has been emitted and the last one is taken.
        with m.If(flush & ~pending & ~narrowing & (~out_valid | self.o_y.ready)):
            m.d.sync += walking.eq(0)

        # -- counters and start ------------------------------------------------------------------
        with m.If(self.busy):
            m.d.sync += self.cycles.eq(self.cycles + 1)
            with m.If(v2 & advance):
                m.d.sync += self.mac_cycles.eq(self.mac_cycles + 1)
        with m.If(self.start & ~self.busy):
            m.d.sync += [p.eq(self.p), q.eq(self.q), shift.eq(self.shift),
                         ptr.eq(self.base + 1), x_count.eq(0), cur.eq(0), loading.eq(1),
                         pending.eq(self.p != 0),
                         v1.eq(0), v2.eq(0), v3.eq(0), v4.eq(0),
                         self.cycles.eq(0), self.mac_cycles.eq(0)]
            m.d.sync += [a.eq(0) for a in acc]
        return m
