"""RTL == model for the block-sparse engine (Amaranth simulator) and its parameter checks."""

import numpy as np
import pytest

from circa import numerics as nx
from circa.config import AccelConfig, EngineConfig
from circa.hw.sparse import BlockSparseEngine, model, sparse_dense, sparse_images
from circa.sim.engine_bench import run_mvms


def config(k, r, c, max_q=4, sparse_depth=160, act_depth=8):
    return AccelConfig(engine=EngineConfig(k=k, max_q=max_q), sparse_block=(r, c),
                       sparse_depth=sparse_depth, act_depth=act_depth)


def run_sparse(dut, jobs, *, gap=0.0, seed=0, load=None, top=None):
    """Run MVMs ``jobs = [(base, p, x (n, q, k), shift)]`` one vector at a time.

    ``load = (index, blocks)`` is first written through the host port. Returns the outputs
    of each job ``(n, p, k)`` and the ``(cycles, mac_cycles)`` of every MVM.
    """
    async def write_images(ctx):
        index, blocks = load
        ctx.set(dut.w_en, 1)
        for addr in range(len(index)):
            ctx.set(dut.w_addr, addr)
            ctx.set(dut.w_index, {"row": int(index[addr, 0]), "col": int(index[addr, 1])})
            ctx.set(dut.w_block, [[int(v) for v in row] for row in blocks[addr]])
            await ctx.tick()
        ctx.set(dut.w_en, 0)

    return run_mvms(dut, [(x, dict(p=p, base=base, shift=shift)) for base, p, x, shift in jobs],
                    gap=gap, seed=seed, before=write_images if load is not None else None,
                    top=top)


