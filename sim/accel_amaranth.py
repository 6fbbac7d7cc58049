"""The accelerator in Amaranth's simulator (``circa sim --backend amaranth``): slow, but
needs no C++ build; used by the fast unit tests."""
from __future__ import annotations

import numpy as np
from amaranth.sim import Simulator

from circa.compiler import executor, isa
from circa.compiler.program import Program
from circa.hw.accel import COUNTERS, Accelerator
from circa.sim import host


def run(program: Program, x, *, timeout: int = 100_000, raw_instructions=None,
        writes: list | None = None):
    """Like :func:`circa.sim.accel_rtl.run`: ``(outputs, counters, status)``.
    ``raw_instructions`` (words) replace the Program's, to test malformed code; ``writes``
    receives every scratchpad write of the runs as ``(pc, address, block)``."""
    words = executor.quantize_inputs(program, x).numpy()
    dut = Accelerator(program.config)
    outputs, counters, status = [], [], []

    async def exchange(ctx, commands):
        responses = []
        for word in commands:
            ctx.set(dut.host_cmd.payload, dut.host_cmd.payload.shape().const(
                {"kind": word & 0xF, "addr": (word >> 4) & 0xFFFF, "lane": (word >> 20) & 0xFF,
                 "data": word >> 28}))
            ctx.set(dut.host_cmd.valid, 1)
            await ctx.tick().until(dut.host_cmd.ready)
            ctx.set(dut.host_cmd.valid, 0)
            if word & 0xF in (6, 8, 9):
                ctx.set(dut.host_rsp.ready, 1)
                payload, = await ctx.tick().sample(dut.host_rsp.payload).until(dut.host_rsp.valid)
                ctx.set(dut.host_rsp.ready, 0)
                responses.append(int(payload))
        return responses

    async def bench(ctx):
        await exchange(ctx, host.load_program(program))
        for pc, word in enumerate(raw_instructions or []):
            await exchange(ctx, [host.command(host.Host.WRITE_IMEM, pc, data=word)])
        for w in words:
            await exchange(ctx, host.write_inputs(program, w) + [host.command(host.Host.START)])
            for _ in range(timeout):
                if ctx.get(dut.done):
                    break
                await ctx.tick()
            else:
                status.append((2, ctx.get(dut.pc)))
                return
            status.append((ctx.get(dut.error), ctx.get(dut.pc)))
            outputs.append(host.unpack_outputs(program, await exchange(ctx, host.read_outputs(program))))
            counters.append(dict(zip(COUNTERS, await exchange(ctx, host.read_counters()))))

    async def monitor(ctx):
        port = dut._debug["act_w"]
        async for _, _, en, addr, word, running, pc in ctx.tick().sample(
                port.en, port.addr, port.data, dut._debug["running"], dut.pc):
            if en and running:
                writes.append((pc, addr, [int(v) for v in word]))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    if writes is not None:
        sim.add_process(monitor)
    sim.run()
    return np.array(outputs), counters, status


def locate_divergence(program: Program, x_one) -> dict | None:
    """Run one input on the RTL (Amaranth simulator) and the executor side by side and
    name the first instruction whose written blocks differ: its pc, the golden tensor
    (layer) it computes, the time step, and the first differing word."""
    events, writes = [], []
    executor.run(program, x_one[None], events=events)
    run(program, x_one[None], writes=writes)
    instance = []                        # RTL writes grouped per executed instruction
    for pc, addr, block in writes:
        if not instance or instance[-1][0] != pc:
            instance.append((pc, []))
        instance[-1][1].append((addr, block))
    seen = {}
    for (pc, dst, result), got in zip(events, instance + [(None, [])] * len(events)):
        step = seen[pc] = seen.get(pc, -1) + 1
        expected = result[0].numpy()
        words = [blk for _, blk in got[1]] if got[0] == pc else []
        for b in range(len(expected)):
            if b >= len(words) or list(expected[b]) != words[b]:
                element = 0 if b >= len(words) else next(
                    i for i, (e, g) in enumerate(zip(expected[b], words[b])) if e != g)
                return {"pc": pc, "instruction": isa.disassemble([program.instructions[pc]]).strip(),
                        "tensor": program.tags[pc], "step": step, "block": b,
                        "element": element, "expected": int(expected[b][element]),
                        "got": None if b >= len(words) else int(words[b][element])}
    return None
