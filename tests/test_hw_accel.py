"""The whole accelerator in Amaranth's simulator: compiled Programs run bit-exact."""
import dataclasses

import numpy as np
import pytest

from circa.compiler import executor, isa
from circa.compiler.program import Program
from circa.sim import accel_amaranth
from test_schedule import CONFIG, compile_model

SMALL = dataclasses.replace(CONFIG, act_depth=192, imem_depth=64, sparse_depth=512)


@pytest.mark.parametrize("scheme", ["dense", "circulant:8", "sparse:4x4:0.5"])
@pytest.mark.parametrize("name", ["mlp", "lstm_proj", "lstm2", "gru2", "classifier"])
def test_program_runs_bit_exact(name, scheme):
    _, program, x = compile_model(name, scheme, SMALL)
    x = x[:2]
    outputs, counters, status = accel_amaranth.run(program, x)
    assert all(s == (0, len(program.instructions) - 1) for s in status)   # halted, no error
    expected = executor.run(program, x)
    expected = expected if program.sequence_output else expected[:, None]
    assert np.array_equal(outputs, expected.numpy())
    c = counters[0]
    assert c["instructions"] > 0 and c["cycles"] > c["vector_busy"] > 0
    assert (c["circulant_busy"] > 0) == (scheme == "circulant:8")


def illegal(program: Program, ins: isa.Instruction) -> Program:
    return dataclasses.replace(program, instructions=[ins, isa.Instruction(isa.Op.HALT)],
                               tags=["", ""])


@pytest.mark.parametrize("ins", [
    isa.Instruction(isa.Op.VADD, dst=SMALL.act_depth - 1, n=2),           # past the scratchpad
    isa.Instruction(isa.Op.MVC, n=1, m=SMALL.engine.max_q + 1),          # too many blocks
    isa.Instruction(isa.Op.VSIG, n=1, w=SMALL.tables),                   # no such table
    isa.Instruction(isa.Op.VRELU, a=-1, n=1),                            # before it
    isa.Instruction(isa.Op.MVC, n=1, m=1, b=SMALL.act_depth - 1, m2=2),  # b past it
    isa.Instruction(isa.Op.MVC, n=2, m=1, c=SMALL.act_depth),            # bias past it
])
def test_illegal_instruction_stops_with_error(ins):
    _, program, x = compile_model("mlp", "dense", SMALL)
    _, _, status = accel_amaranth.run(illegal(program, ins), x[:1])
    assert status == [(1, 0)]                    # error at pc 0, and it did not hang


OVERLAPS = [
    isa.Instruction(isa.Op.VADD, dst=1, a=0, b=40, n=4),                  # dst partly over a
    isa.Instruction(isa.Op.VMUL, dst=4, a=20, b=2, n=4),                  # dst partly over b
    isa.Instruction(isa.Op.MVC, dst=10, n=2, m=1, c=12),                  # dst partly over bias
]


@pytest.mark.parametrize("ins", OVERLAPS, ids=["a", "b", "bias"])
def test_partly_overlapping_output_is_refused(ins):
    """The hardware streams, so an output that partly overlaps a range read while writing
    would differ from the golden read-all-then-write: both refuse it (docs/isa.md)."""
    _, program, x = compile_model("mlp", "dense", SMALL)
    with pytest.raises(isa.ProgramError, match="partly overlaps"):
        executor.run(illegal(program, ins), x[:1])
    _, _, status = accel_amaranth.run(illegal(program, ins), x[:1])
    assert status == [(1, 0)]


def test_in_place_and_unread_overlaps_are_legal():
    """In place (the same start) is legal, and so is any overlap with an operand the
    instruction does not read (VRELU's b)."""
    _, program, x = compile_model("mlp", "dense", SMALL)
    x0 = program.input.address                                  # 3 blocks of input
    code = [isa.Instruction(isa.Op.VADD, dst=x0, a=x0, b=x0, n=3),
            isa.Instruction(isa.Op.VRELU, dst=x0 + 5, a=x0, b=x0 + 3, n=3),
            isa.Instruction(isa.Op.HALT)]
    output = dataclasses.replace(program.output, address=x0, blocks=8, features=8 * SMALL.k)
    program = dataclasses.replace(program, instructions=code, tags=[""] * 3, output=output)
    outputs, _, status = accel_amaranth.run(program, x[:2])
    assert all(s == (0, 2) for s in status)
    assert np.array_equal(outputs[:, 0], executor.run(program, x[:2]).numpy())


