"""How often the fast MIDI path and the music21 path give the same text, on MIDI renderings of real music.

    python benchmarks/music_agreement.py [--tunes 30] [--chorales 10]

Renders seeded samples of the built-in folk tunes (ABC, through music21) and
Bach chorales to MIDI with `write_midi`, then encodes each rendering through
both paths and compares the texts. Prints the counts, and for each
difference whether the original has notes off the sixteenth and
eighth-triplet grids (the documented cause).
"""

from __future__ import annotations

import argparse
import random
import tempfile
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tunes", type=int, default=30)
    parser.add_argument("--chorales", type=int, default=10)
    args = parser.parse_args()

    from music21 import converter, corpus

    from generate.music.chorale import encode_chorale
    from generate.music.dataset import encode_piece
    from generate.music.melody import encode_tune
    from generate.music.midi import write_midi
    from generate.music.sources import abc_tune_numbers, chorale_from_score, parse_abc_tune, tune_from_score

    def on_grid(events) -> bool:
        return all((t * 4).denominator == 1 or (t * 3).denominator == 1 for e in events for t in (e.onset, e.onset + e.duration))

    work = Path(tempfile.mkdtemp(prefix="music-agreement-"))
    paths = sorted(p for p in corpus.getPaths()
                   if any(k in str(p) for k in ("essenFolksong", "oneills1850", "airdsAirs", "ryansMammoth")))
    rng = random.Random(3)
    same = different_off_grid = different_on_grid = 0
    for i, path in enumerate(rng.sample(paths, args.tunes)):
        tune = tune_from_score(parse_abc_tune(path, rng.choice(abc_tune_numbers(path))))
        midi = work / f"tune{i}.mid"
        write_midi(midi, [tune.events], meter=tune.meter, sharps=tune.sharps)
        fast = encode_piece((str(midi), None), "melody")[0]
        slow = encode_tune(tune_from_score(converter.parse(str(midi))))[0]
        if fast == slow:
            same += 1
        elif on_grid(tune.events):
            different_on_grid += 1
            print(f"differs on the grid: {path.name}")
        else:
            different_off_grid += 1
    print(f"folk tunes: {same}/{args.tunes} identical; {different_off_grid} differ with notes off the grid, "
          f"{different_on_grid} on it")
    chorale_paths = sorted(p for p in corpus.getPaths() if "/bach/" in str(p) and p.suffix == ".mxl")
    same = tried = 0
    for i, path in enumerate(random.Random(2).sample(chorale_paths, args.chorales)):
        try:
            chorale = chorale_from_score(corpus.parse(path))
        except ValueError:  # not four voices
            continue
        tried += 1
        midi = work / f"chorale{i}.mid"
        write_midi(midi, chorale.voices, meter=chorale.meter, sharps=chorale.sharps)
        same += encode_piece((str(midi), None), "chorale")[0] == encode_chorale(chorale_from_score(converter.parse(str(midi))))[0]
    print(f"chorales: {same}/{tried} identical")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
