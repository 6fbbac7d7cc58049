"""The block-circulant matrix-vector engine: ``y_i = IFFT( sum_j FFT(w_ij) * FFT(x_j) )``.

Dataflow (``L = lanes`` output blocks in parallel)::

    i_x ─► RealFFT ─┬─────────────────────► X_j ─┐    weights[l][g*q + j]
                    └► spectrum buffer[j] ─► X_j ─┴─► L lanes of (k/2+1) complex MACs
                                                        │ (last j of a group)
    o_y ◄─ narrow(out_shift) ◄─ RealIFFT ◄─ narrow(shift) ◄─ result bank, one lane a beat

Each input block is transformed once. While the first group of ``L`` output blocks
is computed, spectra go straight from the FFT to the MACs and into the spectrum buffer;
the later groups read them back. So an MVM takes about ``ceil(p/L) * q`` cycles, plus
pipeline latency, and every multiplier of the MAC array does useful work each cycle of a
large layer. Spectra are accumulated exactly; there is one IFFT per output block.

Weight memory ``l`` holds, at address ``g*q + j``, the spectrum of block
``(g*L + l, j)`` in halfcomplex order (see :mod:`circa.numerics`).
"""
from __future__ import annotations

import numpy as np
from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from circa import numerics as nx
from circa.config import EngineConfig
from circa.hw.dsp import product
from circa.hw.fft import (RealFFT, RealIFFT, narrow_stages, pipeline_latency,
                          pipeline_register)
from circa.hw.hints import REPLICA, lane_copies, registers
from circa.hw.ring import SplitFIFO