def test_loop_counts_and_steps_are_not_block_ranges():
    """Only MVMs and vector operations address the scratchpad: a LOOP count above
    ``act_depth`` and a negative ADDA step are legal (they once failed the range test)."""
    _, program, x = compile_model("mlp", "dense", SMALL)
    x0 = program.input.address
    code = [isa.Instruction(isa.Op.SETA, dst_reg=1, w=x0 + 5),
            isa.Instruction(isa.Op.ADDA, dst_reg=1, n=-5 & 0xFFF),             # A1 = x0
            isa.Instruction(isa.Op.LOOP, n=SMALL.act_depth + 1),
            isa.Instruction(isa.Op.ENDL),
            isa.Instruction(isa.Op.VRELU, dst_reg=1, a_reg=1, n=3),
            isa.Instruction(isa.Op.HALT)]
    output = dataclasses.replace(program.output, address=x0, blocks=3, features=3 * SMALL.k)
    program = dataclasses.replace(program, instructions=code, tags=[""] * 6, output=output)
    outputs, _, status = accel_amaranth.run(program, x[:1])
    assert status == [(0, 5)]
    assert np.array_equal(outputs[:, 0], executor.run(program, x[:1]).numpy())


def test_unknown_opcode_stops_with_error():
    _, program, x = compile_model("mlp", "dense", SMALL)
    bad = dataclasses.replace(program, instructions=[isa.Instruction(isa.Op.HALT)], tags=[""])
    words = [0x3F]                                # opcode 0x3f does not exist
    _, _, status = accel_amaranth.run(bad, x[:1], raw_instructions=words)
    assert status == [(1, 0)]


def test_divergence_is_located(monkeypatch):
    """If the RTL and the golden arithmetic disagree, the report names the first
    instruction, its layer tensor and time step (here: a sabotaged golden saturating add,
    first used by the bias the gates' MVM adds)."""
    _, program, x = compile_model("lstm_proj", "circulant:8", SMALL)
    assert accel_amaranth.locate_divergence(program, x[0]) is None
    real = executor.nx.vadd
    monkeypatch.setattr(executor.nx, "vadd", lambda a, b, w: real(a, b, w) + 1)
    where = accel_amaranth.locate_divergence(program, x[0])
    assert where["tensor"] == "L0.z" and where["step"] == 0
    assert where["instruction"].startswith("MVC") and "c=" in where["instruction"]
    assert where["got"] == where["expected"] - 1


def test_without_the_sparse_engine():
    """A Program with no MVS gets ``sparse_engine = False`` from fitted_config; it runs
    bit-exact without the engine, and an MVS there stops the run with ``error``."""
    from circa.compiler.compile import fitted_config
    _, program, x = compile_model("lstm_proj", "circulant:8", SMALL)
    cfg = fitted_config(SMALL, program)
    assert not cfg.sparse_engine and not any(i.op == isa.Op.MVS for i in program.instructions)
    _, program, x = compile_model("lstm_proj", "circulant:8", cfg)
    outputs, _, status = accel_amaranth.run(program, x[:1])
    assert status == [(0, len(program.instructions) - 1)]
    assert np.array_equal(outputs, executor.run(program, x[:1]).numpy())
    _, _, status = accel_amaranth.run(illegal(program, isa.Instruction(isa.Op.MVS, n=1, m=1)),
                                      x[:1])
    assert status == [(1, 0)]
    with pytest.raises(isa.ProgramError, match="sparse_engine = False"):
        illegal(program, isa.Instruction(isa.Op.MVS, n=1, m=1)).validate()
    with pytest.raises(ValueError, match="leaves out"):
        compile_model("lstm_proj", "dense", cfg)


def test_a_narrow_vector_unit_runs_bit_exact():
    """A vector unit of 4, 2 or 1 words at k = 8 runs bit-exact, and each block costs one
    more cycle per part: the busy cycles grow by the same count (the blocks the run's
    vector ops stream) for each extra part."""
    _, program, x = compile_model("lstm_proj", "circulant:8", SMALL)
    busy = {}
    for words in (4, 2, 1):
        prog = dataclasses.replace(program,
                                   config=dataclasses.replace(SMALL, vector_width=words))
        outputs, counters, status = accel_amaranth.run(prog, x[:1])
        assert status == [(0, len(prog.instructions) - 1)]
        assert np.array_equal(outputs, executor.run(prog, x[:1]).numpy())
        busy[8 // words] = counters[0]["vector_busy"]
    blocks = (busy[4] - busy[2]) // 2
    assert blocks > 100 and busy[8] - busy[4] == 4 * blocks


def test_six_control_cycles_per_instruction():
    """FETCH, DECODE, ADDRESS, CHECK, VERDICT and EXECUTE: six cycles for an instruction
    that does not stream (docs/architecture.md), read from the cycle counter."""
    _, program, x = compile_model("mlp", "dense", SMALL)

    def cycles(n):
        code = [isa.Instruction(isa.Op.SETA, dst_reg=1, w=7)] * n + [isa.Instruction(isa.Op.HALT)]
        setas = dataclasses.replace(program, instructions=code, tags=[""] * (n + 1))
        _, counters, status = accel_amaranth.run(setas, x[:1])
        assert status == [(0, n)]
        return counters[0]["cycles"]
    assert cycles(6) - cycles(2) == 4 * 6
