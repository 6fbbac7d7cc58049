"""RTL == model for the vector unit (Amaranth simulator), its latency and parameter checks."""
import dataclasses
import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from circa import numerics as nx
from circa.compiler.pwl import fit
from circa.config import AccelConfig, EngineConfig
from circa.hw.vector import VectorOp, VectorUnit, identity_table, model
from circa.sim.streams import stream_get_n, stream_put

CFG = AccelConfig(tables=4)                                              # k = 16, 16-bit words
CFG8 = AccelConfig(engine=EngineConfig(k=8, data_width=12), tables=2)   # k = 8, 12-bit words
CFG0 = AccelConfig(engine=EngineConfig(k=2, data_width=8), sparse_block=(2, 2), tables=0)
CFG_V4 = dataclasses.replace(CFG, vector_width=4)          # k = 16 in four parts a block


def random_blocks(rng, n, k, width, extremes=0.2):
    """Uniform words, with the extreme words planted in about ``extremes`` of the places."""
    lo, hi = nx.signed_range(width)
    x = rng.integers(lo, hi + 1, size=(n, k))
    mask = rng.random((n, k)) < extremes
    x[mask] = rng.choice([lo, hi, lo + 1, -1, 0, 1], size=mask.sum())
    return x


def simulate(dut, ops, a, b, shifts, tables, *, gap=0.3, seed=0, setup=None, top=None):
    """Stream beats ``(op, shift, table, a[i], b[i])`` through ``dut``; return ``(n, k)`` outputs.

    ``setup(ctx)`` runs before the first beat (table writes through the host port); ``top``,
    if given, is the design simulated, ``dut`` within it.
    """
    n = len(a)
    rng = random.Random(seed)
    out = []

    async def producer(ctx):
        if setup is not None:
            await setup(ctx)
        for i in range(n):
            # op/shift/table are sampled with the beat: set them while valid is still low
            ctx.set(dut.op, int(ops[i]))
            ctx.set(dut.shift, int(shifts[i]))
            ctx.set(dut.table, int(tables[i]))
            await stream_put(ctx, dut.i, {"a": [int(v) for v in a[i]], "b": [int(v) for v in b[i]]},
                             rng=rng, gap=gap)
            # scramble the controls between beats: only accepted beats may see them
            ctx.set(dut.op, rng.randrange(8))
            ctx.set(dut.shift, rng.randrange(64))

    async def consumer(ctx):
        got = await stream_get_n(ctx, dut.o, n, rng=rng, gap=gap)
        out.extend(list(p) for p in got)

    async def watchdog(ctx):                 # a lost or stuck beat fails instead of hanging
        for _ in range(40 * n + 1000):
            await ctx.tick()
        raise AssertionError(f"only {len(out)} of {n} blocks came out")

    sim = Simulator(dut if top is None else top)
    sim.add_clock(1e-8)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.add_testbench(watchdog, background=True)
    sim.run()
    return np.array(out, dtype=np.int64).reshape(n, -1)


def shifts_for(op, rng, n, width):
    if op in (VectorOp.VMUL, VectorOp.VSHR, VectorOp.VSHL):
        s = rng.integers(0, 2 * width + 3, size=n)
        s[rng.random(n) < 0.15] = 63
        s[rng.random(n) < 0.15] = 0
        return s
    return rng.integers(0, 64, size=n)       # ignored by the op: any value must do


@pytest.mark.parametrize("cfg", [CFG, CFG8, CFG0, dataclasses.replace(CFG8, vector_width=1)],
                         ids=["k16w16", "k8w12", "k2w8-no-tables", "k8w12-one-word-a-cycle"])
