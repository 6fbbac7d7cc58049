"""``circa build``: a compiled Program's accelerator as a bitstream for a board.

Steps, each with progress on stderr:

1. **Fit check, before any tool runs** (:func:`estimate`): multipliers (our count of the
   generated RTL), block RAMs (every memory of the elaborated design mapped onto the
   device's block RAM shapes, one copy per read port) and LUTs (a fit to our synthesis
   runs, labelled as an estimate). A design that cannot fit stops here, saying what to
   change.
2. **Synthesis** (yosys ``synth_ecp5`` / ``synth_ice40``); the synthesised cell counts are
   checked against the device again before place-and-route, the long step.
3. **Place and route** (nextpnr, ``--report``) and **packing** (ecppack / icepack).
4. ``build_report.json``: ``board, device, fmax_mhz, target_mhz, luts, ffs, dsps, brams,
   bitstream`` and more, every figure parsed from nextpnr's report (utilisation, Fmax) or
   yosys's ``stat``.

The YoWASP tools run in a WASI sandbox that only sees the build directory, so they run
with it as the working directory and relative file names.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from circa import progress
from circa.boards.targets import DEFAULT, Device, Target, target
from circa.compiler.program import Program
from circa.config import AccelConfig
from circa.hw import hints

#: Block RAM shapes (depth, width) the synthesis tools map memories onto.
_BRAM_SHAPES = {"ecp5": [(16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36)],
                "ice40": [(2048, 2), (1024, 4), (512, 8), (256, 16)]}
_LUTRAM_DEPTH = 32          # yosys keeps memories this shallow in LUT RAM (measured)
#: Run before synthesis: without splitnets, abc9 can trip an assertion on duplicate wire
#: names when mapping some designs (YosysHQ/yosys#4349; it did here on a vector unit);
#: then the hints about the generated RTL (circa.hw.hints).
AFTER_READ = f"proc\nsplitnets\n{hints.SCRIPT}"


class FitError(ValueError):
    """The configuration cannot fit the device."""


def memories(cfg: AccelConfig, family: str = "ecp5") -> list[tuple[str, int, int, int]]:
    """Every memory of the accelerator elaborated for ``family`` that block RAM can hold:
    (path, width, depth, read ports); on the ECP5, memories marked ``ram_style =
    distributed`` or at most 32 deep (yosys keeps those in LUT RAM, measured) are left out."""
    from types import SimpleNamespace

    from amaranth.hdl import Fragment, Shape
    from amaranth.hdl._mem import MemoryInstance

    from circa.hw.accel import Accelerator
    found = []

    def walk(fragment, path):
        for sub, name, _ in fragment.subfragments:
            if isinstance(sub, MemoryInstance):
                if family != "ecp5" or (sub._data.depth > _LUTRAM_DEPTH
                                        and sub._attrs.get("ram_style") != "distributed"):
                    found.append((f"{path}.{name}", Shape.cast(sub._data.shape).width,
                                  sub._data.depth, len(sub._read_ports)))
            else:
                walk(sub, f"{path}.{name}")
    walk(Fragment.get(Accelerator(cfg), SimpleNamespace(family=family)), "accel")
    return found


def bram_blocks(width: int, depth: int, family: str) -> int:
    """Block RAMs for one ``width`` x ``depth`` memory with one read port."""
    return min(math.ceil(width / w) * math.ceil(depth / d) for d, w in _BRAM_SHAPES[family])


def estimate(cfg: AccelConfig, device: Device) -> dict:
    """Resources of ``cfg`` on ``device`` before synthesis; see the module docstring."""
    from circa.ese import multipliers
    brams = {path: bram_blocks(w, d, device.family) * max(1, ports)
             for path, w, d, ports in memories(cfg, device.family)}
    # LUT4 + 2 per carry cell after synth_ecp5 (measured, docs/boards.md): k = 4 / 1 lane
    # 11.3 k, k = 16 / 2 lanes 51.4 k at 16 bits; synth_ice40 at 8 bits, 1 lane: k = 2
    # 4.2 k, k = 4 6.5 k. The engine's lanes scale with k and the width, the vector unit
    # with its words a cycle and the width.
    luts = round(2000 + 770 * (cfg.k * (cfg.engine.lanes + 1) + cfg.vector_words)
                 * cfg.engine.data_width / 16)
    return {"multipliers": multipliers(cfg)["total"], "brams": sum(brams.values()),
            "brams_by_memory": brams, "luts_estimate": luts}


def check_fit(cfg: AccelConfig, device: Device, used: dict, stage: str):
    """Raise FitError naming each resource over budget and what to change."""
    problems = []
    if used["multipliers"] > device.multipliers:
        problems.append(f"{used['multipliers']} multipliers (the device has "
                        f"{device.multipliers}): use fewer lanes, a smaller k or a narrower "
                        "vector unit (--vector-width)")
    if used["brams"] > device.brams:
        big = sorted(used.get("brams_by_memory", {}).items(), key=lambda kv: -kv[1])[:3]
        where = (" (largest: " + ", ".join(f"{p} {n}" for p, n in big) + ")") if big else ""
        problems.append(f"{used['brams']} block RAMs (the device has {device.brams}){where}: "
                        "compile a smaller model, use a larger k (fewer weights), or fewer bits")
    luts = used.get("luts", used.get("luts_estimate", 0))
    if luts > device.luts:
        problems.append(f"{luts} LUTs (the device has {device.luts}): use a smaller k, fewer "
                        "lanes, or fewer bits")
    if problems:
        raise FitError(f"{cfg_summary(cfg)} does not fit the {device.name} ({stage}):\n  "
                       + "\n  ".join(problems))


def cfg_summary(cfg: AccelConfig) -> str:
    e = cfg.engine
    lanes = f"{e.lanes} lane" + "s" * (e.lanes != 1)
    return (f"the accelerator (k = {cfg.k}, {lanes}, {e.data_width}-bit data, "
            f"{e.weight_width}-bit weights, weight depth {e.weight_depth}, "
            f"scratchpad {cfg.act_depth}"
            f"{'' if cfg.sparse_engine else ', no block-sparse engine'}"
            f"{f', vector unit {cfg.vector_words} words wide' * (cfg.vector_words < cfg.k)})")


# -- the tools ---------------------------------------------------------------------------

def tool(name: str) -> str:
    """The YoWASP tool ``yowasp-NAME`` next to this Python (the venv's), else on PATH."""
    local = Path(sys.executable).parent / f"yowasp-{name}"
    found = str(local) if local.exists() else shutil.which(f"yowasp-{name}")
    if not found:
        raise RuntimeError(f"yowasp-{name} is not installed: pip install yowasp-{name} "
                           "(the README's commands install it)")
    return found


class ToolTimeout(RuntimeError):
    """A tool ran past its time limit and was stopped."""


class NotRouted(RuntimeError):
    """Place and route finished with no seed: each ran past its time limit or nextpnr
    failed; ``unrouted`` says why, per seed."""

    def __init__(self, unrouted: dict):
        self.unrouted = unrouted
        super().__init__("place and route finished with no seed: " + "; ".join(
            f"seed {n}: {why}" for n, why in unrouted.items()) + ". The router stalls on "
            "some placements of large designs: try another --seed, the other --router, or a "
            "lower --freq")


def run_tool(cmd: list[str], cwd: Path, log: str, minutes: float | None = None):
    """Run a tool in ``cwd`` with its output in ``cwd/log``, stopped after ``minutes``; a
    failure names the log."""
    with open(cwd / log, "w") as out:
        try:
            done = subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=None if minutes is None else 60 * minutes)
        except subprocess.TimeoutExpired:
            raise ToolTimeout(f"{Path(cmd[0]).name} did not finish in {minutes:g} minutes and "
                              f"was stopped (log {cwd / log})") from None
    if done.returncode:
        tail = "\n".join((cwd / log).read_text(errors="replace").splitlines()[-25:])
        raise RuntimeError(f"{Path(cmd[0]).name} failed (log {cwd / log}):\n{tail}")


