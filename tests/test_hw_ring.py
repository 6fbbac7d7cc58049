"""hw/ring.py: SplitFIFO keeps order, never overfills, and, deep enough, takes a word a
cycle, with a writer that claims places two cycles before it writes (a pipeline in front)
and a reader that takes words at random."""
import random

import pytest
from amaranth.hdl import unsigned
from amaranth.sim import Simulator

from circa.hw.ring import SplitFIFO

PIPELINE = 2        # cycles from a claim to its write


def run(depth: int, read_chance: float, words: int, seed: int):
    """Claims whenever it may (and words are left), writes each claim PIPELINE cycles
    later, reads with ``read_chance``; returns (words read in order, cycles)."""
    dut = SplitFIFO(unsigned(16), depth)
    got, cycle = [], 0

    async def bench(ctx):
        nonlocal cycle
        rng, pending, claimed = random.Random(seed), [], 0
        while len(got) < words:
            claim = ctx.get(dut.can_claim) and claimed < words
            write = bool(pending) and pending[0][0] == cycle
            read = rng.random() < read_chance
            ctx.set(dut.claim, claim)
            ctx.set(dut.w_en, write)
            ctx.set(dut.w_data, pending[0][1] if write else 0)
            ctx.set(dut.r_en, read)
            if read and ctx.get(dut.r_rdy):
                got.append(ctx.get(dut.r_data))
            if write:
                pending.pop(0)
            if claim:
                pending.append((cycle + PIPELINE, claimed))
                claimed += 1
                # places claimed and not yet read never exceed the depth
                assert claimed - len(got) <= depth
            await ctx.tick()
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return got, cycle


@pytest.mark.parametrize("depth", [2, 3, 8, 16])
@pytest.mark.parametrize("read_chance", [0.3, 1.0])
def test_order_and_no_overfill(depth, read_chance):
    got, _ = run(depth, read_chance, 60, seed=depth)
    assert got == list(range(60))


def test_a_word_a_cycle_when_deep_enough():
    """The round trip (claim, write, read side's count, read, write side's count) is
    PIPELINE + 5 cycles: 8 places keep a word a cycle going."""
    _, short = run(8, 1.0, 100, seed=0)
    _, long = run(8, 1.0, 200, seed=0)
    assert long - short == 100
