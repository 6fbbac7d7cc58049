"""The element-wise vector unit: ``vector_width`` words of a block per cycle (all ``k`` by
default), every ISA vector op.

Every op is one expression, ``y = narrow(x * m + c, s, width)`` per element, with the
operands chosen per op (``w = data_width``)::

    op      x               m               c                s
    VADD    a               1               b                0
    VSUB    a               1               -b               0
    VMUL    a               b               0                shift
    VSHR    a               1               0                shift
    VSHL    a               0               a << (w-1)       w-1 - min(shift, w-1)
    VRELU   a               (a >= 0)        0                0
    VPWL    clip(a, lo, hi) slope[index]    icept[index]     table's shift

So each lane has one multiplier (18 x ``w`` bits), one adder and one run-time narrowing
(a barrel shifter and a saturation), shared by all ops. Two of the rows need a word:

* VSHL is a right shift of ``a << (w-1)`` (a constant shift: wiring). The division by
  ``2**(w-1-s)`` is exact, so the rounding adds nothing. Clamping ``shift`` to ``w-1``
  keeps the result: a non-zero word shifted by ``w-1`` already saturates, except
  ``-1 << (w-1)``, which is the most negative word, as ``-1 << shift`` saturates to.
* VPWL is :func:`circa.numerics.pwl`: the clamp bounds are the full word range for the
  other ops, so ``x = clip(a, lo, hi)`` equals ``a`` for them.

Pipeline (stall-all: every register advances when ``advance = ~o.valid | o.ready``),
eleven stages (twelve with more than 4 lanes) of at most one adder, multiplier or 8-way
shift each (the second shift step also rounds) (docs/fmax-history.md)::

    i ──► S0: a, b, op, shift, table registered (they come from the controller)
          Sb: the table's scalars, and the clamp bounds in a copy per lane (with more than
              4 lanes; a narrower unit selects them from the inputs, in S0)
          Sx: x = clip(a, lo, hi)
          Sy: y = x >> seg_shift; the segment index, clipped -> table address
          S1: table entry (memory read), x, b, op, shifts
          S1t: the table entry registered as it leaves the memory
          S1o: the multiplier's operands x, m and the addend c, selected by op
          S2: x * m (the lane's multiplier), c, s
          S3: product + c
          S4: (sum << 1) >> (s & 56), the barrel shift of narrow(sum, s) by s's multiple of 8
          S4b: ... >> (s & 7), the rest of it, and the rounding (+ 1) >> 1 (on w + 1 bits)
          S5: saturate  ──► o

A unit narrower than the block (``AccelConfig.vector_width < k``) takes a block in
``parts = k / vector_width`` cycles: part ``p`` of ``i`` (words ``p * vector_width`` on) is
selected by a counter while the block waits on ``i`` (a stream holds its payload until
accepted), and ``o``'s first ``parts - 1`` parts wait in registers for the last, which goes
out straight from S5. Each lane's logic (a table copy, a multiplier, the clamp and three
shifters) is then ``parts`` times fewer.
"""
from __future__ import annotations

import enum

import numpy as np
from amaranth.hdl import Array, Cat, Module, Mux, Signal, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from circa import numerics as nx
from circa.config import AccelConfig
from circa.hw.dsp import product
from circa.hw.hints import LANES_PER_COPY, lane_copies
from circa.hw.fft import saturate_rounded, shift_coarse, shift_round

__all__ = ["VectorOp", "VectorUnit", "model", "SHIFT_WIDTH"]

LUTRAM = {"ram_style": "distributed"}  # yosys memory_libmap: map to LUT RAM
SHIFT_WIDTH = 6                      # run-time shifts 0..63 (the ISA's s1 field)


class VectorOp(enum.IntEnum):
    """Op codes of the ``op`` port (VSIG and VTANH of the ISA are both ``VPWL``)."""
    VADD = 0
    VSUB = 1
    VMUL = 2
    VSHR = 3
    VSHL = 4
    VRELU = 5
    VPWL = 6


