"""The ISA-level executor: runs a Program instruction by instruction with the golden
arithmetic (``circa.numerics``), on a batch of inputs at once.

It reads weights only from the Program's memory images, so it checks the scheduler, the
encodings and the images, not just the arithmetic; it must equal
``QuantNetwork.golden`` bit for bit.
"""
from __future__ import annotations

import numpy as np
import torch

from circa import numerics as nx
from circa.compiler.isa import Op, ProgramError
from circa.compiler.program import Program

MAX_STEPS = 10_000_000      # instructions executed before a program is declared hung


def check_overlap(pc: int, ins, dst: int, sources: dict):
    """The hardware streams: a written range must equal or miss each range it reads while
    writing (docs/isa.md, "Overlap"); the accelerator stops with ``error`` otherwise."""
    for name, start in sources.items():
        if start != dst and start < dst + ins.n and dst < start + ins.n:
            raise ProgramError(
                f"instruction {pc} ({ins.op.name}): its output [{dst}, {dst + ins.n}) partly "
                f"overlaps its {name} [{start}, {start + ins.n}); the accelerator streams, so "
                f"write in place (the same start) or to a range that does not touch it")


def quantize_inputs(program: Program, x) -> torch.Tensor:
    """Float inputs ``(n, features)`` or ``(n, steps, features)`` -> input words."""
    x = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    region = program.input
    if x.dim() == 2:
        x = x[:, None]
    if tuple(x.shape[1:]) != (region.steps, region.features):
        raise ValueError(f"inputs have shape {tuple(x.shape)}; this program takes "
                         f"(n, {region.steps}, {region.features})"
                         + (f" or (n, {region.features})" if region.steps == 1 else ""))
    return nx.saturate(torch.floor(x * 2.0 ** region.frac + 0.5).long(),
                       program.config.engine.data_width)


def circulant_matrix(program: Program, base: int, p: int, q: int) -> torch.Tensor:
    """Weight spectra ``(p, q, k)`` of the matrix at ``base`` (see ``weight_images``)."""
    lanes = program.config.engine.lanes
    rows = [program.circulant_weights[i % lanes, base + (i // lanes) * q:
                                      base + (i // lanes) * q + q] for i in range(p)]
    return torch.from_numpy(np.stack(rows))


def sparse_matrix(program: Program, base: int, p: int, q: int) -> torch.Tensor:
    """The block-sparse matrix at ``base`` as a dense ``(p*k, q*k)`` integer matrix."""
    k = program.config.k
    r, c = program.config.sparse_block
    nnz = int(program.sparse_index[base, 0])
    w = torch.zeros(p * k, q * k, dtype=torch.long)
    for entry in range(base + 1, base + 1 + nnz):
        row, col = (int(v) for v in program.sparse_index[entry])
        w[row * r:(row + 1) * r, col * c:(col + 1) * c] = torch.from_numpy(
            program.sparse_blocks[entry])
    return w


def run(program: Program, x, *, trace: dict | None = None,
        events: list | None = None) -> torch.Tensor:
    """Execute ``program`` on float inputs; returns the output words, ``(n, features)`` or
    ``(n, steps, features)``. ``trace`` receives each tagged instruction's result;
    ``events`` every executed instruction that writes, as ``(pc, address, blocks)``."""
    cfg = program.config
    k, width = cfg.k, cfg.engine.data_width
    words = quantize_inputs(program, x)
    n = words.shape[0]
    mem = torch.from_numpy(program.scratchpad).repeat(n, 1, 1)
    region = program.input
    for t in range(region.steps):
        padded = torch.nn.functional.pad(words[:, t], (0, region.blocks * k - region.features))
        start = region.address + t * region.stride
        mem[:, start:start + region.blocks] = padded.reshape(n, -1, k)

    regs, pc, loop_start, loop_left, executed = [0, 0, 0, 0], 0, 0, 0, 0
    matrices = {}       # (op, base, p, q) -> weights, decoded once, not every time step
    code = program.instructions
    tables = program.tables
    while True:
        ins = code[pc]
        executed += 1
        if executed > MAX_STEPS:
            raise RuntimeError(f"the program did not halt within {MAX_STEPS} instructions")
        op = ins.op
        dst = regs[ins.dst_reg] + ins.dst
        a = regs[ins.a_reg] + ins.a
        b = regs[ins.b_reg] + ins.b
        result = None
        if op == Op.HALT:
            break
        elif op == Op.LOOP:
            loop_start, loop_left = pc + 1, ins.n
        elif op == Op.ENDL:
            loop_left -= 1
            if loop_left:
                pc = loop_start
                continue
        elif op == Op.SETA:
            regs[ins.dst_reg] = ins.w
        elif op == Op.ADDA:
            regs[ins.dst_reg] += ins.n - (1 << 12) if ins.n >> 11 else ins.n
        elif op in (Op.MVC, Op.MVS):
            xin = torch.cat([mem[:, a:a + ins.m], mem[:, b:b + ins.m2]], 1)
            q = ins.m + ins.m2
            key = (op, ins.w, ins.n, q)
            if key not in matrices:
                decode = circulant_matrix if op == Op.MVC else sparse_matrix
                matrices[key] = decode(program, ins.w, ins.n, q)
            if op == Op.MVC:
                result = nx.circulant_mvm(
                    xin, matrices[key], ins.s1, ins.s2, k=k, data_width=width,
                    fft_width=cfg.engine.fft_width, ifft_width=cfg.engine.ifft_width)
            else:
                flat = xin.reshape(n, -1) @ matrices[key].T
                result = nx.narrow(flat, ins.s1, width).reshape(n, -1, k)
            if ins.c:           # the bias, added as the output is written
                check_overlap(pc, ins, dst, {"bias": ins.c - 1})
                result = nx.vadd(result, mem[:, ins.c - 1:ins.c - 1 + ins.n], width)
        else:
            check_overlap(pc, ins, dst, {"a": a, **({"b": b} if op in (Op.VADD, Op.VSUB, Op.VMUL)
                                                    else {})})
            va, vb = mem[:, a:a + ins.n], mem[:, b:b + ins.n]
            result = {
                Op.VADD: lambda: nx.vadd(va, vb, width),
                Op.VSUB: lambda: nx.vsub(va, vb, width),
                Op.VMUL: lambda: nx.vmul(va, vb, ins.s1, width),
                Op.VSHR: lambda: nx.narrow(va, ins.s1, width),
                Op.VSHL: lambda: nx.vshl(va, ins.s1, width),
                Op.VRELU: lambda: nx.relu(va),
                Op.VSIG: lambda: nx.pwl(tables[ins.w], va, width),
                Op.VTANH: lambda: nx.pwl(tables[ins.w], va, width),
            }[op]()
        if result is not None:
            mem[:, dst:dst + result.shape[1]] = result
            if trace is not None and program.tags[pc]:
                trace.setdefault(program.tags[pc], []).append(result.clone())
            if events is not None:
                events.append((pc, dst, result.clone()))
        pc += 1

    out = program.output
    values = torch.stack([mem[:, out.address + t * out.stride:
                              out.address + t * out.stride + out.blocks].reshape(n, -1)
                          [:, :out.features] for t in range(out.steps)], 1)
    return values if program.sequence_output else values[:, -1]
