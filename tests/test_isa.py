"""The instruction set: binary and text round trips, and the validator."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from circa.compiler import isa
from circa.compiler.isa import Instruction, Op, ProgramError


def field_values():
    values = {}
    for name, bits, signed in isa.FIELDS[1:]:
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
        values[name] = st.integers(lo, hi)
    return values


instructions = st.builds(Instruction, op=st.sampled_from(list(Op)), **field_values())


@given(st.lists(instructions, max_size=20))
def test_binary_and_assembly_round_trip(program):
    assert isa.from_bytes(isa.to_bytes(program)) == program
    assert isa.assemble(isa.disassemble(program)) == program


def test_encoding_is_little_endian_128_bit():
    word = isa.encode(Instruction(Op.VADD, dst=3, n=2))
    assert word & 0x3F == Op.VADD
    assert len(isa.to_bytes([Instruction(Op.HALT)])) == 16


@pytest.mark.parametrize("data, message", [
    (b"\x00" * 15, "not a multiple of 16"),
    ((0x3F).to_bytes(16, "little"), "unknown opcode 0x3f"),
])
def test_malformed_words_are_rejected(data, message):
    with pytest.raises(ProgramError, match=message):
        isa.from_bytes(data)


@pytest.mark.parametrize("text, message", [
    ("VADD n=1", "must end with HALT"),
    ("LOOP n=2\nLOOP n=2\nENDL\nENDL\nHALT", "instruction 1 \\(LOOP\\): loops do not nest"),
    ("ENDL\nHALT", "instruction 0 \\(ENDL\\): ENDL without LOOP"),
    ("LOOP n=0\nENDL\nHALT", "loop count must be at least 1"),
    ("LOOP n=1\nHALT", "HALT inside a loop"),
    ("SETA n=4\nHALT", "A0 is always 0"),
    ("MVC n=1\nHALT", "m \\+ m2 >= 1"),
    ("VMUL dst=A1+0\nHALT", "instruction 0 \\(VMUL\\): needs n >= 1 blocks"),
])
def test_validator_names_the_instruction(text, message):
    with pytest.raises(ProgramError, match=message):
        isa.validate(isa.assemble(text))


@pytest.mark.parametrize("text, message", [
    ("FROB n=1", "line 1: unknown instruction 'FROB'"),
    ("VADD dst=B1+0", "line 1: address 'dst=B1\\+0' must look like dst=A1\\+4"),
    ("VADD q=1", "line 1: bad operand 'q=1'"),
    ("VADD n=99999", "field n = 99999 is outside"),
])
def test_assembler_errors(text, message):
    with pytest.raises(ProgramError, match=message):
        isa.to_bytes(isa.assemble(text))
