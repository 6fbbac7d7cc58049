"""The instruction set: encoding, assembler, disassembler and validator (docs/isa.md).

Instructions are 128-bit words with fixed fields, so decoding is wiring. Addresses are in
*blocks* (one scratchpad word = ``k`` activations); an address operand is a register and
a signed offset, ``A[reg] + offset``, where ``A0`` is always 0 and ``A1..A3`` are set by
``SETA``/``ADDA``: a time-step loop advances them instead of unrolling.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from enum import IntEnum

WORD_BITS = 128
ADDRESS_REGISTERS = 4


class Op(IntEnum):
    HALT = 0x00     # stop; the host reads outputs and counters
    LOOP = 0x01     # repeat the body up to the matching ENDL n times (no nesting)
    ENDL = 0x02
    SETA = 0x03     # A[dst.reg] = w
    ADDA = 0x04     # A[dst.reg] += sign-extended n (12-bit two's complement)
    MVC = 0x10      # dst[0:n] = circulant(w@wbase) . (a[0:m] ++ b[0:m2]) (+ bias at c-1)
    MVS = 0x11      # dst[0:n] = block-sparse(w@wbase) . (a[0:m] ++ b[0:m2]) (+ bias at c-1)
    VADD = 0x20     # dst[i] = sat(a[i] + b[i])             for i in 0..n-1
    VSUB = 0x21     # dst[i] = sat(a[i] - b[i])
    VMUL = 0x22     # dst[i] = narrow(a[i] * b[i], s1)
    VSHR = 0x23     # dst[i] = narrow(a[i], s1)             (s1 = 0: copy)
    VSHL = 0x24     # dst[i] = sat(a[i] << s1)
    VRELU = 0x25    # dst[i] = max(a[i], 0)
    VSIG = 0x26     # dst[i] = pwl(table w, a[i]): sigmoid
    VTANH = 0x27    # dst[i] = pwl(table w, a[i]): tanh


MVM_OPS = (Op.MVC, Op.MVS)
VECTOR_OPS = (Op.VADD, Op.VSUB, Op.VMUL, Op.VSHR, Op.VSHL, Op.VRELU, Op.VSIG, Op.VTANH)

# (name, bits, signed), least significant first. Unused fields must be zero.
FIELDS = (
    ("op", 6, False),
    ("dst_reg", 2, False), ("dst", 14, True),
    ("a_reg", 2, False), ("a", 14, True),
    ("b_reg", 2, False), ("b", 14, True),
    ("n", 12, False),      # output blocks / vector blocks / loop count / immediate
    ("m", 12, False),      # input blocks from a
    ("m2", 12, False),     # input blocks from b
    ("w", 16, False),      # weight base address / activation table
    ("s1", 6, False),      # shift
    ("s2", 6, False),      # second shift (MVC: out_shift)
    ("c", 10, False),      # MVC/MVS: 1 + address of a bias to add to the output (0: none)
)
assert sum(bits for _, bits, _ in FIELDS) <= WORD_BITS


@dataclass(frozen=True)
class Instruction:
    op: Op
    dst_reg: int = 0
    dst: int = 0
    a_reg: int = 0
    a: int = 0
    b_reg: int = 0
    b: int = 0
    n: int = 0
    m: int = 0
    m2: int = 0
    w: int = 0
    s1: int = 0
    s2: int = 0
    c: int = 0


class ProgramError(ValueError):
    """A malformed program or instruction word; the message names the instruction."""


# -- binary encoding -----------------------------------------------------------------------

def encode(ins: Instruction) -> int:
    word, offset = 0, 0
    for name, bits, is_signed in FIELDS:
        value = int(getattr(ins, name))
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if is_signed else (0, (1 << bits) - 1)
        if not lo <= value <= hi:
            raise ProgramError(f"{ins.op.name}: field {name} = {value} is outside [{lo}, {hi}]")
        word |= (value & ((1 << bits) - 1)) << offset
        offset += bits
    return word


def decode(word: int) -> Instruction:
    if not 0 <= word < 1 << WORD_BITS:
        raise ProgramError(f"instruction word {word:#x} is not a {WORD_BITS}-bit word")
    values, offset = {}, 0
    for name, bits, is_signed in FIELDS:
        value = (word >> offset) & ((1 << bits) - 1)
        if is_signed and value >> (bits - 1):
            value -= 1 << bits
        values[name] = value
        offset += bits
    if word >> offset:
        raise ProgramError(f"instruction word {word:#034x} has reserved bits set")
    try:
        values["op"] = Op(values["op"])
    except ValueError:
        raise ProgramError(f"instruction word {word:#034x} has unknown opcode "
                           f"{values['op']:#04x}") from None
    return Instruction(**values)


def to_bytes(program: list[Instruction]) -> bytes:
    """program.bin: little-endian 16-byte words."""
    return b"".join(encode(ins).to_bytes(WORD_BITS // 8, "little") for ins in program)


def from_bytes(data: bytes) -> list[Instruction]:
    size = WORD_BITS // 8
    if len(data) % size:
        raise ProgramError(f"program.bin has {len(data)} bytes, not a multiple of {size}")
    return [decode(int.from_bytes(data[i:i + size], "little")) for i in range(0, len(data), size)]


# -- assembly text -------------------------------------------------------------------------
# One instruction per line: OP then key=value operands; addresses are written A<r>+<off>,
# e.g. "MVC dst=A2+0 a=A1+0 b=A2-4 n=16 m=8 m2=4 w=0 s1=14 s2=1". Zero fields are omitted.

_ADDRESSES = ("dst", "a", "b")


def _format_operand(ins: Instruction, name: str) -> str | None:
    if name in _ADDRESSES:
        reg, off = getattr(ins, name + "_reg"), getattr(ins, name)
        return None if reg == off == 0 else f"{name}=A{reg}{off:+d}"
    value = getattr(ins, name)
    return None if value == 0 else f"{name}={value}"


def disassemble(program: list[Instruction]) -> str:
    names = [f.name for f in fields(Instruction) if f.name != "op" and not f.name.endswith("_reg")]
    lines = []
    for ins in program:
        operands = [o for o in (_format_operand(ins, n) for n in names) if o]
        lines.append(" ".join([ins.op.name] + operands))
    return "\n".join(lines) + "\n"


_ADDRESS_RE = re.compile(r"^A([0-9]+)([+-][0-9]+)$")


def assemble(text: str) -> list[Instruction]:
    program = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        mnemonic, *operands = line.split()
        try:
            ins = Instruction(Op[mnemonic.upper()])
        except KeyError:
            raise ProgramError(f"line {number}: unknown instruction {mnemonic!r}; known: "
                               f"{', '.join(op.name for op in Op)}") from None
        for operand in operands:
            name, _, value = operand.partition("=")
            if name in _ADDRESSES:
                match = _ADDRESS_RE.match(value)
                if not match:
                    raise ProgramError(f"line {number}: address {operand!r} must look like "
                                       f"{name}=A1+4")
                ins = replace(ins, **{name + "_reg": int(match[1]), name: int(match[2])})
            elif name in {f.name for f in fields(Instruction)} - {"op"} and value.lstrip("-").isdigit():
                ins = replace(ins, **{name: int(value)})
            else:
                raise ProgramError(f"line {number}: bad operand {operand!r}")
        program.append(ins)
    return program


# -- validation ----------------------------------------------------------------------------

def validate(program: list[Instruction]) -> None:
    """Reject a malformed program: the first problem found, naming the instruction."""
    if not program or program[-1].op != Op.HALT:
        raise ProgramError("a program must end with HALT")
    in_loop = False
    for pc, ins in enumerate(program):
        where = f"instruction {pc} ({ins.op.name})"
        encode(ins)                                     # every field in range
        for name in _ADDRESSES:
            if getattr(ins, name + "_reg") >= ADDRESS_REGISTERS:
                raise ProgramError(f"{where}: there is no register A{getattr(ins, name + '_reg')}")
        if ins.op == Op.LOOP:
            if in_loop:
                raise ProgramError(f"{where}: loops do not nest")
            if ins.n < 1:
                raise ProgramError(f"{where}: loop count must be at least 1")
            in_loop = True
        elif ins.op == Op.ENDL:
            if not in_loop:
                raise ProgramError(f"{where}: ENDL without LOOP")
            in_loop = False
        elif ins.op in (Op.SETA, Op.ADDA) and ins.dst_reg == 0:
            raise ProgramError(f"{where}: A0 is always 0 and cannot be written")
        elif ins.op in MVM_OPS:
            if ins.n < 1 or ins.m + ins.m2 < 1:
                raise ProgramError(f"{where}: needs n >= 1 output blocks and m + m2 >= 1 "
                                   f"input blocks")
        elif ins.op in VECTOR_OPS and ins.n < 1:
            raise ProgramError(f"{where}: needs n >= 1 blocks")
        elif ins.op == Op.HALT and in_loop:
            raise ProgramError(f"{where}: HALT inside a loop")
    if in_loop:
        raise ProgramError("the program ends inside a loop (missing ENDL)")
