"""Optional renderings of music: a piano-roll PNG and a WAV file.

PNGs use matplotlib (installed with music21). WAVs need the `fluidsynth`
program and a General MIDI soundfont, both from Debian's `fluidsynth`
package. A missing tool raises `GenerateError` naming the package to
install, and is never a crash.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

from ..errors import GenerateError
from ..fileio import atomic_path
from .melody import Event, meter_quarters

SOUNDFONTS = (
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/default.sf2",
)
VOICE_COLOURS = ("#c0392b", "#2980b9", "#27ae60", "#8e44ad")  # soprano, alto, tenor, bass


def render_png(path: Path, voices: list[list[Event]], bar_lines: list, title: str = "") -> None:
    """Draws a piano roll: time across, pitch up, one colour per voice, bar lines in grey."""
    import matplotlib  # seconds to import: only this render needs it

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt  # (the same)
    from matplotlib.patches import Rectangle  # (the same)

    notes = [(float(e.onset), e.pitch, float(e.duration), v) for v, events in enumerate(voices) for e in events if e.pitch is not None]
    end = max((o + d for o, _, d, _ in notes), default=4.0)
    low = min((p for _, p, _, _ in notes), default=60) - 2
    high = max((p for _, p, _, _ in notes), default=72) + 2
    figure, axes = plt.subplots(figsize=(min(max(end / 3, 6), 24), 4), dpi=100)
    for onset, pitch, duration, voice in notes:
        # A white edge keeps repeated notes apart: eight quavers on one pitch are eight boxes, not one bar.
        axes.add_patch(Rectangle((onset, pitch - 0.4), duration, 0.8, facecolor=VOICE_COLOURS[voice % 4], edgecolor="white", linewidth=1.2))
    for bar in bar_lines:
        axes.axvline(float(bar), color="#bbbbbb", linewidth=0.8, zorder=0)
    axes.set_xlim(0, end)
    axes.set_ylim(low, high)
    octaves = range((low // 12 + 1) * 12, high, 12)
    axes.set_yticks(list(octaves), [f"C{c // 12 - 1}" for c in octaves])
    axes.set_xlabel("quarter notes")
    axes.set_ylabel("pitch")
    axes.set_title(title, fontsize=9)
    figure.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)


def find_soundfont() -> Path:
    configured = os.environ.get("GENERATE_SOUNDFONT")
    for candidate in ([configured] if configured else []) + list(SOUNDFONTS):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise GenerateError("--wav: no General MIDI soundfont found; install Debian's fluidsynth package "
                        "(apt-get install fluidsynth) or set GENERATE_SOUNDFONT to an .sf2 file")


WAV_PEAK_DBFS = -1.0  # where a WAV's loudest sample lands: loud, with a decibel of room for a player's resampling


def render_wav(midi_path: Path, wav_path: Path, sample_rate: int = 44100, gain: float = 0.0) -> None:
    """Synthesises a MIDI file to WAV with fluidsynth, its peak brought to -1 dBFS plus `gain` decibels.

    fluidsynth's own level leaves a solo line near -30 dBFS, too quiet to hear beside other audio.

    Raises:
        GenerateError: fluidsynth or a soundfont is missing, or synthesis failed.
    """
    program = shutil.which("fluidsynth")
    if program is None:
        raise GenerateError("--wav: the fluidsynth program is not installed; install Debian's fluidsynth package (apt-get install fluidsynth)")
    soundfont = find_soundfont()
    with atomic_path(wav_path, suffix=".wav") as tmp:
        done = subprocess.run(
            [program, "-ni", "-q", "-F", str(tmp), "-r", str(sample_rate), str(soundfont), str(midi_path)],
            capture_output=True, text=True, timeout=600,
        )
        if done.returncode != 0 or tmp.stat().st_size <= 44:
            raise GenerateError(f"--wav: fluidsynth failed on {midi_path}: {(done.stderr or done.stdout).strip()[:200]}")
        normalise_wav(tmp, WAV_PEAK_DBFS + gain)


def normalise_wav(path: Path, peak_dbfs: float) -> float:
    """Scales a 16-bit PCM WAV file in place so that its loudest sample sits at `peak_dbfs`; returns the old peak.

    Silence stays silent.
    """
    import wave  # only WAV files need these

    import numpy as np  # (the same)

    with wave.open(str(path), "rb") as source:
        params = source.getparams()
        frames = source.readframes(params.nframes)
    if params.sampwidth != 2:
        raise GenerateError(f"--wav: expected 16-bit samples from fluidsynth, found {8 * params.sampwidth}-bit")
    samples = np.frombuffer(frames, "<i2").astype(np.float64)
    peak = float(np.abs(samples).max()) if samples.size else 0.0
    if peak > 0:
        scaled = samples * (32767 * 10 ** (min(peak_dbfs, 0.0) / 20) / peak)
        with wave.open(str(path), "wb") as target:
            target.setparams(params)
            target.writeframes(np.clip(np.round(scaled), -32768, 32767).astype("<i2").tobytes())
    return 20 * np.log10(peak / 32768) if peak > 0 else float("-inf")


VOICE_NAMES = ("Soprano", "Alto", "Tenor", "Bass")


def build_score(voices: list[list[Event]], meter: str, sharps: int, title: str, fermatas: list | None = None,
                pickup: Fraction = Fraction(0)):
    """A music21 score of the voices, with bars and ties made by music21, and fermatas where a frame holds one.

    A fermata marks the note sounding at (or held through) each fermata onset. With a `pickup` (the
    quarters before the first bar line, when shorter than a bar), the first measure is that short, as
    an anacrusis is engraved: every later bar line falls where the encoding has it.
    """
    from music21 import clef, expressions, key, metadata, note, stream  # seconds to import: only scores need it
    from music21 import meter as m21meter  # (the same)

    # music21 bars from the start: the voices are moved right by what the pickup lacks of a bar, and the
    # first measure's padding taken out again once the measures are made.
    shift = meter_quarters(meter) - pickup if 0 < pickup < meter_quarters(meter) else Fraction(0)
    score = stream.Score()
    score.insert(0, metadata.Metadata(title=title))
    for index, events in enumerate(voices):
        part = stream.Part()
        if len(voices) == len(VOICE_NAMES):
            part.partName = VOICE_NAMES[index]
        part.insert(0, m21meter.TimeSignature(meter))
        part.insert(0, key.KeySignature(max(-7, min(7, sharps))))
        if len(voices) == 4 and index >= 2:
            part.insert(0, clef.BassClef() if index == 3 else clef.Treble8vbClef())
        for event in events:
            element = note.Rest() if event.pitch is None else note.Note(event.pitch)
            element.quarterLength = event.duration
            if any(event.onset <= f < event.onset + event.duration for f in fermatas or ()):
                element.expressions.append(expressions.Fermata())
            part.insert(event.onset + shift, element)
        score.insert(0, part)
    score.makeNotation(inPlace=True)
    if shift:
        for part in score.parts:
            _drop_padding(part.getElementsByClass(stream.Measure).first(), float(shift))
    return score


def _drop_padding(measure, shift: float) -> None:
    """Turns a first measure that starts `shift` quarters late into a pickup measure of what follows."""
    for element in list(measure.notesAndRests):
        if element.offset < shift:
            measure.remove(element)
        else:
            measure.setElementOffset(element, element.offset - shift)
    measure.paddingLeft = shift


def render_abc(path: Path, voices: list[list[Event]], meter: str, sharps: int, bar_lines: list, title: str = "") -> None:
    """Writes the voices in ABC notation."""
    from .abc import to_abc  # only ABC files need it

    with atomic_path(path, suffix=".abc") as tmp:
        tmp.write_text(to_abc(voices, meter, sharps, bar_lines, title or path.stem), encoding="utf-8")


def render_musicxml(path: Path, voices: list[list[Event]], meter: str, sharps: int, title: str = "",
                    fermatas: list | None = None, pickup: Fraction = Fraction(0)) -> None:
    """Writes the voices as a MusicXML score."""
    score = build_score(voices, meter, sharps, title or path.stem, fermatas, pickup)
    with atomic_path(path, suffix=".musicxml") as tmp:
        score.write("musicxml", fp=str(tmp))


def render_score_png(path: Path, voices: list[list[Event]], meter: str, sharps: int, title: str = "",
                     fermatas: list | None = None, pickup: Fraction = Fraction(0)) -> None:
    """Engraves the voices with LilyPond into a cropped PNG.

    music21's own `lily.png` path fails with LilyPond 2.24, so this writes
    the `.ly` file, drops its `lilypond-book-preamble` include, and runs
    `lilypond --png -dcrop` itself.

    Raises:
        GenerateError: LilyPond is not installed, or failed.
    """
    program = shutil.which("lilypond")
    if program is None:
        raise GenerateError("--score: the lilypond program is not installed; install Debian's lilypond package (apt-get install lilypond)")
    score = build_score(voices, meter, sharps, title or path.stem, fermatas, pickup)
    with tempfile.TemporaryDirectory() as folder:
        written = Path(score.write("lily", fp=str(Path(folder) / "score.ly")))
        source = "\n".join(line for line in written.read_text(encoding="utf-8").splitlines() if "lilypond-book-preamble" not in line)
        (Path(folder) / "clean.ly").write_text(source, encoding="utf-8")
        done = subprocess.run([program, "--png", "-dcrop", "-dresolution=110", "-o", "out", "clean.ly"],
                              cwd=folder, capture_output=True, text=True, timeout=600)
        cropped = Path(folder) / "out.cropped.png"
        if done.returncode != 0 or not cropped.exists():
            raise GenerateError(f"--score: lilypond failed: {(done.stderr or done.stdout).strip().splitlines()[-1:] or ''}")
        with atomic_path(path, suffix=".png") as tmp:
            tmp.write_bytes(cropped.read_bytes())