@pytest.mark.parametrize("op", [op for op in VectorOp if op != VectorOp.VPWL])
def test_simple_ops(cfg, op):
    w, k = cfg.engine.data_width, cfg.k
    n = max(40, 1280 // k)                   # enough words to reach the extremes
    rng = np.random.default_rng(10 * op + k)
    a, b = random_blocks(rng, n, k, w), random_blocks(rng, n, k, w)
    shifts = shifts_for(op, rng, n, w)
    tables = rng.integers(0, max(1, cfg.tables), size=n)
    dut = VectorUnit(cfg)
    y = simulate(dut, [op] * n, a, b, shifts, tables, seed=op)
    expected = dut.model(op, a, b, shifts, tables)
    assert np.array_equal(y, expected)
    lo, hi = nx.signed_range(w)
    if op != VectorOp.VRELU:
        assert expected.min() == lo            # saturation was exercised
    assert expected.max() == hi


def sigmoid_tanh(width=16, segments=32):
    if width == 16:
        return [fit("sigmoid", 11, 14, segments=segments), fit("tanh", 12, 14, segments=segments)]
    return [fit("sigmoid", 8, 10, width=width, segments=segments),
            fit("tanh", 8, 10, width=width, segments=segments)]


@pytest.mark.parametrize("cfg", [CFG, CFG8, dataclasses.replace(CFG8, pwl_icept_width=28), CFG_V4],
                         ids=["k16w16", "k8w12", "k8w12-narrow-entries", "k16w16-4-words"])
def test_pwl(cfg):
    """Every table entry format: 18 + 48 bits, or as narrow as the tables allow (k8w12's
    intercepts need 28 bits: the sums and the narrowing are narrower too)."""
    w, k = cfg.engine.data_width, cfg.k
    n = max(40, 1280 // k)                   # enough words to reach the extremes
    tabs = sigmoid_tanh(w, cfg.pwl_segments)
    rng = np.random.default_rng(k)
    # mostly inside the tables' range (all segments), some clamped
    a = random_blocks(rng, n, k, w) // rng.choice([1, 2, 4], size=(n, 1))
    tables = rng.integers(0, 2, size=n)
    dut = VectorUnit(cfg, tabs)
    y = simulate(dut, [VectorOp.VPWL] * n, a, a[::-1], np.zeros(n, int), tables, seed=1)
    expected = dut.model(VectorOp.VPWL, a, None, 0, tables)
    assert np.array_equal(y, expected)
    # the real functions: sigmoid(0) = 1/2, tanh(0) = 0 with out_frac bits
    out_frac = 14 if w == 16 else 10
    probe = dut.model(VectorOp.VPWL, np.zeros((2, k), int), None, 0, [0, 1])
    assert abs(probe[0, 0] - (1 << out_frac) // 2) <= 4 and abs(probe[1, 0]) <= 4
    used = set()
    for row, t in zip(a, tables):
        tab = tabs[t]
        index = ((row.clip(tab.lo, tab.hi) >> tab.seg_shift) + cfg.pwl_segments // 2)
        used |= {(int(t), int(i)) for i in index.clip(0, cfg.pwl_segments - 1)}
    assert len(used) > cfg.pwl_segments          # many segments were read


def test_pwl_segment_index_clips_both_ways():
    """A table over the whole word range with a small segment shift: most inputs fall
    below the first or above the last segment (the index saturates), some inside."""
    cfg, rng = CFG, np.random.default_rng(9)
    w, k, n, segs = cfg.engine.data_width, cfg.k, 24, cfg.pwl_segments
    lo, hi = nx.signed_range(w)
    table = nx.PWLTable(slope=tuple(int(v) for v in rng.integers(-500, 500, segs)),
                        icept=tuple(1000 * i for i in range(segs)), seg_shift=3, shift=4,
                        lo=lo, hi=hi)
    a = random_blocks(rng, n, k, w) // rng.choice([1, 64, 1024], size=(n, 1))
    dut = VectorUnit(cfg, [table])
    y = simulate(dut, [VectorOp.VPWL] * n, a, a, np.zeros(n, int), np.zeros(n, int))
    assert np.array_equal(y, dut.model(VectorOp.VPWL, a, None, 0, np.zeros(n, int)))
    index = (a >> 3) + segs // 2
    assert (index < 0).any() and (index >= segs).any() and ((index >= 0) & (index < segs)).any()


@pytest.mark.parametrize("cfg", [CFG, CFG_V4], ids=["k16", "k16-4-words"])
@pytest.mark.parametrize("ecp5", [False, True], ids=["plain", "ecp5"])
def test_mixed_ops_change_every_beat(ecp5, cfg, on_ecp5):
    """op, shift and table change from one beat to the next, with random stalls; also as
    built for an ECP5 board (each lane's multiplier a MULT18X18D with its registers), and
    with a unit narrower than the block."""
    w, k, n = cfg.engine.data_width, cfg.k, 80
    tabs = sigmoid_tanh()
    rng = np.random.default_rng(5)
    a, b = random_blocks(rng, n, k, w), random_blocks(rng, n, k, w)
    ops = rng.integers(0, 7, size=n)
    shifts = rng.integers(0, 40, size=n)
    tables = rng.integers(0, 2, size=n)
    dut = VectorUnit(cfg, tabs)
    for gap, seed in ((0.3, 2), (0.0, 3)):
        y = simulate(dut, ops, a, b, shifts, tables, gap=gap, seed=seed,
                     top=on_ecp5(dut) if ecp5 else None)
        assert np.array_equal(y, dut.model(ops, a, b, shifts, tables))
    assert len(on_ecp5.primitives) == (2 * cfg.vector_words if ecp5 else 0)  # one elaboration


def test_table_write_port():
    """Tables loaded through the host ports replace the initial (zero) tables."""
    cfg = AccelConfig(engine=EngineConfig(k=4), tables=3, pwl_segments=32)
    w, k, n = 16, 4, 30
    tabs = sigmoid_tanh()
    dut = VectorUnit(cfg)                     # tables start as identity_table: outputs 0
    assert dut.tables == (identity_table(cfg),) * 3
    slots = (2, 0)                            # sigmoid in slot 2, tanh in slot 0

    async def load(ctx):
        for slot, t in zip(slots, tabs):
            for i, (s, c) in enumerate(zip(t.slope, t.icept)):
                ctx.set(dut.t_en, 1)
                ctx.set(dut.t_addr, slot * cfg.pwl_segments + i)
                ctx.set(dut.t_data, {"slope": s, "icept": c})
                await ctx.tick()
            ctx.set(dut.t_en, 0)
            ctx.set(dut.s_en, 1)
            ctx.set(dut.s_table, slot)
            ctx.set(dut.s_data, {"seg_shift": t.seg_shift, "shift": t.shift, "lo": t.lo, "hi": t.hi})
            await ctx.tick()
            ctx.set(dut.s_en, 0)

    rng = np.random.default_rng(7)
    a = random_blocks(rng, n, k, w) // 2
    tables = rng.choice([0, 1, 2], size=n)
    y = simulate(dut, [VectorOp.VPWL] * n, a, a, np.zeros(n, int), tables, setup=load)
    loaded = [tabs[1], identity_table(cfg), tabs[0]]
    expected = model(cfg, loaded, VectorOp.VPWL, a, None, 0, tables)
    assert np.array_equal(y, expected)
    assert np.abs(expected[tables != 1]).max() > 2**13 and not expected[tables == 1].any()


def test_clamp_bounds_crossed_by_the_host():
    """Scalars written with lo > hi clamp every input to hi, as clip does (the flag is
    computed when the host writes them)."""
    cfg = AccelConfig(engine=EngineConfig(k=4), tables=2, pwl_segments=32)
    tab = sigmoid_tanh()[0]
    dut = VectorUnit(cfg, [tab, tab])

    async def load(ctx):
        ctx.set(dut.s_en, 1)
        ctx.set(dut.s_table, 1)
        ctx.set(dut.s_data, {"seg_shift": tab.seg_shift, "shift": tab.shift, "lo": 3000,
                             "hi": -2000})
        await ctx.tick()
        ctx.set(dut.s_en, 0)

    rng = np.random.default_rng(3)
    a = random_blocks(rng, 12, 4, 16)
    tables = np.arange(12) % 2
    y = simulate(dut, [VectorOp.VPWL] * 12, a, a, np.zeros(12, int), tables, setup=load)
    pinned = dataclasses.replace(tab, lo=-2000, hi=-2000)
    expected = model(cfg, [tab, pinned], VectorOp.VPWL, a, None, 0, tables)
    assert np.array_equal(y, expected) and len(np.unique(expected[tables == 1])) == 1


@pytest.mark.parametrize("cfg, latency", [(CFG8, 12), (CFG0, 11)],
                         ids=["k8-stage-b", "k2-no-stage-b"])
def test_latency_and_throughput(cfg, latency):
    dut = VectorUnit(cfg)
    k, n = cfg.k, 12
    assert dut.latency == latency and dut.multipliers == k
    cycles = {}

    async def bench(ctx):
        # one beat into an empty pipeline: output valid exactly `latency` edges later
        ctx.set(dut.op, VectorOp.VADD)
        ctx.set(dut.i.p, {"a": [1] * k, "b": [2] * k})
        ctx.set(dut.i.valid, 1)
        ctx.set(dut.o.ready, 1)
        await ctx.tick()
        ctx.set(dut.i.valid, 0)
        edges = 1
        while not ctx.get(dut.o.valid):
            await ctx.tick()
            edges += 1
        cycles["latency"] = edges
        assert list(ctx.get(dut.o.p)) == [3] * k
        await ctx.tick()
        assert not ctx.get(dut.o.valid)
        # a stream of n beats with ready always high: one beat per cycle
        got = 0
        for i in range(n + dut.latency):
            ctx.set(dut.i.valid, i < n)
            ctx.set(dut.i.p, {"a": [i] * k, "b": [0] * k})
            assert ctx.get(dut.i.ready)
            if ctx.get(dut.o.valid):
                assert i - got == dut.latency and list(ctx.get(dut.o.p)) == [got] * k
                got += 1
            await ctx.tick()
        assert got == n and not ctx.get(dut.o.valid)
        # back-pressure: with ready low the pipeline fills (latency beats), then holds
        ctx.set(dut.o.ready, 0)
        ctx.set(dut.i.valid, 1)
        accepted = 0
        for i in range(3 * dut.latency):
            ctx.set(dut.i.p, {"a": [accepted] * k, "b": [0] * k})
            accepted += ctx.get(dut.i.ready)
            await ctx.tick()
        assert accepted == dut.latency
        assert ctx.get(dut.o.valid) and list(ctx.get(dut.o.p)) == [0] * k
        ctx.set(dut.i.valid, 0)
        ctx.set(dut.o.ready, 1)
        for j in range(dut.latency):
            assert ctx.get(dut.o.valid) and list(ctx.get(dut.o.p)) == [j] * k
            await ctx.tick()
        assert not ctx.get(dut.o.valid)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert cycles["latency"] == dut.latency


@pytest.mark.parametrize("words", [1, 4])
def test_a_narrow_unit_takes_a_block_in_parts(words):
    """k / vector_width cycles a block: the input is taken on its last part, the output
    block comes out whole ``latency`` cycles later, one block every k / words cycles."""
    cfg = dataclasses.replace(CFG8, vector_width=words)
    dut = VectorUnit(cfg)
    k, n, parts = cfg.k, 6, cfg.k // words
    assert dut.multipliers == words and dut.latency == 11
    taken, given = [], []

    async def bench(ctx):
        ctx.set(dut.op, VectorOp.VADD)
        ctx.set(dut.o.ready, 1)
        block = 0
        for cycle in range(n * parts + dut.latency + 2):
            ctx.set(dut.i.valid, block < n)
            ctx.set(dut.i.p, {"a": [10 * block + j for j in range(k)], "b": [block] * k})
            if ctx.get(dut.i.valid) and ctx.get(dut.i.ready):
                taken.append(cycle)
                block += 1
            if ctx.get(dut.o.valid):
                given.append((cycle, list(ctx.get(dut.o.p))))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert taken == [parts * (b + 1) - 1 for b in range(n)]
    assert [c for c, _ in given] == [c + dut.latency for c in taken]
    assert [y for _, y in given] == [[11 * b + j for j in range(k)] for b in range(n)]


def table(**kw):
    base = dict(slope=(0,) * 32, icept=(0,) * 32, seg_shift=0, shift=0, lo=-10, hi=10)
    return nx.PWLTable(**{**base, **kw})


@pytest.mark.parametrize("tables, message", [
    ([table()] * 5, r"5 PWL tables given, but the unit holds cfg.tables = 4"),
    ([table(slope=(0,) * 16, icept=(0,) * 16)], r"table 0 has 16 slopes .* cfg.pwl_segments = 32"),
    ([table(), table(slope=(2**17,) + (0,) * 31)], r"table 1: every slope must fit in 18 signed bits"),
    ([table(icept=(-2**47 - 1,) + (0,) * 31)], r"every intercept must fit in 48 signed bits"),
    ([table(shift=64)], r"shift must be an integer from 0 to 63, not 64"),
    ([table(seg_shift=-1)], r"seg_shift must be an integer from 0 to 63, not -1"),
    ([table(lo=5, hi=4)], r"need -32768 <= lo <= hi <= 32767 .* lo = 5, hi = 4"),
    ([table(hi=2**15)], r"lo <= hi <= 32767"),
    (["sigmoid"], r"must be a circa.numerics.PWLTable, not str"),
])
def test_bad_tables(tables, message):
    with pytest.raises(ValueError, match=message):
        VectorUnit(CFG, tables)


def test_tables_wider_than_the_config():
    narrow = dataclasses.replace(CFG, pwl_icept_width=30)
    with pytest.raises(ValueError, match=r"intercept must fit in 30 .* larger "
                                         r"AccelConfig.pwl_icept_width"):
        VectorUnit(narrow, [table(icept=(2**30,) + (0,) * 31)])


def test_bad_parameters():
    with pytest.raises(ValueError, match="cfg must be an AccelConfig, not EngineConfig"):
        VectorUnit(EngineConfig())
    for words in (0, 3, 16, 4.0):
        with pytest.raises(ValueError, match=rf"vector_width \(--vector-width\) must be a "
                                             rf"power of 2 from 1 to k = 8 \(None: k\), "
                                             rf"not {words!r}"):
            dataclasses.replace(CFG8, vector_width=words)
    dut = VectorUnit(CFG8)
    a = np.zeros((2, 8), dtype=np.int64)
    with pytest.raises(ValueError, match="op must be a VectorOp code 0..6, not 7"):
        dut.model(7, a, a)
    with pytest.raises(ValueError, match="shift must be from 0 to 63, not 64"):
        dut.model(VectorOp.VSHR, a, a, 64)
    with pytest.raises(ValueError, match=r"a and b must have shape \(n, 8\)"):
        dut.model(VectorOp.VADD, a[:, :4], a[:, :4])
    with pytest.raises(ValueError, match="a must hold 12-bit signed words"):
        dut.model(VectorOp.VADD, a + 2**11, a)


def test_model_is_the_contract():
    """Spot checks of the model against the contract's functions and plain arithmetic."""
    dut = VectorUnit(CFG8)
    lo, hi = nx.signed_range(12)
    a = np.array([[lo, hi, -1, 0, 1, 5, -5, 100]])
    assert np.array_equal(dut.model(VectorOp.VRELU, a), np.maximum(a, 0))
    assert np.array_equal(dut.model(VectorOp.VSHL, a, shift=63), np.sign(a) * np.where(a < 0, -lo, hi))
    assert np.array_equal(dut.model(VectorOp.VSHL, a, shift=2), nx.vshl(a, 2, 12))
    assert np.array_equal(dut.model(VectorOp.VSHR, a, shift=1), (a + 1) >> 1)
    assert np.array_equal(dut.model(VectorOp.VMUL, a, a, shift=63), np.zeros_like(a))
