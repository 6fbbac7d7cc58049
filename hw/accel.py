"""The accelerator: controller, scratchpad, the two MVM engines and the vector unit.

::

   host_cmd ─► host port ──► instruction memory, scratchpad, weight memories, tables
   host_rsp ◄─ (reads: scratchpad, status, counters)
                                   │ start
                                   ▼
              controller: fetch ─ decode ─ address ─ check ─ verdict ─ execute, one at a time
                 reader: scratchpad[a..], [b..] ─► FIFO ─► circulant | sparse | vector
                 writer: scratchpad[dst..]     ◄──────────── that engine's output stream

One instruction runs at a time: the reader streams the source blocks into the selected
engine, the writer stores its output blocks, and the next instruction is fetched when the
last block is written. The MVM engines consume their whole input before they produce any
output and the vector unit writes block ``i`` after reading it, so in-place operations
are safe.

An instruction that is unknown, reaches outside a memory or writes a range that partly
overlaps one it reads while writing (docs/isa.md) stops the run with ``error`` set and
``pc`` naming it; nothing waits on anything that may not come.
"""
from __future__ import annotations

import enum

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from circa.compiler.isa import FIELDS, Op
from circa.config import AccelConfig
from circa.hw.circulant import BlockCirculantEngine
from circa.hw.fft import narrow_hw
from circa.hw.hints import LANES_PER_COPY, REPLICA, lane_copies, registers
from circa.hw.ring import SplitFIFO
from circa.hw.sparse import BlockSparseEngine
from circa.hw.vector import VectorOp, VectorUnit

#: The instruction word as a layout: the ISA's fields, least significant first.
InstructionLayout = data.StructLayout({
    name: signed(bits) if is_signed else unsigned(bits) for name, bits, is_signed in FIELDS})

#: Counter numbers for ``Host.COUNTER``.
COUNTERS = ("cycles", "circulant_busy", "sparse_busy", "vector_busy", "instructions")


class Host(enum.IntEnum):
    """Host port commands (``host_cmd.p.kind``)."""
    WRITE_IMEM = 0      # imem[addr] = data (128 bits)
    WRITE_ACT = 1       # scratchpad[addr] = data (one block)
    WRITE_CIRC = 2      # circulant weight memory lane `lane`, word addr = data
    WRITE_SPARSE = 3    # sparse entry addr = data: row (16 bits), col (16), then the block
    WRITE_TABLE = 4     # PWL entry addr = data (slope, icept)
    WRITE_SCALARS = 5   # PWL table `lane` scalars = data (seg_shift, shift, lo, hi)
    READ_ACT = 6        # respond scratchpad[addr]
    START = 7           # run from pc 0
    STATUS = 8          # respond {done, error, pc}
    COUNTER = 9         # respond counter number `addr`


_VECTOR_OPS = {Op.VADD: VectorOp.VADD, Op.VSUB: VectorOp.VSUB, Op.VMUL: VectorOp.VMUL,
               Op.VSHR: VectorOp.VSHR, Op.VSHL: VectorOp.VSHL, Op.VRELU: VectorOp.VRELU,
               Op.VSIG: VectorOp.VPWL, Op.VTANH: VectorOp.VPWL}


def host_data_width(cfg: AccelConfig) -> int:
    """Width of the host port's data field: the widest word it writes or reads."""
    k, e = cfg.k, cfg.engine
    r, c = cfg.sparse_block
    return max(128, k * e.data_width, k * e.weight_width, 32 + r * c * e.weight_width,
               cfg.pwl_slope_width + cfg.pwl_icept_width, 64)


class _NoSparseEngine(BlockSparseEngine):
    """The block-sparse engine's ports with nothing behind them (``sparse_engine = False``):
    never ready, valid or busy, so synthesis removes what reads them. MVS is illegal."""

    def elaborate(self, platform):
        return Module()