def entry_layout(cfg: AccelConfig) -> data.StructLayout:
    """One PWL segment: ``slope`` and ``icept`` (in the product's format, compiler/pwl.py),
    signed, ``cfg.pwl_slope_width`` and ``cfg.pwl_icept_width`` bits (at most 18 and 48)."""
    return data.StructLayout({"slope": signed(cfg.pwl_slope_width),
                              "icept": signed(cfg.pwl_icept_width)})


def scalar_layout(data_width: int) -> data.StructLayout:
    """A table's scalars: ``seg_shift``, ``shift`` (0..63) and the clamp bounds ``lo``, ``hi``."""
    return data.StructLayout({"seg_shift": SHIFT_WIDTH, "shift": SHIFT_WIDTH,
                              "lo": signed(data_width), "hi": signed(data_width)})


def identity_table(cfg: AccelConfig) -> nx.PWLTable:
    """The table an unused slot holds: all zero slopes and intercepts (output 0)."""
    lo, hi = nx.signed_range(cfg.engine.data_width)
    n = cfg.pwl_segments
    return nx.PWLTable(slope=(0,) * n, icept=(0,) * n, seg_shift=0, shift=0, lo=lo, hi=hi)


def check_tables(cfg: AccelConfig, tables) -> list[nx.PWLTable]:
    """Validate PWL tables for ``cfg``; return them padded to ``cfg.tables`` entries."""
    tables = [] if tables is None else list(tables)
    width = cfg.engine.data_width
    if len(tables) > cfg.tables:
        raise ValueError(f"{len(tables)} PWL tables given, but the unit holds cfg.tables = "
                         f"{cfg.tables}; build it with a larger AccelConfig.tables")
    wlo, whi = nx.signed_range(width)
    for n, t in enumerate(tables):
        if not isinstance(t, nx.PWLTable):
            raise ValueError(f"PWL table {n} must be a circa.numerics.PWLTable, not {type(t).__name__}")
        if len(t.slope) != cfg.pwl_segments or len(t.icept) != cfg.pwl_segments:
            raise ValueError(f"PWL table {n} has {len(t.slope)} slopes and {len(t.icept)} "
                             f"intercepts; the unit needs cfg.pwl_segments = {cfg.pwl_segments} "
                             f"of each (fit it with segments={cfg.pwl_segments})")
        for name, values, field in (("slope", t.slope, "pwl_slope_width"),
                                    ("intercept", t.icept, "pwl_icept_width")):
            bits = getattr(cfg, field)
            lo, hi = nx.signed_range(bits)
            bad = [v for v in values if not lo <= v <= hi]
            if bad:
                raise ValueError(f"PWL table {n}: every {name} must fit in {bits} signed bits "
                                 f"[{lo}, {hi}], found {bad[0]}; build with a larger "
                                 f"AccelConfig.{field}")
        for name in ("seg_shift", "shift"):
            value = getattr(t, name)
            if not isinstance(value, (int, np.integer)) or not 0 <= value < 1 << SHIFT_WIDTH:
                raise ValueError(f"PWL table {n}: {name} must be an integer from 0 to "
                                 f"{(1 << SHIFT_WIDTH) - 1}, not {value!r}")
        if not (wlo <= t.lo <= t.hi <= whi):
            raise ValueError(f"PWL table {n}: need {wlo} <= lo <= hi <= {whi} (data_width = "
                             f"{width}), not lo = {t.lo}, hi = {t.hi}")
    return tables + [identity_table(cfg)] * (cfg.tables - len(tables))


