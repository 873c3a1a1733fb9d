"""Round-trip rates of the music encodings on the collections music21 ships.

    python benchmarks/music_roundtrip.py --folk 1500 --seed 0   # a random sample of corpus:folk tunes
    python benchmarks/music_roundtrip.py --folk 0 --chorales    # every unique four-part Bach chorale

A piece round-trips when music21 -> events -> text -> events gives back the
same notes, rests, bar lines, meter and key (and fermatas, for chorales).
"""

from __future__ import annotations

import argparse
import collections
import random
import time

from generate.music.chorale import decode_chorale, encode_chorale
from generate.music.dataset import resolve_music_files
from generate.music.melody import decode_tune, encode_tune
from generate.music.sources import abc_tune_numbers, chorale_from_score, parse_abc_tune, tune_from_score


def folk(count: int, seed: int) -> None:
    files = resolve_music_files(["corpus:folk"])
    jobs = [(p, n) for p in files for n in abc_tune_numbers(p)]
    sample = random.Random(seed).sample(jobs, min(count, len(jobs)))
    exact = parsed = 0
    start = time.perf_counter()
    for path, number in sample:
        try:
            tune = tune_from_score(parse_abc_tune(path, number))
        except Exception:
            continue
        parsed += 1
        back, _ = decode_tune(encode_tune(tune)[0])
        exact += (back.meter, back.sharps, back.bar_lines, back.events) == (tune.meter, tune.sharps, tune.bar_lines, tune.events)
    print(f"melody: {exact}/{parsed} folk tunes exact ({100 * exact / max(parsed, 1):.1f}%), "
          f"{len(sample) - parsed} failed to parse, {len(jobs)} tunes in the collection, "
          f"{(time.perf_counter() - start) / max(len(sample), 1):.2f} s/tune")


def chorales() -> None:
    from music21 import converter

    files = resolve_music_files(["corpus:bach"])
    exact = four_part = 0
    skipped: collections.Counter = collections.Counter()
    for path in files:
        try:
            chorale = chorale_from_score(converter.parse(str(path)))
        except ValueError as exc:
            skipped[str(exc)] += 1
            continue
        four_part += 1
        back, _ = decode_chorale(encode_chorale(chorale)[0])
        exact += (back.voices, back.bar_lines, back.fermatas, back.meter, back.sharps) == (
            chorale.voices, chorale.bar_lines, chorale.fermatas, chorale.meter, chorale.sharps)
    print(f"chorale: {exact}/{four_part} four-part chorales exact ({100 * exact / max(four_part, 1):.1f}%), "
          f"of {len(files)} unique files; skipped: {sum(skipped.values())} without four parts")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folk", type=int, default=1500, help="folk tunes to sample (0 skips)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chorales", action="store_true", help="also check every four-part chorale")
    args = parser.parse_args()
    if args.folk:
        folk(args.folk, args.seed)
    if args.chorales:
        chorales()


if __name__ == "__main__":
    main()
