"""A bundle is the run it came from: the same logits, the same greedy and seeded text, the same constraints,
scores and records, on onnxruntime and NumPy instead of Keras; damaged and foreign bundles are refused."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from generate.cli import cli
from generate.model.rundir import resolve_run
from generate.sampling.generator import load_generator
from generate.sampling.options import SampleOptions

from ..helpers import one_line_error

pytest.importorskip("onnxruntime")
SHIPPED = ("shakespeare", "tang", "python", "folk", "bach")
EXCERPTS = json.loads((Path(__file__).parents[1] / "data" / "validation_excerpts.json").read_text(encoding="utf-8"))["texts"]


@pytest.fixture(scope="module")
def bundle(trained_run, tmp_path_factory):
    """The tiny trained run, exported as a bundle."""
    from generate.model.export import export_bundle
    from generate.model.rundir import RunDir

    dest = tmp_path_factory.mktemp("bundle") / "verse"
    export_bundle(RunDir(trained_run), dest)
    return dest


@pytest.mark.parametrize("name", SHIPPED)
def test_each_shipped_bundle_gives_its_keras_logits_over_a_thousand_steps_and_the_same_greedy_text(name):
    from generate.model.builder import build_model
    from generate.model.checkpoint import load_weights_into

    run = resolve_run(name)
    config = run.load_config()
    keras_model = build_model(config.model, 1)
    load_weights_into(keras_model, run.best)
    ids = np.asarray(run.load_vocab().encode(EXCERPTS[name]), np.int32)[:1000]
    expected = keras_model.predict(ids[None, :], batch_size=1, verbose=0)[0]
    on_bundle = load_generator(name)
    assert on_bundle.checkpoint.name == "model.onnx"
    net = on_bundle.sampler.net
    states, worst = net.initial_states(1), 0.0
    for t, char_id in enumerate(ids):
        logits, states = net.step(np.array([char_id]), states)
        worst = max(worst, float(np.abs(expected[t] - logits[0]).max()))
    assert worst <= 1e-4, worst
    on_keras = load_generator(name, checkpoint="best.keras")
    assert type(on_keras.sampler.net).__name__ == "StepNetwork"
    options = SampleOptions(greedy=True, length=300, seed=1)  # constraints as each model's defaults have them
    assert on_bundle.sample(options)[0].text == on_keras.sample(options)[0].text


@pytest.mark.parametrize("settings", [
    dict(greedy=True, length=200),
    dict(seed=5, num_samples=4, length=200, temperature=0.9, top_k=12, top_p=0.95),
    dict(seed=3, stop=["\n\n"], lines=2),
    dict(beam=3, num_samples=3, length=40),
], ids=["greedy", "seeded top-k top-p", "stop and poem lines", "beam"])
def test_a_bundle_samples_the_text_its_run_samples(trained_run, bundle, settings):
    on_keras, on_bundle = load_generator(trained_run), load_generator(bundle)
    assert type(on_bundle.sampler.net).__name__ == "OnnxStepNetwork"
    options = SampleOptions(prime="Shall I", **settings)
    expected, received = on_keras.sample(options), on_bundle.sample(options)
    assert [s.text for s in received] == [s.text for s in expected]
    assert [s.stopped for s in received] == [s.stopped for s in expected]
    if settings.get("beam"):
        assert np.allclose([s.beam_score for s in received], [s.beam_score for s in expected], atol=1e-4)


def test_the_shipped_python_bundle_keeps_the_syntax_constraints_of_the_compiled_loop():
    options = SampleOptions(prime="def merge(", seed=11, length=200, top_p=0.9)
    on_keras, on_bundle = load_generator("python", checkpoint="best.keras"), load_generator("python")
    text = on_bundle.sample(options)[0].text
    assert text == on_keras.sample(options)[0].text
    compile("def merge(" + text, "sample", "exec")  # ended cleanly within its length


def test_a_bundle_scores_as_its_run_scores(trained_run, bundle, tmp_path):
    text = tmp_path / "verse.txt"
    text.write_text("Shall I compare thee to a summer's day?\nThou art more lovely.\n", encoding="utf-8")
    runner = CliRunner()
    lines = [runner.invoke(cli, ["score", str(run), str(text)]).stdout for run in (trained_run, bundle)]
    assert lines[0] == lines[1] and "bpc" in lines[0]


def test_a_bundle_samples_scores_and_describes_itself_without_importing_tensorflow(bundle, tmp_path):
    text = tmp_path / "verse.txt"
    text.write_text("Shall I compare thee\n", encoding="utf-8")
    program = f"""
