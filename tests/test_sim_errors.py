"""``circa sim`` refuses bad programs and inputs before any simulation starts."""
import json

import numpy as np
import pytest
import torch
from torch import nn

from circa.cli import main


@pytest.fixture(scope="module")
def program_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("prog")
    torch.manual_seed(0)
    torch.save(nn.Sequential(nn.Linear(32, 40), nn.ReLU(), nn.Linear(40, 10)), d / "mlp.pt")
    np.save(d / "x.npy", np.random.default_rng(0).normal(size=(8, 32)))
    assert main(["compile", str(d / "mlp.pt"), "-o", str(d / "p"), "--calib", str(d / "x.npy"),
                 "--k", "8", "--no-train"]) == 0
    return d


def sim(program_dir, tmp_path, edit, inputs="x.npy"):
    import shutil
    target = tmp_path / "p"
    shutil.copytree(program_dir / "p", target)
    edit(target)
    return main(["sim", str(target), "--inputs", str(program_dir / inputs)
                 if (program_dir / inputs).exists() else str(tmp_path / inputs)])


def test_program_for_another_config(program_dir, tmp_path, capsys):
    def edit(d):
        meta = json.loads((d / "program.json").read_text())
        meta["config"]["engine"]["lanes"] = 2
        (d / "program.json").write_text(json.dumps(meta))
    assert sim(program_dir, tmp_path, edit) == 2
    assert "compiled for another AccelConfig" in capsys.readouterr().err


def test_malformed_program_words(program_dir, tmp_path, capsys):
    def edit(d):
        data = bytearray((d / "program.bin").read_bytes())
        data[0] |= 0x3F                       # instruction 0 gets an opcode that does not exist
        (d / "program.bin").write_bytes(bytes(data))
    assert sim(program_dir, tmp_path, edit) == 2
    assert "unknown opcode 0x3f" in capsys.readouterr().err


def test_scratchpad_larger_than_the_memory(program_dir, tmp_path, capsys):
    def edit(d):
        meta = json.loads((d / "program.json").read_text())
        meta["config"]["act_depth"] = 4
        (d / "program.json").write_text(json.dumps(meta))
    assert sim(program_dir, tmp_path, edit) == 2
    assert "more than the accelerator's act_depth = 4" in capsys.readouterr().err


def test_inputs_of_the_wrong_shape(program_dir, tmp_path, capsys):
    np.save(tmp_path / "bad.npy", np.zeros((3, 31)))
    assert sim(program_dir, tmp_path, lambda d: None, inputs="bad.npy") == 2
    assert "this program takes (n, 1, 32) or (n, 32)" in capsys.readouterr().err
