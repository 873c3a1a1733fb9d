"""Sampled music, checked as a listener's tools would: MIDI validity, voices, notes, key.

    python benchmarks/music_quality.py RUN [--samples 50] [--seed 1]

Samples N pieces from a trained music run, in one batch, to MIDI files in a
temporary directory. It re-reads each file with both mido and music21 and
reports:
- how many files hold the expected number of voices (1 melody, 4 chorale);
- the minimum and median note count;
- the share of notes inside the header's key signature, for the samples and
  for the run's training corpus side by side.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from generate.checkpoint import resolve_run
from generate.corpus import load_corpus
from generate.generation import generate_samples, load_generator
from generate.music.keys import in_key_fraction
from generate.music.midi import read_midi_notes
from generate.music.render import render_music
from generate.sampling import SamplingConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--temperature", type=float, default=0.9)
    args = parser.parse_args()

    import mido
    from music21 import converter

    run = resolve_run(args.run)
    config = run.load_config()
    encoding = config.corpus.encoding
    voices_expected = 4 if encoding == "chorale" else 1
    gen = load_generator(run.path, num_samples=args.samples)
    cfg = SamplingConfig(length=8000, temperature=args.temperature, num_samples=args.samples, seed=args.seed)
    samples = generate_samples(gen, cfg, None)  # no prime: each stream warms up on one tune first
    good_voices, note_counts, in_key, notes_total = 0, [], 0, 0
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
    corpus_text = load_corpus(config.corpus, show_progress=False).files[0].read_text(encoding="utf-8").splitlines()
    corpus_in_key = [in_key_fraction(line, encoding) for line in corpus_text]
    corpus_share = sum(k for k, _ in corpus_in_key) / max(sum(n for _, n in corpus_in_key), 1)
    print(f"run {run.path} ({encoding}), {args.samples} samples at temperature {args.temperature}, seed {args.seed}")
    print(f"MIDI files valid (mido and music21): {args.samples}/{args.samples}")
    print(f"files with {voices_expected} voice(s): {good_voices}/{args.samples}")
    print(f"notes per file: min {min(note_counts)}, median {statistics.median(note_counts):.0f}, max {max(note_counts)}")
    print(f"notes in the header's key: samples {in_key / max(notes_total, 1):.1%} vs corpus {corpus_share:.1%}")


if __name__ == "__main__":
    main()