_STAT_CELLS = {
    "ecp5": {"luts": ("LUT4",), "carry": ("CCU2C",), "ffs": ("TRELLIS_FF",),
             "dsps": ("MULT18X18D",), "brams": ("DP16KD",), "lutram": ("TRELLIS_DPR16X4",)},
    "ice40": {"luts": ("SB_LUT4",), "carry": ("SB_CARRY",), "ffs": ("SB_DFF",),
              "dsps": ("SB_MAC16",), "brams": ("SB_RAM40_4K",), "lutram": ()},
}


def synth_cells(stat_json: Path, family: str) -> dict:
    """Cell counts from yosys ``stat -json`` (the top module, flattened)."""
    stat = json.loads(stat_json.read_text())
    cells = stat.get("design", {}).get("num_cells_by_type") or next(
        iter(stat["modules"].values()))["num_cells_by_type"]
    counts = {key: sum(n for cell, n in cells.items() if cell.startswith(prefixes))
              for key, prefixes in _STAT_CELLS[family].items() if prefixes}
    # an ECP5 carry cell (CCU2C) is two LUT4s in a slice; an iCE40 carry shares its LUT
    counts["lut_equivalents"] = counts["luts"] + (2 * counts["carry"] if family == "ecp5" else 0)
    return counts


_PNR_BELS = {"ecp5": {"luts": "TRELLIS_COMB", "ffs": "TRELLIS_FF", "dsps": "MULT18X18D",
                      "brams": "DP16KD"},
             "ice40": {"luts": "ICESTORM_LC", "ffs": None, "dsps": "ICESTORM_DSP",
                       "brams": "ICESTORM_RAM"}}


