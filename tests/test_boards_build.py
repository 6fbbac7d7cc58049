"""`circa build`: the fit check before any tool runs, and (slow) a real bitstream for the
smallest target with its report parsed from the tools."""
import dataclasses
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from circa import cli
from circa.boards import build
from circa.boards.targets import ICE40UP5K, LFE5U_85F, target
from circa.boards.top import ecp5_pll, ice40_pll
from circa.compiler.compile import accel_config, fitted_config
from circa.config import AccelConfig, EngineConfig
from test_schedule import compile_model

TINY = AccelConfig(EngineConfig(k=4, lanes=1, max_q=64, weight_depth=512), sparse_block=(2, 2),
                   act_depth=1024, imem_depth=256, sparse_depth=256)


@pytest.fixture(scope="module")
def tiny_program(tmp_path_factory):
    """A dense+circulant MLP compiled for a k = 4, 1-lane accelerator fitted to it."""
    _, program, _ = compile_model("mlp", "circulant:4", TINY)
    cfg = fitted_config(TINY, program)
    _, program, _ = compile_model("mlp", "circulant:4", cfg)
    directory = tmp_path_factory.mktemp("tiny") / "program"
    program.save(directory)
    return directory


def test_fitted_config_cuts_memories_to_the_program():
    _, program, _ = compile_model("mlp", "circulant:4", TINY)
    cfg = fitted_config(TINY, program)
    assert cfg.k == 4 and cfg.engine.lanes == 1
    assert cfg.act_depth < TINY.act_depth and cfg.imem_depth < TINY.imem_depth
    assert len(program.instructions) <= cfg.imem_depth
    assert len(program.scratchpad) <= cfg.act_depth
    _, refit, _ = compile_model("mlp", "circulant:4", cfg)      # the same program fits it
    assert [str(i) for i in refit.instructions] == [str(i) for i in program.instructions]


def test_fitted_config_sizes_the_activation_tables():
    """An LSTM's tables set the PWL entry widths (here 18-bit slopes, ~30-bit intercepts,
    not 48); an MLP has none (tables = 0)."""
    _, program, _ = compile_model("lstm_proj", "circulant:4", TINY)
    cfg = fitted_config(TINY, program)
    assert cfg.tables == len(program.tables) == 3            # sigmoid, tanh, tanh
    assert cfg.pwl_slope_width == 18 and 24 <= cfg.pwl_icept_width < 40
    bits = lambda v: abs(v).bit_length() + 1
    assert max(bits(v) for t in program.tables for v in t.icept) == cfg.pwl_icept_width
    _, refit, _ = compile_model("lstm_proj", "circulant:4", cfg)  # the same tables fit it
    refit.validate()
    refit.config = dataclasses.replace(cfg, pwl_icept_width=cfg.pwl_icept_width - 2)
    with pytest.raises(ValueError, match="wider than the accelerator's pwl_icept_width"):
        refit.validate()
    _, mlp, _ = compile_model("mlp", "circulant:4", TINY)
    assert fitted_config(TINY, mlp).tables == 0


def test_block_ram_estimate_names_the_memories():
    est = build.estimate(AccelConfig(EngineConfig(k=16, lanes=2)), LFE5U_85F)
    # 206 DP16KD is what yosys synth_ecp5 mapped for this configuration (docs/boards.md)
    assert est["brams"] == 206
    assert est["brams_by_memory"]["accel.act"] == 2 * 29      # two read ports: two copies
    assert est["multipliers"] >= 126


def test_activation_tables_are_lut_ram_on_ecp5_only():
    """Small PWL tables are marked for LUT RAM on the ECP5; the iCE40 has none, so there
    they are block RAM (the mark would stop yosys: no valid mapping)."""
    cfg = AccelConfig(EngineConfig(k=4, lanes=1), tables=2, pwl_segments=8)
    ecp5 = {path for path, *_ in build.memories(cfg, "ecp5")}
    ice40 = {path for path, *_ in build.memories(cfg, "ice40")}
    assert "accel.vec.pwl0" not in ecp5 and {f"accel.vec.pwl{n}" for n in range(4)} <= ice40


