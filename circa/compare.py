"""``circa compare``: circa's generated designs next to published FPGA LSTM accelerators.

The workload is ESE's speech LSTM (input 153, 1024 cells, projection 512), one frame =
one time step = ``ESE_DENSE_MACS`` multiply-accumulates of the dense model.

circa's rows are measurements, each from a *measurement directory*:

- ``measure.json``: ``{name, workload, dense_macs_per_frame, cycles_per_frame,
  bit_exact, weight_bits, k, lanes, weight_width, accuracy?}``, cycles from the RTL's
  counters in Verilator (:func:`measure` writes it for the ESE designs, ``circa demo``
  for its digits LSTM);
- ``build/build_report.json`` (``circa build --board ulx3s-85f``): Fmax and resources
  from nextpnr; or ``build/fit.json`` when the pre-flight fit check refused the device;
- ``xilinx/build_report.json`` (``circa build --board kcu105``): yosys resource counts
  for the baselines' UltraScale family (no place-and-route, so no clock).

``circa compare`` with no directory measures ``DESIGNS`` into ``$CIRCA_CACHE/compare``
and reuses every result whose AccelConfig matches; each row names the RTL version
(``git describe``) it was measured with. Delete the folder to measure again after
changing the generators.

A design runs at ``clock_mhz = min(Fmax, target)``: the clock of the bitstream that was
built (its target when timing is met). Latency = cycles / clock; dense-equivalent GOPS
= 2 x dense MACs / latency. Baselines come from ``baselines.toml``; ESE's frames/s is
derived from its published dense-equivalent GOPS, and its GOPS per DSP uses all of the
device's DSPs (its DSP use is not transcribed), both flagged in the row.
"""
from __future__ import annotations

import json
import re
import tomllib
from importlib import resources
from pathlib import Path

from circa import progress

ESE_DENSE_MACS = 4 * 1024 * (153 + 512) + 512 * 1024      # 3,248,128 per frame
WORKLOAD = "ESE LSTM (153 -> 1024 cells -> 512), one frame"

#: The designs ``circa compare`` measures when given no directory.
DESIGNS = {
    "circa-ese-k16": dict(k=16, lanes=2, weight_bits=12, pwl_segments=16),
    "circa-ese-k8": dict(k=8, lanes=8, weight_bits=12, pwl_segments=16),
}
GOALS = {"latency_us": 20.0, "gops_per_dsp": 2.5, "k": 16, "board": "ulx3s-85f"}
COLUMNS = ("name", "device", "source", "clock_mhz", "latency_us", "fps", "gops_dense_equiv",
           "dsps", "luts", "brams", "fmax_mhz", "gops_per_dsp", "gops_per_klut",
           "weight_bits", "accuracy")


def cache_dir() -> Path:
    """``$CIRCA_CACHE/compare`` (beside the Verilator builds' cache)."""
    from circa.sim.verilator import cache_root
    return cache_root().parent / "compare"


