"""Labelled models: trained with labels, sampled in a chosen style (and switched midway), exported, scored, resumed.

The corpus is three styles a small model tells apart at once, each in its own
folder: vowels, digits and capitals. A sample asked for a style must be
written in that style's letters.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from click.testing import CliRunner

from generate.cli import cli

from ..helpers import one_line_error

STYLES = {"vowels": "aeiou", "digits": "0123456789", "caps": "QWXYZ"}
TRAIN = ["--labels", "folder", "--units", "32", "--embedding-dim", "8", "--label-dim", "4", "--batch-size", "8",
         "--seq-len", "32", "--seed", "1"]


def make_styles(root):
    rng = random.Random(0)
    for style, letters in STYLES.items():
        for number in range(3):
            lines = [" ".join("".join(rng.choice(letters) for _ in range(rng.randint(2, 5))) for _ in range(rng.randint(3, 6)))
                     for _ in range(60)]
            path = root / style / f"{number}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def invoke(*args: str):
    return CliRunner().invoke(cli, ["-q", *args])


@pytest.fixture(scope="module")
def styles(tmp_path_factory):
    return make_styles(tmp_path_factory.mktemp("styles") / "styles")


@pytest.fixture(scope="module")
def labelled_run(styles, tmp_path_factory):
    run = tmp_path_factory.mktemp("labelled") / "run"
    result = invoke("train", str(run), str(styles), *TRAIN, "--epochs", "7")
    assert result.exit_code == 0, result.stderr
    return run


@pytest.fixture(scope="module")
def labelled_bundle(labelled_run, tmp_path_factory):
    dest = tmp_path_factory.mktemp("labelled-bundle") / "bundle"
    assert invoke("export", str(labelled_run), str(dest)).exit_code == 0
    return dest


@pytest.fixture(scope="module")
def loaded(labelled_run, labelled_bundle):
    """The run's compiled loop on its `best.keras`, and its bundle on onnxruntime: each loaded once."""
    import generate

    return {"run": generate.load(labelled_run, "best.keras"), "bundle": generate.load(labelled_bundle)}


def share_in(text: str, style: str) -> float:
    letters = [c for c in text if not c.isspace()]
    return sum(c in STYLES[style] for c in letters) / max(len(letters), 1)


def sample(model, *args: str) -> str:
    result = invoke("sample", str(model), "--no-warmup", *args)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_a_sample_is_written_in_the_style_asked_for(labelled_run, loaded):
    text = sample(labelled_run, "--label", "digits", "--seed", "4", "-n", "300")  # the command line's own path
    assert share_in(text[20:], "digits") >= 0.9, text
    for style in STYLES:
        text = loaded["run"].sample(label=style, seed=4, length=300, warmup=False)
        assert share_in(text[20:], style) >= 0.9, (style, text)
    info = invoke("info", str(labelled_run)).stdout
    assert "labels:     from folder" in info and "digits (3 files" in info
    assert json.loads((labelled_run / "labels.json").read_text())["names"] == ["<none>", "caps", "digits", "vowels"]


def test_a_stronger_label_steers_harder(loaded):
    start = "QWX YZ QQ\n"  # capitals: the label has to pull against the text
    shares = [share_in(loaded["run"].sample(prime=start, label="digits", label_strength=strength, seed=seed, length=40)[len(start):],
                       "digits")
              for strength in (1, 3) for seed in range(3)]
    assert sum(shares[3:]) > sum(shares[:3]), shares


def test_a_label_switched_midway_changes_the_style_from_there(loaded):
    text = loaded["run"].sample(label="caps", then_label="digits@150", seed=2, length=300, warmup=False)
    assert share_in(text[20:150], "caps") >= 0.9 and share_in(text[170:], "digits") >= 0.9, text


def test_a_bundle_writes_the_same_bytes_with_labels_and_switches(labelled_run, labelled_bundle, loaded):
    meta = json.loads((labelled_bundle / "meta.json").read_text())
    assert meta["graph"]["inputs"][:2] == ["ids", "label"] and meta["architecture"]["label_count"] == 4
    assert (labelled_bundle / "labels.json").read_text() == (labelled_run / "labels.json").read_text()
    for options in (dict(label="vowels", then_label="caps@40", seed=3), dict(label="digits", greedy=True), dict(seed=5),
                    dict(label="caps", beam=3), dict(label="vowels", label_strength=2.5, seed=6)):
        assert loaded["bundle"].sample(length=120, warmup=False, **options) == \
            loaded["run"].sample(length=120, warmup=False, **options), options


