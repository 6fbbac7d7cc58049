"""The command line: clear errors for bad input, before any long work starts."""
import json

import pytest

from circa.cli import main


@pytest.mark.parametrize("argv, message", [
    (["demo", "--k", "12"], "FFT size k must be a power of 2 from 2 to 64, not 12"),
    (["demo", "--lanes", "0"], "lanes must be an integer from 1 to 64, not 0"),
    (["bench", "--k", "3"], "FFT size k must be a power of 2 from 2 to 64, not 3"),
    (["bench-fpga", "--k", "16", "--lanes", "0"], "lanes must be an integer from 1 to 64, not 0"),
])
def test_bad_parameters_exit_2_with_message(argv, message, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err.replace("\n", " ")
    assert captured.out == ""


def test_unknown_command_is_rejected(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def fpga_report(board, by_seed, target=100.0):
    """A build report of a seed sweep, as boards.build.build writes it."""
    kept = max(by_seed, key=lambda n: by_seed[n] or 0)
    return {"board": board, "device": "LFE5U-85F", "fmax_mhz": by_seed[kept],
            "target_mhz": target, "timing_met": by_seed[kept] >= target, "luts": 1, "ffs": 2,
            "dsps": 3, "brams": 4, "late_endpoints": ["x"], "latest_arrivals": [],
            "config": "cfg", "seconds": {"total": 5.0},
            "nextpnr": {"seed": kept, "fmax_by_seed": by_seed}}


def test_bench_fpga_places_one_synthesis_with_each_seed(monkeypatch, capsys):
    """`circa bench-fpga --seed 1 2 --router router2 --tmg-ripup`: one build per k, a seed
    sweep, with a row per seed, clocked at the 100 MHz goal unless --freq says otherwise;
    the late inputs are the kept seed's; rip-up with no time limit gets a note."""
    from circa.boards import bench, build
    calls, programs = [], []

    def fake_build(directory, board, *, seed, freq_mhz, router, tmg_ripup, **_):
        calls.append((seed, freq_mhz, router, tmg_ripup))
        return fpga_report(board, {n: 60.0 + n for n in seed})
    monkeypatch.setattr(bench, "program_dir", lambda k, root, vector_width, lanes:
                        programs.append((k, vector_width, lanes)) or root)
    monkeypatch.setattr(build, "build", fake_build)
    assert main(["bench-fpga", "--k", "8", "16", "--seed", "1", "2", "--router", "router2",
                 "--tmg-ripup"]) == 0
    assert calls == [([1, 2], 100.0, "router2", True)] * 2
    out, err = capsys.readouterr()
    assert "--tmg-ripup with no --pnr-minutes" in err
    rows = [line.split() for line in out.splitlines() if line.split()[:1] == ["8"]]
    assert [(r[1], r[3]) for r in rows] == [("1", "61.0"), ("2", "62.0")]
    assert "k = 8: 2 of 2 seeds routed, Fmax 61.0 to 62.0 MHz, median 61.5" in out

    assert main(["bench-fpga", "--k", "16", "--seed", "1", "--lanes", "1", "--vector-width",
                 "4", "--json"]) == 0
    row, = json.loads(capsys.readouterr().out)["rows"]
    assert row["fmax_mhz"] == 61.0 and row["late_endpoints"] == ["x"]
    assert programs == [(8, None, None), (16, None, None), (16, 4, 1)]

    assert main(["bench-fpga", "--k", "8", "--router", "router2", "--tmg-ripup",
                 "--pnr-minutes", "20"]) == 0
    assert "--pnr-minutes" not in capsys.readouterr().err


def test_timing_driven_ripup_needs_router2(capsys):
    """--tmg-ripup is router2's: with router1 it is refused before anything is built."""
    for command in (["build", "somewhere"], ["bench-fpga"]):
        assert main([*command, "--tmg-ripup"]) == 2
        assert "--tmg-ripup) is router2's: add --router router2" in capsys.readouterr().err


def test_a_build_past_its_time_limit_is_a_row_not_a_crash(monkeypatch, capsys):
    """`circa bench-fpga --pnr-minutes`: a seed whose place and route runs out of time (or
    fails) is reported in its row with the reason, and the other seeds go on; when every
    seed does, each is a row and `circa build` fails with the reasons (exit 1)."""
    from circa.boards import bench, build
    limits = []

    def fake_build(directory, board, *, seed, pnr_minutes, **_):
        limits.append(pnr_minutes)
        if seed == [1]:
            raise build.NotRouted({1: "nextpnr did not finish in 30 minutes (log x)"})
        return {**fpga_report(board, {1: None, 2: 80.5}),
                "nextpnr": {"seed": 2, "fmax_by_seed": {1: None, 2: 80.5},
                            "unrouted": {1: "nextpnr failed (log y): ERROR: Failed to route"}}}
    monkeypatch.setattr(bench, "program_dir", lambda k, root, vector_width, lanes: root)
    monkeypatch.setattr(build, "build", fake_build)
    assert main(["bench-fpga", "--k", "8", "--seed", "1", "2", "--pnr-minutes", "30"]) == 0
    out = capsys.readouterr().out
    assert "8    1 ulx3s-85f   not routed: nextpnr failed (log y): ERROR: Failed to route" in out
    assert "80.5" in out and "k = 8: 1 of 2 seeds routed, Fmax 80.5 to 80.5 MHz" in out
    assert main(["bench-fpga", "--k", "8", "--seed", "1", "--pnr-minutes", "30"]) == 0
    assert "8    1 ulx3s-85f   not routed: nextpnr did not finish in 30 minutes (log x)" \
        in capsys.readouterr().out
    assert limits == [30.0, 30.0]

    assert main(["build", "somewhere", "--pnr-minutes", "30"]) == 1
    assert ("failed: place and route finished with no seed: seed 1: nextpnr did not finish in "
            "30 minutes") in capsys.readouterr().err
