"""The melody encoding: exact round trips on real folk tunes, and a decoder that never fails."""

import random
from fractions import Fraction

import pytest

from generate.music.melody import (
    DURATIONS,
    HIGHEST_PITCH,
    LOWEST_PITCH,
    Event,
    Tune,
    decode_tune,
    duration_chars,
    encode_tune,
)
from generate.music.midi import instrument_program, read_midi_notes, write_midi
from generate.music.sources import abc_tune_numbers, parse_abc_tune, tune_from_score


def folk_tunes(count=30, seed=0):
    """A fixed, seeded sample of real tunes from the four ABC collections music21 ships."""
    from music21 import corpus

    paths = sorted(p for p in corpus.getPaths()
                   if any(k in str(p) for k in ("essenFolksong", "oneills1850", "airdsAirs", "ryansMammoth")))
    rng = random.Random(seed)
    chosen = rng.sample(paths, count)
    return [(p, rng.choice(abc_tune_numbers(p))) for p in chosen]


@pytest.fixture(scope="module")
def real_tunes():
    return [(f"{p.name}#{n}", tune_from_score(parse_abc_tune(p, n))) for p, n in folk_tunes()]


def test_real_folk_tunes_round_trip_exactly(real_tunes):
    for name, tune in real_tunes:
        text, exact = encode_tune(tune)
        back, report = decode_tune(text)
        assert exact and report.dropped == 0, name
        assert (back.meter, back.sharps, back.bar_lines, back.events) == (tune.meter, tune.sharps, tune.bar_lines, tune.events), name
        assert "\n" not in text and len(text) < 4 * len(tune.events) + 40  # about two characters a note


def test_midi_keeps_every_note_of_real_tunes(real_tunes, tmp_path):
    for name, tune in real_tunes[:8]:
        path = tmp_path / "tune.mid"
        write_midi(path, [tune.events], bpm=100, program=instrument_program("fiddle"), meter=tune.meter, sharps=tune.sharps)
        (track,) = read_midi_notes(path)
        assert track == [(e.onset, e.pitch, e.duration) for e in tune.events if e.pitch is not None], name


def test_durations_add_up_and_unusual_ones_are_flagged():
    chars, exact = duration_chars(Fraction(5, 6))
    assert exact and len(chars) == 2 and sum(DURATIONS[c] for c in chars) == Fraction(5, 6)
    assert duration_chars(Fraction(1, 12)) == ("0", True)  # triplet 32nds occur in the folk corpus
    assert duration_chars(Fraction(1)) == ("9", True)
    assert duration_chars(Fraction(1, 5))[1] is False  # quintuplets are approximated


def test_ties_across_bar_lines_and_out_of_range_pitches():
    tune = Tune("3/4", -2, [Event(Fraction(0), 60, Fraction(2)), Event(Fraction(2), 60, Fraction(3)),
                            Event(Fraction(5), None, Fraction(1))], [Fraction(3)])
    text, exact = encode_tune(tune)
    assert text == "M:3/4 K:-2|M?M9|-?_9|" and exact
    assert decode_tune(text)[0].events == tune.events
    low = Tune(events=[Event(Fraction(0), LOWEST_PITCH - 5, Fraction(1)), Event(Fraction(1), HIGHEST_PITCH + 1, Fraction(1))])
    text, exact = encode_tune(low)
    assert not exact
    assert [e.pitch for e in decode_tune(text)[0].events] == [LOWEST_PITCH + 7, HIGHEST_PITCH - 11]