def pnr_figures(report_json: Path, family: str, target_mhz: float, worst: int = 20) -> dict:
    """Utilisation and Fmax from nextpnr's ``--report`` JSON, and from its detailed timing
    (``--detailed-timing-report``) the ``worst`` latest flip-flop and memory inputs
    (arrival from the clock edge, setup not included) and how many miss the target: what
    to pipeline next when timing fails (one critical path hides the others)."""
    report = json.loads(report_json.read_text())
    use = report["utilization"]
    figures = {key: use.get(bel, {}).get("used", 0) if bel else None
               for key, bel in _PNR_BELS[family].items()}
    slowest = min(report["fmax"].values(), key=lambda c: c["achieved"])   # one clock domain
    # an arrival is [min, max] in nextpnr 0.11, one number in older versions
    arrivals = sorted(((max(e["delay"]) if isinstance(e["delay"], list) else e["delay"],
                        e["cell"], e["port"])
                       for net in report.get("detailed_net_timings", ())
                       for e in net["endpoints"]), reverse=True)
    figures.update(fmax_mhz=round(slowest["achieved"], 2),
                   utilisation={bel: v for bel, v in use.items() if v.get("used")},
                   late_endpoints=sum(a > 1e3 / target_mhz for a, _, _ in arrivals),
                   latest_arrivals=[{"arrival_ns": round(a, 2), "cell": c, "port": p}
                                    for a, c, p in arrivals[:worst]])
    return figures


def rtl_version() -> str:
    """The generators' version a build came from: ``git describe`` of the checkout (with
    ``-dirty`` for uncommitted changes), or the package version outside one."""
    from importlib.metadata import version
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], text=True,
                              cwd=Path(__file__).parent, capture_output=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return version("circa")


