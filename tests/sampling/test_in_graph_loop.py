"""Sampling inside one ONNX Loop a chunk gives the NumPy loop's bytes, for every architecture and filter chain
it takes, close draws included; what it cannot take stays with the NumPy loop."""

import functools

import numpy as np
import pytest

from generate.model.config import ModelConfig
from generate.model.network import StepNetwork
from generate.sampling.config import SamplingConfig
from generate.sampling.loop import Sampler

from ..helpers import perturbed_model

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

ARCHITECTURES = {
    "lstm": dict(cell="lstm", layers=2, units=16, embedding_dim=8),
    "gru": dict(cell="gru", layers=2, units=16, embedding_dim=8),
    "layer-normalised residual rnn": dict(cell="rnn", layers=2, units=16, embedding_dim=16, residual=True, layer_norm=True),
    "tied lstm": dict(cell="lstm", layers=1, units=24, embedding_dim=8, tie_embeddings=True),
}
CHARS = tuple(chr(48 + i) for i in range(30))


def onnx_network(architecture: dict, label_count: int = 0):
    from generate.model.backend.onnxruntime_step import OnnxStepNetwork
    from generate.model.onnx_step import state_names

    graph, net = step_graph_of(tuple(sorted(architecture.items())), label_count)
    return OnnxStepNetwork(graph, net.cell, net.units, net.num_layers, state_names(net), net.vocab_size, net.labels)


@functools.cache
def step_graph_of(architecture: tuple, label_count: int):
    """A perturbed model's step graph and network, built once per architecture for the module."""
    from generate.model.onnx_step import step_graph

    cfg = ModelConfig(vocab_size=30, label_count=label_count, label_dim=4 if label_count else 0,
                      **{"residual": False, **dict(architecture)})
    net = StepNetwork.from_model(perturbed_model(cfg, 1, seed=5), cfg)
    return step_graph(net).SerializeToString(), net


def sample_both_ways(net, cfg: SamplingConfig, prime=(3, 1, 4, 1, 5)):
    """The same draw on the NumPy loop (the in-graph loop never built) and on the in-graph loop."""
    texts = []
    for in_graph in (False, True):
        net._chunk_sessions.clear()
        net.rows_stepped = 10**9 if in_graph else -(10**9)
        sampler = Sampler(net, CHARS)
        texts.append([s.text for s in sampler.generate(list(prime), cfg, np.random.default_rng(cfg.seed))])
    return texts


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_the_in_graph_loop_samples_the_numpy_loops_bytes(name):
    net = onnx_network(ARCHITECTURES[name])
    cfg = SamplingConfig(length=300, num_samples=5, temperature=1.3, top_k=9, seed=4)
    on_numpy, in_graph = sample_both_ways(net, cfg)
    assert in_graph == on_numpy
    assert len(net._chunk_sessions) == 1 and None not in net._chunk_sessions.values()  # it did run in the graph


@pytest.mark.parametrize("settings", [dict(temperature=0.7), dict(top_k=3), dict(banned=(0, 7, 9)), dict(greedy=True)],
                         ids=["temperature", "top-k", "banned", "greedy"])
def test_each_filter_it_holds_draws_as_numpy_does(settings):
    net = onnx_network(ARCHITECTURES["lstm"])
    on_numpy, in_graph = sample_both_ways(net, SamplingConfig(length=200, num_samples=3, seed=8, **settings))
    assert in_graph == on_numpy
    if settings.get("banned"):
        assert not set("079") & set("".join(in_graph))


def test_a_draw_too_close_to_call_is_drawn_by_numpy(monkeypatch):
    from generate.model.backend import onnxruntime_chunk

    net = onnx_network(ARCHITECTURES["gru"])
    cfg = SamplingConfig(length=120, num_samples=4, temperature=1.0, seed=2)
    expected, _ = sample_both_ways(net, cfg)
    handed_back = []
    original = net.chunk_runner

    def counting(*args):
        run = original(*args)

        def counted(*inputs):
            result = run(*inputs)
            handed_back.append(result is not None and len(result[0]) == 1)
            return result
        return counted

    # A margin as wide as the whole CDF: every drawn step stops the graph and is drawn again in NumPy.
    monkeypatch.setattr(onnxruntime_chunk, "draw_margin", lambda vocab_size: 2.0)
    monkeypatch.setattr(net, "chunk_runner", counting)
    _, in_graph = sample_both_ways(net, cfg)
    assert in_graph == expected
    assert sum(handed_back) >= 120  # one graph call a drawn step


def test_what_the_graph_cannot_draw_stays_with_the_numpy_loop():
    lstm = onnx_network(ARCHITECTURES["lstm"])
    lstm.rows_stepped = 10**9
    assert lstm.chunk_runner((("Temperature",), ("TopP",)), False) is None  # top-p: not in the graph
    labelled = onnx_network(ARCHITECTURES["gru"], label_count=3)
    labelled.rows_stepped = 10**9
    assert labelled.chunk_runner((("Temperature",),), False) is None


def test_the_graph_waits_until_the_numpy_loop_has_stepped_enough_rows():
    from generate.model.backend.onnxruntime_step import ROWS_BEFORE_IN_GRAPH

    net = onnx_network(ARCHITECTURES["lstm"])
    sampler = Sampler(net, CHARS)
    sampler.generate([1], SamplingConfig(length=ROWS_BEFORE_IN_GRAPH // 2 - 8, seed=1), np.random.default_rng(1))
    assert not net._chunk_sessions  # a short sample: the graph is not worth building
    sampler.generate([1], SamplingConfig(length=ROWS_BEFORE_IN_GRAPH + 300, seed=1), np.random.default_rng(1))
    assert list(net._chunk_sessions.values())[0] is not None


def test_values_of_k_and_banned_lists_share_one_graph_and_each_draws_as_numpy_does():
    net = onnx_network(ARCHITECTURES["lstm"])
    configs = [SamplingConfig(length=150, num_samples=3, top_k=k, seed=k, banned=(k % 30,)) for k in (2, 7, 30, 500)]
    expected = {cfg.top_k: sample_both_ways(net, cfg)[0] for cfg in configs}  # 500 > vocabulary: NumPy keeps it all
    net._chunk_sessions.clear()
    net.rows_stepped = 10**9
    for cfg in configs:  # one sampler, as a server's: a new k must not build a new session
        texts = [s.text for s in Sampler(net, CHARS).generate([3, 1, 4, 1, 5], cfg, np.random.default_rng(cfg.seed))]
        assert texts == expected[cfg.top_k], cfg.top_k
    assert len(net._chunk_sessions) == 1 and None not in net._chunk_sessions.values()