class BlockCirculantEngine(wiring.Component):
    """Block-circulant MVM engine.

    Ports
    -----
    i_x : stream of ``ArrayLayout(signed(data_width), k)``: the ``q`` input blocks.
    o_y : stream of ``ArrayLayout(signed(data_width), k)``: the ``p`` output blocks, in order.
    start, p, q, base, shift, out_shift : a pulse on ``start`` begins an MVM of a
        ``p x q``-block matrix whose weights start at address ``base``.
    busy : high from ``start`` until the last output block is taken.
    w_en, w_lane, w_addr, w_data : weight write port (host loading).
    cycles, mac_cycles : cycles of the last/current MVM, and cycles the MAC array worked.

    Throughput: one block product per lane per cycle; an MVM takes about
    ``ceil(p/L) * max(q, L + MAC_DEPTH)`` cycles plus ``latency``.
    """

    def __init__(self, cfg: EngineConfig, weights: np.ndarray | None = None):
        self._cfg = cfg
        self._weights = (np.zeros((cfg.lanes, cfg.weight_depth, cfg.k), dtype=np.int64)
                         if weights is None else np.asarray(weights))
        if self._weights.shape != (cfg.lanes, cfg.weight_depth, cfg.k):
            raise ValueError(f"weight image must have shape {(cfg.lanes, cfg.weight_depth, cfg.k)}"
                             f", not {self._weights.shape}; build it with weight_images()")
        block = data.ArrayLayout(signed(cfg.data_width), cfg.k)
        super().__init__({
            "i_x": In(stream.Signature(block)),
            "o_y": Out(stream.Signature(block)),
            "start": In(1),
            "p": In(range(cfg.max_p + 1)),
            "q": In(range(cfg.max_q + 1)),
            "base": In(range(cfg.weight_depth)),
            "shift": In(range(cfg.acc_width)),
            "out_shift": In(range(cfg.ifft_width)),
            "busy": Out(1),
            "w_en": In(1),
            "w_lane": In(range(max(cfg.lanes, 2))),   # at least one bit, even for one lane
            "w_addr": In(range(cfg.weight_depth)),
            "w_data": In(data.ArrayLayout(signed(cfg.weight_width), cfg.k)),
            "cycles": Out(32),
            "mac_cycles": Out(32),
        })

    cfg = property(lambda self: self._cfg)

    # Issue -> S0 (read addresses) -> S1 (memory reads) -> S1b (operand registers) -> S2
    # (the multipliers' operand registers) -> S3 (products) -> S4 (complex sums) -> S5
    # (accumulators) -> the result bank.
    MAC_DEPTH = 8
    FFT_SLACK = 6       # the spectra FIFO's places beyond the FFT's latency
    FREE_RUNNING_FFT = 8    # from this k on, the FFT never stalls (a FIFO follows it)

    @property
    def latency(self) -> int:
        """Cycles from the last MAC issue to its output block leaving, with no stalls."""
        ifft = pipeline_latency(nx.irfft_plan(self._cfg.k, self._cfg.ifft_width))
        return self.MAC_DEPTH + ifft + 7

    def model(self, x: np.ndarray, wf: np.ndarray, shift: int, out_shift: int) -> np.ndarray:
        """Bit-exact model, see :func:`model`."""
        return model(self._cfg, x, wf, shift, out_shift)

    def elaborate(self, platform):
        cfg, k, L = self._cfg, self._cfg.k, self._cfg.lanes
        m = Module()
        m.submodules.fft = fft = RealFFT(k, cfg.data_width, cfg.fft_width)
        m.submodules.ifft = ifft = RealIFFT(k, cfg.ifft_width)
        if k >= self.FREE_RUNNING_FFT:
            # The FFT never stalls (its output is always ready, so synthesis drops its clock
            # enables: the stall fanned out to every register of the pipeline and, through
            # i_x.ready, into the accelerator's FIFO, the k = 8 design's critical path). Its
            # blocks land in a FIFO with room for every block in flight: the input claims a
            # place when it takes a block. The FIFO keeps no level (hw/ring.py): the issue
            # logic decides its reads far from the FFT. The input block comes from across the
            # die (the accelerator's FIFO), so it enters the FFT from registers (`accepted`,
            # `block`: the route and the FFT's first adds in one cycle were among the k = 16
            # design's late paths, Fmax). FFT_SLACK covers the round trip (the input
            # registers, the FFT, the write, the read side's count, the read, the credit).
            m.submodules.spectra_fifo = spectra_fifo = SplitFIFO(
                fft.o.p.shape(), fft.latency + self.FFT_SLACK)
            accept, accepted = Signal(), Signal(name="accepted")
            block = Signal.like(self.i_x.p, name="block")
            read_spectrum = Signal()
            m.d.sync += [accepted.eq(accept), block.eq(self.i_x.p)]
            m.d.comb += [self.i_x.ready.eq(spectra_fifo.can_claim),
                         accept.eq(self.i_x.valid & spectra_fifo.can_claim),
                         spectra_fifo.claim.eq(accept),
                         fft.i.valid.eq(accepted), fft.i.p.eq(block), fft.o.ready.eq(1),
                         spectra_fifo.w_en.eq(fft.o.valid), spectra_fifo.w_data.eq(fft.o.p),
                         spectra_fifo.r_en.eq(read_spectrum)]
            spectrum = spectra_fifo.r_data      # the oldest block
            spectrum_valid = spectra_fifo.r_rdy
        else:
            # A small FFT (two stages at most) stalls with the MACs: its stall reaches few
            # registers, and on the iCE40 the FIFO would cost logic cells the LSTM needs.
            wiring.connect(m, wiring.flipped(self.i_x), fft.i)
            spectrum, spectrum_valid, read_spectrum = fft.o.p, fft.o.valid, fft.o.ready

        spectra = memory.Memory(shape=fft.o.p.shape(), depth=cfg.max_q, init=[])
        m.submodules.spectra = spectra
        spec_w, spec_r = spectra.write_port(), spectra.read_port()
        # Each lane's weight words in slices of at most 36 bits (a block RAM's widest port),
        # a memory each, driven by registers of its own (replicas: hw/hints.py): one
        # address register for a lane's whole word reached block RAMs spread across half the
        # die (11 to 13 ns of routing on one net at k = 8: Fmax). A slice's address register
        # (S0) holds the read address, or the host's write address while it writes, which
        # it does only while the engine is stopped; host writes reach the slices through a
        # register per lane first, and land two cycles later, which the host cannot see.
        per_slice = max(1, 36 // cfg.weight_width)
        slices = [range(n, min(n + per_slice, k)) for n in range(0, k, per_slice)]
        weight_slices = []      # (lane, columns, read port, address register, host write)
        for lane in range(L):
            write = [self.w_en & (self.w_lane == lane), self.w_addr, self.w_data]
            if L > 1:
                regs = [Signal(name=f"w_en{REPLICA}{lane}"),
                        Signal.like(self.w_addr, name=f"w_addr{REPLICA}{lane}"),
                        Signal(self.w_data.shape(), name=f"w_data{REPLICA}{lane}")]
                m.d.sync += [r.eq(v) for r, v in zip(regs, write)]
                write = regs
            for n, cols in enumerate(slices):
                mem = memory.Memory(
                    shape=data.ArrayLayout(signed(cfg.weight_width), len(cols)),
                    depth=cfg.weight_depth,
                    init=[[int(word[c]) for c in cols] for word in self._weights[lane]])
                m.submodules[f"weights{lane}_{n}"] = mem
                wr, rd = mem.write_port(), mem.read_port()
                address = Signal(range(cfg.weight_depth + 1), name=f"waddr{REPLICA}{lane}_{n}")
                enable = Signal(name=f"w_en{REPLICA}{lane}_{n}")
                values = Signal(wr.data.shape(), name=f"w_data{REPLICA}{lane}_{n}")
                m.d.sync += [enable.eq(write[0])]
                m.d.sync += [values[i].eq(write[2][c]) for i, c in enumerate(cols)]
                m.d.comb += [rd.addr.eq(address), wr.addr.eq(address), wr.en.eq(enable),
                             wr.data.eq(values)]
                weight_slices.append((lane, cols, rd, address, write))

        # -- run parameters, latched on start ------------------------------------------
        last_q = Signal.like(self.q)      # q - 1
        shift, out_shift = Signal.like(self.shift), Signal.like(self.out_shift)
        running = Signal()      # issuing MAC tokens

        # -- issue: one token (group g, input block j) per cycle ---------------------------
        first_group = Signal()
        j = Signal(range(cfg.max_q))
        waddr = Signal(range(cfg.weight_depth + 1))
        # `j == q - 1` and "the result bank is empty and no group's last token is on its
        # way" are registers, computed from the next state a cycle ahead: they gate the
        # FFT's ready, which the FFT pipeline and the accelerator's FIFO read on, so that
        # chain starts at flip-flops (Fmax).
        last_j = Signal()
        bank_full, bank_free = Signal(), Signal(init=1)
        source_ok = ~first_group | spectrum_valid
        issue = Signal()
        m.d.comb += [
            issue.eq(running & source_ok & (~last_j | bank_free)),
            read_spectrum.eq(running & first_group & (~last_j | bank_free)),
            spec_w.en.eq(issue & first_group),
            spec_w.addr.eq(j),
            spec_w.data.eq(spectrum),
        ]

        # lanes that hold real output blocks in group g (the last group may be partial)
        remaining = Signal(range(cfg.max_p + 1))   # p - g*L
        with m.If(issue):
            m.d.sync += [j.eq(Mux(last_j, 0, j + 1)), waddr.eq(waddr + 1),
                         last_j.eq(Mux(last_j, last_q == 0, j + 1 == last_q))]
            with m.If(last_j):
                m.d.sync += [first_group.eq(0), remaining.eq(remaining - L)]
                with m.If(remaining <= L):
                    m.d.sync += running.eq(0)

        # -- S0: the memories' read addresses in their registers; S1: operands arrive from
        # the memories (or the FFT, for the first group) ----------------------------------
        s0_valid, s0_first, s0_last, s0_from_fft = Signal(), Signal(), Signal(), Signal()
        s0_lanes = Signal(range(L + 1))
        s0_fft, s1_fft = Signal.like(fft.o.p), Signal.like(fft.o.p)
        s1_from_fft = Signal()
        m.d.sync += [s0_valid.eq(issue), s0_first.eq(j == 0), s0_last.eq(last_j),
                     s0_from_fft.eq(first_group), s0_fft.eq(spectrum),
                     s0_lanes.eq(Mux(remaining < L, remaining, L)),
                     s1_from_fft.eq(s0_from_fft), s1_fft.eq(s0_fft)]
        spectrum_address = Signal.like(j)
        m.d.sync += [spectrum_address.eq(j)] + [
            address.eq(Mux(write[0], write[1], waddr))
            for _, _, _, address, write in weight_slices]
        m.d.comb += spec_r.addr.eq(spectrum_address)

        # -- S1b: operands registered in the fabric, beside the memories (a block RAM's output
        # is slow: 5.8 ns on the ECP5); S2: in each multiplier's operand registers; S3: real
        # products, in its product register (hw/dsp.py); S4: complex sums, exact ------------
        x = [Signal(signed(cfg.fft_out_width), name=f"x{n}") for n in range(k)]
        m.d.sync += [x[n].eq(Mux(s1_from_fft, s1_fft[n], spec_r.data[n])) for n in range(k)]
        weights = [[Signal(signed(cfg.weight_width), name=f"w{lane}_{n}") for n in range(k)]
                   for lane in range(L)]
        m.d.sync += [weights[lane][c].eq(rd.data[i])
                     for lane, cols, rd, *_ in weight_slices for i, c in enumerate(cols)]
        tokens = [(s0_valid, s0_first, s0_last, s0_lanes)]     # (valid, first, last, lanes)
        for stage in ("s1", "s1b", "s2", "s3", "s4", "s5"):
            token = (Signal(name=f"{stage}_valid"), Signal(name=f"{stage}_first"),
                     Signal(name=f"{stage}_last"), Signal.like(s0_lanes, name=f"{stage}_lanes"))
            m.d.sync += [now.eq(before) for now, before in zip(token, tokens[-1])]
            tokens.append(token)
        s3_valid, s3_first, _, _ = tokens[-3]
        s4_valid, _, s4_last, _ = tokens[-2]
        s5_valid, _, s5_last, s5_lanes = tokens[-1]
        # the accumulators and the result bank read the token from copies, one per word
        # (hw/hints.py): one register drove every accumulator's select and enable and every
        # bank word's load (Fmax), and one per four words still reached 160 flip-flops
        # and LUTs, 7.7 ns of routing (k = 16)
        word_tokens = lane_copies(registers(m), "s4_token", [s3_valid, s3_first], L * k, per=1)
        bank_loads = lane_copies(registers(m), "s5_token", [s4_valid & s4_last], L * k, per=1)

        acc_shape = signed(cfg.acc_width)
        bank = [[Signal(acc_shape, name=f"bank{lane}_{n}") for n in range(k)] for lane in range(L)]
        accs = [[] for _ in range(L)]       # a block's spectrum, after its last token
        bank_lanes = Signal(range(L + 1))
        for lane in range(L):
            w = weights[lane]
            products = []
            for n in range(k):
                # Re/Im of a complex bin: x_r*w_r - x_i*w_i and x_r*w_i + x_i*w_r; the real
                # bins 0 and k/2 take one product.
                if n in (0, k // 2):
                    terms = [(1, x[n], w[n])]
                elif n < k // 2:
                    terms = [(1, x[n], w[n]), (-1, x[k - n], w[k - n])]
                else:
                    terms = [(1, x[k - n], w[n]), (1, x[n], w[k - n])]
                products.append([(sign, product(m, a, b, name=f"prod{lane}_{n}_{i}",
                                                platform=platform, registered_operands=True))
                                 for i, (sign, a, b) in enumerate(terms)])
            for n in range(k):
                s = Signal(acc_shape, name=f"sum{lane}_{n}")
                m.d.sync += s.eq(nx.sum_terms([r for _, r in products[n]],
                                              [(sign, i) for i, (sign, _) in enumerate(products[n])]))
                a = Signal(acc_shape, name=f"acc{lane}_{n}")
                valid, first = word_tokens[lane * k + n]
                with m.If(valid):
                    m.d.sync += a.eq(Mux(first, 0, a) + s)
                accs[lane].append(a)

        # -- result bank -> requantize -> IFFT, one lane per beat ----------------------------
        # The bank is a shift register towards lane 0, which alone feeds the IFFT: a group's
        # last token loads every lane, then each beat moves the blocks one lane down, so no
        # lane select fans out to every lane's k words (Fmax). It also shifts while empty
        # (garbage moves through), so it only holds while the IFFT stalls a block: in the
        # accelerator, whose output never stalls, the bank has no clock enable.
        # A group's sums move from the accumulators to the bank a cycle after its last
        # token (S5), not from the adder's output in the same cycle: the bank sits towards
        # the IFFT, and carry chain and route in one cycle were among the k = 16 design's
        # late paths (Fmax).
        sent = Signal(range(max(L, 2)))         # beats of this bank taken by the IFFT
        to_ifft_ready = Signal()
        bank_full_next = Signal()
        m.d.comb += bank_full_next.eq(
            s5_valid & s5_last | bank_full & ~(to_ifft_ready & (sent == bank_lanes - 1)))
        last_token_next = issue & last_j
        for valid, _, last, _ in tokens[:-1]:
            last_token_next |= valid & last
        m.d.sync += [bank_full.eq(bank_full_next),
                     bank_free.eq(~bank_full_next & ~last_token_next)]
        shift_bank = ~bank_full | to_ifft_ready
        with m.If(s5_valid & s5_last):
            m.d.sync += [bank_lanes.eq(s5_lanes), sent.eq(0)]
        with m.Elif(shift_bank & bank_full):
            m.d.sync += sent.eq(sent + 1)
        for lane in range(L):
            for n in range(k):
                load, = bank_loads[lane * k + n]
                with m.If(load):
                    m.d.sync += bank[lane][n].eq(accs[lane][n])
                with m.Elif(shift_bank):
                    if lane < L - 1:
                        m.d.sync += bank[lane][n].eq(bank[lane + 1][n])
        # The run-time shifts, latched on start, drive every word's barrel shifter: a copy
        # per group of words (hw/hints.py), a cycle behind the latch, long before the first
        # block arrives (one register for all was the k = 16 design's critical path: Fmax).
        shifts = lane_copies(registers(m), "shifts", [shift, out_shift], k)
        # Each run-time narrowing takes three registered steps (hw/fft.py: the shift by 8s,
        # the rest of it with the rounding, the saturation), so that no path holds a whole
        # barrel shifter and a carry chain (or a butterfly, or the writer) (Fmax).
        to_ifft_valid, to_ifft, _ = narrow_stages(
            m, "to_ifft", bank_full, to_ifft_ready, ifft.i.ready, bank[0],
            [s for s, _ in shifts], cfg.ifft_width)
        m.d.comb += ifft.i.valid.eq(to_ifft_valid)
        for n in range(k):
            m.d.comb += ifft.i.p[n].eq(to_ifft[n])

        # -- output ----------------------------------------------------------------------
        out_valid, out, _ = narrow_stages(
            m, "out", ifft.o.valid, ifft.o.ready, self.o_y.ready,
            [ifft.o.p[n] for n in range(k)], [s for _, s in shifts], cfg.data_width)
        m.d.comb += self.o_y.valid.eq(out_valid)
        for n in range(k):
            m.d.comb += self.o_y.p[n].eq(out[n])

        # -- control and counters ------------------------------------------------------------
        outputs_left = Signal.like(self.p)
        m.d.comb += self.busy.eq(outputs_left != 0)
        with m.If(self.o_y.valid & self.o_y.ready & (outputs_left != 0)):
            m.d.sync += outputs_left.eq(outputs_left - 1)
        with m.If(self.busy):
            m.d.sync += self.cycles.eq(self.cycles + 1)
            with m.If(s4_valid):
                m.d.sync += self.mac_cycles.eq(self.mac_cycles + 1)
        with m.If(self.start & ~self.busy):
            m.d.sync += [last_q.eq(self.q - 1), shift.eq(self.shift),
                         out_shift.eq(self.out_shift),
                         running.eq(1), first_group.eq(1), j.eq(0), last_j.eq(self.q == 1),
                         waddr.eq(self.base), remaining.eq(self.p), outputs_left.eq(self.p),
                         self.cycles.eq(0), self.mac_cycles.eq(0)]
        return m


def model(cfg: EngineConfig, x: np.ndarray, wf: np.ndarray, shift: int,
          out_shift: int) -> np.ndarray:
    """Bit-exact model of the engine: ``x (..., q, k)`` and ``wf (p, q, k)`` ints ->
    ``(..., p, k)`` ints (:func:`circa.numerics.circulant_mvm` on numpy arrays)."""
    x, wf = np.asarray(x, dtype=np.int64), np.asarray(wf, dtype=np.int64)
    cfg.check_matrix(wf.shape[0], wf.shape[1], shift, out_shift)
    cfg.check_weights(wf)
    return nx.circulant_mvm(x, wf, shift, out_shift, k=cfg.k, data_width=cfg.data_width,
                            fft_width=cfg.fft_width, ifft_width=cfg.ifft_width)