def synthesise(cfg: AccelConfig, tgt: Target, out, *, freq_mhz: float | None = None,
               baud: int | None = None):
    """Generate ``cfg``'s board top for ``tgt`` into the directory ``out`` (replaced) and
    synthesise it, with no fit check: ``(platform, top, cells)``, ``cells`` yosys's counts
    (:func:`synth_cells`). Also how far a configuration is from fitting a device:
    ``synthesise(cfg, target("icebreaker"), "out/ice")[2]``."""
    from circa.boards.top import BoardTop
    out, family = Path(out), tgt.device.family
    platform = tgt.make_platform()
    # Memories start empty: the runtime loads the Program (any Program for this config).
    top = BoardTop(cfg, platform=platform,
                   freq_hz=(freq_mhz * 1e6) if freq_mhz else tgt.freq_hz, baud=baud or tgt.baud)
    with progress.step(f"Generating the design for {tgt.name} at {top.freq_hz / 1e6:g} MHz"):
        if out.exists():
            shutil.rmtree(out)
        overrides = {"script_after_read": AFTER_READ,
                     "script_after_synth": "tee -q -o top.stat.json stat -json"}
        if family == "ice40":
            overrides["synth_opts"] = "-dsp"      # multipliers in SB_MAC16, as estimated
        platform.prepare(top, "top", **overrides).extract(out)
    with progress.step(f"Synthesis (yosys synth_{family})"):
        run_tool([tool("yosys"), "-q", "-l", "top.rpt", "top.ys"], out, "yosys.log")
        return platform, top, synth_cells(out / "top.stat.json", family)


