"""Xilinx figures for the accelerator: yosys ``synth_xilinx`` for UltraScale, and a Vivado
project for the KCU105.

:func:`ultrascale_utilisation` synthesises the accelerator alone (no UART bridge, no I/O
buffers: out of context) with yosys ``synth_xilinx -family xcu`` and counts the mapped
cells, so that LUT, FF, DSP and BRAM figures sit on the same family as the baselines'
XCKU060 (a Kintex UltraScale). These are yosys's mapping figures, not Vivado's: expect
Vivado to differ (it packs, retimes and optimises differently).

:func:`vivado_project` writes the Vivado build files (Amaranth's ``build_top.sh``,
``top.tcl``, ``top.xdc``, ``top.v``) of the board top for the Xilinx KCU105 (XCKU040).
circa does not run Vivado: the files are generated for users who have it.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from amaranth.build import Attrs
from amaranth_boards.kcu105 import KCU105Platform
from amaranth_boards.resources import UARTResource

from circa.boards.build import AFTER_READ, run_tool, tool
from circa.config import AccelConfig

# Kintex UltraScale XCKU060 budget, from the Xilinx Kintex UltraScale FPGAs data sheet
# (DS890, "UltraScale Architecture and Product Data Sheet: Overview", Kintex UltraScale
# device table): 331,680 CLB LUTs, 663,360 CLB flip-flops, 2,760 DSP slices (DSP48E2) and
# 1,080 block RAMs of 36 Kb (each usable as two of 18 Kb).
XCKU060 = {"name": "XCKU060", "family": "xcu", "luts": 331_680, "ffs": 663_360,
           "dsps": 2_760, "brams": 1_080}

TOOL = "yosys synth_xilinx -family xcu"
SCRIPT = (f"read_rtlil top.il\n{AFTER_READ}\n"
          "synth_xilinx -family xcu -top top -flatten -noiopad\n"
          "tee -q -o stat.json stat -json\n")

# LUT sites a LUT-RAM / shift-register cell occupies on UltraScale (UG574, "CLB user
# guide": a SLICEM has eight 64-bit LUTs).
_LUTRAM_LUTS = {
    "RAM16X1S": 1, "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4,
    "RAM512X1S": 8,
    "RAM16X1D": 2, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4, "RAM256X1D": 8,
    "RAM32M": 4, "RAM64M": 4, "RAM32M16": 8, "RAM64M8": 8,
    "RAM16X2S": 2, "RAM32X2S": 2, "RAM64X2S": 2, "RAM16X4S": 4, "RAM32X4S": 4,
    "RAM16X8S": 8, "RAM32X8S": 8,
}
_SRLS = ("SRL16", "SRL16E", "SRLC16E", "SRLC32E")


def count_cells(cells: dict[str, int]) -> dict:
    """Utilisation from yosys's mapped cell counts ``{type: count}`` (UltraScale cells).

    ``luts`` are logic LUTs (LUT1-LUT6, and INV, which Vivado maps to a LUT1 when it cannot
    absorb it); ``lutrams`` LUT-RAM cells and ``lutram_luts`` the LUT sites they take;
    ``srls`` shift-register LUTs; ``luts_total`` all LUT sites (what Vivado's "CLB LUTs"
    counts: logic plus memory); ``ffs`` flip-flops and latches; ``dsps`` DSP48E2 slices;
    ``bram36``/``bram18`` RAMB36E2/RAMB18E2 cells and ``brams`` 36 Kb equivalents
    (``bram36 + bram18 / 2``, Vivado's "Block RAM Tile": a float, a multiple of 0.5);
    ``carry`` carry-chain cells: yosys maps UltraScale carry chains to CARRY4 (Vivado
    retargets two CARRY4 to one CARRY8), so this counts CARRY4 + CARRY8 cells as emitted;
    ``muxf`` MUXF7/8/9. Clock buffers and I/O buffers are not counted.
    """
    def total(pred):
        return sum(n for name, n in cells.items() if pred(name))

    unknown = [name for name in cells if name.startswith("$") and name != "$scopeinfo"]
    if unknown:
        raise RuntimeError(f"yosys left unmapped cells: {', '.join(sorted(unknown))}")
    luts = total(lambda c: c in {f"LUT{i}" for i in range(1, 7)} or c == "INV")
    lutrams = total(lambda c: c in _LUTRAM_LUTS)
    lutram_luts = sum(n * _LUTRAM_LUTS[c] for c, n in cells.items() if c in _LUTRAM_LUTS)
    srls = total(lambda c: c in _SRLS)
    bram36 = total(lambda c: c.startswith("RAMB36"))
    bram18 = total(lambda c: c.startswith("RAMB18"))
    return {
        "luts": luts,
        "lutrams": lutrams,
        "lutram_luts": lutram_luts,
        "srls": srls,
        "luts_total": luts + lutram_luts + srls,
        "ffs": total(lambda c: c.startswith("FD") or c.startswith("LD")),
        "dsps": total(lambda c: c.startswith("DSP48")),
        "bram36": bram36,
        "bram18": bram18,
        "brams": bram36 + bram18 / 2,
        "carry": total(lambda c: c.startswith("CARRY")),
        "muxf": total(lambda c: c.startswith("MUXF")),
    }


def parse_stat(text: str) -> dict[str, int]:
    """Cell counts ``{type: count}`` of the design from yosys ``stat -json`` output."""
    start = text.find("{")
    if start < 0:
        raise RuntimeError("yosys stat -json wrote no JSON")
    stat = json.loads(text[start:])
    if "design" in stat and "num_cells_by_type" in stat["design"]:
        by_type = stat["design"]["num_cells_by_type"]
    else:
        modules = stat.get("modules", {})
        if len(modules) != 1:
            raise RuntimeError(f"expected one flattened module in yosys stat, found "
                               f"{', '.join(modules) or 'none'}")
        by_type = next(iter(modules.values()))["num_cells_by_type"]
    return {name.lstrip("\\"): int(n) for name, n in by_type.items()}


def ultrascale_utilisation(cfg: AccelConfig, workdir) -> dict:
    """Synthesise the accelerator for ``cfg`` with yosys ``synth_xilinx -family xcu`` in
    ``workdir`` (created; keeps ``top.il``, ``synth.ys``, ``synth.log``, ``stat.json``) and
    return its utilisation (see :func:`count_cells`) with ``family``, ``tool``,
    ``seconds`` (wall time of yosys) and ``cells`` (all mapped cell counts)."""
    from amaranth.back import rtlil

    from circa.hw.accel import Accelerator

    if not isinstance(cfg, AccelConfig):
        raise ValueError(f"cfg must be an AccelConfig, not {type(cfg).__name__}")
    workdir = _directory(workdir, "workdir")
    for stale in ("stat.json", "synth.log"):
        (workdir / stale).unlink(missing_ok=True)
    (workdir / "top.il").write_text(rtlil.convert(Accelerator(cfg), name="top"))
    (workdir / "synth.ys").write_text(SCRIPT)
    # YoWASP yosys runs in a WASI sandbox that sees only the working directory: relative
    # names, cwd = workdir.
    start = time.monotonic()
    run_tool([tool("yosys"), "-q", "-s", "synth.ys"], workdir, "synth.log")
    seconds = time.monotonic() - start
    cells = parse_stat((workdir / "stat.json").read_text())
    return {**count_cells(cells), "family": "xcu", "tool": TOOL,
            "seconds": round(seconds, 1), "cells": cells}


def _directory(path, name: str) -> Path:
    """``path`` as a directory, created if missing."""
    if path is None:
        raise ValueError(f"{name} must be a directory path, not None")
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{name} {path} exists and is not a directory")
    path.mkdir(parents=True, exist_ok=True)
    return path


# -- Vivado project for the KCU105 ----------------------------------------------------------

class KCU105UARTPlatform(KCU105Platform):
    """amaranth-boards' KCU105 plus its USB-UART (Silicon Labs CP2105, standard interface;
    KCU105 user guide UG917): FPGA RX on G25, TX on K26, LVCMOS18."""
    resources = KCU105Platform.resources + [
        UARTResource(0, rx="G25", tx="K26", attrs=Attrs(IOSTANDARD="LVCMOS18")),
    ]


KCU105_PART = "xcku040-ffva1156-2-e"

README = """\
Vivado build files for the Xilinx KCU105 (XCKU040, {part}), generated by circa.

