"""Writes a shipped model's int8 bundle beside it, as its own shipped model: `checkpoints/NAME-int8`.

    python checkpoints/make_int8.py shakespeare tang python

Each is `generate export NAME checkpoints/NAME-int8 --quantize int8`, which
writes it only if it passes its checks against the float32 graph (validation
bits per character within 1%, samples within 2% as likely; see
`generate/training/quantize.py`), then a model card (README.md) with what
those checks measured. A model whose int8 graph fails is left out, and the
reason printed. Run it again after retraining a shipped model.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from generate.errors import GenerateError, UsageError
from generate.model.rundir import RunDir, resolve_run
from generate.training.quantize import export_quantized

CHECKPOINTS = Path(__file__).resolve().parent

CARD = """# {name}

`{source}` with int8 weights: the same network, quantized per output channel
by onnxruntime's dynamic quantization (every MatMul's weights and the first
layer's table), activations in float32. A bundle only: it samples, scores
and serves like `{source}`, and is trained or exported from `{source}`.

    generate sample {name} {example}

- **Size:** `model.onnx` is {model_mb:.1f} MB, {ratio:.1%} of the float32 graph's {float_mb:.1f} MB
  (`{source}` ships its float32 graph with float16-stored weights, {shipped_mb:.1f} MB).
- **Validation:** {int8_bpc:.4f} bits per character against float32's {float_bpc:.4f}
  ({loss:+.3%}; `generate score {name} --split val`).
- **Its samples, read by the float32 graph:** {int8_nats:.4f} nats a character against
  float32's own samples' {float_nats:.4f} ({drift:+.2%}; {streams} streams of {length}
  characters each, seed {seed}, at the model's default temperature).
- **Not the same bytes as `{source}`:** int8 logits choose another character now
  and then, and a sample goes its own way from there. A seed gives the same text
  every time from this model, as from any other.

Made by `python checkpoints/make_int8.py {source}`, which runs
`generate export {source} checkpoints/{name} --quantize int8`: the bundle is
written only if validation is within 1% of float32's and the samples within 2%.
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="+", help="shipped models, e.g. shakespeare")
    args = parser.parse_args()
    for source in args.names:
        run, name = resolve_run(source), f"{source}-int8"
        dest = CHECKPOINTS / name
        try:
            export_quantized(run, dest, overwrite=True)
        except (GenerateError, UsageError) as exc:
            print(f"{source}: not shipped as int8: {exc}")
            continue
        write_card(run, RunDir(dest), source, name)
        print(dest / "model.onnx", f"{(dest / 'model.onnx').stat().st_size / 1e6:.1f} MB")
    return 0


def write_card(run: RunDir, bundle: RunDir, source: str, name: str) -> None:
    facts = json.loads((bundle.path / "meta.json").read_text(encoding="utf-8"))["quantization"]
    samples = facts["samples_read_by_float32"]
    example = {"tang": "--form 5x4 --seed 1", "python": '--prime "def " --seed 1'}.get(source, "--prime ROMEO: --seed 1")
    (bundle.path / "README.md").write_text(CARD.format(
        name=name, source=source, example=example, model_mb=facts["model_bytes"] / 1e6,
        float_mb=facts["float32_model_bytes"] / 1e6, ratio=facts["size_ratio"],
        shipped_mb=run.model_onnx.stat().st_size / 1e6, int8_bpc=facts["validation_bpc"]["int8"],
        float_bpc=facts["validation_bpc"]["float32"], loss=facts["validation_loss"],
        int8_nats=samples["nats_per_char"]["int8"], float_nats=samples["nats_per_char"]["float32"],
        drift=samples["difference"], streams=samples["streams"], length=samples["length"], seed=samples["seed"]),
        encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
