"""`generate corpus inspect`: what a music corpus would take from each file, before building it."""

from __future__ import annotations

from collections.abc import Iterator

from .dataset import MIDI_SUFFIXES, resolve_music_files
from .fast_midi import inspect_file


def inspect_sources(sources: list[str], encoding: str = "melody", track: str = "auto") -> Iterator[dict]:
    """One dict per music file in `sources`: MIDI files with their tracks and choices, others named as music21's.

    Raises:
        UsageError: a missing source or one with no music files.
    """
    for path in resolve_music_files(sources):
        if path.suffix.lower() in MIDI_SUFFIXES:
            yield inspect_file(path, encoding, track)
        else:
            yield {"file": str(path), "reader": f"{path.suffix.lower()[1:]}: read by music21 when the corpus is built",
                   "tracks": []}
