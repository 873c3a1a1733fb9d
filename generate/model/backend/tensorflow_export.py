"""One step of a network as a TensorFlow SavedModel, and as a LiteRT (TensorFlow Lite) flatbuffer.

The same step the sampler compiles (`network.StepNetwork.step`, in
`keras.ops` on TensorFlow) is traced once with a free batch dimension and
saved with its signature: `ids` (int32, [B]) and `state{k}` (float32,
[B, H]) in; `logits` and `state{k}_out` out, the names the ONNX graph uses.
TF Serving loads the SavedModel as it is. The LiteRT file is converted from
it with TensorFlow Lite's built-in operators only: a step model holds no
variables, so none of the Flex ops a stateful layer needs (tensorflow#38312).
Imports TensorFlow: only a `--format savedmodel` or `litert` export loads it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf

SIGNATURE = "serving_default"


def save_step_model(net, states: list[str], path: Path) -> None:
    """Saves `net`'s step, prepared on TensorFlow, as a SavedModel directory at `path`."""
    specs = [tf.TensorSpec([None], tf.int32, name="ids")] + [tf.TensorSpec([None, net.units], tf.float32, name=s) for s in states]

    @tf.autograph.experimental.do_not_convert  # plain ops: nothing for AutoGraph to convert
    def step(ids, *state_values):
        logits, new_states = net.step(ids, list(state_values))
        return {"logits": logits, **{f"{name}_out": value for name, value in zip(states, new_states)}}

    module = tf.Module()
    module.step = tf.function(step, input_signature=specs)
    tf.saved_model.save(module, str(path), signatures={SIGNATURE: module.step})


def litert_bytes(saved_model: Path) -> bytes:
    """The SavedModel's step as a LiteRT flatbuffer, built-in operators only.

    Raises:
        ValueError: the converter needs an operator outside the built-ins (it would need Flex).
    """
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    try:
        return converter.convert()
    except Exception as exc:  # the converter's own error types vary by version
        raise ValueError(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__) from None


def saved_model_runner(path: Path, states: list[str]):
    """`run(ids, state_values) -> (logits, new_states)` on the SavedModel at `path`, loaded as a server would."""
    function = tf.saved_model.load(str(path)).signatures[SIGNATURE]

    def run(ids: np.ndarray, state_values: list[np.ndarray]):
        out = function(ids=tf.constant(ids, tf.int32), **{name: tf.constant(v) for name, v in zip(states, state_values)})
        return out["logits"].numpy(), [out[f"{name}_out"].numpy() for name in states]

    return run


def litert_runner(model: bytes, states: list[str]):
    """`run(ids, state_values) -> (logits, new_states)` on a LiteRT flatbuffer, in TensorFlow's interpreter."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the interpreter's notice that it moves to ai_edge_litert
        interpreter = tf.lite.Interpreter(model_content=model)
    runner = interpreter.get_signature_runner(SIGNATURE)

    def run(ids: np.ndarray, state_values: list[np.ndarray]):
        out = runner(ids=np.asarray(ids, np.int32), **{name: np.asarray(v, np.float32) for name, v in zip(states, state_values)})
        return out["logits"], [out[f"{name}_out"] for name in states]

    return run
