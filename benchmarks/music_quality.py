"""Sampled music, checked as a listener's tools would: MIDI validity, voices, notes, key.

    python benchmarks/music_quality.py RUN [--samples 50] [--seed 1]

Samples N pieces from a trained music run, in one batch, to MIDI files in a
temporary directory. It re-reads each file with both mido and music21 and
reports:
- how many files hold the expected number of voices (1 melody, 4 chorale);
- the minimum and median note count;
- the share of notes inside the header's key signature, for the samples and
  for the run's training corpus side by side;
- the same against the key music21 finds by analysis (blind to our headers),
  and the share of pieces with no note outside it, for the samples and for
  a random draw of corpus pieces.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
from pathlib import Path

from generate.data.corpus import load_corpus
from generate.model.rundir import resolve_run
from generate.music.keys import in_key_fraction
from generate.music.midi import read_midi_notes
from generate.music.render import render_music
from generate.sampling.generator import generate_samples, load_generator
from generate.sampling.options import SampleOptions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--temperature", type=float, default=0.9)
    parser.add_argument("--corpus-pieces", type=int, default=200, help="corpus pieces analysed with music21")
    parser.add_argument("--key-penalty", type=float, default=None, help="nats; default: the run's default; inf forbids")
    args = parser.parse_args()

    import mido
    from music21 import converter

    run = resolve_run(args.run)
    config = run.load_config()
    encoding = config.corpus.encoding
    voices_expected = 4 if encoding == "chorale" else 1
    gen = load_generator(run.path, num_samples=args.samples)
    cfg = gen.resolve(SampleOptions(length=8000, temperature=args.temperature, num_samples=args.samples, seed=args.seed,
                                    key_penalty=args.key_penalty))
    samples = generate_samples(gen, cfg)  # no prime: each stream warms up on one tune first
    good_voices, note_counts, in_key, notes_total, analysed = 0, [], 0, 0, []
    with tempfile.TemporaryDirectory() as folder:
        for i, sample in enumerate(samples):
            path = Path(folder) / f"{i:03d}.mid"
            render_music(sample.text, path, encoding=encoding)
            mido.MidiFile(str(path))  # raises if the file is invalid
            parsed = converter.parse(str(path))
            tracks = read_midi_notes(path)
            good_voices += len(tracks) == voices_expected and len(parsed.parts) == voices_expected
            note_counts.append(sum(len(t) for t in tracks))
            k, n = in_key_fraction(sample.text, encoding)
            in_key, notes_total = in_key + k, notes_total + n
            analysed.append(analysed_key_share(parsed))
        corpus_text = load_corpus(config.corpus, show_progress=False).files[0].read_text(encoding="utf-8").splitlines()
        rng = random.Random(args.seed)
        corpus_analysed = []
        for j, line in enumerate(rng.sample(corpus_text, min(args.corpus_pieces, len(corpus_text)))):
            path = Path(folder) / f"corpus-{j:03d}.mid"
            render_music(line, path, encoding=encoding)
            corpus_analysed.append(analysed_key_share(converter.parse(str(path))))
    corpus_in_key = [in_key_fraction(line, encoding) for line in corpus_text]
    corpus_share = sum(k for k, _ in corpus_in_key) / max(sum(n for _, n in corpus_in_key), 1)
    print(f"run {run.path} ({encoding}), {args.samples} samples at temperature {args.temperature}, "
          f"key penalty {cfg.key_penalty}, seed {args.seed}")
    print(f"MIDI files valid (mido and music21): {args.samples}/{args.samples}")
    print(f"files with {voices_expected} voice(s): {good_voices}/{args.samples}")
    print(f"notes per file: min {min(note_counts)}, median {statistics.median(note_counts):.0f}, max {max(note_counts)}")
    print(f"notes in the header's key: samples {in_key / max(notes_total, 1):.1%} vs corpus {corpus_share:.1%}")
    print(f"notes in music21's analysed key: samples {_share(analysed):.1%} vs corpus {_share(corpus_analysed):.1%} "
          f"({len(corpus_analysed)} corpus pieces)")
    print(f"pieces with every note in the analysed key: samples {_all_in(analysed):.1%} vs corpus {_all_in(corpus_analysed):.1%}")


def analysed_key_share(score) -> tuple[int, int]:
    """(notes in the key music21's Krumhansl-Schmuckler analysis finds, notes): a measure blind to our headers."""
    found = score.analyze("key")
    scale = {p.pitchClass for p in found.getScale(found.mode).getPitches()}
    pitches = [p.pitchClass for n in score.recurse().notes for p in n.pitches]
    return sum(pc in scale for pc in pitches), len(pitches)


def _share(counts: list[tuple[int, int]]) -> float:
    return sum(k for k, _ in counts) / max(sum(n for _, n in counts), 1)


def _all_in(counts: list[tuple[int, int]]) -> float:
    return sum(k == n for k, n in counts) / max(len(counts), 1)


if __name__ == "__main__":
    main()
