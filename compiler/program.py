"""A compiled Program: instructions, memory images, I/O descriptors, and its files.

Files in a program directory (all written by :meth:`Program.save`):

| file | contents |
| --- | --- |
| ``program.bin`` | instructions, 16 bytes each, little-endian (docs/isa.md) |
| ``program.asm`` | the same, disassembled, each line tagged with the tensor it computes |
| ``circulant_weights.npy`` | ``(lanes, weight_depth, k)`` weight spectra, per lane |
| ``sparse_index.npy`` | ``(entries, 2)``: per matrix ``[nnz, 0]`` then ``[row, col]`` blocks |
| ``sparse_blocks.npy`` | ``(entries, r, c)`` block weights, at the same addresses |
| ``scratchpad.npy`` | ``(act_depth, k)`` initial scratchpad: biases, zeros elsewhere |
| ``program.json`` | the AccelConfig, PWL tables, input and output descriptors |
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from circa import numerics as nx
from circa.compiler import isa
from circa.config import AccelConfig, EngineConfig


@dataclass(frozen=True)
class Region:
    """Where a tensor lives: ``steps`` slices of ``blocks`` scratchpad words each, every
    ``stride`` words from ``address``; ``features`` real values, ``frac`` fraction bits."""
    address: int
    blocks: int
    steps: int
    stride: int
    features: int
    frac: int


@dataclass
class Program:
    config: AccelConfig
    instructions: list
    tags: list                      # per instruction: the golden tensor it computes, or ""
    circulant_weights: np.ndarray
    sparse_index: np.ndarray
    sparse_blocks: np.ndarray
    scratchpad: np.ndarray
    tables: list                    # PWLTable, indexed by the VSIG/VTANH ``w`` field
    input: Region
    output: Region
    sequence_output: bool           # output is (n, steps, features) rather than (n, features)

    def validate(self):
        """Check the program against its AccelConfig (sizes) and the ISA (well-formed)."""
        cfg = self.config
        isa.validate(self.instructions)
        limits = [("instructions", len(self.instructions), cfg.imem_depth, "imem_depth"),
                  ("scratchpad words", len(self.scratchpad), cfg.act_depth, "act_depth"),
                  ("sparse entries", len(self.sparse_index), cfg.sparse_depth, "sparse_depth"),
                  ("PWL tables", len(self.tables), cfg.tables, "tables")]
        for what, used, limit, name in limits:
            if used > limit:
                raise ValueError(f"the model needs {used} {what}, more than the accelerator's "
                                 f"{name} = {limit}; build a larger AccelConfig or compress more")
        for n, table in enumerate(self.tables):
            for what, values, field in (("slope", table.slope, "pwl_slope_width"),
                                        ("intercept", table.icept, "pwl_icept_width")):
                lo, hi = nx.signed_range(getattr(cfg, field))
                if any(not lo <= v <= hi for v in values):
                    raise ValueError(f"PWL table {n} has a {what} wider than the "
                                     f"accelerator's {field} = {getattr(cfg, field)} bits: "
                                     f"the program was compiled for another AccelConfig")
        expected = (cfg.engine.lanes, cfg.engine.weight_depth, cfg.k)
        if self.circulant_weights.shape != expected:
            raise ValueError(f"circulant weight image is {self.circulant_weights.shape}, the "
                             f"accelerator's memories are {expected}: the program was compiled "
                             f"for another AccelConfig")
        for pc, ins in enumerate(self.instructions):
            if ins.op == isa.Op.MVC:
                cfg.engine.check_matrix(ins.n, ins.m + ins.m2, ins.s1, ins.s2)
            if ins.op == isa.Op.MVS and not cfg.sparse_engine:
                raise isa.ProgramError(f"instruction {pc} (MVS) needs the block-sparse engine, "
                                       f"which the AccelConfig leaves out (sparse_engine = "
                                       f"False); compile the Program for a config with it")
            if ins.op in (isa.Op.VSIG, isa.Op.VTANH) and ins.w >= len(self.tables):
                raise isa.ProgramError(f"instruction {pc} ({ins.op.name}): no PWL table {ins.w}")

    # -- files ------------------------------------------------------------------------------

    def save(self, directory: str | Path):
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        (d / "program.bin").write_bytes(isa.to_bytes(self.instructions))
        lines = isa.disassemble(self.instructions).splitlines()
        (d / "program.asm").write_text("".join(
            f"{line:<72} # {tag}\n" if tag else line + "\n" for line, tag in zip(lines, self.tags)))
        for name in ("circulant_weights", "sparse_index", "sparse_blocks", "scratchpad"):
            np.save(d / f"{name}.npy", getattr(self, name))
        meta = {
            "config": {**asdict(self.config), "sparse_block": list(self.config.sparse_block)},
            "tables": [asdict(t) for t in self.tables],
            "input": asdict(self.input), "output": asdict(self.output),
            "sequence_output": self.sequence_output, "tags": self.tags,
        }
        (d / "program.json").write_text(json.dumps(meta, indent=1))

    @classmethod
    def load(cls, directory: str | Path) -> "Program":
        d = Path(directory)
        missing = [f for f in ("program.bin", "program.json", "circulant_weights.npy",
                               "sparse_index.npy", "sparse_blocks.npy", "scratchpad.npy")
                   if not (d / f).is_file()]
        if missing:
            raise ValueError(f"{d} is not a compiled program directory (missing "
                             f"{', '.join(missing)}); create one with 'circa compile'")
        meta = json.loads((d / "program.json").read_text())
        conf = meta["config"]
        config = AccelConfig(**{**conf, "engine": EngineConfig(**conf["engine"]),
                                "sparse_block": tuple(conf["sparse_block"])})
        program = cls(config, isa.from_bytes((d / "program.bin").read_bytes()), meta["tags"],
                      *(np.load(d / f"{name}.npy", allow_pickle=False) for name in
                        ("circulant_weights", "sparse_index", "sparse_blocks", "scratchpad")),
                      [nx.PWLTable(**{k: tuple(v) if isinstance(v, list) else v
                                      for k, v in t.items()}) for t in meta["tables"]],
                      Region(**meta["input"]), Region(**meta["output"]), meta["sequence_output"])
        program.validate()
        return program
