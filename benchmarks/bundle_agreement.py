"""How closely each shipped model's bundle follows its Keras checkpoint: logits, greedy text, fixed-seed text.

    python benchmarks/bundle_agreement.py [--steps 1000] [--length 400]

For each shipped model: the largest logit difference over `--steps`
teacher-forced steps of its validation text (`tests/data/validation_excerpts.json`),
bundle on onnxruntime against `model.predict`; and whether `--length`
characters sampled greedily, and with seed 1 at the model's own defaults,
are the same on the bundle (NumPy loop) and on `best.keras` (compiled loop).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

EXCERPTS = Path(__file__).resolve().parents[1] / "tests" / "data" / "validation_excerpts.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--length", type=int, default=400)
    args = parser.parse_args()

    from generate.model.builder import build_model
    from generate.model.checkpoint import load_weights_into
    from generate.model.rundir import resolve_run
    from generate.sampling.generator import load_generator
    from generate.sampling.options import SampleOptions

    texts = json.loads(EXCERPTS.read_text(encoding="utf-8"))["texts"]
    print("| model | largest logit difference | greedy text | seed 1 text |\n|---|---|---|---|")
    for name, text in texts.items():
        run = resolve_run(name)
        model = build_model(run.load_config().model, 1)
        load_weights_into(model, run.best)
        ids = np.asarray(run.load_vocab().encode(text), np.int32)[: args.steps]
        expected = model.predict(ids[None, :], batch_size=1, verbose=0)[0]
        bundle, keras = load_generator(name), load_generator(name, checkpoint="best.keras")
        states, worst = bundle.sampler.net.initial_states(1), 0.0
        for t, char_id in enumerate(ids):
            logits, states = bundle.sampler.net.step(np.array([char_id]), states)
            worst = max(worst, float(np.abs(expected[t] - logits[0]).max()))
        same = []
        for options in (SampleOptions(greedy=True, length=args.length), SampleOptions(seed=1, length=args.length)):
            a, b = bundle.sample(options)[0].text, keras.sample(options)[0].text
            first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            same.append("same" if a == b else f"differs from character {first}")
        print(f"| {name} | {worst:.1e} over {len(ids)} steps | {same[0]} ({args.length} chars) | {same[1]} |")


if __name__ == "__main__":
    main()