def random_matrix(cfg, p, q, rng, density, empty_rows=(), single=False):
    """Dense ``(p*k, q*k)`` ints with a random block mask; ``empty_rows`` are block rows
    with no block (whole output blocks when they cover one)."""
    k, (r, c) = cfg.k, cfg.sparse_block
    ww = cfg.engine.weight_width
    grid = (p * k // r, q * k // c)
    mask = rng.random(grid) < density
    if single:
        mask[:] = False
        mask[rng.integers(grid[0]), rng.integers(grid[1])] = True
    mask[list(empty_rows)] = False
    w = rng.integers(-2**(ww - 1), 2**(ww - 1), size=(p * k, q * k))
    w[w == 0] = 1                      # a present block is never all zeros
    return w * np.repeat(np.repeat(mask, r, 0), c, 1)


def random_inputs(cfg, q, n, rng):
    dw = cfg.engine.data_width
    return rng.integers(-2**(dw - 1), 2**(dw - 1), size=(n, q, cfg.k))


def pick_shift(cfg, w, x):
    """One bit less than the outputs need: most words fit, the largest saturate."""
    y = x.reshape(len(x), -1) @ w.T
    return max(0, nx.bits_needed(y) - cfg.engine.data_width - 1)


@pytest.mark.parametrize("k, r, c, p, q, density, empty, single", [
    (8, 4, 4, 3, 2, 0.5, (0, 1, 5), False),     # empty first output block, empty block row
    (8, 2, 8, 3, 3, 0.4, (4, 5, 6, 7), False),  # an empty output block in the middle
    (16, 4, 4, 2, 3, 0.3, (7,), False),         # last block row empty
    (16, 2, 8, 3, 2, 0.5, (), False),
    (8, 4, 4, 2, 2, 1.0, (), False),            # fully dense
    (16, 4, 4, 3, 2, 0.0, (), True),            # a single block
    (16, 2, 8, 2, 4, 1.0, (), False),           # dense, widest input
    (4, 4, 1, 2, 3, 0.5, (1,), False),          # one column per block: k-way input select
    (4, 1, 4, 3, 2, 0.5, (1,), False),          # one row per block, whole-word input
])
def test_rtl_equals_model(k, r, c, p, q, density, empty, single):
    cfg = config(k, r, c)
    rng = np.random.default_rng(k * 100 + r * 10 + p + q)
    w = random_matrix(cfg, p, q, rng, density, empty, single)
    index, blocks, (base,) = sparse_images(cfg, [w])
    assert np.array_equal(sparse_dense(cfg, index, blocks, base, p, q), w)
    x = random_inputs(cfg, q, 3, rng)
    shift = pick_shift(cfg, w, x)
    dut = BlockSparseEngine(cfg, index, blocks)
    (y,), counters = run_sparse(dut, [(base, p, x, shift)], gap=0.3, seed=k + p)
    expected = model(cfg, x, index, blocks, base, p, shift)
    assert np.array_equal(y, expected)
    assert np.abs(expected).max() > 2**12          # a real test: outputs use their range
    nnz = int(index[base, 0])
    assert all(mac == nnz for _, mac in counters)
    # the model is the plain matrix product, rounded half up and saturated
    exact = (x.reshape(len(x), -1) @ w.T).reshape(len(x), p, k)
    assert np.array_equal(expected, nx.saturate((exact + (1 << shift >> 1)) >> shift,
                                                 cfg.engine.data_width))


@pytest.mark.parametrize("ecp5", [False, True], ids=["plain", "ecp5"])
def test_two_matrices_host_loaded(ecp5, on_ecp5):
    """Two matrices at different bases of one image, written through the host port, and
    an all-zero matrix (nnz = 0), interleaved in one run; also as built for an ECP5 board
    (each product a MULT18X18D's)."""
    cfg = config(8, 4, 4)
    rng = np.random.default_rng(7)
    w1 = random_matrix(cfg, 2, 3, rng, 0.5, (2,))
    w2 = random_matrix(cfg, 3, 1, rng, 0.6, (0,))
    w0 = np.zeros((8, 16), dtype=np.int64)
    index, blocks, bases = sparse_images(cfg, [w1, w2, w0])
    assert bases[1] > 0 and index[bases[2], 0] == 0
    used = bases[2] + 1
    xs = [random_inputs(cfg, 3, 2, rng), random_inputs(cfg, 1, 2, rng),
          random_inputs(cfg, 2, 1, rng)]
    jobs = [(bases[0], 2, xs[0], pick_shift(cfg, w1, xs[0])),
            (bases[1], 3, xs[1], pick_shift(cfg, w2, xs[1])),
            (bases[2], 1, xs[2], 3),
            (bases[0], 2, xs[0][::-1], pick_shift(cfg, w1, xs[0]) + 2)]
    dut = BlockSparseEngine(cfg)                                   # empty images
    ys, _ = run_sparse(dut, jobs, gap=0.25, seed=1, load=(index[:used], blocks[:used]),
                       top=on_ecp5(dut) if ecp5 else None)
    for (base, p, x, shift), y in zip(jobs, ys):
        assert np.array_equal(y, model(cfg, x, index, blocks, base, p, shift))
    assert not ys[2].any()
    assert len(on_ecp5.primitives) == (16 if ecp5 else 0)          # r * c


@pytest.mark.parametrize("k, r, c, p, q, density, empty", [
    (8, 4, 4, 3, 4, 0.5, (0, 1, 4)),
    (16, 2, 8, 2, 3, 1.0, ()),
    (8, 4, 4, 2, 2, 0.0, ()),          # nnz = 0
])
def test_cycles_without_stalls(k, r, c, p, q, density, empty):
    cfg = config(k, r, c)
    rng = np.random.default_rng(11)
    w = random_matrix(cfg, p, q, rng, density, empty)
    index, blocks, (base,) = sparse_images(cfg, [w])
    x = random_inputs(cfg, q, 2, rng)
    dut = BlockSparseEngine(cfg, index, blocks)
    (y,), counters = run_sparse(dut, [(base, p, x, 20)])
    assert np.array_equal(y, model(cfg, x, index, blocks, base, p, 20))
    nnz = int(index[base, 0])
    cycles, mac_cycles = counters[-1]
    assert mac_cycles == nnz
    assert cycles == dut.cycles_for(index, base, p, q)
    assert cycles <= q + nnz + p + 7


def test_bad_parameters():
    cfg = config(8, 4, 4, max_q=4, sparse_depth=16, act_depth=4)
    w = np.zeros((16, 16), dtype=np.int64)
    w[0, 0] = 5
    w[8, 12] = -3
    index, blocks, (base,) = sparse_images(cfg, [w])
    x = np.zeros((1, 2, 8), dtype=np.int64)
    with pytest.raises(ValueError, match=r"index image must have shape \(16, 2\)"):
        BlockSparseEngine(cfg, index[:8], blocks)
    with pytest.raises(ValueError, match=r"block image must have shape \(16, 4, 4\)"):
        BlockSparseEngine(cfg, index, blocks[:, :2])
    bad = blocks.copy()
    bad[1, 0, 0] = 2**15
    with pytest.raises(ValueError, match=r"must fit in 16 signed bits \[-32768, 32767\]"):
        BlockSparseEngine(cfg, index, bad)
    bad = index.copy()
    bad[1, 1] = 99
    with pytest.raises(ValueError, match="0 <= block_col <= 7"):
        BlockSparseEngine(cfg, bad, blocks)
    with pytest.raises(ValueError, match="p = 5 output blocks does not fit: at most act_depth = 4"):
        model(cfg, x, index, blocks, base, 5, 0)
    with pytest.raises(ValueError, match="q = 5 input blocks .* max_q = 4"):
        model(cfg, np.zeros((1, 5, 8), dtype=np.int64), index, blocks, base, 2, 0)
    with pytest.raises(ValueError, match="outside a 1 x 2-block matrix"):
        model(cfg, x, index, blocks, base, 1, 0)
    with pytest.raises(ValueError, match="shift must be from 0 to"):
        model(cfg, x, index, blocks, base, 2, 99)
    with pytest.raises(ValueError, match="inputs must fit in 16 signed bits"):
        model(cfg, x + 2**15, index, blocks, base, 2, 0)
    bad = index.copy()
    bad[[1, 2]] = bad[[2, 1]]
    with pytest.raises(ValueError, match="row-major order"):
        model(cfg, x, bad, blocks, base, 2, 0)
    bad = index.copy()
    bad[base, 0] = 16
    with pytest.raises(ValueError, match="past the end of the sparse memory"):
        model(cfg, x, bad, blocks, base, 2, 0)
    with pytest.raises(ValueError, match="need 22 sparse entries, more than sparse_depth = 16"):
        sparse_images(cfg, [np.ones((16, 16), dtype=np.int64), np.ones((8, 8), dtype=np.int64)])
    with pytest.raises(ValueError, match="sparse_block must be"):
        AccelConfig(engine=EngineConfig(k=8), sparse_block=(3, 4))