@pytest.mark.parametrize("seed", range(25))
def test_decoding_garbage_never_fails_and_writes_valid_midi(seed, tmp_path):
    import mido
    from music21 import converter

    rng = random.Random(seed)
    alphabet = "ABCXYZabcxyz_-|123456789=>?@^`{M:/K \t#%&é"
    garbage = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 120)))
    if seed % 3 == 0:
        garbage = "M:7/3 K:99" + garbage  # a broken header
    tune, report = decode_tune(garbage)
    path = tmp_path / "out.mid"
    write_midi(path, [tune.events], meter=tune.meter, sharps=tune.sharps)
    end = max((e.onset + e.duration for e in tune.events if e.pitch is not None), default=0)
    assert mido.MidiFile(str(path)).length == pytest.approx(float(end) / 2)  # 120 quarter notes a minute
    notes = sum(len(t) for t in read_midi_notes(path))
    assert notes == sum(e.pitch is not None for e in tune.events)
    if notes:  # music21 reads the file back with the tune's meter
        signatures = list(converter.parse(str(path)).recurse().getElementsByClass("TimeSignature"))
        assert signatures and signatures[0].ratioString == tune.meter
    # What decoding kept is a clean tune: its encoding decodes to the same notes with nothing dropped.
    again, again_report = decode_tune(encode_tune(tune)[0])
    assert again.events == tune.events and again_report.dropped == 0
    assert report.dropped <= len(garbage)


def test_unknown_instrument_is_a_usage_error():
    from generate.errors import UsageError

    assert instrument_program("41") == 41 and instrument_program("Fiddle") == 40
    with pytest.raises(UsageError, match="--instrument"):
        instrument_program("kazoo")


def test_key_signatures_and_in_key_counting():
    from generate.music.keys import diatonic_pitch_classes, in_key_fraction, out_of_key_chars

    assert diatonic_pitch_classes(0) == {0, 2, 4, 5, 7, 9, 11}
    assert 10 in diatonic_pitch_classes(-1) and 11 not in diatonic_pitch_classes(-1)  # F major has Bb
    assert 6 in diatonic_pitch_classes(1) and 5 not in diatonic_pitch_classes(1)  # G major has F#
    outside = out_of_key_chars("melody", 0)
    assert len(outside) == sum((LOWEST_PITCH + i) % 12 in (1, 3, 6, 8, 10) for i in range(52))
    assert in_key_fraction("M:4/4 K:0|M9N9O9|") == (2, 3)  # C, C#, D in C major
    assert in_key_fraction("no header") == (0, 0)


def test_transposition_augmentation(tmp_path, monkeypatch):
    from generate.music.dataset import encode_music_corpus
    from generate.music.keys import in_key_fraction, transposed_sharps

    assert [transposed_sharps(0, t) for t in (-5, 2, 1)] == [1, 2, -5]  # G, D, Db major
    monkeypatch.setenv("GENERATE_CACHE_DIR", str(tmp_path / "cache"))
    abc = tmp_path / "tunes.abc"
    abc.write_text("X:1\nM:3/4\nL:1/8\nK:D\nd2 f2 a2|g2 e2 c2|d6|\n\nX:2\nM:2/4\nL:1/8\nK:F\nF2 A2|c2 B2|A4|\n")
    plain = encode_music_corpus([str(abc)], show_progress=False).read_text().splitlines()
    common = encode_music_corpus([str(abc)], show_progress=False, transpose="common").read_text().splitlines()
    every = encode_music_corpus([str(abc)], show_progress=False, transpose="all").read_text().splitlines()
    assert [line[:10] for line in plain] == ["M:3/4 K:2|", "M:2/4 K:-1"]
    assert all(" K:0|" in line for line in common) and len(common) == 2
    assert len(every) == 24 and len({line.split("|")[0] for line in every}) == 24  # 12 keys for each of 2 tunes
    for line in every:  # a transposed tune stays exactly as diatonic as the original
        in_key, total = in_key_fraction(line)
        assert in_key == total


def test_multitrack_midi_reduces_to_the_top_line_without_drums(tmp_path):
    import mido
    from music21 import converter

    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    for channel, notes in ((0, [60, 62, 64, 65]), (1, [36, 43, 36, 43]), (9, [81, 81, 81, 81])):  # drums high
        track = mido.MidiTrack()
        for n in notes:
            track += [mido.Message("note_on", note=n, velocity=80, channel=channel, time=0),
                      mido.Message("note_off", note=n, velocity=0, channel=channel, time=480)]
        midi.tracks.append(track)
    midi.save(str(tmp_path / "band.mid"))
    tune = tune_from_score(converter.parse(str(tmp_path / "band.mid")))
    assert [e.pitch for e in tune.events if e.pitch is not None] == [60, 62, 64, 65]