def build(directory, board: str = DEFAULT, *, freq_mhz: float | None = None,
          baud: int | None = None, out=None, seed: int | list[int] = 1,
          router: str = "router1", tmg_ripup: bool = False,
          pnr_minutes: float | None = None, timing_margin: float = 0) -> dict:
    """Build the bitstream for the Program in ``directory``; returns the build report.

    ``tmg_ripup``: router2 also rips up and reroutes the connections that miss timing, not
    only the overused ones (nextpnr's ``--tmg-ripup``): the k = 8 design's seeds 1-4 went
    from 80-93 MHz to 98.3-99.8 MHz with it (docs/fmax-history.md).

    Several placement seeds: each is placed and routed (side by side, one per core) and the
    fastest is kept (a seed sweep: placement alone moves a large design's Fmax by 10 MHz or
    more, docs/boards.md). Place and route is stopped after ``pnr_minutes`` (no limit by
    default); :class:`NotRouted` when no seed finished.

    ``timing_margin``: nextpnr times the design for a clock that many percent faster than
    the bitstream's (:func:`tighten_clocks`); Fmax and ``timing_met`` are still nextpnr's
    final analysis against the bitstream's clock."""
    if board.lower() == "kcu105":
        return xilinx_build(directory, out=out, baud=baud)
    check_router(router, tmg_ripup, pnr_minutes)
    if not 0 <= timing_margin <= 50:
        raise ValueError(f"--timing-margin is a percentage from 0 to 50, not {timing_margin}")
    tgt: Target = target(board)
    program = Program.load(directory)
    cfg, device = program.config, tgt.device
    out = Path(out) if out else Path(directory) / f"build-{tgt.name}"

    with progress.step(f"Checking that {cfg_summary(cfg)} fits the {device.name}"):
        est = estimate(cfg, device)
        check_fit(cfg, device, est, "estimate before synthesis")
    started, rtl = time.monotonic(), rtl_version()     # the RTL as generated, not as it ends
    platform, top, synth = synthesise(cfg, tgt, out, freq_mhz=freq_mhz, baud=baud)
    check_fit(cfg, device, {"multipliers": synth["dsps"], "brams": synth["brams"],
                            "luts": synth["lut_equivalents"]}, "after synthesis")
    name, family = "top", device.family
    seconds = {"synthesis": time.monotonic() - started}
    pnr = [tool(f"nextpnr-{family}"), "--json", f"{name}.json", "--report", "report.json",
           "--router", router, "--timing-allow-fail", "--detailed-timing-report",
           "--log", f"{name}.tim", "-q", *["--tmg-ripup"] * tmg_ripup]
    if family == "ecp5":
        constraints, placed = f"{name}.lpf", f"{name}.config"
        pnr += [*platform._nextpnr_device_options[platform.device].split(),
                "--package", platform._nextpnr_package_options[platform.package].upper(),
                "--speed", str(platform.speed), "--lpf", constraints, "--textcfg", placed]
        pack = [tool("ecppack"), "--compress", "--input", placed, "--bit", f"{name}.bit"]
        bitstream = f"{name}.bit"
    else:
        constraints, placed = f"{name}.pcf", f"{name}.asc"
        pnr += [f"--{platform.device.lower().replace('ice40', '')}", "--package",
                platform.package.lower(), "--pcf", constraints, "--asc", placed]
        pack = [tool("icepack"), placed, f"{name}.bin"]
        bitstream = f"{name}.bin"
    pnr_target = tighten_clocks(out / constraints, timing_margin, top.freq_hz / 1e6)
    seeds = [seed] if isinstance(seed, int) else list(dict.fromkeys(seed))
    with progress.step(f"Place and route (nextpnr-{family}, seed{'s' * (len(seeds) > 1)} "
                       f"{', '.join(map(str, seeds))}; minutes for a large design)"):
        fmax_by_seed, unrouted = place_and_route(pnr, out, [f"{name}.json", constraints],
                                                 seeds, pnr_minutes, family, top.freq_hz / 1e6)
    seed = max(fmax_by_seed, key=lambda n: fmax_by_seed[n] or 0)
    if fmax_by_seed[seed] is None:
        # router2 can stall at a few thousand overused wires on a large design's placement,
        # or rip up for timing for an hour or more; router1 did not finish a k = 8 design in 25
        # minutes (docs/fmax-history.md)
        raise NotRouted(unrouted)
    if len(seeds) > 1:              # the kept seed's results where a one-seed build has them
        for file in ("report.json", f"{name}.tim", "nextpnr.log", placed):
            shutil.copy(out / f"seed{seed}" / file, out / file)
    seconds["place_and_route"] = time.monotonic() - started - seconds["synthesis"]
    with progress.step("Packing the bitstream"):
        run_tool(pack, out, "pack.log")
    seconds["total"] = time.monotonic() - started
    figures = pnr_figures(out / "report.json", family, top.freq_hz / 1e6)
    report = {
        "board": tgt.name, "device": device.name, "fmax_mhz": figures["fmax_mhz"],
        "target_mhz": round(top.freq_hz / 1e6, 3),
        "timing_met": figures["fmax_mhz"] >= top.freq_hz / 1e6,
        "luts": figures["luts"],
        "ffs": figures["ffs"] if figures["ffs"] is not None else synth["ffs"],
        "dsps": figures["dsps"], "brams": figures["brams"],
        "bitstream": str((out / bitstream).absolute()),
        "device_budget": {"luts": device.luts, "ffs": device.ffs,
                          "dsps": device.multipliers, "brams": device.brams},
        "estimate": {k: v for k, v in est.items() if k != "brams_by_memory"},
        "late_endpoints": figures["late_endpoints"],
        "latest_arrivals": figures["latest_arrivals"],
        "synthesis": synth, "nextpnr_utilisation": figures["utilisation"],
        "seconds": {key: round(v, 1) for key, v in seconds.items()}, "baud": top.baud,
        "config": repr(cfg), "program": str(Path(directory).absolute()), "rtl": rtl,
        "nextpnr": {"seed": seed, "router": router, "tmg_ripup": tmg_ripup,
                    "target_mhz": pnr_target,
                    **({"fmax_by_seed": fmax_by_seed} if len(seeds) > 1 else {}),
                    **({"unrouted": unrouted} if unrouted else {})},
    }
    (out / "build_report.json").write_text(json.dumps(report, indent=1))
    return report


def tighten_clocks(constraints: Path, margin: float, clock_mhz: float) -> float:
    """Scale every clock constraint of an LPF (``FREQUENCY ... HZ``) or PCF
    (``set_frequency ... MHZ``) file by ``1 + margin / 100``; returns place and route's
    clock target in MHz. Where rip-up for timing converges at k = 8, nextpnr's final timing
    analysis comes out about 1 % below the target it routed for (docs/fmax-history.md): a
    margin buys that back. On the ECP5 the PLL's output takes the pin's constraint times
    its ratio (nextpnr derives it)."""
    scale = 1 + margin / 100
    if margin:
        text = re.sub(r"^((?:FREQUENCY (?:NET|PORT)|set_frequency) \S+ )([0-9.eE+-]+)",
                      lambda m: f"{m[1]}{float(m[2]) * scale:.9g}", constraints.read_text(),
                      flags=re.M)
        constraints.write_text(text)
    return round(clock_mhz * scale, 3)