import sys
from click.testing import CliRunner
from generate.cli import cli
runner = CliRunner()
for args in (["sample", {str(bundle)!r}, "--seed", "1", "--length", "50"], ["score", {str(bundle)!r}, {str(text)!r}],
             ["info", {str(bundle)!r}], ["sample", "folk", "--seed", "2", "-o", {str(tmp_path / "tune.mid")!r}]):
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, (args, result.output)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "onnx", "jax", "torch"))
print(" ".join(loaded) or "none")
"""
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "none"
    assert (tmp_path / "tune.mid").stat().st_size > 0


def test_a_damaged_bundle_is_refused_in_one_line_naming_the_file(bundle, tmp_path):
    runner = CliRunner()
    for name, damage in (("model.onnx", b"\0"), ("config.json", b" ")):
        copy = tmp_path / f"damaged-{name}"
        shutil.copytree(bundle, copy)
        with open(copy / name, "ab") as handle:
            handle.write(damage)
        for command in (["sample", str(copy)], ["info", str(copy)], ["score", str(copy), str(copy / "vocab.json")]):
            one_line_error(runner.invoke(cli, command), 1, str(copy / name), "damaged or edited")
    missing = tmp_path / "missing"
    shutil.copytree(bundle, missing)
    (missing / "vocab.json").unlink()
    one_line_error(runner.invoke(cli, ["sample", str(missing)]), 1, "vocab.json", "missing")


def test_a_future_or_foreign_bundle_is_refused_in_one_line(bundle, tmp_path):
    runner = CliRunner()
    future = tmp_path / "future"
    shutil.copytree(bundle, future)
    meta = json.loads((future / "meta.json").read_text())
    (future / "meta.json").write_text(json.dumps({**meta, "format_version": 2}))
    one_line_error(runner.invoke(cli, ["sample", str(future)]), 1, "format version 2 is newer", "upgrade generate")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    shutil.copyfile(bundle / "model.onnx", foreign / "model.onnx")
    one_line_error(runner.invoke(cli, ["sample", str(foreign / "model.onnx")]), 1, "a lone .onnx file")
    one_line_error(runner.invoke(cli, ["sample", str(foreign)]), 1, "no meta.json")
    (foreign / "meta.json").write_text(json.dumps({"format": "someone-else", "producer": "tf2onnx"}))
    one_line_error(runner.invoke(cli, ["info", str(foreign)]), 1, "expected a bundle written by `generate export`")
    not_a_graph = tmp_path / "not-a-graph"
    shutil.copytree(bundle, not_a_graph)
    (not_a_graph / "model.onnx").write_bytes(b"not a graph")
    meta = json.loads((not_a_graph / "meta.json").read_text())
    meta["files"]["model.onnx"] = __import__("hashlib").sha256(b"not a graph").hexdigest()
    (not_a_graph / "meta.json").write_text(json.dumps(meta))
    one_line_error(runner.invoke(cli, ["sample", str(not_a_graph)]), 1, "onnxruntime cannot load it")


def test_a_bundle_has_no_keras_checkpoint_to_train_or_export_from(bundle, tmp_path):
    runner = CliRunner()
    one_line_error(runner.invoke(cli, ["export", str(bundle), str(tmp_path / "again")]), 2, "a bundle, which holds no Keras checkpoint")
    assert not (tmp_path / "again").exists()


def test_records_of_a_bundle_sample_name_its_graph_and_reproduce(bundle, tmp_path):
    runner = CliRunner()
    out = tmp_path / "out.txt"
    result = runner.invoke(cli, ["sample", str(bundle), "--seed", "4", "--length", "60", "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    record = json.loads((tmp_path / "out.txt.json").read_text())
    assert record["checkpoint"].endswith("model.onnx") and record["seed"] == 4
    again = runner.invoke(cli, ["sample", str(bundle), "--seed", "4", "--length", "60"])
    assert out.read_text() == record["text"] and again.stdout.rstrip("\n") == record["text"].rstrip("\n")


def test_co_writing_on_a_bundle_offers_the_candidates_of_its_run_and_replays(trained_run, bundle, tmp_path):
    from generate.cowriting.candidates import CandidateMaker

    makers = [CandidateMaker(load_generator(run, num_samples=4), SampleOptions(), length=60) for run in (trained_run, bundle)]
    first = makers[0]("Thou art", 4, 0.9, seed=5)
    assert makers[1]("Thou art", 4, 0.9, seed=5) == first and len(first) == 4
    text = "Thou art" + first[0]
    assert makers[1](text, 4, 0.9, seed=6) == makers[0](text, 4, 0.9, seed=6)  # continued from cached states


def test_a_job_file_runs_a_bundle(bundle, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    jobs = tmp_path / "jobs.toml"
    jobs.write_text(f'[[job]]\nname = "poem"\nmodel = "{bundle}"\ncount = 2\nprime = "Shall "\nlength = 40\n'
                    'out = "out/{job}-{n}"\nformats = ["txt"]\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["run", str(jobs), "--run-id", "one"])
    assert result.exit_code == 0, result.stderr
    record = json.loads((tmp_path / "out" / "poem-2.txt.json").read_text())
    assert record["checkpoint"].endswith("model.onnx") and record["text"].startswith("Shall ")


@pytest.mark.parametrize("kind, model_file", [("savedmodel", "saved_model.pb"), ("litert", "model.tflite")])
def test_savedmodel_and_litert_exports_step_as_the_bundle_does(trained_run, bundle, tmp_path, kind, model_file):
    from generate.model.backend import tensorflow_export

    runner = CliRunner()
    dest = tmp_path / kind
    result = runner.invoke(cli, ["export", str(trained_run), str(dest), "--format", kind])
    assert result.exit_code == 0, result.stderr
    meta = json.loads((dest / "meta.json").read_text())
    assert meta["format"] == f"generate-step-{kind}" and meta["model_file"] == model_file
    assert meta["graph"]["self_check"]["largest_logit_difference"] <= 1e-4 and model_file in meta["files"]
    states = meta["graph"]["inputs"][1:]
    run = (tensorflow_export.saved_model_runner(dest, states) if kind == "savedmodel"
           else tensorflow_export.litert_runner((dest / model_file).read_bytes(), states))
    onnx = load_generator(bundle).sampler.net
    ids = np.random.default_rng(0).integers(0, onnx.vocab_size, size=(40, 3))  # three streams at once
    ours, theirs = onnx.initial_states(3), onnx.initial_states(3)
    for step_ids in ids:
        (expected, ours), (received, theirs) = onnx.step(step_ids, ours), run(step_ids, theirs)
        assert np.abs(expected - received).max() <= 1e-4
    assert "files match meta.json" in runner.invoke(cli, ["info", str(dest)]).stdout
    assert f"{dest}\tlstm 2x16\t{kind} bundle" in runner.invoke(cli, ["list", str(tmp_path)]).stdout
    one_line_error(runner.invoke(cli, ["sample", str(dest)]), 1, f"a --format {kind} export", "ONNX bundles")
    one_line_error(runner.invoke(cli, ["export", str(trained_run), str(tmp_path / "half"), "--format", kind, "--float16"]),
                   2, "--float16: expected --format onnx or keras")


def test_a_bundle_reads_only_its_own_files_and_a_meta_that_does_not_fit_its_graph_is_one_line(bundle, tmp_path):
    from generate.pipeline.loaded import LoadedModel
    from generate.serving.server import model_card

    runner = CliRunner()
    outside = tmp_path / "outside"
    outside.mkdir()
    for name in ("vocab.json", "model.onnx"):
        linked = tmp_path / f"linked-{name}"
        shutil.copytree(bundle, linked)
        shutil.copyfile(bundle / name, outside / name)
        (linked / name).unlink()
        (linked / name).symlink_to(outside / name)  # the same bytes, so the hash alone would pass it
        for command in (["sample", str(linked)], ["info", str(linked)]):
            one_line_error(runner.invoke(cli, command), 1, str(linked / name), "symbolic link")
    card = tmp_path / "card"
    shutil.copytree(bundle, card)
    (outside / "secret.txt").write_text("not for the world")
    (card / "README.md").unlink(missing_ok=True)
    (card / "README.md").symlink_to(outside / "secret.txt")
    assert model_card(LoadedModel(str(card)))["card"] is None

    meta = json.loads((bundle / "meta.json").read_text())
    graph, architecture = meta["graph"], meta["architecture"]
    for edit, needle in (
        ({"graph": {**graph, "inputs": ["ids", "state0"]}}, "inputs"),
        ({"graph": {**graph, "inputs": [*graph["inputs"], "state9"]}}, "inputs"),
        ({"architecture": {**architecture, "label_count": 3}}, "inputs"),
        ({"graph": {**graph, "state_units": 10**13}}, "state_units"),
        ({"graph": {**graph, "state_units": 10**9}}, "state_units"),
        ({"architecture": {**architecture, "vocab_size": 1_000_000}}, "vocab_size"),
        ({"graph": {**graph, "state_units": graph["state_units"] + 1}}, "state_units"),
    ):
        forged = tmp_path / f"forged-{len(list(tmp_path.iterdir()))}"
        shutil.copytree(bundle, forged)
        (forged / "meta.json").write_text(json.dumps({**meta, **edit}))
        one_line_error(runner.invoke(cli, ["sample", str(forged), "--length", "5"]), 1, "meta.json", needle)


@pytest.mark.parametrize("location", ["weights.bin", "../outside-weights.bin"])
def test_external_data_that_meta_json_does_not_list_never_loads(bundle, tmp_path, location):
    onnx = pytest.importorskip("onnx")
    import hashlib

    forged = tmp_path / "forged" / "bundle"
    shutil.copytree(bundle, forged)
    # The weights move to a file beside (or outside) the bundle; meta.json is rewritten to hash the new graph,
    # as anyone can, but lists no such file.
    onnx.save_model(onnx.load(str(bundle / "model.onnx")), str(forged / "model.onnx"), save_as_external_data=True,
                    location="weights.bin", size_threshold=0)
    graph = onnx.load(str(forged / "model.onnx"), load_external_data=False)
    if location != "weights.bin":
        (forged / "weights.bin").rename(forged / location)
        for tensor in graph.graph.initializer:
            for entry in tensor.external_data:
                if entry.key == "location":
                    entry.value = location
        (forged / "model.onnx").write_bytes(graph.SerializeToString())
    assert (forged / location).resolve().is_file() and len(graph.graph.initializer[0].external_data)
    meta = json.loads((forged / "meta.json").read_text())
    meta["files"]["model.onnx"] = hashlib.sha256((forged / "model.onnx").read_bytes()).hexdigest()
    (forged / "meta.json").write_text(json.dumps(meta))
    one_line_error(CliRunner().invoke(cli, ["sample", str(forged), "--length", "5"]), 1, str(forged / "model.onnx"))
