"""``circa compare`` and the main job ``circa demo``: rows computed from measurement
directories, baselines that carry their sources, the ESE designs' fit on the ULX3S-85F,
and the quick demo end to end (bit-exact in Verilator on every test image)."""
import json
import tomllib
from importlib import resources

import pytest

from circa import compare
from circa.boards import build
from circa.boards.targets import LFE5U_85F
from circa.cli import main


def measurement(directory, cycles=7000, fmax=42.0, target=50.0, workload=compare.WORKLOAD):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "measure.json").write_text(json.dumps({
        "name": directory.name, "workload": workload, "bit_exact": True, "k": 16, "lanes": 2,
        "dense_macs_per_frame": compare.ESE_DENSE_MACS, "cycles_per_frame": cycles,
        "weight_bits": 2_000_000}))
    (directory / "build").mkdir(exist_ok=True)
    (directory / "build" / "build_report.json").write_text(json.dumps({
        "board": "ulx3s-85f", "device": "LFE5U-85F", "fmax_mhz": fmax, "target_mhz": target,
        "timing_met": fmax >= target, "luts": 40_000, "dsps": 132, "brams": 200}))
    return directory


def test_every_baseline_figure_has_a_value_and_a_source():
    data = tomllib.loads(resources.files("circa").joinpath("baselines.toml").read_text())
    for b in data["baseline"]:
        assert b["name"] and b["paper"] and b["device"]
        figures = {k: v for k, v in b.items() if isinstance(v, dict)}
        assert figures, b["name"]
        for key, figure in figures.items():
            assert set(figure) == {"value", "source"} and figure["source"].strip(), (b["name"], key)


def test_baseline_rows_use_published_figures_and_flag_derived_ones():
    ese, clstm, ernn = compare.baseline_rows()
    assert (ese["name"], ese["latency_us"], ese["fmax_mhz"]) == ("ESE", 82.7, 200)
    # 2.52 TOPS over 2 x 3,248,128 operations per frame
    assert ese["fps"] == round(2.52e12 / (2 * 3_248_128))
    assert ese["gops_per_dsp"] == round(2520 / 2760, 3) and "device's DSPs" in ese["note"]
    assert ese["source"].startswith("S. Han et al.")
    assert clstm["latency_us"] is None and "18.8x vs ESE" in clstm["note"]
    assert "37.4x vs ESE" in ernn["note"] and ernn["fmax_mhz"] is None


def test_circa_row_from_a_measurement_directory(tmp_path):
    slow = measurement(tmp_path / "slow", cycles=7000, fmax=42.0, target=50.0)
    fast = measurement(tmp_path / "fast", cycles=7000, fmax=61.0, target=50.0)
    (row,) = compare.circa_rows(slow)
    # runs at min(Fmax, target): 42 MHz, timing not met at 50
    assert row["clock_mhz"] == 42.0 and row["latency_us"] == round(7000 / 42.0, 2)
    assert row["gops_dense_equiv"] == round(2 * compare.ESE_DENSE_MACS / row["latency_us"] / 1e3, 2)
    assert row["gops_per_dsp"] == round(row["gops_dense_equiv"] / 132, 3)
    assert row["source"] == ""
    (row,) = compare.circa_rows(fast)
    assert row["clock_mhz"] == 50.0                       # the bitstream's clock, not Fmax
    report = compare.run([slow, fast])
    assert report["goal"]["measured"]["name"] == "fast" and not report["goal"]["met"]
    assert "NOT MET" in compare.render(report)


def test_goal_is_met_only_by_a_fast_enough_design(tmp_path):
    # 1000 cycles at 50 MHz = 20 us: 324.8 GOPS, 2.46 per DSP: still short of 2.5
    report = compare.run([measurement(tmp_path / "d", cycles=1000, fmax=80.0)])
    assert report["goal"]["measured"]["latency_us"] == 20.0 and not report["goal"]["met"]
    report = compare.run([measurement(tmp_path / "e", cycles=900, fmax=80.0)])
    assert report["goal"]["met"]