Vivado was NOT run by circa: these files are generated for users who have Vivado; circa's
own Xilinx figures come from yosys synth_xilinx (boards/xilinx.py), not from Vivado.

Contents: the accelerator behind the UART host bridge (circa.boards.top.BoardTop) on the
125 MHz board clock (no MMCM), UART at {baud} baud on the CP2105 USB-UART (FPGA RX G25,
TX K26), LEDs 0-2 = done, error, heartbeat.
Configuration: {cfg}

To build (Vivado on PATH, or AMARANTH_ENV_VIVADO pointing at Vivado's settings64.sh):

    sh build_top.sh

This runs `vivado -mode batch -source top.tcl`: synthesis, place, route, reports
(top_utilization_place.rpt, top_timing.rpt, ...) and the bitstream top.bit.
"""


def kcu105_platform():
    """The KCU105 platform with its USB-UART as ``uart`` 0."""
    return KCU105UARTPlatform(toolchain="Vivado")


def vivado_project(cfg: AccelConfig, images: dict | None, out_dir, *,
                   baud: int = 1_000_000) -> Path:
    """Write the Vivado build files of the board top for ``cfg`` (memory ``images`` or
    None) on the KCU105 into ``out_dir`` (created) and a README.txt; return ``out_dir``.
    Vivado is not run."""
    from circa.boards.top import BoardTop

    if not isinstance(cfg, AccelConfig):
        raise ValueError(f"cfg must be an AccelConfig, not {type(cfg).__name__}")
    if images is not None and not isinstance(images, dict):
        raise ValueError(f"images must be a dict of memory images or None, "
                         f"not {type(images).__name__}")
    if not isinstance(baud, int) or baud <= 0:
        raise ValueError(f"baud must be a positive integer, not {baud!r}")
    out_dir = _directory(out_dir, "out_dir")
    platform = kcu105_platform()
    top = BoardTop(cfg, images, platform=platform,
                   freq_hz=platform.default_clk_frequency, baud=baud)
    plan = platform.prepare(top, name="top")
    plan.extract(str(out_dir))
    (out_dir / "README.txt").write_text(README.format(part=platform._part, baud=baud,
                                                      cfg=cfg))
    return out_dir
