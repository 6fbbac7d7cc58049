"""Smoke test of ``circa bench-accuracy`` (the full benchmark is in docs/benchmarks.md):
the MLP, one scheme, quick settings, through the CLI with ``--json``. About 5 s."""
import json

from circa import cli


def test_bench_accuracy_json_smoke(capsys):
    assert cli.main(["bench-accuracy", "--models", "mlp", "--schemes", "circulant:8",
                     "--quick", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["quick"] is True and report["settings"]["widths"] == [16, 12]
    (model,) = report["models"]
    assert model["model"] == "mlp" and 0.9 <= model["float_accuracy"] <= 1.0
    assert isinstance(model["goal_met"], bool)
    (row,) = model["rows"]
    assert row["scheme"] == "circulant:8" and row["k"] == 8 and row["error"] is None
    assert row["layers"] == {"0": "circulant:8", "2": "circulant:8"} and row["dense_layers"] == []
    assert (row["stored_weights"], row["dense_weights"]) == (1280, 9472)
    assert set(row["quantized_accuracy"]) == {"16", "12"}
    # 16-bit golden model within a few points of the compressed float model
    assert abs(row["quantized_accuracy"]["16"] - row["compressed_accuracy"]) <= 0.03
    assert row["compressed_accuracy"] >= 0.8
