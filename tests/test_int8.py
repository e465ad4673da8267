"""Int8 with outlier channels kept fp32: the rewritten graph computes the same function, and quantized it stays far
closer to fp32 than whole-graph int8 when a few input channels dwarf the others."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
from onnx import TensorProto, helper, numpy_helper

from bertdistill.core.int8 import (
    MAX_OUTLIER_SHARE,
    OUTLIER_SUFFIX,
    channel_maxima,
    quantize_int8,
    split_outlier_channels,
)

CHANNELS, OUT = 64, 32


def linear_model(path, weight: np.ndarray) -> None:
    """y = relu(x) @ W, for x of shape (batch, sequence, CHANNELS): one linear layer behind a non-constant op."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "sequence", CHANNELS])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "sequence", OUT])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["h"], "relu"),
                               helper.make_node("MatMul", ["h", "w"], ["y"], "linear")],
                              "linear", [x], [y], [numpy_helper.from_array(weight, "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def inputs(rng, outliers: list[int], batches: int = 4) -> list[dict]:
    """Positive activations around 1 with the `outliers` channels ~60x larger, as after a transformer's LayerNorm."""
    feeds = []
    for _ in range(batches):
        x = np.abs(rng.normal(1.0, 0.5, (8, 12, CHANNELS))).astype(np.float32)
        x[..., outliers] *= 60
        feeds.append({"x": x})
    return feeds


def run(path, feed) -> np.ndarray:
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(["y"], feed)[0]


def test_split_graph_computes_the_same_function(tmp_path):
    rng = np.random.default_rng(0)
    linear_model(tmp_path / "fp32.onnx", rng.normal(0, 0.1, (CHANNELS, OUT)).astype(np.float32))
    model = onnx.load(str(tmp_path / "fp32.onnx"))
    maxima = channel_maxima(model, inputs(rng, [3, 40]))
    assert maxima["h"].shape == (CHANNELS,) and set(np.flatnonzero(maxima["h"] > 20)) == {3, 40}
    split, kept = split_outlier_channels(model, maxima)
    assert kept == {"outlier_channels": 2, "split_matmuls": 1, "fp32_matmuls": []}
    onnx.checker.check_model(split)
    onnx.save(split, str(tmp_path / "split.onnx"))
    feed = inputs(rng, [3, 40], batches=1)[0]
    np.testing.assert_allclose(run(tmp_path / "split.onnx", feed), run(tmp_path / "fp32.onnx", feed),
                               rtol=1e-5, atol=1e-4)


def test_calibrated_int8_keeps_outliers_fp32_and_stays_closer_to_fp32(tmp_path):
    rng = np.random.default_rng(1)
    linear_model(tmp_path / "fp32.onnx", rng.normal(0, 0.1, (CHANNELS, OUT)).astype(np.float32))
    whole = quantize_int8(tmp_path / "fp32.onnx", tmp_path / "whole.onnx")
    calibrated = quantize_int8(tmp_path / "fp32.onnx", tmp_path / "calibrated.onnx", inputs(rng, [5]))
    assert whole == {"outlier_channels": 0, "split_matmuls": 0, "fp32_matmuls": []}
    assert calibrated == {"outlier_channels": 1, "split_matmuls": 1, "fp32_matmuls": []}
    ops = {node.name: node.op_type for node in onnx.load(str(tmp_path / "calibrated.onnx")).graph.node}
    assert ops["linear" + OUTLIER_SUFFIX] == "MatMul" and "MatMulInteger" in ops.values()
    feed = inputs(rng, [5], batches=1)[0]  # new texts, the same outlier channel
    reference = run(tmp_path / "fp32.onnx", feed)
    whole_error = np.abs(run(tmp_path / "whole.onnx", feed) - reference).mean()
    calibrated_error = np.abs(run(tmp_path / "calibrated.onnx", feed) - reference).mean()
    assert calibrated_error < whole_error / 5


def test_a_layer_with_too_many_outlier_channels_stays_fp32_whole(tmp_path):
    rng = np.random.default_rng(2)
    linear_model(tmp_path / "fp32.onnx", rng.normal(0, 0.1, (CHANNELS, OUT)).astype(np.float32))
    many = list(range(int(MAX_OUTLIER_SHARE * CHANNELS) + 1))
    kept = quantize_int8(tmp_path / "fp32.onnx", tmp_path / "int8.onnx", inputs(rng, many))
    assert kept == {"outlier_channels": 0, "split_matmuls": 0, "fp32_matmuls": ["linear"]}
    ops = {node.name: node.op_type for node in onnx.load(str(tmp_path / "int8.onnx")).graph.node}
    assert ops["linear"] == "MatMul" and "MatMulInteger" not in ops.values()
