"""The fast MIDI path: the same encodings as music21, track choice, bad files as counted skips, and the per-file cache."""

import json
from fractions import Fraction

import mido
import pytest
from click.testing import CliRunner

from generate.cli import cli
from generate.music.dataset import encode_music_corpus, encode_piece
from generate.music.fast_midi import MidiSkip, read_midi, select_tracks, tune_from_midi
from generate.music.melody import Event, encode_tune
from generate.music.midi import write_midi
from generate.music.sources import chorale_from_score, parse_abc_tune, tune_from_score

from .test_chorale import chorale_paths
from .test_melody import folk_tunes


def on_grid(events) -> bool:
    """Every onset and end on the sixteenth or eighth-triplet grid: what music21 and the fast path both keep."""
    return all((t * 4).denominator == 1 or (t * 3).denominator == 1 for e in events for t in (e.onset, e.onset + e.duration))


def test_renderings_of_folk_tunes_and_chorales_read_as_music21_reads_them(tmp_path):
    from music21 import converter, corpus

    from generate.music.chorale import encode_chorale

    compared = 0
    for i, (path, number) in enumerate(folk_tunes(10, seed=3)):
        tune = tune_from_score(parse_abc_tune(path, number))
        midi = tmp_path / f"folk{i}.mid"
        write_midi(midi, [tune.events], meter=tune.meter, sharps=tune.sharps)
        fast, exact, error = encode_piece((str(midi), None), "melody")
        slow = encode_tune(tune_from_score(converter.parse(str(midi))))[0]
        assert not error
        if on_grid(tune.events):  # off the grid, music21 requantises ornaments (see the README)
            assert fast == slow, path.name
            compared += 1
    for i, path in enumerate(chorale_paths(4, seed=2)):
        try:
            chorale = chorale_from_score(corpus.parse(path))
        except ValueError:
            continue
        midi = tmp_path / f"bach{i}.mid"
        write_midi(midi, chorale.voices, meter=chorale.meter, sharps=chorale.sharps)
        fast, _, error = encode_piece((str(midi), None), "chorale")
        assert not error and fast == encode_chorale(chorale_from_score(converter.parse(str(midi))))[0], path.name
        compared += 1
    assert compared >= 8


def band(path, drum_pitch=84, tracks=("Bass", "Chords", "Lead", "Drums")):
    """A four-track file: bass, chords, a lead line and drums pitched above everything (so a leak would show)."""
    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    parts = {
        "Bass": (1, 33, [(k * 960, 40 + k % 5, 900) for k in range(16)]),
        "Chords": (2, 0, [(k * 960, 55 + d + k % 3, 960) for k in range(16) for d in (0, 4, 7)]),
        "Lead": (0, 73, [(k * 240, 72 + (k * 7) % 12, 240) for k in range(64)]),
        "Drums": (9, 0, [(k * 120, drum_pitch, 60) for k in range(128)]),
    }
    for name in tracks:
        channel, program, notes = parts[name]
        track = mido.MidiTrack([mido.MetaMessage("track_name", name=name),
                                mido.Message("program_change", channel=channel, program=program)])
        events = sorted([(on, 1, mido.Message("note_on", channel=channel, note=p, velocity=80)) for on, p, _ in notes]
                        + [(on + d, 0, mido.Message("note_off", channel=channel, note=p)) for on, p, d in notes],
                        key=lambda e: (e[0], e[1]))
        now = 0
        for tick, _, message in events:
            track.append(message.copy(time=tick - now))
            now = tick
        midi.tracks.append(track)
    midi.save(str(path))
    return path


def merged(events):
    """Events with consecutive notes of one pitch joined: music21's chordify splits a held note where a lower one moves."""
    out = []
    for e in events:
        if out and out[-1].pitch == e.pitch and out[-1].onset + out[-1].duration == e.onset:
            out[-1] = Event(out[-1].onset, e.pitch, out[-1].duration + e.duration)
        else:
            out.append(e)
    return out


