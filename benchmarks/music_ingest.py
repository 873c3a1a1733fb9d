"""Music ingestion at scale: the fast MIDI path against music21, and memory over many files.

    python benchmarks/music_ingest.py [--files 200] [--music21-files 4] [--scale-files 0]

1. Makes `--files` multi-track MIDI files of realistic size (a melody, bass,
   chords and drums; 50-200 KB each, about 100 KB on average), then ingests
   them through `generate`'s corpus builder (symusic, in parallel, cached per
   file) from a cold cache, and prints files/s, MB/s and peak memory.
2. In the same run, times mido and symusic parsing 20 of them (the parsers
   alone), and parses `--music21-files` of them through the music21 path
   (`converter.parse` and the same reduction to a melody) and prints the
   ratio of seconds per file.
3. With `--scale-files N`, makes N small distinct files (a few hundred bytes
   each), ingests them, prints the peak resident memory of the builder and of
   its largest worker, then adds 10 files and ingests again: only those 10
   are read. Run it alone (`--files 0 --music21-files 0`): the music21 part
   would otherwise raise this process's own peak.

Targets on this 2-core machine: at least 50 files/s for files of about
100 KB, and 100,000 files in under 2 GB RSS.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import tempfile
import time
from pathlib import Path


def varlen(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def track_bytes(events: list[tuple[int, bytes]], name: str) -> bytes:
    """A track chunk from (tick, message bytes) pairs."""
    body = bytearray(b"\x00\xff\x03" + varlen(len(name)) + name.encode())
    now = 0
    for tick, message in sorted(events, key=lambda e: (e[0], e[1][0] & 0xF0 == 0x90)):
        body += varlen(tick - now) + message
        now = tick
    body += b"\x00\xff\x2f\x00"
    return b"MTrk" + len(body).to_bytes(4, "big") + bytes(body)


def band_file(path: Path, bars: int, rng: random.Random) -> None:
    """A type-1 file: tempo, time and key signatures; melody, bass, chords and drums (channel 10)."""
    tpq, bar = 480, 1920
    meta = [(0, b"\xff\x51\x03" + (500000).to_bytes(3, "big")), (0, b"\xff\x58\x04\x04\x02\x18\x08"),
            (0, b"\xff\x59\x02\x01\x00")]

    def notes(channel: int, spec: list[tuple[int, int, int]]) -> list[tuple[int, bytes]]:
        return [(on, bytes([0x90 | channel, pitch, 90])) for on, pitch, _ in spec] + \
               [(on + dur, bytes([0x80 | channel, pitch, 0])) for on, pitch, dur in spec]

    melody = [(b * bar + k * 240, rng.randint(67, 84), rng.choice((120, 220, 240))) for b in range(bars) for k in range(8)]
    bass = [(b * bar + k * 480, rng.randint(36, 48), 440) for b in range(bars) for k in range(4)]
    chords = [(b * bar + k * 960, root + d, 900) for b in range(bars) for k in range(2)
              for root in (rng.randint(55, 62),) for d in (0, 4, 7)]
    drums = [(b * bar + k * 120, 42 if k % 2 else 36, 60) for b in range(bars) for k in range(16)]
    chunks = [track_bytes(meta, "Song"),
              track_bytes([(0, b"\xc0\x49")] + notes(0, melody), "Melody"),
              track_bytes([(0, b"\xc1\x21")] + notes(1, bass), "Bass"),
              track_bytes([(0, b"\xc2\x00")] + notes(2, chords), "Piano"),
              track_bytes(notes(9, drums), "Drums")]
    header = b"MThd" + (6).to_bytes(4, "big") + (1).to_bytes(2, "big") + len(chunks).to_bytes(2, "big") + tpq.to_bytes(2, "big")
    path.write_bytes(header + b"".join(chunks))


def small_file(path: Path, index: int) -> None:
    """A one-track tune of 16 notes, different for every index."""
    rng = random.Random(index)
    events = [(k * 480, bytes([0x90, 60 + rng.randint(0, 24), 80])) for k in range(16)]
    events += [(k * 480 + 400, bytes([0x80, events[k][1][1], 0])) for k in range(16)]
    header = b"MThd" + (6).to_bytes(4, "big") + (1).to_bytes(2, "big") + (1).to_bytes(2, "big") + (480).to_bytes(2, "big")
    path.write_bytes(header + track_bytes(events, f"tune {index}"))


def peak_rss_mb() -> tuple[float, float]:
    """(this process, its largest child) peak resident memory, in MB."""
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)


def run_band(work: Path, args) -> None:
    """Parts 1 and 2: realistic band files through the fast path, mido, symusic and music21."""
    from generate.music.dataset import encode_music_corpus

    folder = work / "band"
    folder.mkdir()
    rng = random.Random(0)
    for i in range(args.files):
        band_file(folder / f"song{i:05d}.mid", rng.randint(185, 555), rng)
    sizes = [p.stat().st_size for p in folder.iterdir()]
    print(f"{args.files} files, {min(sizes) / 1000:.0f}-{max(sizes) / 1000:.0f} KB, mean {statistics.mean(sizes) / 1000:.0f} KB, "
          f"{sum(sizes) / 1e6:.1f} MB")
    started = time.perf_counter()
    out = encode_music_corpus([str(folder)], show_progress=False)
    fast = time.perf_counter() - started
    print(f"fast path: {fast:.1f} s, {args.files / fast:.1f} files/s, {sum(sizes) / 1e6 / fast:.1f} MB/s "
          f"({len(out.read_text().splitlines())} tunes)")

    # The parsers alone, on the same files: mido (pure Python) against symusic (C++).
    import mido
    import symusic

    sample = sorted(folder.iterdir())[:20]
    started = time.perf_counter()
    for path in sample:
        mido.MidiFile(str(path))
    mido_ms = (time.perf_counter() - started) / len(sample) * 1000
    started = time.perf_counter()
    for path in sample:
        symusic.Score(str(path))
    symusic_ms = (time.perf_counter() - started) / len(sample) * 1000
    print(f"parsing alone, {len(sample)} files: mido {mido_ms:.0f} ms per file, symusic {symusic_ms:.1f} ms "
          f"({mido_ms / symusic_ms:.0f}x)")

    if args.music21_files:
        from music21 import converter

        from generate.music.melody import encode_tune
        from generate.music.sources import tune_from_score

        chosen = sorted(folder.iterdir())[: args.music21_files]
        started = time.perf_counter()
        for path in chosen:
            encode_tune(tune_from_score(converter.parse(str(path))))
        slow = (time.perf_counter() - started) / len(chosen)
        print(f"music21 path: {slow:.1f} s per file ({1 / slow:.2f} files/s) on {len(chosen)} of them; "
              f"the fast path is {slow / (fast / args.files):.0f}x faster")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--music21-files", type=int, default=4)
    parser.add_argument("--scale-files", type=int, default=0)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="music-ingest-"))
    os.environ["GENERATE_CACHE_DIR"] = str(work / "cache")
    from generate.music.dataset import encode_music_corpus

    if args.files:
        run_band(work, args)
    if args.scale_files:
        many = work / "many"
        many.mkdir()
        started = time.perf_counter()
        for i in range(args.scale_files):
            small_file(many / f"{i // 1000:03d}-{i:06d}.mid", i)
        print(f"made {args.scale_files} small files in {time.perf_counter() - started:.0f} s")
        started = time.perf_counter()
        encode_music_corpus([str(many)], show_progress=False)
        elapsed = time.perf_counter() - started
        own, child = peak_rss_mb()
        print(f"ingested {args.scale_files} files in {elapsed:.0f} s ({args.scale_files / elapsed:.0f} files/s); "
              f"peak RSS {own:.0f} MB (builder), {child:.0f} MB (largest worker)")
        for i in range(args.scale_files, args.scale_files + 10):
            small_file(many / f"new-{i:06d}.mid", i)
        started = time.perf_counter()
        out = encode_music_corpus([str(many)], show_progress=False)
        import json

        meta = json.loads(out.with_suffix(".json").read_text())
        print(f"10 files added: {meta['parsed']} parsed, {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