def check_router(router: str, tmg_ripup: bool, pnr_minutes: float | None = None):
    if tmg_ripup and router != "router2":
        raise ValueError("timing-driven rip-up (--tmg-ripup) is router2's: add --router router2")
    if tmg_ripup and pnr_minutes is None:
        progress.info("--tmg-ripup with no --pnr-minutes: on a placement it cannot time, "
                      "router2 rips up until its 1,500th iteration, 30 to 40 minutes for two "
                      "k = 8 seeds side by side (docs/boards.md)")


def place_and_route(pnr: list[str], out: Path, inputs: list[str], seeds: list[int],
                    minutes: float | None, family: str, target_mhz: float):
    """nextpnr once per seed, in ``out`` for one seed, else in ``out/seedN`` (with copies of
    the ``inputs``), side by side, one per core: ``({seed: Fmax in MHz or None}, {seed: why
    it has none})``. A seed has none when it was stopped after ``minutes`` (with
    ``--tmg-ripup``, router2 rips up for timing until iteration 1,500 on a placement it
    cannot time: 30 to 40 minutes for two k = 8 seeds side by side, docs/boards.md; the
    reason then says where router2 was, :func:`router_state`) or when nextpnr failed; one
    seed's failure does not stop the others."""
    log = pnr[pnr.index("--log") + 1] if "--log" in pnr else "nextpnr.log"   # its own log

    def run(seed):
        where = out if len(seeds) == 1 else out / f"seed{seed}"
        where.mkdir(exist_ok=True)
        for file in inputs if where != out else ():
            shutil.copy(out / file, where / file)    # the tools read only their own folder
        try:
            run_tool([*pnr, "--seed", str(seed)], where, "nextpnr.log", minutes=minutes)
        except ToolTimeout as error:
            return None, f"{error}{router_state(where / log)}"
        except RuntimeError as error:
            lines = str(error).splitlines()         # its first line names the log
            cause = [line.strip() for line in lines[1:] if "ERROR" in line][-1:]
            return None, ": ".join([lines[0].rstrip(":")] + cause)
        return pnr_figures(where / "report.json", family, target_mhz)["fmax_mhz"], None
    with ThreadPoolExecutor(max_workers=min(len(seeds), os.cpu_count() or 1)) as pool:
        results = dict(zip(seeds, pool.map(run, seeds)))
    return ({n: fmax for n, (fmax, _) in results.items()},
            {n: why for n, (_, why) in results.items() if why})


_ROUTER2_ITERATION = re.compile(r"iter=(\d+) .*?overused=(\d+)(?: .*?tmgfail=(\d+))?")
_FMAX_LINE = re.compile(r"Max frequency for clock .*?: ([\d.]+) MHz")


def router_state(log: Path) -> str:
    """Where router2 was when it was stopped, from the last iteration in its ``log`` (and
    the final Fmax if routing had finished): ``""`` if it logged none. A routing with no
    overused wire that is still ripped up for timing is one router2 finishes by itself:
    it stops ripping up at iteration 1,500."""
    text = log.read_text(errors="replace") if log.exists() else ""
    iterations = list(_ROUTER2_ITERATION.finditer(text))
    if not iterations:
        return ""
    last = iterations[-1]
    iteration, overused, failing = (int(n) if n else 0 for n in last.groups())
    # after routing nextpnr times the design again (the placement's estimate comes before)
    if routed := _FMAX_LINE.search(text, last.end()):
        return (f"; router2 had finished (iteration {iteration:,}) and nextpnr's final timing "
                f"gave {routed[1]} MHz: the limit stopped it while it wrote its outputs, so a "
                f"slightly longer --pnr-minutes gives the bitstream")
    if overused == 0 and failing:
        return (f"; router2 had a legal routing and was ripping it up for timing at "
                f"iteration {iteration:,}, {failing} connections short of the target: it "
                f"stops ripping up at iteration 1,500, so a longer --pnr-minutes finishes it")
    return f"; router2 was at iteration {iteration:,} with {overused:,} overused wires"