def test_multitrack_files_choose_the_lead_and_never_take_drums(tmp_path):
    from music21 import converter

    path = band(tmp_path / "band.mid")
    midi = read_midi(path)
    assert [t.name for t in midi.tracks if t.drum] == ["Drums"]
    assert [midi.tracks[i].name for i in select_tracks(midi, "auto")] == ["Lead"]
    assert select_tracks(midi, "Bass") == select_tracks(midi, "0") and select_tracks(midi, "all") == [0, 1, 2]
    lead = tune_from_midi(midi, "auto").in_quarters()
    assert {e.pitch for e in lead.events if e.pitch is not None} <= set(range(72, 84))  # no drum (84) ever
    everything = tune_from_midi(midi, "all").in_quarters()
    slow = tune_from_score(converter.parse(str(path)))
    assert merged(everything.events) == merged(slow.events) and everything.bar_lines == slow.bar_lines
    for bad in ("Drums", "9", "Strings"):
        with pytest.raises(MidiSkip):
            select_tracks(midi, bad)


def broken_files(folder):
    """One file for every kind of bad input a real collection holds."""
    good = band(folder / "good.mid")
    data = good.read_bytes()
    (folder / "truncated.mid").write_bytes(data[: len(data) // 2])
    (folder / "zero-tracks.mid").write_bytes(b"MThd" + (6).to_bytes(4, "big") + (1).to_bytes(2, "big") + bytes(2)
                                             + (480).to_bytes(2, "big"))
    (folder / "type2.mid").write_bytes(data[:8] + (2).to_bytes(2, "big") + data[10:])
    band(folder / "drums-only.mid", tracks=("Drums",))
    slow = mido.MidiFile(type=1, ticks_per_beat=480)
    slow.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=2**24 - 1), mido.Message("note_on", note=60),
                                       mido.Message("note_off", note=60, time=480)]))
    slow.save(str(folder / "absurd-tempo.mid"))
    crowded = mido.MidiFile(type=1, ticks_per_beat=480)
    crowded.tracks.extend(mido.MidiTrack([mido.Message("note_on", note=60), mido.Message("note_off", note=60, time=10)])
                          for _ in range(300))
    crowded.save(str(folder / "crowded.mid"))
    (folder / "text.mid").write_bytes(b"this is not a MIDI file at all\n" * 20)
    band(folder / "copy-of-good.mid")  # the same music under another name