def test_other_workloads_and_refused_fits_are_labelled(tmp_path):
    demo = measurement(tmp_path / "demo", workload="digits LSTM, one image")
    refused = measurement(tmp_path / "big")
    (refused / "build" / "build_report.json").unlink()
    (refused / "build" / "fit.json").write_text(json.dumps({
        "fits": False, "board": "ulx3s-85f", "reason": "the accelerator does not fit:\n"
        "  436 block RAMs (the device has 208) (largest: w 77): use fewer bits"}))
    report = compare.run([demo, refused])
    assert report["goal"]["measured"] is None                 # neither counts for the goal
    text = compare.render(report)
    assert "workload: digits LSTM, one image" in text
    assert "does not fit the ulx3s-85f: 436 block RAMs (the device has 208)" in text


def test_compare_command_json_and_plot(tmp_path, capsys):
    plot = tmp_path / "cmp.png"
    assert main(["compare", str(measurement(tmp_path / "m")), "--json", "--plot", str(plot)]) == 0
    report = json.loads(capsys.readouterr().out)
    for row in report["rows"]:
        assert set(compare.COLUMNS) <= set(row)
    assert [r["name"] for r in report["rows"]] == ["m", "ESE", "C-LSTM", "E-RNN"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_rejects_a_directory_without_measurements(tmp_path, capsys):
    assert main(["compare", str(tmp_path)]) == 2
    assert "no measure.json" in capsys.readouterr().err


def test_the_k16_ese_design_fits_the_85f_and_k8_does_not():
    from circa import ese
    _, _, cfg, _ = ese.design(**compare.DESIGNS["circa-ese-k16"], steps=1)
    est = build.estimate(cfg, LFE5U_85F)
    build.check_fit(cfg, LFE5U_85F, est, "estimate")
    assert est["brams"] <= LFE5U_85F.brams and est["multipliers"] <= LFE5U_85F.multipliers
    _, _, cfg, _ = ese.design(**compare.DESIGNS["circa-ese-k8"], steps=1)
    with pytest.raises(build.FitError, match="block RAM"):
        build.check_fit(cfg, LFE5U_85F, build.estimate(cfg, LFE5U_85F), "estimate")


@pytest.mark.slow
def test_quick_demo_is_bit_exact_on_every_test_image(tmp_path, capsys):
    """The README's main job without the bitstream, through the command line."""
    assert main(["demo", "--quick", "--json", "-o", str(tmp_path)]) == 0
    report = json.loads(capsys.readouterr().out)          # exactly one JSON document
    sim = report["sim"]
    assert sim["bit_exact"] and sim["samples"] == 450 and sim["mismatches"] == 0
    assert report["words_compared"] == 450 * 10          # every logit of every image
    accuracy = report["accuracy"]
    assert accuracy["rtl"] == accuracy["quantized"] > 0.9
    assert accuracy["float"] - accuracy["quantized"] < 0.05
    (row,) = [r for r in report["compare"]["rows"] if r["source"] == "" and "demo" in r["name"]]
    assert row["cycles_per_frame"] == sim["cycles_per_inference"] > 0
    assert row["accuracy"] == accuracy["rtl"]
    assert (tmp_path / "compare.png").exists() and report["build"] is None


def test_cached_cycles_are_reused_only_for_the_same_clean_rtl(tmp_path, monkeypatch):
    from circa import ese
    runs = []
    monkeypatch.setattr(ese, "run", lambda **kw: runs.append(kw) or {
        "cycles_per_step": 100.0, "bit_exact": True, "weight_bits": 1})
    design = dict(k=16, lanes=2, weight_bits=12, pwl_segments=16)
    for rtl, measured in (("v1", 1), ("v1", 1), ("v2", 2), ("v2-dirty", 3), ("v2-dirty", 4)):
        monkeypatch.setattr(build, "rtl_version", lambda: rtl)
        compare.measure("d", tmp_path, build=False, **design)
        assert len(runs) == measured, rtl
    assert json.loads((tmp_path / "measure.json").read_text())["rtl"] == "v2-dirty"