def xilinx_build(directory, *, out=None, baud: int | None = None) -> dict:
    """KCU105: yosys ``synth_xilinx`` figures for UltraScale and the Vivado project files.
    Vivado is not run here, so there is no bitstream and no Fmax."""
    from circa.boards import xilinx
    program, rtl = Program.load(directory), rtl_version()
    out = Path(out) if out else Path(directory) / "build-kcu105"
    with progress.step("Writing the Vivado project for the KCU105 (Vivado is not run)"):
        xilinx.vivado_project(program.config, None, out / "vivado", baud=baud or 1_000_000)
    with progress.step("Synthesis for Kintex UltraScale (yosys synth_xilinx -family xcu)"):
        figures = xilinx.ultrascale_utilisation(program.config, out / "synth_xilinx")
    budget = xilinx.XCKU060
    report = {"board": "kcu105", "device": "Kintex UltraScale (yosys synth_xilinx -family xcu)",
              "fmax_mhz": None, "target_mhz": 125.0, "timing_met": None,
              "luts": figures["luts_total"], "ffs": figures["ffs"], "dsps": figures["dsps"],
              "brams": figures["brams"], "bitstream": None,
              "vivado_project": str((out / "vivado").absolute()), "vivado_run": False,
              "device_budget": {k: budget[k] for k in ("luts", "ffs", "dsps", "brams")},
              "budget_device": budget["name"], "synthesis": figures,
              "config": repr(program.config), "program": str(Path(directory).absolute()),
              "rtl": rtl}
    (out / "build_report.json").write_text(json.dumps(report, indent=1))
    return report


def render(report: dict) -> str:
    b = report["device_budget"]
    if report["board"] == "kcu105":
        return "\n".join([
            f"kcu105: Vivado project in {report['vivado_project']} (not run here: no "
            "bitstream, no Fmax)",
            f"  yosys synth_xilinx (UltraScale): LUTs {report['luts']}, FFs {report['ffs']}, "
            f"DSP48E2 {report['dsps']}, 36 Kb BRAMs {report['brams']} "
            f"(an {report['budget_device']} has {b['luts']}, {b['ffs']}, {b['dsps']}, "
            f"{b['brams']})"])
    met = "met" if report["timing_met"] else "NOT MET: lower --freq"
    routed_for = report.get("nextpnr", {}).get("target_mhz", report["target_mhz"])
    lines = [
        f"{report['board']} ({report['device']}): {report['bitstream']}",
        f"  Fmax {report['fmax_mhz']:.1f} MHz for a {report['target_mhz']:g} MHz clock ({met})"
        + (f", placed and routed for {routed_for:g} MHz"
           if routed_for != report["target_mhz"] else ""),
        f"  LUTs {report['luts']}/{b['luts']}, FFs {report['ffs']}/{b['ffs']}, "
        f"multipliers {report['dsps']}/{b['dsps']}, block RAMs {report['brams']}/{b['brams']}",
    ]
    if "fmax_by_seed" in report.get("nextpnr", {}):
        lines.append("  placement seeds: " + ", ".join(
            f"{seed}: {'not routed' if f is None else f'{f:.1f} MHz'}"
            for seed, f in report["nextpnr"]["fmax_by_seed"].items())
            + f" (kept {report['nextpnr']['seed']})")
    if not report["timing_met"] and report.get("latest_arrivals"):
        lines.append(f"  {report['late_endpoints']} inputs of registers and memories arrive "
                     "after the clock period; the latest (build_report.json has 20):")
        lines += [f"    {e['arrival_ns']:6.2f} ns  {e['cell']}.{e['port']}"
                  for e in report["latest_arrivals"][:5]]
    return "\n".join(lines)
