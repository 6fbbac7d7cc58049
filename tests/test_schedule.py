"""Scheduler and ISA executor: the Program run instruction by instruction equals the
golden model bit for bit; programs round-trip through their files; bad input is refused."""
import numpy as np
import pytest
import torch

from circa.compiler import compress, executor, frontend
from circa.compiler.compile import quantize_and_schedule
from circa.compiler.program import Program
from circa.config import AccelConfig, EngineConfig
from test_quantize import inputs, models

CONFIG = AccelConfig(EngineConfig(k=8, lanes=2, max_q=16, weight_depth=256), sparse_block=(4, 4))


def compile_model(name, scheme, cfg=CONFIG):
    model, x = models()[name], inputs(name)
    schemes = compress.plan(model, scheme, cfg.k)
    model = compress.compress(model, schemes, x, train=False)
    xb = x if frontend.import_model(model).batch_first else x.swapaxes(0, 1)
    return (*quantize_and_schedule(model, schemes, cfg, xb), xb)


@pytest.mark.parametrize("scheme", ["dense", "circulant:8", "sparse:4x4:0.5"])
@pytest.mark.parametrize("name", list(models()))
def test_executor_equals_golden(name, scheme):
    qnet, program, x = compile_model(name, scheme)
    golden_trace, executor_trace = {}, {}
    expected = qnet.golden(x, trace=golden_trace)
    actual = executor.run(program, x, trace=executor_trace)
    assert torch.equal(actual, expected)
    # the per-instruction trace lines up with the golden model's named tensors
    first = next(iter(executor_trace))
    assert first in golden_trace
    assert all(torch.equal(torch.cat(executor_trace[name]), torch.cat(golden_trace[name][:len(
        executor_trace[name])])) for name in executor_trace if name in golden_trace)


def test_program_files_round_trip(tmp_path):
    qnet, program, x = compile_model("lstm_proj", "circulant:8")
    program.save(tmp_path)
    loaded = Program.load(tmp_path)
    assert loaded.instructions == program.instructions
    assert torch.equal(executor.run(loaded, x), executor.run(program, x))
    asm = (tmp_path / "program.asm").read_text()
    assert "MVC" in asm and "# L0.z" in asm and "LOOP n=6" in asm


def test_lstm_gates_share_one_mvm_per_step():
    _, program, _ = compile_model("lstm_proj", "circulant:8")
    mvms = [i for i in program.instructions if i.op.name == "MVC"]
    assert len(mvms) == 2                                  # the gates, then the projection
    gates = mvms[0]
    assert gates.n == 4 * 4 and gates.m == 1 and gates.m2 == 2   # 4 gates x 32/8 blocks


def test_model_too_large_for_the_accelerator():
    small = AccelConfig(EngineConfig(k=8, lanes=1, max_q=8, weight_depth=8), sparse_block=(4, 4))
    with pytest.raises(ValueError, match="weight_depth = 8"):
        compile_model("lstm_proj", "circulant:8", small)
    tiny = AccelConfig(EngineConfig(k=8, lanes=2, max_q=16, weight_depth=256),
                       sparse_block=(4, 4), imem_depth=8)
    with pytest.raises(ValueError, match="more than the accelerator's imem_depth = 8"):
        compile_model("gru2", "dense", tiny)


def test_inputs_of_the_wrong_shape():
    _, program, x = compile_model("gru2", "dense")
    with pytest.raises(ValueError, match=r"this program takes \(n, 6, 8\)"):
        executor.run(program, np.zeros((4, 5, 8)))


def test_not_a_program_directory(tmp_path):
    with pytest.raises(ValueError, match="not a compiled program directory"):
        Program.load(tmp_path)
