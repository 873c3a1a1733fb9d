"""Do the shipped music models' samples all render? Issue #15's check: 50 tunes and 20 chorales.

    python benchmarks/music_render.py [--tunes 50] [--chorales 20] [--seed 1]

Runs `generate sample folk -N 50 -o DIR/folk.mid --seed 1` and
`generate sample bach -N 20 -o DIR/bach.mid --seed 1` (the CLI, as a user
would), then re-reads every MIDI file with mido and counts those that hold
notes in the expected number of voices (1 for a tune, 4 for a chorale).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import mido


def sounding_tracks(path: Path) -> tuple[int, int]:
    """(tracks with a note, notes) in a MIDI file."""
    tracks = [sum(1 for m in track if m.type == "note_on" and m.velocity > 0) for track in mido.MidiFile(path).tracks]
    return sum(1 for n in tracks if n), sum(tracks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tunes", type=int, default=50)
    parser.add_argument("--chorales", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    generate = str(Path(sys.executable).with_name("generate"))
    print("| model | samples | rendered with notes | expected voices | fewest notes |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for model, count, voices in (("folk", args.tunes, 1), ("bach", args.chorales, 4)):
            out = Path(tmp) / f"{model}.mid"
            subprocess.run([generate, "-q", "sample", model, "-N", str(count), "-o", str(out), "--seed", str(args.seed)],
                           check=True, stdout=subprocess.DEVNULL)
            found = [sounding_tracks(path) for path in sorted(out.glob("*.mid"))]
            good = sum(1 for tracks, notes in found if notes and tracks == voices)
            print(f"| {model} | {len(found)} | {good} | {voices} | {min(n for _, n in found)} |")


if __name__ == "__main__":
    main()