def test_bad_files_are_counted_skips_and_duplicates_are_dropped(tmp_path, monkeypatch):
    monkeypatch.setenv("GENERATE_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "midi"
    folder.mkdir()
    broken_files(folder)
    report = tmp_path / "skipped.tsv"
    out = encode_music_corpus([str(folder)], show_progress=False, skipped_report=report)
    assert len(out.read_text().splitlines()) == 1  # good.mid; its copy is a duplicate
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["duplicates"] == 1 and meta["pieces"] == 1
    rows = dict(line.split("\t") for line in report.read_text().splitlines()[1:])
    reasons = {name.rsplit("/", 1)[1]: reason for name, reason in rows.items()}
    assert reasons["truncated.mid"].startswith("truncated")
    assert reasons["zero-tracks.mid"] == "no tracks"
    assert reasons["type2.mid"].startswith("type-2")
    assert reasons["drums-only.mid"] == "drums only"
    assert reasons["absurd-tempo.mid"].startswith("absurd tempo")
    assert reasons["crowded.mid"].startswith("too many tracks")
    assert reasons["text.mid"] == "not a MIDI file"
    assert len(reasons) == 7


def test_the_cache_is_per_file_and_a_stuck_or_crashing_parser_is_a_skip(tmp_path, monkeypatch):
    monkeypatch.setenv("GENERATE_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "midi"
    folder.mkdir()
    for i in range(4):
        write_midi(folder / f"tune{i}.mid", [[Event(Fraction(k), 60 + (k * (i + 2)) % 12, Fraction(1)) for k in range(16)]])
    first = encode_music_corpus([str(folder)], show_progress=False)
    assert json.loads(first.with_suffix(".json").read_text())["parsed"] == 4
    for i in range(4, 6):
        write_midi(folder / f"tune{i}.mid", [[Event(Fraction(k), 62 + (k * (i + 2)) % 12, Fraction(1)) for k in range(16)]])
    write_midi(folder / "stuck.mid", [[Event(Fraction(0), 70, Fraction(1))]])
    write_midi(folder / "crash.mid", [[Event(Fraction(0), 71, Fraction(1))]])
    monkeypatch.setenv("GENERATE_FAULTS", "hang:stuck.mid:600,kill:crash.mid")
    monkeypatch.setenv("GENERATE_PARSE_TIME_LIMIT", "4")
    report = tmp_path / "skipped.tsv"
    second = encode_music_corpus([str(folder)], show_progress=False, skipped_report=report)
    meta = json.loads(second.with_suffix(".json").read_text())
    assert meta["parsed"] == 4 and meta["pieces"] == 6  # only the four new files were read
    reasons = {line.split("\t")[0].rsplit("/", 1)[1]: line.split("\t")[1] for line in report.read_text().splitlines()[1:]}
    assert reasons == {"stuck.mid": "time limit: parsing took over 4 s", "crash.mid": "crashed the parser"}


def test_corpus_inspect_shows_tracks_and_choices(tmp_path):
    folder = tmp_path / "midi"
    folder.mkdir()
    band(folder / "band.mid")
    (folder / "text.mid").write_bytes(b"not midi")
    result = CliRunner().invoke(cli, ["corpus", "inspect", str(folder), "--json"])
    assert result.exit_code == 0, result.stderr
    files = {json.loads(line)["file"].rsplit("/", 1)[1]: json.loads(line) for line in result.stdout.splitlines()}
    assert files["text.mid"]["skip"] == "not a MIDI file"
    tracks = files["band.mid"]["tracks"]
    assert [t["name"] for t in tracks if t["taken"]] == ["Lead"]
    assert [t["name"] for t in tracks if t["drum"]] == ["Drums"]
    chorale = CliRunner().invoke(cli, ["corpus", "inspect", str(folder / "band.mid"), "--encoding", "chorale"])
    assert chorale.exit_code == 0 and "split by pitch" in chorale.stdout
    missing = CliRunner().invoke(cli, ["corpus", "inspect", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "nowhere" in missing.stderr


def test_chorales_from_one_piano_track_are_split_by_pitch(tmp_path):
    from generate.music.chorale import encode_chorale
    from generate.music.fast_midi import chorale_from_midi

    chords = [(60, 64, 67, 48), (62, 65, 69, 50), (64, 67, 72, 52), (60, 64, 67, 48)]
    notes = [(k * 480, pitch, 480) for k, chord in enumerate(chords) for pitch in chord]
    notes += [(4 * 480, 72, 480), (4 * 480, 48, 480)]  # only two voices sound: soprano and bass, inner ones rest
    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    events = sorted([(on, 1, mido.Message("note_on", note=p, velocity=80)) for on, p, _ in notes]
                    + [(on + d, 0, mido.Message("note_off", note=p)) for on, p, d in notes], key=lambda e: (e[0], e[1]))
    track, now = mido.MidiTrack(), 0
    for tick, _, message in events:
        track.append(message.copy(time=tick - now))
        now = tick
    midi.tracks.append(track)
    midi.save(str(tmp_path / "piano.mid"))
    chorale = chorale_from_midi(read_midi(tmp_path / "piano.mid"))
    pitches = [[e.pitch for e in voice] for voice in chorale.voices]
    assert pitches[0] == [67, 69, 72, 67, 72] and pitches[3] == [48, 50, 52, 48, 48]
    assert pitches[1] == [64, 65, 67, 64, None] and pitches[2] == [60, 62, 64, 60, None]
    assert encode_chorale(chorale)[1]  # exact: every voice on the sixteenth grid