class VectorUnit(wiring.Component):
    """Element-wise unit: VADD, VSUB, VMUL, VSHR, VSHL, VRELU and PWL activations.

    Parameters
    ----------
    cfg : AccelConfig
        Blocks of ``k = cfg.k`` words of ``w = cfg.engine.data_width`` bits, through
        ``cfg.vector_words`` lanes (``k`` by default); ``cfg.tables`` PWL
        tables of ``cfg.pwl_segments`` segments. With none, VPWL outputs 0 and the
        operands are only as wide as VMUL and VSHL need (``w`` and ``2w`` bits, not a
        table entry's slope and intercept).
    tables : list of PWLTable, optional
        Initial table contents (at most ``cfg.tables``; the rest output 0).

    Ports
    -----
    i : stream of ``StructLayout({"a": block, "b": block})``, ``block =
        ArrayLayout(signed(w), k)``. ``b`` is only used by VADD, VSUB and VMUL.
    o : stream of ``block``: the results, in order.
    op : ``VectorOp`` code (3 bits; code 7 is reserved and outputs 0).
    shift : 0..63, the ISA's ``s1`` (VMUL, VSHR, VSHL).
    table : ``range(cfg.tables)``, the PWL table of VPWL.
        ``op``, ``shift`` and ``table`` are sampled with each part of a beat of ``i`` and
        travel down the pipeline with it, so a change applies from the next beat. The
        controller holds them while an instruction's blocks flow.
    t_en, t_addr, t_data : PWL entry write port: ``t_addr = table * segments + segment``,
        ``t_data`` of :func:`entry_layout`. Every lane's copy is written.
    s_en, s_table, s_data : per-table scalars write port, ``s_data`` of
        :func:`scalar_layout`.
        Host loading only: write while no VPWL beat is in the pipeline.

    Latency ``latency`` (11 cycles, 12 with more than 4 lanes: stage b) from an accepted
    beat (its last part) to its output with ``o.ready`` high; throughput one block per
    ``k / vector_words`` cycles, for every op and any mix of ops.

    Resources, with ``lanes = cfg.vector_words``: ``lanes`` multipliers (slope x ``w``),
    ``lanes`` copies of the entry memory
    (``cfg.tables * cfg.pwl_segments`` words of slope + intercept bits, 66 at most: two
    ECP5 DP16KD per lane, as a block RAM port is at most 36 bits wide, or LUT RAM up to 64
    words) and ``cfg.tables`` sets of scalar registers.
    The model of the contract's ``vshl`` overflows int64 for ``shift > 63 - w``; this
    unit (and :func:`model`) clamp the shift first, which changes no result.
    """

    def __init__(self, cfg: AccelConfig, tables: list[nx.PWLTable] | None = None):
        if not isinstance(cfg, AccelConfig):
            raise ValueError(f"cfg must be an AccelConfig, not {type(cfg).__name__}")
        self._cfg = cfg
        self._tables = tuple(check_tables(cfg, tables))
        w, k = cfg.engine.data_width, cfg.k
        block = data.ArrayLayout(signed(w), k)
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({"a": block, "b": block}))),
            "o": Out(stream.Signature(block)),
            "op": In(3),
            "shift": In(SHIFT_WIDTH),
            "table": In(range(max(1, cfg.tables))),
            "t_en": In(1),
            "t_addr": In(range(max(1, cfg.tables * cfg.pwl_segments))),
            "t_data": In(entry_layout(cfg)),
            "s_en": In(1),
            "s_table": In(range(max(1, cfg.tables))),
            "s_data": In(scalar_layout(w)),
        })

    cfg = property(lambda self: self._cfg)
    tables = property(lambda self: self._tables)

    @property
    def latency(self) -> int:
        """Cycles from an accepted input beat to its output, with the output always ready."""
        return 11 + self.wide

    @property
    def wide(self) -> bool:
        """More than :data:`LANES_PER_COPY` lanes: the table's scalars get stage b."""
        return self._cfg.vector_words > LANES_PER_COPY

    @property
    def multipliers(self) -> int:
        """Real multipliers (18 x data_width): one per lane."""
        return self._cfg.vector_words

    def model(self, op, a, b=None, shift=0, table=0) -> np.ndarray:
        """Bit-exact model with the initial tables, see :func:`model`."""
        return model(self._cfg, self._tables, op, a, b, shift, table)

    def elaborate(self, platform):
        cfg, k, w = self._cfg, self._cfg.k, self._cfg.engine.data_width
        lanes = cfg.vector_words
        parts = k // lanes              # cycles per block
        segments = cfg.pwl_segments
        seg_bits = segments.bit_length() - 1
        wlo, whi = nx.signed_range(w)
        m = Module()

        # -- a block in parts: part_in selects the part of i that enters, part_out counts
        # the parts leaving S5 (both wrap at `parts`, a power of 2) -----------------------
        advance = Signal()
        part_in, part_out = Signal(range(parts)), Signal(range(parts))
        last_in, last_out = part_in == parts - 1, part_out == parts - 1
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready),
                     self.i.ready.eq(advance & last_in)]
        with m.If(self.i.valid & advance):
            m.d.sync += part_in.eq(part_in + 1)
        in_a, in_b = ([Array(words[p * lanes + lane] for p in range(parts))[part_in]
                       if parts > 1 else words[lane] for lane in range(lanes)]
                      for words in (self.i.p.a, self.i.p.b))

        # -- PWL tables: scalars in registers, entries in one memory per lane ---------------
        scalars = [Signal(scalar_layout(w), name=f"scalars{n}",
                          init={"seg_shift": t.seg_shift, "shift": t.shift, "lo": t.lo, "hi": t.hi})
                   for n, t in enumerate(self._tables)]
        # lo > hi per table (the clamp is then hi everywhere), computed as a table is written
        # so that no comparison follows the table select in stage 0
        empties = [Signal(name=f"empty{n}", init=t.lo > t.hi) for n, t in enumerate(self._tables)]
        with m.If(self.s_en):
            with m.Switch(self.s_table):
                for n, (s, e) in enumerate(zip(scalars, empties)):
                    with m.Case(n):
                        m.d.sync += [s.eq(self.s_data), e.eq(self.s_data.lo > self.s_data.hi)]

        def stage(name, values):
            """Registers that advance with the pipeline."""
            regs = []
            for n, v in enumerate(values):
                r = Signal(v.shape(), name=f"{name}_{n}")
                with m.If(advance):
                    m.d.sync += r.eq(v)
                regs.append(r)
            return regs

        # -- stage 0: the beat and its control, registered (they come from the controller) --
        s0_valid, s0_op, s0_shift, s0_table = stage("s0", [
            self.i.valid, self.op, self.shift, self.table])
        s0_a, s0_b = stage("s0_a", in_a), stage("s0_b", in_b)
        # -- stage b: the beat's table scalars, and the clamp bounds ahead of their compares
        # (only VPWL clamps; the other ops clamp to the full word range), with lo > hi
        # flagged: then both compares of the clamp run side by side in stage x. On a wide
        # unit the select reads registers of this unit, not the controller's (the route from
        # there, the select and the route to the lanes were the k = 8 design's critical
        # path: Fmax); a narrow one selects from its inputs in S0 (no stage b: on the iCE40
        # every flip-flop is a logic cell).
        table, op = (s0_table, s0_op) if self.wide else (self.table, self.op)
        sel, sel_empty = Signal(scalar_layout(w)), Signal()     # all 0 with no tables
        with m.Switch(table):
            for n, (sc, e) in enumerate(zip(scalars, empties)):
                with m.Case(n) if n < len(scalars) - 1 else m.Default():
                    m.d.comb += [sel.eq(sc), sel_empty.eq(e)]
        pwl_in = op == VectorOp.VPWL
        if self.wide:
            sb_valid, sb_op, sb_shift, sb_table = stage("sb", [s0_valid, s0_op, s0_shift,
                                                                s0_table])
            sb_a, sb_b = stage("sb_a", s0_a), stage("sb_b", s0_b)
        else:
            sb_valid, sb_op, sb_shift, sb_table, sb_a, sb_b = (s0_valid, s0_op, s0_shift,
                                                                s0_table, s0_a, s0_b)
        sb_pshift, sb_seg_shift = stage("sb_table", [sel.shift, sel.seg_shift])
        # what every lane reads comes from a copy per group of lanes (hw/hints.py); the
        # clamp bounds one per lane, each feeding two compares and a 16-bit multiplexer
        # (from a copy per 4 lanes, the clamp was the k = 8 design's slowest group of paths)
        bounds = lane_copies(stage, "sb_bounds", [
            Mux(pwl_in, sel.lo, wlo), Mux(pwl_in, sel.hi, whi), pwl_in & sel_empty], lanes, per=1)

        init = [{"slope": s, "icept": c} for t in self._tables for s, c in zip(t.slope, t.icept)]
        entries, mem_addr = [], []      # each lane's table entry, read in stage 1
        lut_ram = (cfg.tables * segments <= 64
                   and str(getattr(platform, "family", "")).lower() != "ice40")
        for lane in range(lanes if cfg.tables else 0):
            # A few dozen 50-66-bit words would take two block RAMs per lane (ports are at
            # most 36 bits wide): keep small tables in LUT RAM (the iCE40 has none).
            mem = memory.Memory(shape=entry_layout(cfg), depth=cfg.tables * segments, init=init,
                                attrs=LUTRAM if lut_ram else None)
            m.submodules[f"pwl{lane}"] = mem
            wr, rd = mem.write_port(), mem.read_port()
            m.d.comb += [wr.en.eq(self.t_en), wr.addr.eq(self.t_addr), wr.data.eq(self.t_data),
                         rd.en.eq(advance)]       # the read register is stage 1: it stalls too
            entries.append(rd.data)
            mem_addr.append(rd.addr)

        # -- stage x: clamp. clip(a, lo, hi) = min(max(a, lo), hi), which is hi whenever
        # a > hi or lo > hi, else max(a, lo)
        clamped = [Mux((a > hi) | empty, hi, Mux(a < lo, lo, a))
                   for a, (lo, hi, empty) in zip(sb_a, bounds)]
        sx_valid, sx_op, sx_shift, sx_table, sx_pshift = stage("sx", [
            sb_valid, sb_op, sb_shift, sb_table, sb_pshift])
        # a copy per lane: each drives a whole barrel shifter (from a copy per 4 lanes, the
        # k = 8 design's critical path: Fmax)
        sx_seg_shift = lane_copies(stage, "sx_seg_shift", [sb_seg_shift], lanes, per=1)
        xs = stage("sx_x", clamped)
        sx_b = stage("sx_b", sb_b)

        # -- stage y: the segment shift y = x >> seg_shift ----------------------------------
        sy_valid, sy_op, sy_shift, sy_pshift = stage("sy", [
            sx_valid, sx_op, sx_shift, sx_pshift])
        sy_table = lane_copies(stage, "sy_table", [sx_table], lanes)
        sy_x, sy_b = stage("sy_x", xs), stage("sy_b", sx_b)
        ys = stage("sy_y", [x >> seg_shift for x, (seg_shift,) in zip(xs, sx_seg_shift)])
        # segment index -> table address (the memory's read register is stage 1).
        # clip(y + segments/2, 0, segments - 1) with no adder or comparator: y + segments/2
        # is y with its bit seg_bits-1 inverted when y fits in seg_bits signed bits (the
        # bits from there up all equal), else the sign decides.
        for lane, y in enumerate(ys):
            top = y[seg_bits - 1:]
            index = Mux(top.all() | ~top.any(), Cat(y[:seg_bits - 1], ~y[seg_bits - 1]),
                        Mux(y[-1], 0, segments - 1))
            if entries:
                m.d.comb += mem_addr[lane].eq(Cat(index[:seg_bits], sy_table[lane][0]))

        # -- stage 1: the table entry arrives; stage 1t: it is registered as it leaves the
        # block RAM (5.8 ns clock-to-out on the ECP5, and the RAM sits where its column has
        # room: the k = 8 design's critical path), then the operands m, c and the shift s
        # are picked from it ---------------------------------------------------------------
        s1_valid, s1_op, s1_shift, s1_pshift = stage("s1", [sy_valid, sy_op, sy_shift, sy_pshift])
        s1_x, s1_b = stage("s1_x", sy_x), stage("s1_b", sy_b)
        entries = stage("s1t_entry", entries)
        s1_lane_op = lane_copies(stage, "s1t_op", [s1_op], lanes)
        s1_valid, s1_op, s1_shift, s1_pshift = stage("s1t", [s1_valid, s1_op, s1_shift,
                                                             s1_pshift])
        s1_x, s1_b = stage("s1t_x", s1_x), stage("s1t_b", s1_b)
        # VSHL: a << min(shift, w-1) as an exact right shift of a << (w-1) (module docstring)
        shl_shift = (w - 1) - Mux(s1_shift > w - 1, w - 1, s1_shift)
        s = Signal(SHIFT_WIDTH)
        with m.Switch(s1_op):
            with m.Case(VectorOp.VMUL, VectorOp.VSHR):
                m.d.comb += s.eq(s1_shift)
            with m.Case(VectorOp.VSHL):
                m.d.comb += s.eq(shl_shift)
            with m.Case(VectorOp.VPWL):
                m.d.comb += s.eq(s1_pshift)
        mul, add = [], []
        for lane in range(lanes):
            x, b = s1_x[lane], s1_b[lane]
            # Operand widths: VMUL's b and VSHL's a << (w-1), or a table entry's if any.
            mv = Signal(signed(max(w, cfg.pwl_slope_width if entries else 0)), name=f"m{lane}")
            cv = Signal(signed(max(2 * w, cfg.pwl_icept_width if entries else 0) + 1),
                        name=f"c{lane}")
            with m.Switch(s1_lane_op[lane][0]):
                with m.Case(VectorOp.VADD):
                    m.d.comb += [mv.eq(1), cv.eq(b)]
                with m.Case(VectorOp.VSUB):
                    m.d.comb += [mv.eq(1), cv.eq(-b)]
                with m.Case(VectorOp.VMUL):
                    m.d.comb += mv.eq(b)
                with m.Case(VectorOp.VSHR):
                    m.d.comb += mv.eq(1)
                with m.Case(VectorOp.VSHL):
                    m.d.comb += cv.eq(x << (w - 1))
                with m.Case(VectorOp.VRELU):
                    m.d.comb += mv.eq(x >= 0)
                with m.Case(VectorOp.VPWL):
                    if entries:
                        m.d.comb += [mv.eq(entries[lane].slope), cv.eq(entries[lane].icept)]
            mul.append((x, mv))
            add.append(cv)

        # -- stage 1o: the operands, registered: the table's block RAM has no output
        # register (5.6 ns clock-to-out on ECP5), so it gets a cycle to itself ------------
        s1o_valid, s1o_s = stage("s1o", [s1_valid, s])
        s1o_x = stage("s1o_x", [x for x, _ in mul])
        s1o_m = stage("s1o_m", [mv for _, mv in mul])
        s1o_add = stage("s1o_add", add)

        # -- stage 2: product (the lane's only multiplier, 18 x w) and addend; stage 3: their
        # sum; stage 4: the narrowing's shift; stage 5: its rounding and saturation ---------
        s2_valid, s2_s = stage("s2", [s1o_valid, s1o_s])
        s2_mul = [product(m, x, mv, name=f"s2_mul_{lane}", platform=platform,
                          registered_operands=False, en=advance)      # (hw/dsp.py)
                  for lane, (x, mv) in enumerate(zip(s1o_x, s1o_m))]
        s2_add = stage("s2_add", s1o_add)
        s3_valid, = stage("s3", [s2_valid])
        s3_s = lane_copies(stage, "s3_s", [s2_s], lanes)
        s3_sum = stage("s3_sum", [p + c for p, c in zip(s2_mul, s2_add)])
        # the narrowing in three steps (hw/fft.py): the barrel shift in two of an 8-way
        # multiplexer each, the second with the rounding, then the saturation (the whole
        # shift, behind the shift copies' fanout, was the k = 8 design's critical path: Fmax)
        s4_valid, = stage("s4", [s3_valid])
        s4_coarse = stage("s4_coarse", [shift_coarse(v, s) for v, (s,) in zip(s3_sum, s3_s)])
        s4_s = stage("s4_s", [s for (s,) in s3_s])
        s4b_valid, = stage("s4b", [s4_valid])
        s4_rounded = stage("s4b_rounded", [shift_round(v, s, w)
                                           for v, s in zip(s4_coarse, s4_s)])
        s5_valid, = stage("s5", [s4b_valid])
        s5_y = stage("s5_y", [saturate_rounded(v, w) for v in s4_rounded])
        # -- the parts before the last wait in registers; the last goes out from S5 -------
        with m.If(s5_valid & advance):
            m.d.sync += part_out.eq(part_out + 1)
        m.d.comb += self.o.valid.eq(s5_valid & last_out)
        for p in range(parts):
            for lane, y in enumerate(s5_y):
                if p < parts - 1:
                    held = Signal.like(y, name=f"held{p}_{lane}")
                    with m.If(s5_valid & advance & (part_out == p)):
                        m.d.sync += held.eq(y)
                    y = held
                m.d.comb += self.o.p[p * lanes + lane].eq(y)
        return m