def test_a_design_too_big_for_the_device_stops_before_the_tools(tiny_program, capsys):
    with pytest.raises(build.FitError) as error:
        build.check_fit(TINY, ICE40UP5K, build.estimate(TINY, ICE40UP5K), "estimate")
    message = str(error.value)
    assert "iCE40UP5K" in message and "multipliers" in message and "LUTs" in message
    assert "fewer lanes" in message
    assert cli.main(["build", str(tiny_program), "--board", "icebreaker"]) == 2
    err = capsys.readouterr().err
    assert "does not fit the iCE40UP5K" in err and "Synthesis" not in err


def test_unknown_board_is_refused(tiny_program, capsys):
    assert cli.main(["build", str(tiny_program), "--board", "de10"]) == 2
    assert "unknown board 'de10'; choose one of ulx3s-85f" in capsys.readouterr().err


@pytest.mark.slow
def test_bitstream_for_the_smallest_target(tiny_program, tmp_path, capsys):
    """CI's real bitstream: ULX3S-25F, 30 MHz from the 25 MHz oscillator through the PLL,
    placed and routed for 2 % more."""
    out = tmp_path / "build"
    assert cli.main(["build", str(tiny_program), "--board", "ulx3s-25f", "--freq", "30",
                     "-o", str(out), "--seed", "1", "2", "--timing-margin", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == json.loads((out / "build_report.json").read_text())
    # a seed sweep: both placed and routed, the fastest kept, its reports where one seed's are
    by_seed = {int(n): f for n, f in report["nextpnr"]["fmax_by_seed"].items()}
    assert set(by_seed) == {1, 2} and report["fmax_mhz"] == max(by_seed.values())
    kept = report["nextpnr"]["seed"]
    assert by_seed[kept] == report["fmax_mhz"]
    assert (out / "report.json").read_bytes() == (out / f"seed{kept}" / "report.json").read_bytes()
    bitstream = Path(report["bitstream"])
    assert bitstream.stat().st_size > 100_000 and bitstream.parent == out
    assert report["board"] == "ulx3s-25f" and report["device"] == "LFE5U-25F"
    assert report["timing_met"] and report["fmax_mhz"] >= report["target_mhz"] == 30
    # the margin: nextpnr derived the PLL's output constraint from the pin's 25.5 MHz
    assert report["nextpnr"]["target_mhz"] == 30.6
    log = (out / "top.tim").read_text()
    assert "Derived frequency constraint of 30.6 MHz for net clk" in log
    assert (out / "top.lpf").read_text().count("25500000 HZ") == 1     # the pin's, the only one
    assert "ignoring clock constraint" not in (out / "nextpnr.log").read_text() + log
    device = target("ulx3s-25f").device
    for key, budget in (("luts", device.luts), ("ffs", device.ffs),
                        ("dsps", device.multipliers), ("brams", device.brams)):
        assert 0 < report[key] <= budget, key
    # the pre-flight estimate agrees with place-and-route on the hard blocks
    assert report["dsps"] == report["estimate"]["multipliers"]
    assert report["brams"] == report["estimate"]["brams"]
    assert report["nextpnr_utilisation"]["EHXPLLL"]["used"] == 1
    # nextpnr's detailed timing: the latest arrival is the critical path's, less its setup
    latest = [e["arrival_ns"] for e in report["latest_arrivals"]]
    assert len(latest) == 20 and latest == sorted(latest, reverse=True)
    assert 1e3 / report["fmax_mhz"] - 1.0 < latest[0] <= 1e3 / report["fmax_mhz"] + 0.01
    assert report["late_endpoints"] == 0
    # every product is in a MULT18X18D's product register, and the MAC array's operands in
    # its operand registers; the vector unit's k lanes take theirs from the fabric (hw/dsp.py)
    netlist = json.loads((out / "top.json").read_text())
    mults = [c["parameters"] for module in netlist["modules"].values()
             for c in module["cells"].values() if c["type"] == "MULT18X18D"]
    assert len(mults) == report["dsps"] and all(p["REG_OUTPUT_CLK"] == "CLK0" for p in mults)
    assert sum(p["REG_INPUTA_CLK"] == p["REG_INPUTB_CLK"] == "CLK0"
               for p in mults) == report["dsps"] - TINY.k


@pytest.mark.slow
def test_bitstream_for_the_icebreaker(tmp_path, capsys):
    """The iCEBreaker's bitstream: an LSTM at k = 2, 8 bits (PWL entries sized to its
    tables) fits the iCE40UP5K at 24 MHz (its PLL from the 12 MHz board clock); figures from
    nextpnr-ice40."""
    small = accel_config(k=2, lanes=1, bits=8, weight_depth=1024, act_depth=512)
    _, program, _ = compile_model("lstm_proj", "circulant:2", small)
    _, program, _ = compile_model("lstm_proj", "circulant:2", fitted_config(small, program))
    assert program.config.tables and program.config.pwl_slope_width == 10
    program.save(tmp_path / "program")
    out = tmp_path / "build"
    assert cli.main(["build", str(tmp_path / "program"), "--board", "icebreaker", "-o", str(out),
                     "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["device"] == "iCE40UP5K" and Path(report["bitstream"]).name == "top.bin"
    assert Path(report["bitstream"]).stat().st_size > 100_000
    assert report["timing_met"] and report["fmax_mhz"] >= report["target_mhz"] == 24
    used = report["nextpnr_utilisation"]
    assert used["ICESTORM_PLL"]["used"] == 1
    assert 0 < used["ICESTORM_LC"]["used"] == report["luts"] <= ICE40UP5K.luts
    assert report["dsps"] == report["estimate"]["multipliers"] <= ICE40UP5K.multipliers
    assert 0 < report["brams"] <= ICE40UP5K.brams


@pytest.mark.parametrize("board, clock_file, pins", [
    ("ulx3s-85f", "top.lpf", ["M1", "L4"]), ("ecpix5-85f", "top.lpf", ["R26", "R24"]),
    ("icebreaker", "top.pcf", ["6", "9"])])
def test_every_target_generates_its_design_files(board, clock_file, pins, tmp_path):
    """The board top elaborates on every target: UART pins, clock (through the PLL: every
    target's default clock differs from its oscillator's)."""
    from circa.boards.top import BoardTop
    tgt = target(board)
    platform = tgt.make_platform()
    top = BoardTop(TINY, platform=platform, freq_hz=tgt.freq_hz, baud=tgt.baud)
    platform.prepare(top, "top").extract(tmp_path)
    constraints = (tmp_path / clock_file).read_text()
    assert all(pin in constraints for pin in pins)
    netlist = (tmp_path / "top.il").read_text()
    assert {"ecp5": "EHXPLLL", "ice40": "SB_PLL40_PAD"}[tgt.device.family] in netlist
    # the ECP5's PLL-lock reset goes onto a global network (nextpnr-ice40 promotes its own)
    assert ("DCCA" in netlist) == (tgt.device.family == "ecp5")
    assert top.divisor == round(tgt.freq_hz / tgt.baud)
    # a timing margin scales every clock constraint, and nothing else
    number = r"(?:FREQUENCY (?:NET|PORT)|set_frequency) \S+ ([0-9.]+)"
    before = [float(f) for f in re.findall(number, constraints)]
    assert build.tighten_clocks(tmp_path / clock_file, 2, 50) == 51
    after = (tmp_path / clock_file).read_text()
    assert [float(f) for f in re.findall(number, after)] == pytest.approx(
        [f * 1.02 for f in before]) and before
    assert re.sub(number, "", after) == re.sub(number, "", constraints)


@pytest.mark.parametrize("pll, fin, fout, dividers", [
    (ecp5_pll, 25e6, 50e6, dict(CLKI_DIV=1, CLKFB_DIV=2, CLKOP_DIV=12, freq_hz=50e6)),
    (ice40_pll, 12e6, 100e6, dict(DIVR=0, DIVF=66, DIVQ=3, FILTER_RANGE=1, freq_hz=100.5e6)),
    (ice40_pll, 12e6, 24e6, dict(DIVR=0, DIVF=63, DIVQ=5, FILTER_RANGE=1, freq_hz=24e6))])
def test_pll_dividers(pll, fin, fout, dividers):
    assert pll(fin, fout) == dividers


def _icepll(fin_mhz, fout_mhz):
    out = subprocess.run([build.tool("icepll"), "-i", str(fin_mhz), "-o", str(fout_mhz)],
                         capture_output=True, text=True, check=True).stdout
    field = lambda key: int(re.search(rf"^{key}:\s*(\d+)", out, re.M).group(1))
    achieved = float(re.search(r"F_PLLOUT:\s*([\d.]+) MHz \(achieved\)", out).group(1))
    return dict(DIVR=field("DIVR"), DIVF=field("DIVF"), DIVQ=field("DIVQ"),
                FILTER_RANGE=field("FILTER_RANGE"), freq_hz=round(achieved * 1e6))


def _ecppll(fin_mhz, fout_mhz):
    out = subprocess.run([build.tool("ecppll"), "-i", str(fin_mhz), "-o", str(fout_mhz)],
                         capture_output=True, text=True, check=True).stdout
    field = lambda key: float(re.search(rf"{key}:\s*([\d.]+)", out).group(1))
    return dict(CLKI_DIV=int(field("Refclk divisor")), CLKFB_DIV=int(field("Feedback divisor")),
                CLKOP_DIV=int(field("clkout0 divisor")),
                freq_hz=round(field("clkout0 frequency") * 1e6))


@pytest.mark.parametrize("pll, tool, fin, fouts", [
    (ice40_pll, _icepll, 12, [20, 24, 30, 33, 50, 66, 100, 133, 200]),
    (ecp5_pll, _ecppll, 25, [30, 40, 50, 60, 65, 75, 90, 100, 125, 150])], ids=["ice40", "ecp5"])
def test_pll_dividers_are_the_project_tools(pll, tool, fin, fouts):
    """The PLL searches give IceStorm's icepll's and Trellis's ecppll's dividers (the
    YoWASP builds installed with nextpnr)."""
    for fout in fouts:
        ours = pll(fin * 1e6, fout * 1e6)
        assert {**ours, "freq_hz": round(ours["freq_hz"])} == tool(fin, fout), fout


def test_a_clock_the_pll_cannot_make_is_refused():
    with pytest.raises(ValueError, match="the iCE40 PLL cannot make 10 MHz from 12 MHz "
                                         r"\(it makes 16 to 275 MHz\); choose another --freq"):
        ice40_pll(12e6, 10e6)


def _vector_unit():
    from circa.hw.vector import VectorUnit
    return VectorUnit(AccelConfig(EngineConfig(k=8)))


def _circulant_engine():
    from circa.hw.circulant import BlockCirculantEngine
    return BlockCirculantEngine(EngineConfig(k=8, lanes=4, max_q=8, weight_depth=32))


@pytest.mark.parametrize("keep", [True, False], ids=["kept", "merged"])
@pytest.mark.parametrize("unit, register, copies, merged", [
    (_vector_unit, "sx_seg_shift", 8, 1),   # one segment shift per lane
    # a weight address register per 32-bit slice, 4 lanes x 4; unmarked, the slices of a
    # lane merge (their inputs are the same), the lanes not (each its own write enable)
    (_circulant_engine, "waddr", 16, 4)],
    ids=["vector-segment-shift", "engine-weight-addresses"])
def test_replicated_registers_survive_synthesis(tmp_path, keep, unit, register, copies,
                                                merged):
    """Registers replicated for fanout (hw/hints.py) stay apart through synthesis; yosys
    merges the copies unless the build script marks them."""
    from amaranth.back import rtlil
    from circa.hw.hints import KEEP_REPLICAS
    (tmp_path / "u.il").write_text(rtlil.convert(unit()))
    script = build.AFTER_READ if keep else build.AFTER_READ.replace(KEEP_REPLICAS, "")
    wires = f"w:*{register}_replica*"
    (tmp_path / "u.ys").write_text(
        f"read_rtlil u.il\nhierarchy -top top\n{script}\nflatten\nopt -full\n"
        f"select -assert-count {copies if keep else merged} {wires} %ci*:+[Q] t:* %i\n")
    build.run_tool([build.tool("yosys"), "-q", "u.ys"], tmp_path, "yosys.log")


def test_a_tool_past_its_time_limit_is_stopped(tmp_path):
    """`--pnr-minutes`: the tool is killed and the error names it, the limit and its log."""
    started = time.monotonic()
    with pytest.raises(build.ToolTimeout, match=r"python\S* did not finish in 0.02 minutes "
                       r"and was stopped \(log .*slow.log\)"):
        build.run_tool([sys.executable, "-c", "import time; time.sleep(60)"], tmp_path,
                       "slow.log", minutes=0.02)
    assert time.monotonic() - started < 30


def test_a_seed_sweep_keeps_going_past_a_stalled_or_failed_seed(tmp_path):
    """`circa build --seed 1 2 3 --pnr-minutes`: each seed in a folder of its own with
    copies of the inputs; a seed stopped at the limit (with where router2 was), or whose
    nextpnr failed, has no Fmax and a reason, the others have theirs."""
    (tmp_path / "top.json").write_text("{}")
    fake_nextpnr = [sys.executable, "-c", (
        "import json, pathlib, sys, time\n"
        "assert pathlib.Path('top.json').exists()\n"
        "seed = sys.argv[sys.argv.index('--seed') + 1]\n"
        "if seed == '1':\n"
        "    print('Info:     iter=5 wires=9 overused=0 overuse=0 tmgfail=3', flush=True)\n"
        "    time.sleep(60)\n"
        "if seed == '3': sys.exit('ERROR: Failed to route arc 0.0 of net x')\n"
        "json.dump({'utilization': {}, 'fmax': {'clk': {'achieved': 81.5}}},"
        " open('report.json', 'w'))")]
    fmax, unrouted = build.place_and_route(fake_nextpnr, tmp_path, ["top.json"], [1, 2, 3],
                                           0.05, "ecp5", 100.0)
    assert fmax == {1: None, 2: 81.5, 3: None} and set(unrouted) == {1, 3}
    assert "did not finish in 0.05 minutes" in unrouted[1]
    assert "ripping it up for timing at iteration 5, 3 connections short" in unrouted[1]
    assert unrouted[3].endswith(f"failed (log {tmp_path / 'seed3' / 'nextpnr.log'}): ERROR: "
                                "Failed to route arc 0.0 of net x")
    assert (tmp_path / "seed2" / "report.json").exists()
    message = str(build.NotRouted(unrouted))
    assert "seed 1:" in message and "seed 3:" in message and "try another --seed" in message


def test_a_stopped_seed_says_where_router2_was(tmp_path):
    """A seed stopped by `--pnr-minutes` says what router2 was doing (its last iteration,
    lines as nextpnr 0.11 logs them): still overused wires, a legal routing it was
    ripping up for timing, which it ends by itself at iteration 1,500, or a finished
    routing whose final Fmax nextpnr had logged."""
    log = tmp_path / "top.tim"
    assert build.router_state(log) == ""                         # no log
    log.write_text("Info: Running router2...\n")
    assert build.router_state(log) == ""                         # no iteration yet
    log.write_text(
        "Info:     iter=62 wires=492954 overused=637 overuse=638 tmgfail=1329 archfail=NA\n"
        "Info:     iter=63 wires=493630 overused=606 overuse=606 tmgfail=1202 archfail=NA\n")
    assert build.router_state(log) == "; router2 was at iteration 63 with 606 overused wires"
    log.write_text("Info: Max frequency for clock 'clk': 70.75 MHz (FAIL at 102.01 MHz)\n"
                   "Info:     iter=1217 wires=470878 overused=0 overuse=0 tmgfail=23 "
                   "archfail=NA\n")
    assert "legal routing" in build.router_state(log)
    assert "iteration 1,217, 23 connections short" in build.router_state(log)
    assert "longer --pnr-minutes" in build.router_state(log)
    log.write_text("Info:     iter=17 wires=478008 overused=1177 overuse=1177 archfail=NA\n")
    assert build.router_state(log).endswith("iteration 17 with 1,177 overused wires")
    log.write_text("Info:     iter=1500 wires=577828 overused=0 overuse=0 tmgfail=0 archfail=0\n"
                   "Info: Router2 time 2286.39s\n"
                   "Warning: Max frequency for clock '$glbnet$clk': 78.38 MHz (FAIL at 102.01 MHz)\n")
    assert "router2 had finished (iteration 1,500) and nextpnr's final timing gave 78.38 MHz" \
        in build.router_state(log)


def test_collision_free_memories_carry_no_bypass_logic(tmp_path):
    """The memories whose reads never use a word written in the same cycle (hw/hints.py:
    the scratchpad, docs/isa.md "Overlap"; the engine's weights and spectrum buffer; the
    vector unit's PWL tables) are marked collision-free, so no bypass follows their block
    RAMs; no other memory is."""
    from amaranth.back import rtlil
    from circa.hw.accel import Accelerator
    two_lanes = dataclasses.replace(TINY, engine=dataclasses.replace(TINY.engine, lanes=2))
    (tmp_path / "a.il").write_text(rtlil.convert(Accelerator(two_lanes)))
    marked = "r:COLLISION_X_MASK=1 %i"
    weights = [f"weights{lane}_{n}" for lane in range(2) for n in range(2)]  # 2 x 32 bits a lane
    tables = [f"pwl{lane}" for lane in range(TINY.k)]                      # one a lane
    checks = [f"select -assert-count {reads} t:$memrd_v2 r:MEMID=\\{memory} %i {marked}"
              for memory, reads in [("act", 2), ("spectra", 1)]
              + [(name, 1) for name in weights + tables]]
    (tmp_path / "a.ys").write_text(
        f"read_rtlil a.il\nhierarchy -top top\n{build.AFTER_READ}\n" + "\n".join(checks)
        + f"\nselect -assert-count {7 + TINY.k} t:$memrd_v2 {marked}\n")
    build.run_tool([build.tool("yosys"), "-q", "a.ys"], tmp_path, "yosys.log")


def test_late_inputs_come_from_nextpnrs_detailed_timing(tmp_path):
    """When timing fails, the report names the latest register and memory inputs (all of
    them counted against the target), not just the one critical path."""
    (tmp_path / "report.json").write_text(json.dumps({
        "utilization": {"TRELLIS_COMB": {"used": 5, "available": 10}},
        "fmax": {"clk": {"achieved": 80.0, "constraint": 100.0}},
        "detailed_net_timings": [
            {"net": "a", "endpoints": [{"cell": "x", "port": "DI", "delay": 12.5},
                                       {"cell": "y", "port": "DI", "delay": 3.0}]},
            {"net": "b", "endpoints": [{"cell": "z", "port": "CE", "delay": [9.0, 10.2]}]}]}))
    figures = build.pnr_figures(tmp_path / "report.json", "ecp5", target_mhz=100.0, worst=2)
    assert figures["fmax_mhz"] == 80.0 and figures["late_endpoints"] == 2
    assert figures["latest_arrivals"] == [{"arrival_ns": 12.5, "cell": "x", "port": "DI"},
                                          {"arrival_ns": 10.2, "cell": "z", "port": "CE"}]
    text = build.render({"board": "ulx3s-85f", "device": "LFE5U-85F", "bitstream": "top.bit",
                         "fmax_mhz": 80.0, "target_mhz": 100.0, "timing_met": False,
                         "luts": 5, "ffs": 1, "dsps": 0, "brams": 0,
                         "device_budget": {"luts": 10, "ffs": 10, "dsps": 1, "brams": 1},
                         "late_endpoints": 2, "latest_arrivals": figures["latest_arrivals"]})
    assert "2 inputs of registers and memories arrive after the clock period" in text
    assert " 12.50 ns  x.DI" in text and " 10.20 ns  z.CE" in text
