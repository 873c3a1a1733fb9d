"""The defaults on many corpora: `generate train` with no options for a few minutes, against each unigram entropy.

Each corpus trains with `generate train RUN SOURCES --epochs 1 --max-minutes M`
and nothing else (a code or music corpus also names its `--kind`), so the run
ends after its first epoch or after M minutes, whichever comes first. Then
`generate score RUN --split val --checkpoint latest` scores the validation
split. The unigram entropy is that of the training split's character
frequencies: the loss of a model that learned nothing but them. A validation
split longer than `--val-chars` (the 100 MB corpus's is 10.8 million
characters) is scored on its first `--val-chars` characters instead, with the
same batches and carried states as `generate score`.

Corpora (built under --work from what this machine has; `--only` picks some):
- `prose`: the Vim user manual (`/usr/share/vim/vim90/doc/usr_*.txt`), English prose;
- `prose-100k`: its first 100 KB;
- `verse`: `../shared/data/wujue.txt` as it is, Chinese verse with 6,257 distinct characters;
- `code`: the installed click package's Python source (`--kind code`);
- `melody`, `chorale`: the built-in `corpus:folk` and `corpus:bach` (both music encodings);
- `code-100m`: every `.py` file under this Python's site-packages, about 100 MB (`--kind code`).

    python benchmarks/defaults_any_corpus.py [--minutes 3] [--only prose,verse] [--work /tmp/defaults-any] [--val-chars 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CORPORA = ("prose", "prose-100k", "verse", "code", "melody", "chorale", "code-100m")


def sources(name: str, work: Path) -> list[str]:
    """The `generate train` arguments after RUN that name corpus `name`'s sources and kind."""
    site = Path(sysconfig.get_paths()["purelib"])
    if name in ("prose", "prose-100k"):
        text = "".join(p.read_text(encoding="utf-8", errors="replace")
                       for p in sorted(Path("/usr/share/vim/vim90/doc").glob("usr_*.txt")))
        path = work / f"{name}.txt"
        path.write_text(text[:100_000] if name == "prose-100k" else text, encoding="utf-8")
        return [str(path)]
    if name == "verse":
        return [str(SHARED / "wujue.txt")]
    if name == "code":
        return [str(site / "click"), "--kind", "code", "--include", "*.py"]
    if name == "melody":
        return ["corpus:folk"]
    if name == "chorale":
        return ["corpus:bach"]
    if name == "code-100m":
        return [str(site), "--kind", "code", "--include", "*.py", "--encoding-errors", "skip"]
    raise SystemExit(f"unknown corpus {name!r}; expected one of {', '.join(CORPORA)}")


def entropy_and_head_score(run: Path, val_chars: int) -> tuple[float, int, int, float | None]:
    """(the training split's unigram entropy in nats, its characters, the vocabulary size, and the latest
    checkpoint's loss on the first `val_chars` validation characters, or None when the split is shorter)."""
    import numpy as np

    from generate.data.batching import split_train_val, validation_batches
    from generate.data.corpus import load_corpus
    from generate.data.vocab import unigram_entropy
    from generate.model.backend import import_keras, test_batch
    from generate.model.builder import build_model, reset_states
    from generate.model.checkpoint import load_weights_into
    from generate.model.config import RunConfig
    from generate.model.rundir import RunDir

    config = RunConfig.load(run / "config.json")
    vocab_size = config.model.vocab_size
    ids = load_corpus(config.corpus, show_progress=False).ids(RunDir(run).load_vocab(), show_progress=False)
    train_ids, val_ids = split_train_val(ids, config.train.val_fraction)
    head = None
    if len(val_ids) > val_chars:
        batches = validation_batches(val_ids[:val_chars], config.train.batch_size, config.train.seq_len)
        model = build_model(config.model, batches.batch_size)
        load_weights_into(model, RunDir(run).latest)
        model.compile(loss=import_keras().losses.SparseCategoricalCrossentropy(from_logits=True))
        reset_states(model)
        head = float(np.mean([test_batch(model, *batches.batch(k)) for k in range(len(batches))]))
    return unigram_entropy(train_ids, vocab_size), len(train_ids), vocab_size, head


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--only", default=",".join(CORPORA))
    parser.add_argument("--work", type=Path, default=Path("/tmp/defaults-any"))
    parser.add_argument("--val-chars", type=int, default=1_000_000)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("GENERATE_CACHE_DIR", str(args.work / "cache"))
    generate = [sys.executable, "-m", "generate"]
    print("| corpus | train chars | vocabulary | unigram entropy | val nats | below the entropy | epoch done | wall s |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.only.split(","):
        run = args.work / f"run-{name}"
        if run.exists():
            subprocess.run(["rm", "-rf", str(run)], check=True)
        command = [*generate, "train", str(run), *sources(name, args.work), "--epochs", "1", "--max-minutes", str(args.minutes)]
        started = time.monotonic()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.monotonic() - started
        entropy, chars, vocab_size, val = entropy_and_head_score(run, args.val_chars)
        if val is None:
            scored = subprocess.run([*generate, "score", str(run), "--split", "val", "--checkpoint", "latest", "--json"],
                                    check=True, capture_output=True, text=True)
            val = json.loads(scored.stdout.splitlines()[-1])["nats"]
        history = (run / "history.csv").read_text().splitlines()[1:] if (run / "history.csv").exists() else []
        print(f"| {name} | {chars:,} | {vocab_size:,} | {entropy:.4f} | {val:.4f} | {entropy - val:.4f} | "
              f"{'yes' if history else 'no'} | {wall:.0f} |", flush=True)


if __name__ == "__main__":
    main()