def model(cfg: AccelConfig, tables, op, a, b=None, shift=0, table=0) -> np.ndarray:
    """Bit-exact model of :class:`VectorUnit`, from the :mod:`circa.numerics` functions.

    Parameters
    ----------
    cfg : AccelConfig
    tables : list of PWLTable (validated and padded as the unit does).
    op, shift, table : ints, or sequences of one int per row (a beat's control).
    a, b : integer arrays ``(n, k)`` of ``data_width``-bit words (``b`` ignored unless
        VADD, VSUB or VMUL; default zeros).

    Returns
    -------
    numpy int64 array ``(n, k)``.
    """
    tables = check_tables(cfg, tables)
    w = cfg.engine.data_width
    a = np.asarray(a, dtype=np.int64)
    b = np.zeros_like(a) if b is None else np.asarray(b, dtype=np.int64)
    if a.ndim != 2 or a.shape[1] != cfg.k or b.shape != a.shape:
        raise ValueError(f"a and b must have shape (n, {cfg.k}), not {a.shape} and {b.shape}")
    lo, hi = nx.signed_range(w)
    for name, v in (("a", a), ("b", b)):
        if v.size and (v.min() < lo or v.max() > hi):
            raise ValueError(f"{name} must hold {w}-bit signed words [{lo}, {hi}]")
    n = len(a)
    ops, shifts, tabs = (np.broadcast_to(np.asarray(v, dtype=np.int64), (n,))
                         for v in (op, shift, table))
    out = np.empty_like(a)
    for row in range(n):
        o, s, t = int(ops[row]), int(shifts[row]), int(tabs[row])
        if o not in VectorOp.__members__.values():
            raise ValueError(f"op must be a VectorOp code 0..6, not {o}")
        if not 0 <= s < 1 << SHIFT_WIDTH:
            raise ValueError(f"shift must be from 0 to {(1 << SHIFT_WIDTH) - 1}, not {s}")
        if o == VectorOp.VPWL and not 0 <= t < cfg.tables:
            raise ValueError(f"table must be from 0 to {cfg.tables - 1}, not {t}"
                             if cfg.tables else "VPWL needs a table; the unit has none")
        x, y = a[row], b[row]
        out[row] = {
            VectorOp.VADD: lambda: nx.vadd(x, y, w),
            VectorOp.VSUB: lambda: nx.vsub(x, y, w),
            VectorOp.VMUL: lambda: nx.vmul(x, y, s, w),
            VectorOp.VSHR: lambda: nx.narrow(x, s, w),
            # shifts beyond w saturate every non-zero word; min() keeps int64 from overflowing
            VectorOp.VSHL: lambda: nx.vshl(x, min(s, w), w),
            VectorOp.VRELU: lambda: nx.relu(x),
            VectorOp.VPWL: lambda: nx.pwl(tables[t], x, w),
        }[VectorOp(o)]()
    return out
