"""The command line: clear errors for bad input, before any long work starts."""
import pytest

from circa.cli import main


@pytest.mark.parametrize("argv, message", [
    (["demo", "--k", "12"], "FFT size k must be a power of 2 from 2 to 64, not 12"),
    (["demo", "--lanes", "0"], "lanes must be an integer from 1 to 64, not 0"),
    (["bench", "--k", "3"], "FFT size k must be a power of 2 from 2 to 64, not 3"),
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


def test_bench_fpga_builds_once_per_seed(monkeypatch, capsys):
    """`circa bench-fpga --seed 1 2`: one build per k and seed, each a row of the table,
    clocked at the 100 MHz goal unless --freq says otherwise."""
    from circa.boards import bench, build
    calls = []

    def fake_build(directory, board, *, seed, freq_mhz, **_):
        calls.append((seed, freq_mhz))
        return {"board": board, "device": "LFE5U-85F", "fmax_mhz": 60.0 + seed,
                "target_mhz": 50, "timing_met": True, "luts": 1, "ffs": 2, "dsps": 3,
                "brams": 4, "config": "cfg", "seconds": {"total": 5.0}}
    monkeypatch.setattr(bench, "program_dir", lambda k, root: root)
    monkeypatch.setattr(build, "build", fake_build)
    assert main(["bench-fpga", "--k", "8", "--seed", "1", "2"]) == 0
    assert calls == [(1, 100.0), (2, 100.0)]
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.split()[:1] == ["8"]]
    assert [(r[1], r[3]) for r in rows] == [("1", "61.0"), ("2", "62.0")]
    assert "k = 8: 2 of 2 seeds routed, Fmax 61.0 to 62.0 MHz, median 61.5" in out


def test_a_build_past_its_time_limit_is_a_row_not_a_crash(monkeypatch, capsys):
    """`circa bench-fpga --pnr-minutes`: a place and route that runs out of time is reported
    in its row, and the other builds go on; `circa build` fails with the reason (exit 1)."""
    from circa.boards import bench, build
    limits = []

    def fake_build(directory, board, *, seed, pnr_minutes, **_):
        limits.append(pnr_minutes)
        if seed in (1, [1]):                # bench-fpga passes one seed, build a list
            raise build.ToolTimeout("place and route: nextpnr-ecp5 did not finish in 30 "
                                    "minutes and was stopped (log x)")
        return {"board": board, "device": "LFE5U-85F", "fmax_mhz": 80.5, "target_mhz": 100,
                "timing_met": False, "luts": 1, "ffs": 2, "dsps": 3, "brams": 4,
                "config": "cfg", "seconds": {"total": 5.0}}
    monkeypatch.setattr(bench, "program_dir", lambda k, root: root)
    monkeypatch.setattr(build, "build", fake_build)
    assert main(["bench-fpga", "--k", "8", "--seed", "1", "2", "--pnr-minutes", "30"]) == 0
    assert limits == [30.0, 30.0]
    out = capsys.readouterr().out
    assert "8    1 ulx3s-85f   not routed: place and route: nextpnr-ecp5 did not finish" in out
    assert "80.5" in out and "k = 8: 1 of 2 seeds routed, Fmax 80.5 to 80.5 MHz" in out

    assert main(["build", "somewhere", "--pnr-minutes", "30"]) == 1
    assert "failed: place and route: nextpnr-ecp5 did not finish in 30 minutes" in \
        capsys.readouterr().err