class Accelerator(wiring.Component):
    """The whole accelerator for an :class:`~circa.config.AccelConfig`.

    Ports
    -----
    host_cmd : stream of ``{kind, addr, lane, data}`` commands (:class:`Host`).
    host_rsp : stream of ``data`` words, one per read command.
    done, error, pc : run status (also readable with ``Host.STATUS``).

    Memories start from ``images`` (a dict with ``circulant_weights``, ``sparse_index``,
    ``sparse_blocks``, ``scratchpad``, ``tables``, ``instructions``, as in a Program), or
    zero; everything is writable through the host port. After elaboration ``_debug`` holds
    the engines and the scratchpad write port, for testbenches that trace a run.
    """

    def __init__(self, cfg: AccelConfig, images: dict | None = None):
        self._cfg = cfg
        self._images = images or {}
        width = host_data_width(cfg)
        super().__init__({
            "host_cmd": In(stream.Signature(data.StructLayout({
                "kind": 4, "addr": 16, "lane": 8, "data": unsigned(width)}))),
            "host_rsp": Out(stream.Signature(unsigned(width))),
            "done": Out(1),
            "error": Out(1),
            "pc": Out(range(cfg.imem_depth)),
        })

    cfg = property(lambda self: self._cfg)

    def elaborate(self, platform):
        cfg, k, img = self._cfg, self._cfg.k, self._images
        m = Module()
        block = data.ArrayLayout(signed(cfg.engine.data_width), k)

        # -- memories and engines ----------------------------------------------------------
        code = [int(w) for w in img.get("instructions", [])]
        m.submodules.imem = imem = memory.Memory(shape=128, depth=cfg.imem_depth, init=code)
        imem_w, imem_r = imem.write_port(), imem.read_port()
        pad = img.get("scratchpad")
        # Collision-free (circa.hw.hints): the host reads and writes only while stopped, an
        # instruction's writes end before the next one's reads begin, and within one the
        # legality check leaves no used read at the address being written (docs/isa.md).
        m.submodules.act = act = memory.Memory(
            shape=block, depth=cfg.act_depth,
            init=[] if pad is None else [[int(v) for v in word] for word in pad])
        act_w, rd_a, rd_b = act.write_port(), act.read_port(), act.read_port()
        m.submodules.circ = circ = BlockCirculantEngine(cfg.engine, img.get("circulant_weights"))
        m.submodules.sparse = sparse = (
            BlockSparseEngine(cfg, img.get("sparse_index"), img.get("sparse_blocks"))
            if cfg.sparse_engine else _NoSparseEngine(cfg))
        m.submodules.vec = vec = VectorUnit(cfg, img.get("tables"))
        self._debug = dict(circ=circ, sparse=sparse, vec=vec, act_w=act_w)  # for testbenches

        # -- host port -----------------------------------------------------------------------
        cmd, rsp = self.host_cmd, self.host_rsp
        # `running` twice, as replicas (hw/hints.py): the host port's copy, read by the
        # command handshake, sits beside the host bridge, the controller's beside the
        # controller (one register on both sides was the k = 16 design's critical path, a
        # round trip across the die through the handshake: Fmax).
        running, host_running = (Signal(name=f"running{REPLICA}{n}") for n in range(2))
        self._debug["running"] = running

        def set_running(value):
            return [running.eq(value), host_running.eq(value)]
        counters = [Signal(32, name=f"count_{name}") for name in COUNTERS]
        status = Signal(64)
        m.d.comb += status.eq(self.done | (self.error << 1) | (self.pc << 16))
        rsp_full = Signal()
        m.d.comb += rsp.valid.eq(rsp_full)
        with m.If(rsp.ready):
            m.d.sync += rsp_full.eq(0)
        read_act = Signal()                           # a READ_ACT's data arrives next cycle
        # Writes only while stopped (STATUS and COUNTER any time); a command waits while a
        # response is pending.
        m.d.comb += cmd.ready.eq(~rsp_full & ~read_act & (
            ~host_running | (cmd.p.kind == Host.STATUS) | (cmd.p.kind == Host.COUNTER)))
        take = cmd.valid & cmd.ready
        kind = cmd.p.kind
        host_act_read = take & (kind == Host.READ_ACT)
        m.d.sync += read_act.eq(host_act_read)
        # A scratchpad word goes from the block RAM straight into a register of its own (a
        # block RAM's clock-to-out is most of a cycle, Fmax); the response muxes registers.
        act_word, other_word, is_act = Signal(len(rd_a.data.as_value())), Signal(64), Signal()
        m.d.comb += rsp.payload.eq(Mux(is_act, act_word, other_word))
        with m.If(read_act):
            m.d.sync += [act_word.eq(rd_a.data.as_value()), is_act.eq(1), rsp_full.eq(1)]
        with m.If(take & (kind == Host.STATUS)):
            m.d.sync += [other_word.eq(status), is_act.eq(0), rsp_full.eq(1)]
        with m.If(take & (kind == Host.COUNTER)):
            with m.Switch(cmd.p.addr):
                for n, counter in enumerate(counters):
                    with m.Case(n):
                        m.d.sync += other_word.eq(counter)
            m.d.sync += [is_act.eq(0), rsp_full.eq(1)]
        # Writes to the instruction, weight and table memories: on a wide design a command
        # and its decoded write enables are registered first, beside the host port (the
        # handshake decoded into write enables across the die was the k = 8 design's
        # critical path: Fmax). They land a cycle later, unseen: the host reads only the
        # scratchpad, whose writes stay direct (a READ_ACT may follow at once).
        writes = {kind_: take & (kind == kind_) for kind_ in (
            Host.WRITE_IMEM, Host.WRITE_CIRC, Host.WRITE_SPARSE, Host.WRITE_TABLE,
            Host.WRITE_SCALARS)}
        wcmd = cmd.p
        wide = k * cfg.engine.lanes > LANES_PER_COPY
        if wide:
            wcmd = Signal(cmd.p.shape(), name="host_write")
            staged = {kind_: Signal(name=f"host_{kind_.name.lower()}") for kind_ in writes}
            m.d.sync += [wcmd.eq(cmd.p)] + [staged[n].eq(v) for n, v in writes.items()]
            writes = staged
        m.d.comb += [
            imem_w.en.eq(writes[Host.WRITE_IMEM]), imem_w.addr.eq(wcmd.addr),
            imem_w.data.eq(wcmd.data),
            circ.w_en.eq(writes[Host.WRITE_CIRC]),
            circ.w_lane.eq(wcmd.lane), circ.w_addr.eq(wcmd.addr), circ.w_data.eq(wcmd.data),
            sparse.w_en.eq(writes[Host.WRITE_SPARSE]), sparse.w_addr.eq(wcmd.addr),
            sparse.w_index.row.eq(wcmd.data[:16]), sparse.w_index.col.eq(wcmd.data[16:32]),
            sparse.w_block.eq(wcmd.data[32:]),
            vec.t_en.eq(writes[Host.WRITE_TABLE]), vec.t_addr.eq(wcmd.addr),
            vec.t_data.eq(wcmd.data),
            vec.s_en.eq(writes[Host.WRITE_SCALARS]), vec.s_table.eq(wcmd.lane),
            vec.s_data.eq(wcmd.data),
        ]

        # -- controller --------------------------------------------------------------------
        ins = Signal(InstructionLayout)
        regs = [Signal(signed(18), name=f"A{n}") for n in range(4)]
        loop_start = Signal.like(self.pc)
        loop_left = Signal(12)

        def base(reg):
            return Mux(reg == 0, 0, Mux(reg == 1, regs[1], Mux(reg == 2, regs[2], regs[3])))

        dst = Signal(signed(19))
        src_a, src_b = Signal(signed(19)), Signal(signed(19))
        bias = Signal(signed(11))          # an MVM's bias address, c - 1
        # Each operand range's end, registered beside its start so that CHECK only compares.
        # `offset + count` comes from the instruction alone, in parallel with the register
        # select, so an end costs one more adder level, not two. Bit 5 of the opcode tells
        # the vector operations (count n) from the MVMs (counts m, m2; Op's encoding).
        count_a, count_b = Mux(ins.op[5], ins.n, ins.m), Mux(ins.op[5], ins.n, ins.m2)
        dst_end, a_end, b_end = (Signal(signed(20), name=n) for n in ("dst_end", "a_end", "b_end"))
        bias_end = Signal(signed(14))
        m_total = Signal(13)               # an MVM's input blocks, m + m2
        resolve = [m_total.eq(ins.m + ins.m2),
                   dst.eq(base(ins.dst_reg) + ins.dst), src_a.eq(base(ins.a_reg) + ins.a),
                   src_b.eq(base(ins.b_reg) + ins.b), bias.eq(ins.c - 1),
                   dst_end.eq(base(ins.dst_reg) + (ins.dst + ins.n)),
                   a_end.eq(base(ins.a_reg) + (ins.a + count_a)),
                   b_end.eq(base(ins.b_reg) + (ins.b + count_b)),
                   bias_end.eq(ins.c - 1 + ins.n)]                # registered in state ADDRESS
        op = ins.op
        # The instruction's kind, registered: it fans out into every engine's handshake, so
        # it comes from flip-flops, not from a decode of `ins` (Fmax). `ins` is loaded in
        # DECODE; these follow a cycle later, in time for CHECK and EXECUTE.
        is_mvc, is_mvs, is_vector, reads_b = Signal(), Signal(), Signal(), Signal()
        op_mvc, op_mvs = op == Op.MVC, op == Op.MVS
        op_vector = sum((op == v).as_unsigned() for v in _VECTOR_OPS) != 0
        m.d.sync += [is_mvc.eq(op_mvc), is_mvs.eq(op_mvs), is_vector.eq(op_vector),
                     reads_b.eq((op == Op.VADD) | (op == Op.VSUB) | (op == Op.VMUL))]
        outputs = Signal(12)               # beats the writer stores
        m.d.comb += outputs.eq(ins.n)

        def fits(start, end):
            return (start >= 0) & (end <= cfg.act_depth)

        def apart(start, end, other, other_end):
            """Two ranges are the same or disjoint (docs/isa.md)."""
            return (start == other) | (end <= other) | (other_end <= start)

        # Legality in three registered steps (Fmax): the operand ranges and m + m2 in
        # ADDRESS; in CHECK the instruction's own fields (decoded from `op`: the registered
        # kind follows a cycle later) and each range against the scratchpad and the others,
        # one register per compare; in VERDICT the tests the instruction's kind needs. Only
        # MVMs and vector operations address the scratchpad: LOOP's and ADDA's n is no block
        # count.
        fields_ok = Signal()
        fields_ok_r, legal_r = Signal(name="fields_ok_r"), Signal(name="legal_r")
        m.d.comb += fields_ok.eq(
            Mux(op_mvc | op_mvs,
                (m_total <= cfg.engine.max_q) & (m_total != 0) & (ins.n != 0)
                & (ins.n <= cfg.engine.max_p)
                & Mux(op_mvc, (ins.s1 < cfg.engine.acc_width) & (ins.s2 < cfg.engine.ifft_width)
                      & (ins.w < cfg.engine.weight_depth),
                      (ins.w < cfg.sparse_depth) if cfg.sparse_engine else 0),
                Mux(op_vector,
                    (ins.n != 0) & (((op != Op.VSIG) & (op != Op.VTANH))
                                    | ((ins.w < cfg.tables) if cfg.tables else 0)),
                    (op == Op.HALT) | (op == Op.LOOP) | (op == Op.ENDL) | (op == Op.SETA)
                    | (op == Op.ADDA))))
        tests = {"dst": fits(dst, dst_end), "a": fits(src_a, a_end), "b": fits(src_b, b_end),
                 "bias": (ins.c == 0) | (fits(bias, bias_end)
                                         & apart(dst, dst_end, bias, bias_end)),
                 "a_apart": apart(dst, dst_end, src_a, a_end),
                 "b_apart": ~reads_b | apart(dst, dst_end, src_b, b_end)}
        ok = {name: Signal(name=f"ok_{name}") for name in tests}
        ranges_ok = ok["dst"] & ok["a"] & ok["b"]
        legal = fields_ok_r & Mux(is_mvc | is_mvs, ranges_ok & ok["bias"],
                                  ~is_vector | (ranges_ok & ok["a_apart"] & ok["b_apart"]))

        # reader -> FIFO -> engines
        word = k * cfg.engine.data_width
        to_send = Signal(13)               # beats the reader has still to send
        more, room = Signal(), Signal()    # to_send != 0; the FIFO has room for one more
        written = Signal(12)               # output blocks stored
        in_flight = Signal()
        issue = Signal()
        reading = Signal()
        m.d.comb += issue.eq(reading & more & room)
        # `more` and `room` are registers (they gate every read-address register: Fmax).
        if wide:
            # The FIFO keeps no level (hw/ring.py): its reads are decided by the engines,
            # across the die from the scratchpad (the level's round trip was a k = 8
            # build's critical path, Fmax), and it gives its head straight from LUT RAM (a
            # buffered FIFO's output register loads on the engines' `ready`, an enable
            # that reached 2 x k x data_width flip-flops: Fmax); the engines register the
            # words they take. A block RAM read claims its place. LUT RAM is 16 words deep,
            # so the depth is free; it covers the round trip (claim, read, write, count,
            # take, credit): one block a cycle.
            m.submodules.inbox = inbox = SplitFIFO(unsigned(2 * word), 16)
            m.d.comb += [room.eq(inbox.can_claim), inbox.claim.eq(issue)]
        else:
            # A narrow design's FIFO keeps its words in block RAM (the iCE40 has no LUT
            # RAM). 8 places cover the round trip (address, read, FIFO, engine); `room`
            # counts the FIFO's words and the read in flight as if the FIFO gave none this
            # cycle, one cycle late: a word given frees its place a cycle later.
            m.submodules.inbox = inbox = fifo.SyncFIFOBuffered(width=2 * word, depth=8)
            m.d.sync += room.eq(inbox.level + in_flight + issue < inbox.depth)
        # Read addresses from registers that step with the reads, set up in VERDICT (Fmax:
        # no adder or select between a counter and the block RAMs' address pins). Port a
        # reads a[0:m] then b[0:m2] (an MVM; `a_left` counts down to the switch) or a[0:n];
        # port b reads b[0:n] (a vector op) or the bias of each output block as the writer
        # takes it (an MVM).
        addr_a, addr_b = Signal.like(src_a), Signal.like(src_a)
        a_left = Signal.like(ins.m)
        m.d.comb += [rd_a.addr.eq(Mux(running, addr_a, cmd.p.addr)), rd_b.addr.eq(addr_b)]
        m.d.sync += in_flight.eq(issue)
        with m.If(issue):
            m.d.sync += [to_send.eq(to_send - 1), more.eq(to_send != 1),
                         a_left.eq(a_left - (a_left != 0)),
                         addr_a.eq(Mux(~is_vector & (a_left == 1), src_b, addr_a + 1))]
        m.d.comb += [inbox.w_en.eq(in_flight),
                     inbox.w_data.eq(Cat(rd_a.data.as_value(), rd_b.data.as_value()))]
        a_word, b_word = inbox.r_data[:word], inbox.r_data[word:]
        m.d.comb += [
            circ.i_x.payload.eq(a_word), sparse.i_x.payload.eq(a_word),
            vec.i.payload.a.eq(a_word), vec.i.payload.b.eq(b_word),
            circ.i_x.valid.eq(inbox.r_rdy & is_mvc & reading),
            sparse.i_x.valid.eq(inbox.r_rdy & is_mvs & reading),
            vec.i.valid.eq(inbox.r_rdy & is_vector & reading),
            inbox.r_en.eq(Mux(is_mvc, circ.i_x.ready, Mux(is_mvs, sparse.i_x.ready,
                                                         vec.i.ready)) & reading),
        ]
        # The vector unit's control from registers of its own: the table field's path through
        # the unit's table select was the k = 8 design's critical path (Fmax). They follow
        # `ins` a cycle later, long before the first beat.
        m.d.sync += [vec.shift.eq(ins.s1), vec.table.eq(ins.w)]
        with m.Switch(op):
            for isa_op, vector_op in _VECTOR_OPS.items():
                with m.Case(isa_op):
                    m.d.sync += vec.op.eq(vector_op)

        # engines -> writer -> scratchpad
        # Four stages: W1 takes an output block (and addresses its bias on read port b), W2
        # registers the block and the bias (an ECP5 block RAM's clock-to-out is 5.8 ns, no
        # time left for an adder: Fmax), W3 adds the bias for MVC/MVS with ``c`` set
        # (saturated per element), W4 stores the block.
        # The writer's per-word selects (which engine, whether a bias is added) are copies
        # of the instruction's kind, one per group of lanes (hw/hints.py): one register
        # driving every word's multiplexer was the k = 8 design's critical path (Fmax).
        selects = lane_copies(registers(m), "writer_kind", [
            op_mvc, op_mvs, (op_mvc | op_mvs) & (ins.c != 0)], k)
        out_valid = Mux(is_mvc, circ.o_y.valid, Mux(is_mvs, sparse.o_y.valid, vec.o.valid))
        out_data = Signal(block)
        for n, (mvc, mvs, _) in enumerate(selects):
            m.d.comb += out_data[n].eq(Mux(mvc, circ.o_y.payload[n],
                                           Mux(mvs, sparse.o_y.payload[n], vec.o.payload[n])))
        take_out = Signal()
        held, bias_word, store = Signal(block), Signal(block), Signal(block)
        held_valid, store_valid = Signal(), Signal()
        m.d.comb += take_out.eq(reading & out_valid)
        m.d.sync += [held.eq(out_data), held_valid.eq(take_out),
                     store.eq(held), bias_word.eq(rd_b.data), store_valid.eq(held_valid)]
        with m.If(Mux(is_vector, issue, take_out)):
            m.d.sync += addr_b.eq(addr_b + 1)
        with m.If(store_valid):
            m.d.sync += written.eq(written + 1)
        stored = Signal(block)
        for n, (_, _, with_bias) in enumerate(selects):
            biased = narrow_hw(store[n] + bias_word[n], 0, cfg.engine.data_width)
            m.d.comb += stored[n].eq(Mux(with_bias, biased, store[n]))
        # W4: the word and its address registered before the block RAMs, which a wide
        # scratchpad spreads across the die (the bias adder followed by that route was the
        # k = 16 design's critical path: Fmax). The write lands four cycles or more before
        # the next instruction's first read. The host writes only while the controller is
        # stopped, when the writer does not: each lane's write data takes the host's word
        # unless its copy of the write enable is set, so no one register (`running`, as it
        # was) selects between them across the whole scratchpad.
        write_addr, write_data = Signal.like(act_w.addr), Signal(block)
        write_en = [copy for copy, in lane_copies(registers(m), "write_en", [store_valid], k)]
        m.d.sync += [write_addr.eq(dst + written), write_data.eq(stored)]
        dw = cfg.engine.data_width
        m.d.comb += [act_w.data[n].eq(Mux(write_en[n], write_data[n],
                                          cmd.p.data[n * dw:(n + 1) * dw])) for n in range(k)]
        # The writer never stalls, and an engine only produces blocks for its own instruction,
        # while it streams: so the engines' output ready is tied high, and no back-pressure
        # chain runs through their pipelines (every stage's ready is then constant: Fmax).
        m.d.comb += [
            circ.o_y.ready.eq(1), sparse.o_y.ready.eq(1), vec.o.ready.eq(1),
            act_w.en.eq(write_en[0] | (take & (kind == Host.WRITE_ACT))),
            act_w.addr.eq(Mux(write_en[0], write_addr, cmd.p.addr)),
        ]

        # engine set-up
        m.d.comb += [
            circ.p.eq(ins.n), circ.q.eq(m_total), circ.base.eq(ins.w),
            circ.shift.eq(ins.s1), circ.out_shift.eq(ins.s2),
            sparse.p.eq(ins.n), sparse.q.eq(m_total), sparse.base.eq(ins.w),
            sparse.shift.eq(ins.s1),
        ]

        with m.If(running):
            m.d.sync += counters[0].eq(counters[0] + 1)
            with m.If(circ.busy):
                m.d.sync += counters[1].eq(counters[1] + 1)
            with m.If(sparse.busy):
                m.d.sync += counters[2].eq(counters[2] + 1)
            with m.If(reading & is_vector):
                m.d.sync += counters[3].eq(counters[3] + 1)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(take & (kind == Host.START)):
                    m.d.sync += set_running(1) + [self.pc.eq(0), self.done.eq(0),
                                 self.error.eq(0)] + [c.eq(0) for c in counters]
                    m.next = "FETCH"
            with m.State("FETCH"):
                m.d.comb += imem_r.addr.eq(self.pc)
                m.next = "DECODE"
            with m.State("DECODE"):
                m.d.comb += imem_r.addr.eq(self.pc)
                m.d.sync += [ins.eq(imem_r.data), written.eq(0)]
                m.next = "ADDRESS"
            # Three registered steps before EXECUTE keep the address adders and the bounds
            # checks off the paths into the engines (Fmax, docs/fmax-history.md).
            with m.State("ADDRESS"):
                m.d.sync += resolve
                m.next = "CHECK"
            with m.State("CHECK"):
                m.d.sync += [ok[name].eq(test) for name, test in tests.items()]
                m.d.sync += fields_ok_r.eq(fields_ok)
                m.next = "VERDICT"
            with m.State("VERDICT"):
                inputs = Mux(is_vector, ins.n, m_total)
                m.d.sync += [legal_r.eq(legal), a_left.eq(ins.m), to_send.eq(inputs),
                             more.eq(inputs != 0),
                             addr_a.eq(Mux(is_vector | (ins.m != 0), src_a, src_b)),
                             addr_b.eq(Mux(is_vector, src_b, bias))]
                m.next = "EXECUTE"
            with m.State("EXECUTE"):
                m.d.sync += counters[4].eq(counters[4] + 1)
                with m.If(~legal_r):
                    m.d.sync += set_running(0) + [self.error.eq(1), self.done.eq(1)]
                    m.next = "IDLE"
                with m.Elif(op == Op.HALT):
                    m.d.sync += set_running(0) + [self.done.eq(1)]
                    m.next = "IDLE"
                with m.Elif(is_mvc | is_mvs | is_vector):
                    m.d.comb += [circ.start.eq(is_mvc), sparse.start.eq(is_mvs)]
                    m.next = "STREAM"
                with m.Else():
                    m.d.sync += self.pc.eq(self.pc + 1)
                    m.next = "FETCH"
                    with m.Switch(op):
                        with m.Case(Op.SETA):
                            for n in (1, 2, 3):
                                with m.If(ins.dst_reg == n):
                                    m.d.sync += regs[n].eq(ins.w)
                        with m.Case(Op.ADDA):
                            step = ins.n.as_signed()   # 12-bit two's complement
                            for n in (1, 2, 3):
                                with m.If(ins.dst_reg == n):
                                    m.d.sync += regs[n].eq(regs[n] + step)
                        with m.Case(Op.LOOP):
                            m.d.sync += [loop_start.eq(self.pc + 1), loop_left.eq(ins.n)]
                        with m.Case(Op.ENDL):
                            m.d.sync += loop_left.eq(loop_left - 1)
                            with m.If(loop_left != 1):
                                m.d.sync += self.pc.eq(loop_start)
            with m.State("STREAM"):
                m.d.comb += reading.eq(1)
                with m.If((written == outputs) & ~circ.busy & ~sparse.busy):
                    m.d.sync += self.pc.eq(self.pc + 1)
                    m.next = "FETCH"
        return m