def test_label_any_draws_each_sample_s_label_from_the_seed_and_writes_in_it(labelled_run, loaded):
    from generate.model.label_schedule import drawn_labels

    outputs = loaded["run"].samples(label="any", seed=11, num_samples=8, length=200, warmup=False)
    drawn = [output.record["drawn_label"] for output in outputs]
    shares = (("caps", 3.0), ("digits", 3.0), ("vowels", 3.0))  # three files each
    assert drawn == drawn_labels(11, 8, shares) and len(set(drawn)) > 1, drawn
    for output, style in zip(outputs, drawn):
        assert share_in(output.text[20:], style) >= 0.9, (style, output.text)
    assert drawn_labels(11, 3, shares) == drawn[:3]  # stream i's draw does not depend on the batch after it
    bundle = loaded["bundle"].samples(label="any", seed=11, num_samples=8, length=200, warmup=False)
    assert [o.text for o in bundle] == [o.text for o in outputs]
    beams = loaded["run"].samples(label="any", seed=11, beam=3, num_samples=2, length=60, warmup=False)
    assert {o.record["drawn_label"] for o in beams} == {drawn[0]}  # beams share one label
    assert all(share_in(o.text[20:], drawn[0]) >= 0.9 for o in beams), [o.text for o in beams]


def test_a_keras_export_keeps_the_labels(labelled_run, tmp_path):
    import generate

    exported = tmp_path / "exported"
    assert invoke("export", str(labelled_run), str(exported), "--format", "keras").exit_code == 0
    assert (exported / "labels.json").read_text() == (labelled_run / "labels.json").read_text()
    assert generate.load(exported).sample(label="digits", seed=2, length=60) == \
        generate.load(labelled_run).sample(label="digits", seed=2, length=60)


def test_validation_is_scored_per_label_and_without_labels(labelled_run, labelled_bundle):
    from generate.model.rundir import RunDir

    rows = {}
    for model in (labelled_run, labelled_bundle):
        result = invoke("score", str(model), "--split", "val", "--json")
        assert result.exit_code == 0, result.stderr
        rows[model] = {row["name"]: row for row in map(json.loads, result.stdout.splitlines())}
    run_rows = rows[labelled_run]
    assert set(run_rows) == {"validation", "validation caps", "validation digits", "validation vowels",
                             "validation without labels"}  # a share of every label is held out, not the corpus's tail
    shares = [run_rows[f"validation {name}"]["chars"] for name in ("caps", "digits", "vowels")]
    assert max(shares) < 1.6 * min(shares)  # about the same share of each (their folders differ a little in size)
    best = min(float(row["val_loss"]) for row in RunDir(labelled_run).read_history())
    assert abs(run_rows["validation"]["nats"] - best) < 1e-4
    assert run_rows["validation"]["nats"] < run_rows["validation without labels"]["nats"]
    for name, row in run_rows.items():
        assert abs(rows[labelled_bundle][name]["nats"] - row["nats"]) < 1e-4, name
    vowels = labelled_run.parent / "vowels.txt"
    vowels.write_text("aeiou ua eio\n" * 20)
    scored = {label: float(invoke("score", str(labelled_run), str(vowels), "--label", label).stdout.split("\t")[2].split()[0])
              for label in ("vowels", "digits")}
    assert scored["vowels"] < scored["digits"]


