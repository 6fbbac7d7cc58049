"""RTL == model for the block-circulant engine (Amaranth simulator) and its parameter checks."""
import numpy as np
import pytest

from circa import numerics as nx
from circa.config import EngineConfig, weight_images
from circa.hw.circulant import BlockCirculantEngine, model
from circa.sim.engine_bench import run_engine


def random_problem(cfg, p, q, n, seed):
    rng = np.random.default_rng(seed)
    wf = rng.integers(-2**15, 2**15, size=(p, q, cfg.k))
    x = rng.integers(-2**15, 2**15, size=(n, q, cfg.k))
    shift, out_shift = nx.circulant_shifts(x, wf, k=cfg.k, data_width=cfg.data_width,
                                           fft_width=cfg.fft_width, ifft_width=cfg.ifft_width)
    return wf, x, shift, out_shift


@pytest.mark.parametrize("k, lanes, p, q", [
    (2, 1, 3, 2),      # the smallest block: two real bins, no rotation
    (4, 1, 2, 1),      # one input block: every token is a group's first and last
    (8, 2, 3, 2),      # partial last group
    (8, 3, 5, 4),
    (16, 2, 4, 6),
    (16, 4, 9, 3),     # q < lanes: the result bank back-pressures the MACs
])
def test_rtl_equals_model(k, lanes, p, q):
    cfg = EngineConfig(k=k, lanes=lanes, max_q=8, weight_depth=32)
    wf, x, shift, out_shift = random_problem(cfg, p, q, n=6, seed=k * lanes + p)
    y, _ = run_engine(cfg, wf, x, shift, out_shift, gap=0.3)
    expected = model(cfg, x, wf, shift, out_shift)
    assert np.array_equal(y, expected)
    assert np.abs(expected).max() > 2**12          # a real test: outputs use their range


@pytest.mark.parametrize("shift", ["largest", "second largest", 0])
def test_extreme_sums(shift):
    """Full-scale blocks (bins 0 and k/2 saturate in the FFT) times full-scale weights,
    summed over max_q blocks: at the largest shifts, and at shift 0, where the narrowing
    before the IFFT saturates every bin."""
    cfg = EngineConfig(k=8, lanes=2, max_q=8, weight_depth=16)
    lo, hi = nx.signed_range(cfg.data_width)
    flat, alternating = [lo] * cfg.k, [lo, hi] * (cfg.k // 2)
    rng = np.random.default_rng(1)
    x = np.array([[flat if rng.random() < 0.5 else alternating for _ in range(cfg.max_q)]
                  for _ in range(3)])
    wf = np.full((3, cfg.max_q, cfg.k), nx.signed_range(cfg.weight_width)[0])
    shift = {"largest": cfg.acc_width - 1, "second largest": cfg.acc_width - 2}.get(shift, 0)
    sums = nx.circulant_accumulate(x, wf, k=cfg.k, data_width=cfg.data_width,
                                   fft_width=cfg.fft_width)
    assert max(np.abs(c).max() for c in sums) > 2 ** (cfg.acc_width - 4)  # the bound: 1/4 of it
    y, _ = run_engine(cfg, wf, x, shift, 0)
    assert np.array_equal(y, model(cfg, x, wf, shift, 0))


@pytest.mark.parametrize("k, lanes, p, q", [(8, 3, 5, 4), (16, 2, 4, 6)])
def test_rtl_equals_model_on_ecp5(k, lanes, p, q, on_ecp5):
    """As built for an ECP5 board: every product a MULT18X18D with its own registers."""
    cfg = EngineConfig(k=k, lanes=lanes, max_q=8, weight_depth=32)
    wf, x, shift, out_shift = random_problem(cfg, p, q, n=4, seed=k * lanes + p)
    y, _ = run_engine(cfg, wf, x, shift, out_shift, gap=0.3, wrap=on_ecp5)
    assert np.array_equal(y, model(cfg, x, wf, shift, out_shift))
    twiddles = (nx.plan_multipliers(nx.rfft_plan(k, cfg.data_width, cfg.fft_width))
                + nx.plan_multipliers(nx.irfft_plan(k, cfg.ifft_width)))
    assert len(on_ecp5.primitives) == cfg.mac_multipliers + twiddles


def test_group_period_when_q_is_small():
    """With q < L + MAC_DEPTH (8) a group of L output blocks takes L + MAC_DEPTH cycles: the
    next group's last token waits until the result bank has taken this one and emptied, and
    no last token is on its way (docs/architecture.md)."""
    cfg = EngineConfig(k=8, lanes=2, max_q=4, weight_depth=64)

    def cycles(groups):
        wf, x, shift, out_shift = random_problem(cfg, groups * cfg.lanes, 1, n=1, seed=groups)
        return run_engine(cfg, wf, x, shift, out_shift)[1][-1][0]
    assert cycles(16) - cycles(8) == 8 * (cfg.lanes + BlockCirculantEngine.MAC_DEPTH)


def test_first_group_takes_a_block_a_cycle():
    """In the first group the spectra come from the FFT, through its FIFO (hw/ring.py): one
    input block a cycle, so eight more input blocks cost eight cycles (its credits keep up)."""
    cfg = EngineConfig(k=8, lanes=2, max_q=32, weight_depth=64)

    def cycles(q):
        wf, x, shift, out_shift = random_problem(cfg, cfg.lanes, q, n=1, seed=q)
        return run_engine(cfg, wf, x, shift, out_shift)[1][-1][0]
    assert cycles(32) - cycles(24) == 8


def test_cycles_without_stalls():
    cfg = EngineConfig(k=8, lanes=2, max_q=16, weight_depth=64)
    wf, x, shift, out_shift = random_problem(cfg, 8, 16, n=2, seed=3)
    _, counters = run_engine(cfg, wf, x, shift, out_shift)
    cycles, mac_cycles = counters[-1]
    ideal = 8 * 16 // 2
    assert mac_cycles == ideal                      # every token does useful work
    engine = BlockCirculantEngine(cfg)
    # the FFT of the first input block and the pipeline's drain are the only overhead
    assert ideal < cycles <= ideal + engine.latency + 12


@pytest.mark.parametrize("kwargs, message", [
    (dict(k=10), "FFT size k must be a power of 2 from 2 to 64, not 10"),
    (dict(lanes=0), "lanes must be an integer from 1 to 64, not 0"),
    (dict(weight_width=19), "weight width must be an integer from 2 to 18"),
    (dict(data_width=20), "data width must be an integer from 2 to 18"),
    (dict(max_q=0), "max_q must be an integer from 1 to 65536"),
])
def test_bad_config(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EngineConfig(**kwargs)


def test_matrix_too_large():
    cfg = EngineConfig(k=8, lanes=2, max_q=4, weight_depth=8)
    with pytest.raises(ValueError, match="q = 5 input blocks .* max_q = 4"):
        weight_images(cfg, [np.zeros((2, 5, 8), dtype=np.int64)])
    with pytest.raises(ValueError, match="needs 12 weight words per lane, more than weight_depth = 8"):
        weight_images(cfg, [np.zeros((6, 4, 8), dtype=np.int64)])
    with pytest.raises(ValueError, match="need 12 words per lane, more than weight_depth = 8"):
        weight_images(cfg, [np.zeros((2, 4, 8), dtype=np.int64)] * 3)
    with pytest.raises(ValueError, match="must fit in 16 signed bits"):
        weight_images(cfg, [np.full((2, 2, 8), 2**15, dtype=np.int64)])
    with pytest.raises(ValueError, match="shift must be from 0 to"):
        cfg.check_matrix(2, 2, shift=99)
