"""Xilinx figures: yosys synth_xilinx for UltraScale, and the KCU105 Vivado project files."""
import json
from pathlib import Path

import pytest

from circa.boards import xilinx
from circa.config import AccelConfig, EngineConfig

TINY = AccelConfig(engine=EngineConfig(k=4, lanes=1, max_q=16, weight_depth=128),
                   sparse_block=(2, 2), act_depth=128, imem_depth=64, sparse_depth=64,
                   tables=2, pwl_segments=16)

INT_FIGURES = ("luts", "lutrams", "lutram_luts", "srls", "luts_total", "ffs", "dsps",
               "bram36", "bram18", "carry", "muxf")


def test_count_cells_groups_ultrascale_cells():
    cells = {"$scopeinfo": 3, "BUFG": 1, "LUT1": 1, "LUT6": 4, "INV": 2, "FDRE": 7, "FDCE": 1,
             "DSP48E2": 2, "RAMB36E2": 3, "RAMB18E2": 1, "RAM64M8": 2, "RAM32X1D": 1,
             "SRLC32E": 5, "CARRY4": 6, "MUXF7": 1}
    got = xilinx.count_cells(cells)
    assert got["luts"] == 7 and got["ffs"] == 8 and got["dsps"] == 2
    assert got["lutrams"] == 3 and got["lutram_luts"] == 2 * 8 + 2 and got["srls"] == 5
    assert got["luts_total"] == 7 + 18 + 5
    assert got["bram36"] == 3 and got["bram18"] == 1 and got["brams"] == 3.5
    assert got["carry"] == 6 and got["muxf"] == 1


def test_count_cells_refuses_unmapped_cells():
    with pytest.raises(RuntimeError, match=r"\$mul"):
        xilinx.count_cells({"LUT4": 1, "$mul": 1})


def test_parse_stat_reads_the_flattened_top():
    text = json.dumps({"modules": {"\\top": {"num_cells_by_type": {"LUT2": 3, "FDRE": 2}}}})
    assert xilinx.parse_stat("noise before\n" + text) == {"LUT2": 3, "FDRE": 2}


def test_bad_inputs_raise_value_error(tmp_path):
    with pytest.raises(ValueError, match="AccelConfig"):
        xilinx.ultrascale_utilisation("k=16", tmp_path)
    with pytest.raises(ValueError, match="AccelConfig"):
        xilinx.vivado_project(None, None, tmp_path)
    afile = tmp_path / "file"
    afile.write_text("")
    with pytest.raises(ValueError, match="not a directory"):
        xilinx.ultrascale_utilisation(TINY, afile)
    with pytest.raises(ValueError, match="not a directory"):
        xilinx.vivado_project(TINY, None, afile)
    with pytest.raises(ValueError, match="images"):
        xilinx.vivado_project(TINY, [1, 2], tmp_path / "out")
    with pytest.raises(ValueError, match="baud"):
        xilinx.vivado_project(TINY, None, tmp_path / "out", baud=0)


def test_xcku060_budget_is_the_data_sheet():
    assert (xilinx.XCKU060["luts"], xilinx.XCKU060["ffs"], xilinx.XCKU060["dsps"],
            xilinx.XCKU060["brams"]) == (331_680, 663_360, 2_760, 1_080)


def test_vivado_project_for_kcu105(tmp_path):
    out = xilinx.vivado_project(TINY, None, tmp_path / "kcu105")
    assert out == tmp_path / "kcu105"
    for name in ("build_top.sh", "top.tcl", "top.xdc", "top.v", "README.txt"):
        assert (out / name).is_file(), name
    xdc = (out / "top.xdc").read_text()
    tcl = (out / "top.tcl").read_text()
    assert "LOC G25" in xdc and "uart_0__rx" in xdc       # CP2105 TXD -> FPGA RX
    assert "LOC K26" in xdc and "uart_0__tx" in xdc
    assert "LOC G10" in xdc and "create_clock" in xdc and "-period 8.0" in xdc
    assert "-part xcku040-ffva1156-2-e" in tcl
    assert "vivado" in (out / "build_top.sh").read_text()
    readme = (out / "README.txt").read_text()
    assert "NOT run" in readme and "sh build_top.sh" in readme
    assert "module top" in (out / "top.v").read_text()


@pytest.mark.slow
def test_circa_build_for_the_kcu105(tmp_path, capsys):
    """`circa build --board kcu105`: the Vivado project and yosys UltraScale figures."""
    from test_boards_build import TINY
    from test_schedule import compile_model
    from circa import cli
    from circa.compiler.compile import fitted_config
    _, program, _ = compile_model("mlp", "circulant:4", TINY)
    _, program, _ = compile_model("mlp", "circulant:4", fitted_config(TINY, program))
    program.save(tmp_path / "program")
    assert cli.main(["build", str(tmp_path / "program"), "--board", "kcu105", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["vivado_run"] is False and report["bitstream"] is None
    assert (Path(report["vivado_project"]) / "top.tcl").exists()
    figures = report["synthesis"]
    assert all(isinstance(figures[key], int) for key in INT_FIGURES)
    assert report["dsps"] > 0 and report["luts"] > 0 and report["ffs"] > 0
    assert report["brams"] == figures["bram36"] + figures["bram18"] / 2