def test_labels_resume_exactly(styles, labelled_run, tmp_path):
    from generate.model.checkpoint import load_trainable_model
    from generate.model.rundir import RunDir

    short = tmp_path / "short"
    assert invoke("train", str(short), str(styles), *TRAIN, "--epochs", "1").exit_code == 0
    resumed = invoke("train", str(short), "--resume", "--epochs", "7")
    assert resumed.exit_code == 0, resumed.stderr
    for a, b in zip(load_trainable_model(RunDir(short).latest).get_weights(),
                    load_trainable_model(RunDir(labelled_run).latest).get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_model_without_labels_starts_a_labelled_one_as_the_same_function(styles, tmp_path):
    from generate.model.builder import build_model, pack_labels, reset_states
    from generate.model.checkpoint import load_weights_into
    from generate.model.rundir import RunDir

    plain = tmp_path / "plain"
    assert invoke("train", str(plain), str(styles), *TRAIN[2:], "--epochs", "1").exit_code == 0
    source = RunDir(plain)
    labelled_cfg = source.load_config().model.__class__(**{**source.load_config().model.__dict__, "label_count": 4, "label_dim": 4})
    model, original = build_model(labelled_cfg, 1), build_model(source.load_config().model, 1)
    load_weights_into(model, source.best, source.load_config().model)
    load_weights_into(original, source.best)
    ids = np.arange(30)[None, :] % labelled_cfg.vocab_size
    expected = np.asarray(original(ids))
    for label in range(4):
        reset_states(model)
        np.testing.assert_allclose(np.asarray(model(pack_labels(ids, np.full(ids.shape, label), labelled_cfg.vocab_size))),
                                   expected, atol=1e-6)


def test_bad_labels_are_one_line_naming_the_option(labelled_run, trained_run, styles, tmp_path):
    one_line_error(invoke("sample", str(labelled_run), "--label", "jig"), 2, "--label", "caps, digits, vowels or none", "'jig'")
    one_line_error(invoke("sample", str(labelled_run), "--then-label", "digits"), 2, "--then-label", "LABEL@N")
    one_line_error(invoke("sample", str(trained_run), "--label", "caps"), 2, "--label", "trained without labels")
    one_line_error(invoke("sample", str(trained_run), "--label-strength", "2"), 2, "--label-strength", "trained without labels")
    one_line_error(invoke("sample", str(labelled_run), "--label-strength", "11"), 2, "--label-strength", "[0, 10]")
    one_line_error(invoke("score", str(labelled_run), str(styles / "caps" / "0.txt"), "--label", "x"), 2, "--label")
    one_line_error(invoke("train", str(tmp_path / "r"), str(styles), "--labels", "rhythm"), 2, "--labels rhythm",
                   "expected a music corpus")
    one_line_error(invoke("train", str(tmp_path / "r"), str(styles), "--labels", "genre"), 2, "--labels", "folder, tsv:FILE")
    assert not (tmp_path / "r").exists()


def test_the_engine_serves_each_stream_its_own_label_among_others(labelled_bundle):
    import threading

    from generate.pipeline.loaded import LoadedModel
    from generate.sampling.options import SampleOptions, command_words
    from generate.serving.engine import Engine, Ticket
    from generate.serving.server import model_card

    model = LoadedModel(labelled_bundle)
    assert model_card(model)["labels"] == ["caps", "digits", "vowels"]
    asks = [SampleOptions(label=style, seed=i, length=120, warmup=False) for i, style in enumerate(STYLES)]
    asks.append(SampleOptions(label="vowels", then_label="digits@50", seed=9, length=120, warmup=False))
    alone = [[o.text for o in model.run(model.prepare(options)).outputs] for options in asks]
    engine = Engine(model.generator.sampler, "styles", max_streams=16, max_queued=16)
    together: dict[int, list[str]] = {}

    def ask(i):
        together[i] = [o.text for o in model.run(model.prepare(asks[i]), runner=engine.bind(Ticket())).outputs]

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(asks))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    engine.stop()
    assert [together[i] for i in range(len(asks))] == alone
    again = command_words("styles", asks[-1])
    assert again[again.index("--label"):again.index("--label") + 4] == ["--label", "vowels", "--then-label", "digits@50"]


def test_co_writing_candidates_keep_the_session_s_label(labelled_run):
    from generate.cowriting.candidates import CandidateMaker
    from generate.cowriting.write import WriteOptions, verify
    from generate.pipeline.loaded import LoadedModel

    model = LoadedModel(labelled_run)
    written = {}
    for style in ("digits", "caps"):
        options = WriteOptions(label=style, length=40, candidates=3, text="\n")
        maker = CandidateMaker(model.generator, verify(options, model.facts), options.length)
        written[style] = "".join("".join(maker("\n", count=3, temperature=0.8, seed=seed)) for seed in range(3))
    # A small model drifts now and then; without the label both would be the same mixture.
    assert share_in(written["digits"], "digits") - share_in(written["caps"], "digits") >= 0.6, written
    assert share_in(written["caps"], "caps") - share_in(written["digits"], "caps") >= 0.6, written


def test_the_replicas_model_reads_labels_as_the_stateful_one_does(labelled_run):
    """What each replica of a distributed run steps (states passed in and out) gives the stateful model's logits."""
    from generate.model.builder import build_explicit_state_model, build_model, pack_labels, state_shapes
    from generate.model.checkpoint import load_weights_into
    from generate.model.rundir import RunDir

    cfg = RunDir(labelled_run).load_config().model
    stateful, replica = build_model(cfg, 2, 16), build_explicit_state_model(cfg, 2, 16)
    load_weights_into(stateful, RunDir(labelled_run).best)
    replica.set_weights(stateful.get_weights())
    ids = np.random.default_rng(0).integers(0, cfg.vocab_size, (2, 16))
    packed = pack_labels(ids, np.random.default_rng(1).integers(0, cfg.label_count, (2, 16)), cfg.vocab_size)
    zeros = [np.zeros((2, width), np.float32) for width in state_shapes(cfg)]
    logits, *_ = replica([packed, *zeros])
    np.testing.assert_allclose(np.asarray(logits), np.asarray(stateful(packed)), atol=1e-5)
    assert not np.allclose(np.asarray(replica([pack_labels(ids, np.zeros_like(ids), cfg.vocab_size), *zeros])[0]), np.asarray(logits))