def _read(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def _write(path: Path, data: dict):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


# -- measuring circa's designs --------------------------------------------------------

def measure(name: str, directory: Path, *, build: bool = True, board: str = "ulx3s-85f",
            k: int, lanes: int, weight_bits: int, pwl_segments: int) -> Path:
    """Measure one ESE design into ``directory``, skipping every step already done for
    its AccelConfig by this RTL version (results of a modified checkout are never reused):
    cycles (Verilator), the board's bitstream (or its fit refusal), Xilinx synthesis."""
    from circa import ese
    from circa.boards import bench, build as builder
    from circa.compiler.program import Program

    rtl = builder.rtl_version()

    def fresh(record):
        return record is not None and record.get("rtl") == rtl and not rtl.endswith("-dirty")

    if not fresh(_read(directory / "measure.json")):
        r = ese.run(k=k, lanes=lanes, steps=2, weight_bits=weight_bits,
                    pwl_segments=pwl_segments, out=directory / "program")
        if not r["bit_exact"]:
            raise RuntimeError(f"{name}: the RTL's outputs differ from the golden model; "
                               f"not measuring a design that computes the wrong thing")
        _write(directory / "measure.json", {
            "name": name, "workload": WORKLOAD, "dense_macs_per_frame": ESE_DENSE_MACS,
            "cycles_per_frame": r["cycles_per_step"], "bit_exact": r["bit_exact"],
            "weight_bits": r["weight_bits"], "k": k, "lanes": lanes,
            "weight_width": weight_bits, "rtl": rtl,
            "command": "circa compare"})
    if not build:
        return directory
    program = directory / "program"
    config = repr(Program.load(program).config)
    built = directory / "build"
    done = _read(built / "build_report.json") or _read(built / "fit.json")
    if not fresh(done) or done["config"] != config:
        try:
            # router2: router1 has never finished this size (docs/benchmarks.md); the
            # 100 MHz goal as clock and timing target, as bench-fpga's (docs/boards.md)
            builder.build(program, board, out=built, router="router2",
                          freq_mhz=bench.GOAL_MHZ)
        except builder.FitError as e:
            progress.info(f"{name}: {e}")
            (built / "build_report.json").unlink(missing_ok=True)
            _write(built / "fit.json", {"fits": False, "board": board, "reason": str(e),
                                        "config": config, "rtl": rtl})
    done = _read(directory / "xilinx" / "build_report.json")
    if not fresh(done) or done["config"] != config:
        builder.build(program, "kcu105", out=directory / "xilinx")
    return directory


def cached(exclude=()) -> list[Path]:
    """Measurement directories of the default designs already in the cache."""
    return [d for d in (cache_dir() / name for name in DESIGNS)
            if (d / "measure.json").exists() and d not in exclude]


# -- rows -----------------------------------------------------------------------------

def _performance(row: dict, cycles: float | None, macs: int, clock_mhz: float | None):
    if not (cycles and clock_mhz):
        return
    row["latency_us"] = round(cycles / clock_mhz, 2)
    row["fps"] = round(1e6 / row["latency_us"])
    gops = row["gops_dense_equiv"] = round(2 * macs / row["latency_us"] / 1e3, 2)
    if row.get("dsps"):
        row["gops_per_dsp"] = round(gops / row["dsps"], 3)
    if row.get("luts"):
        row["gops_per_klut"] = round(gops / row["luts"] * 1e3, 3)


def circa_rows(directory: Path) -> list[dict]:
    """The rows of one measurement directory: one per device it was built for."""
    directory = Path(directory)
    m = _read(directory / "measure.json")
    if m is None:
        raise ValueError(f"{directory} is not a measurement directory: it has no "
                         f"measure.json (run `circa compare` with no directory to measure "
                         f"the default designs, or `circa demo`)")
    base = {"name": m["name"], "source": "", "workload": m["workload"],
            "cycles_per_frame": m["cycles_per_frame"], "k": m.get("k"),
            "lanes": m.get("lanes"), "weight_bits": m.get("weight_bits"),
            "accuracy": m.get("accuracy"), "bit_exact": m.get("bit_exact"),
            "rtl": m.get("rtl")}
    rows = []
    report, fit = (_read(directory / "build" / f) for f in ("build_report.json", "fit.json"))
    if report:
        clock = min(report["fmax_mhz"], report["target_mhz"]) if report["fmax_mhz"] else None
        row = {**base, "device": f"{report['device']} ({report['board']})",
               "board": report["board"], "fmax_mhz": report["fmax_mhz"],
               "target_mhz": report["target_mhz"], "timing_met": report["timing_met"],
               "clock_mhz": clock, "dsps": report["dsps"], "luts": report["luts"],
               "brams": report["brams"], "rtl_build": report.get("rtl")}
        _performance(row, m["cycles_per_frame"], m["dense_macs_per_frame"], clock)
        rows.append(row)
    elif fit:
        # the reason's first line names the design; the next ones what exceeds the device
        excess = re.findall(r"^\s*(.*?\(the device has \d+\))", fit["reason"], re.M)
        rows.append({**base, "device": fit["board"], "board": fit["board"],
                     "note": f"does not fit the {fit['board']}: " + "; ".join(excess)})
    else:
        rows.append({**base, "device": "",
                     "note": "cycles only: not placed and routed for a board"})
    xilinx = _read(directory / "xilinx" / "build_report.json")
    if xilinx:
        rows.append({**base, "name": m["name"] + " (synthesis)", "device": xilinx["device"],
                     "board": xilinx["board"], "dsps": xilinx["dsps"], "luts": xilinx["luts"],
                     "brams": xilinx["brams"],
                     "note": "yosys synth_xilinx resources only: no place-and-route, no clock"})
    return rows


def baseline_rows() -> list[dict]:
    text = resources.files("circa").joinpath("baselines.toml").read_text()
    rows = []
    for b in tomllib.loads(text)["baseline"]:
        value = lambda key: b[key]["value"] if key in b else None
        row = {"name": b["name"], "device": b["device"], "source": b["paper"],
               "compression": b["compression"], "fmax_mhz": value("fmax_mhz"),
               "clock_mhz": value("fmax_mhz"), "latency_us": value("latency_us"),
               "gops_dense_equiv": value("gops_dense_equiv"),
               "figures": {k: v for k, v in b.items() if isinstance(v, dict)}}
        flags = []
        if row["gops_dense_equiv"]:
            # frames/s from the published throughput; it is not 1 / latency (2.52 TOPS
            # at 82.7 us per frame means about 32 frames in flight)
            row["fps"] = round(row["gops_dense_equiv"] * 1e9 / (2 * ESE_DENSE_MACS))
            flags.append("fps derived from the published dense-equivalent GOPS")
        if value("device_dsps") and row["gops_dense_equiv"]:
            row["gops_per_dsp"] = round(row["gops_dense_equiv"] / value("device_dsps"), 3)
            flags.append("GOPS per DSP over all of the device's DSPs")
        relative = [f"{label} {value(key)}x vs {ref}" for key, label, ref in (
            ("speedup_vs_ese", "performance up to", "ESE"),
            ("energy_vs_ese", "energy efficiency up to", "ESE"),
            ("energy_vs_clstm", "energy efficiency more than", "C-LSTM")) if value(key)]
        row["note"] = "; ".join(relative + flags)
        rows.append(row)
    return rows


def goal(rows: list[dict]) -> dict:
    """The issue's goal for circa's best measured k = 16 design on the board."""
    candidates = [r for r in rows if r["source"] == "" and r.get("k") == GOALS["k"]
                  and r.get("board") == GOALS["board"] and r.get("latency_us")
                  and r.get("workload") == WORKLOAD]
    if not candidates:
        return {**GOALS, "measured": None, "met": False}
    best = min(candidates, key=lambda r: r["latency_us"])
    return {**GOALS, "measured": {"name": best["name"], "latency_us": best["latency_us"],
                                  "gops_per_dsp": best.get("gops_per_dsp")},
            "met": best["latency_us"] <= GOALS["latency_us"]
            and (best.get("gops_per_dsp") or 0) >= GOALS["gops_per_dsp"]}


def run(directories=(), *, build: bool = True, plot=None) -> dict:
    if not directories:
        root = cache_dir()
        directories = []
        for name, params in DESIGNS.items():
            with progress.step(f"Measuring {name} (cached in {root / name})"):
                directories.append(measure(name, root / name, build=build, **params))
    rows = [row for d in directories for row in circa_rows(d)] + baseline_rows()
    for row in rows:
        for column in COLUMNS:
            row.setdefault(column, None)
    report = {"workload": WORKLOAD, "dense_macs_per_frame": ESE_DENSE_MACS, "rows": rows,
              "goal": goal(rows),
              "notes": ["Baselines' accuracy (TIMIT) is not reproduced here; circa's ESE "
                        "designs use random weights (cycles and resources do not depend "
                        "on their values).",
                        "circa's power is not measured and no estimate is shown."]}
    if plot:
        draw(report, plot)
        report["plot"] = str(plot)
    return report


# -- output ---------------------------------------------------------------------------

def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def render(report: dict) -> str:
    head = (f"{'design':<28} {'device':<28} {'MHz':>5} {'us/frame':>9} {'frames/s':>9} "
            f"{'GOPS*':>7} {'DSPs':>5} {'kLUTs':>6} {'BRAMs':>6} {'GOPS/DSP':>8} "
            f"{'GOPS/kLUT':>9} {'Mbit':>5}")
    lines = [f"{report['workload']}: {report['dense_macs_per_frame']:,} dense MACs per frame "
             f"(* dense-equivalent GOPS = 2 x MACs / latency)", head, "-" * len(head)]
    notes = []
    for r in report["rows"]:
        lines.append(
            f"{r['name'][:28]:<28} {r['device'][:28]:<28} {_fmt(r['clock_mhz'], '.0f'):>5} "
            f"{_fmt(r['latency_us'], '.1f'):>9} {_fmt(r['fps'], ',.0f'):>9} "
            f"{_fmt(r['gops_dense_equiv'], '.1f'):>7} {_fmt(r['dsps'], 'd'):>5} "
            f"{_fmt(r['luts'] and r['luts'] / 1e3, '.1f'):>6} {_fmt(r['brams'], 'g'):>6} "
            f"{_fmt(r['gops_per_dsp'], '.3f'):>8} {_fmt(r['gops_per_klut'], '.3f'):>9} "
            f"{_fmt(r['weight_bits'] and r['weight_bits'] / 1e6, '.2f'):>5}")
        details = [f"{r['cycles_per_frame']:,.0f} cycles/frame" if r.get("cycles_per_frame")
                   else None,
                   f"Fmax {r['fmax_mhz']:.1f} MHz for a {r['target_mhz']:g} MHz target"
                   if r.get("target_mhz") and r.get("fmax_mhz") else None,
                   f"accuracy {r['accuracy']:.2%}" if r.get("accuracy") else None,
                   f"workload: {r['workload']}" if r.get("workload") not in (None, WORKLOAD)
                   else None,
                   f"RTL {r['rtl']}" if r.get("rtl") else None,
                   f"bitstream from RTL {r['rtl_build']}" if r.get("rtl_build")
                   and r["rtl_build"] != r.get("rtl") else None,
                   r.get("note"), r["source"] or None]
        notes.append(f"  {r['name']}: " + "; ".join(d for d in details if d))
    g = report["goal"]
    measured = g["measured"]
    lines += ["", *notes, "",
              f"goal (k = {g['k']} on {g['board']}): <= {g['latency_us']:g} us per frame and "
              f">= {g['gops_per_dsp']:g} GOPS per DSP: "
              + ("no measured design" if measured is None else
                 f"{'MET' if g['met'] else 'NOT MET'} ({measured['name']}: "
                 f"{measured['latency_us']:.1f} us, {_fmt(measured['gops_per_dsp'], '.3f')} "
                 f"GOPS/DSP)"),
              *report["notes"]]
    if report.get("plot"):
        lines.append(f"plot: {report['plot']}")
    return "\n".join(lines)


def draw(report: dict, path):
    """Latency and GOPS per DSP of every row that has them, as two bar charts."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, key, label in ((axes[0], "latency_us", "latency per frame (us, log)"),
                           (axes[1], "gops_per_dsp", "dense-equivalent GOPS per DSP")):
        rows = [r for r in report["rows"] if r.get(key)]
        colours = ["tab:blue" if r["source"] == "" else "tab:grey" for r in rows]
        ax.barh([r["name"] for r in rows], [r[key] for r in rows], color=colours)
        ax.set_xlabel(label)
        if key == "latency_us":
            ax.set_xscale("log")
            ax.axvline(GOALS["latency_us"], color="tab:red", linestyle="--", label="goal")
        else:
            ax.axvline(GOALS["gops_per_dsp"], color="tab:red", linestyle="--", label="goal")
        ax.legend(loc="lower right")
        ax.invert_yaxis()
    fig.suptitle(f"{report['workload']} (blue: circa, measured; grey: published)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
