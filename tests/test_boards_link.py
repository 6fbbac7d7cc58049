"""boards/link.py: HostLink delivers every command once, in order, with its payload, and
brings back each response, whatever the accelerator's side does with ``ready`` and
however long it takes to answer; back-to-back commands go one per 2 x stages + 2 cycles."""
import random

import pytest
from amaranth.hdl import unsigned
from amaranth.sim import Simulator

from circa.boards.link import HostLink


def run(stages: int, commands: list[tuple[int, bool]], seed: int, ready_chance: float):
    """The bridge's side sends ``(payload, responds)`` commands as soon as ``cmd.ready``
    allows, waiting for the response of those that respond; the accelerator's side takes
    them with ``ready_chance`` and answers ``payload + 1`` 0-3 cycles later. Returns
    (payloads taken, responses received, cycle of each send)."""
    dut = HostLink(unsigned(40), unsigned(40), stages=stages)
    taken, answers, sends = [], [], []

    async def bridge(ctx):
        cycle = 0
        for payload, responds in commands:
            ctx.set(dut.cmd.valid, 1)
            ctx.set(dut.cmd.payload, payload)
            while not ctx.get(dut.cmd.ready):
                await ctx.tick()
                cycle += 1
            sends.append(cycle)
            await ctx.tick()
            cycle += 1
            ctx.set(dut.cmd.valid, 0)
            ctx.set(dut.cmd.payload, 0xDEAD)         # the bridge's word changes at once
            if responds:
                ctx.set(dut.rsp.ready, 1)
                while not ctx.get(dut.rsp.valid):
                    await ctx.tick()
                    cycle += 1
                answers.append(ctx.get(dut.rsp.payload))
                await ctx.tick()
                cycle += 1
                ctx.set(dut.rsp.ready, 0)
        while not ctx.get(dut.cmd.ready):            # the last one taken
            await ctx.tick()
        for _ in range(4 * stages + 8):              # then nothing more arrives
            assert not ctx.get(dut.rsp.valid)
            await ctx.tick()

    async def accelerator(ctx):
        rng, due = random.Random(seed), []
        while True:
            ready = rng.random() < ready_chance
            ctx.set(dut.host_cmd.ready, ready)
            answer = bool(due) and due[0][0] == 0
            ctx.set(dut.host_rsp.valid, answer)
            ctx.set(dut.host_rsp.payload, due[0][1] if answer else 0)
            assert ctx.get(dut.host_rsp.ready)
            if ready and ctx.get(dut.host_cmd.valid):
                payload = ctx.get(dut.host_cmd.payload)
                taken.append(payload)
                if dict(commands)[payload]:
                    due.append([rng.randrange(4), payload + 1])
            if answer:
                due.pop(0)
            for d in due:
                d[0] = max(0, d[0] - 1)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bridge)
    sim.add_testbench(accelerator, background=True)
    sim.run()
    return taken, answers, sends


@pytest.mark.parametrize("stages", [1, 2, 3])
@pytest.mark.parametrize("ready_chance", [0.2, 1.0])
def test_commands_once_in_order_and_responses(stages, ready_chance):
    rng = random.Random(stages)
    commands = [(rng.getrandbits(39) | 1 << 39, rng.random() < 0.5) for _ in range(40)]
    taken, answers, _ = run(stages, commands, seed=stages, ready_chance=ready_chance)
    assert taken == [p for p, _ in commands]
    assert answers == [p + 1 for p, responds in commands if responds]


@pytest.mark.parametrize("stages", [1, 2])
def test_back_to_back_commands(stages):
    commands = [(n, False) for n in range(20)]
    taken, _, sends = run(stages, commands, seed=0, ready_chance=1.0)
    assert taken == list(range(20))
    assert {b - a for a, b in zip(sends, sends[1:])} == {2 * stages + 2}
