"""The chorale encoding: exact round trips on Bach chorales, four-track MIDI, robust decoding."""

import random
import shutil

import mido
import pytest
from click.testing import CliRunner

from generate.cli import cli
from generate.music.chorale import decode_chorale, encode_chorale
from generate.music.midi import read_midi_notes, write_midi
from generate.music.sources import chorale_from_score


def chorale_paths(count, seed=1):
    from music21 import corpus

    paths = sorted(p for p in corpus.getPaths() if "/bach/" in str(p) and p.suffix == ".mxl")
    return random.Random(seed).sample(paths, count)


@pytest.fixture(scope="module")
def chorales():
    from music21 import corpus

    found = []
    for path in chorale_paths(14):
        try:
            found.append((path.name, chorale_from_score(corpus.parse(path))))
        except ValueError:  # not four voices
            continue
    assert len(found) >= 8
    return found


def test_real_chorales_round_trip_exactly(chorales):
    for name, chorale in chorales:
        text, exact = encode_chorale(chorale)
        back, report = decode_chorale(text)
        assert exact and report.dropped == 0, name
        assert back.voices == chorale.voices and back.bar_lines == chorale.bar_lines, name
        assert back.fermatas == chorale.fermatas and chorale.fermatas, name
        assert (back.meter, back.sharps) == (chorale.meter, chorale.sharps)


def test_chorale_midi_has_one_track_per_voice(chorales, tmp_path):
    name, chorale = chorales[0]
    path = tmp_path / "c.mid"
    write_midi(path, chorale.voices, meter=chorale.meter, sharps=chorale.sharps)
    tracks = read_midi_notes(path)
    assert len(tracks) == 4
    for track, voice in zip(tracks, chorale.voices):
        assert track == [(e.onset, e.pitch, e.duration) for e in voice if e.pitch is not None]


@pytest.mark.parametrize("seed", range(15))
def test_decoding_garbage_never_fails(seed, tmp_path):
    rng = random.Random(seed)
    garbage = "".join(rng.choice("M:4/ K1|AbcXyz0123:_.,|%é \n") for _ in range(rng.randint(0, 200)))
    chorale, report = decode_chorale(garbage.replace("\n", ""))
    path = tmp_path / "c.mid"
    write_midi(path, chorale.voices, meter=chorale.meter, sharps=chorale.sharps)
    assert len(mido.MidiFile(str(path)).tracks) == 5  # conductor + soprano, alto, tenor, bass
    for voice in chorale.voices:
        for a, b in zip(voice, voice[1:]):
            assert a.onset + a.duration == b.onset  # contiguous, no overlaps


def test_train_and_sample_chorales(tmp_path):
    source = tmp_path / "chorales"
    source.mkdir()
    for path in chorale_paths(6, seed=5):
        shutil.copy(path, source / path.name)
    runner = CliRunner()
    run = tmp_path / "run"
    result = runner.invoke(cli, ["train", str(run), str(source), "--kind", "music", "--encoding", "chorale",
                                 "--layers", "1", "--units", "16", "--batch-size", "4", "--seq-len", "32", "--epochs", "1"])
    assert result.exit_code == 0, result.stderr
    sampled = runner.invoke(cli, ["sample", str(run), "-N", "2", "-n", "300", "--seed", "1", "-o", str(tmp_path / "out")])
    assert sampled.exit_code == 0, sampled.stderr
    for path in sampled.stdout.split():
        assert len(mido.MidiFile(path).tracks) == 5


def test_render_chorale_as_musicxml_and_png(chorales, tmp_path):
    from music21 import converter

    name, chorale = chorales[1]
    source = tmp_path / "c.txt"
    source.write_text(encode_chorale(chorale)[0] + "\n")
    result = CliRunner().invoke(cli, ["render", str(source), "-o", str(tmp_path / "c.mid"), "--encoding", "chorale",
                                      "--musicxml", "--png"])
    assert result.exit_code == 0, result.stderr
    score = converter.parse(str(tmp_path / "c.musicxml"))
    expected = sum(e.pitch is not None for v in chorale.voices for e in v)
    assert len(score.parts) == 4
    assert len(score.stripTies().flatten().notes) == expected
    assert (tmp_path / "c.png").stat().st_size > 1000


def test_fermatas_reach_the_musicxml_score(chorales, tmp_path):
    from music21 import converter, expressions

    from generate.music.render import render_music

    name, chorale = chorales[0]
    text, _ = encode_chorale(chorale)
    render_music(text, tmp_path / "c.mid", encoding="chorale", renders=("musicxml",))
    score = converter.parse(str(tmp_path / "c.musicxml"))
    marked = {float(n.getOffsetInHierarchy(score)) for n in score.recurse().notes
              if any(isinstance(e, expressions.Fermata) for e in n.expressions)}
    assert marked and len(marked) <= len(chorale.fermatas) * 4, name
    assert all(any(float(f) >= m - 4 and float(f) < m + 8 for f in chorale.fermatas) for m in marked)
