"""The samples a server made, kept by id for a while, and rendered on request: text, record, MIDI, WAV, PNG, score.

Each sample a server answers gets an `id`. `GET /v1/samples/{id}.{format}`
renders it in a scratch directory (music through the same `render_music` as
`generate sample -o tune.mid --wav --png --score`) and answers the bytes. The
last `capacity` samples are kept, in memory only; an older id is gone.
"""

from __future__ import annotations

import json
import secrets
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from ..errors import GenerateError, OptionError
from ..music import RENDER_SUFFIXES
from ..music.render import decode_music
from ..outputs.writers import RenderSettings, write_midi_file

# format -> media type; music formats need a music model's sample
TEXT_FORMATS = {"txt": "text/plain; charset=utf-8", "json": "application/json"}
NOTES_FORMAT = "notes.json"  # music as events a page can draw and play: {"voices": [[[onset, duration, pitch], ...]], ...}
MUSIC_FORMATS = {"mid": "audio/midi", "wav": "audio/wav", "png": "image/png", "musicxml": "application/vnd.recordare.musicxml+xml",
                 "score.png": "image/png", "abc": "text/vnd.abc; charset=utf-8"}
_RENDER_OF = {"wav": "wav", "png": "png", "musicxml": "musicxml", "score.png": "score", "abc": "abc"}


class MissingTool(GenerateError):
    """A render whose tool (fluidsynth, LilyPond) this machine lacks."""


@dataclass(frozen=True)
class Kept:
    text: str
    record: dict
    settings: RenderSettings
    music: bool


class SampleStore:
    """The last `capacity` samples, by id."""

    def __init__(self, capacity: int = 512):
        self.capacity = capacity
        self._kept: OrderedDict[str, Kept] = OrderedDict()
        self._lock = threading.Lock()

    def keep(self, text: str, record: dict, settings: RenderSettings, music: bool) -> str:
        sample_id = secrets.token_hex(8)
        with self._lock:
            self._kept[sample_id] = Kept(text, record, settings, music)
            while len(self._kept) > self.capacity:
                self._kept.popitem(last=False)
        return sample_id

    def get(self, sample_id: str) -> Kept | None:
        with self._lock:
            return self._kept.get(sample_id)


def render(kept: Kept, fmt: str) -> tuple[bytes, str]:
    """The sample in `fmt`, and its media type.

    Raises:
        OptionError: a format that is not one, or a music format for a text sample.
        MissingTool: the render's tool is not installed here.
    """
    if fmt in TEXT_FORMATS:
        body = kept.text if fmt == "txt" else json.dumps({**kept.record, "text": kept.text}, ensure_ascii=False, indent=2)
        return body.encode("utf-8"), TEXT_FORMATS[fmt]
    if fmt == NOTES_FORMAT and kept.music:
        decoded = decode_music(kept.text, kept.settings.encoding)
        notes = {"bpm": kept.settings.bpm, "meter": decoded.meter, "sharps": decoded.sharps,
                 "bar_lines": [float(b) for b in decoded.bar_lines],
                 "voices": [[[float(e.onset), float(e.duration), e.pitch] for e in voice if e.pitch is not None]
                            for voice in decoded.voices]}
        return json.dumps(notes).encode("utf-8"), "application/json"
    if fmt not in MUSIC_FORMATS:
        raise OptionError("format", f"expected one of {', '.join([*TEXT_FORMATS, *MUSIC_FORMATS, NOTES_FORMAT])}, "
                                    f"received {fmt!r}")
    if not kept.music:
        raise OptionError("format", f"a text model's sample is txt or json, not {fmt}")
    with tempfile.TemporaryDirectory(prefix="generate-render-") as scratch:
        # The file's name is the engraved score's title.
        title = f"{Path(str(kept.record.get('run', 'sample'))).name} seed {kept.record.get('seed')}"
        midi = Path(scratch) / f"{title}.mid"
        name = _RENDER_OF.get(fmt)
        settings = RenderSettings(kept.settings.encoding, kept.settings.bpm, kept.settings.program, kept.settings.velocity,
                                  (name,) if name else ())
        facts = write_midi_file(midi, kept.text, kept.record, settings)
        if name and (facts.get("render_errors") or {}).get(name):
            raise MissingTool(facts["render_errors"][name])
        path = midi if name is None else midi.with_suffix(RENDER_SUFFIXES[name])
        return path.read_bytes(), MUSIC_FORMATS[fmt]
