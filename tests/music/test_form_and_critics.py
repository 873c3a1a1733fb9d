"""Meters and full bars by construction, chorales without parallels, and the critics that judge them."""

import numpy as np
import pytest

from generate.critics.music import ChoraleCritic, MelodyCritic, count_parallels, sounding_frames
from generate.model.backend import numpy_ops
from generate.music import chorale, melody
from generate.music.sampling import piece_meters, usual_meters
from generate.sampling.music_form import bar_automaton
from generate.sampling.voice_leading import VoiceLeading

MELODY_CHARS = tuple(sorted(set(melody.PITCH_CHARS + melody.REST + melody.TIE + melody.BAR + "".join(melody.DURATIONS)
                                + "M:/ K-\n")))
CHORALE_CHARS = tuple(sorted(set(chorale.PITCH_CHARS + ":_.,|M/ K-0123456789\n")))


def allowed(automaton, chars, text):
    index = {c: i for i, c in enumerate(chars)}
    state = automaton.run([index[c] for c in text])
    return {c for i, c in enumerate(chars) if np.isfinite(automaton.char_bias(state)[i])}


def test_a_header_names_only_the_given_meters():
    bars = bar_automaton(MELODY_CHARS, "melody", ("6/8", "12/8", "2/4"))
    assert allowed(bars, MELODY_CHARS, "\nM:") == {"6", "1", "2"}
    assert allowed(bars, MELODY_CHARS, "\nM:1") == {"2"}  # 12/8, never 1/4 or 16/8
    assert allowed(bars, MELODY_CHARS, "\nM:6/") == {"8"}
    assert allowed(bars, MELODY_CHARS, "\nM:6/8") == {" "} and allowed(bars, MELODY_CHARS, "\nM:2/") == {"4"}


def test_a_melody_bar_line_comes_only_when_the_bar_is_full_and_no_note_overflows_it():
    bars = bar_automaton(MELODY_CHARS, "melody", ("6/8",))  # 3 quarters a bar
    head = "\nM:6/8 K:0|"
    assert "|" in allowed(bars, MELODY_CHARS, head + "a9")  # a pickup: the first bar may be short
    full = head + "a9|a>b>|"
    assert "|" not in allowed(bars, MELODY_CHARS, full + "a9")  # an inner bar must fill its meter
    after_a_half = allowed(bars, MELODY_CHARS, full + "a?")  # two quarters of three
    assert "9" in after_a_half and "?" not in after_a_half and "@" not in after_a_half and "|" not in after_a_half
    ended = allowed(bars, MELODY_CHARS, full + "a?b9")
    assert "|" in ended and not ended & set(melody.PITCH_CHARS)  # full: a bar line, no further note
    assert "\n" in allowed(bars, MELODY_CHARS, full + "a?b9|")
    tight = allowed(bars, MELODY_CHARS, full + "a?b81")  # 69 of 72 units
    assert "1" in tight and "0" not in tight  # 2 units more would leave 1/24 quarter, which no note can fill
    assert not ({"|", "\n"} & allowed(bars, MELODY_CHARS, head))  # no empty bar, no empty tune


def test_a_primed_header_in_another_meter_leaves_the_body_free():
    bars = bar_automaton(MELODY_CHARS, "melody", ("6/8",))
    free = allowed(bars, MELODY_CHARS, "\nM:5/4 K:0|a9b9")
    assert "|" in free and "{" in free  # a meter the corpus lacks: nothing to count against


def test_a_chorale_bar_holds_its_meter_in_sixteenths():
    bars = bar_automaton(CHORALE_CHARS, "chorale", ("3/4",))  # twelve frames a bar
    head = "\nM:3/4 K:0|" + "aaaa.|"  # a one-frame pickup
    eleven = head + "aaaa." + "::::." * 10
    assert "|" not in allowed(bars, CHORALE_CHARS, eleven) and "a" in allowed(bars, CHORALE_CHARS, eleven)
    twelve = eleven + "::::."
    assert allowed(bars, CHORALE_CHARS, twelve) & {"a", ":", "_"} == set() and "|" in allowed(bars, CHORALE_CHARS, twelve)


def tracker_bias(text):
    tracker = VoiceLeading(CHORALE_CHARS)
    tables = tracker.tensors(len(CHORALE_CHARS), numpy_ops)
    index = {c: i for i, c in enumerate(CHORALE_CHARS)}
    state = np.asarray([tracker.start], np.int32)
    for c in text:
        state = tables.step(state, np.asarray([index[c]], np.int32))
    bias = tables.char_bias(state)[0]
    return {c for i, c in enumerate(CHORALE_CHARS) if not np.isfinite(bias[i])}


def pitch(midi):
    return chorale.PITCH_CHARS[midi - chorale.LOWEST_PITCH]


def test_voice_leading_forbids_the_note_that_would_make_parallel_fifths():
    # S C5, A F4 (a fifth), T C4, B F3; then the soprano steps up to D5.
    first = pitch(72) + pitch(65) + pitch(60) + pitch(53) + "."
    forbidden = tracker_bias("\nM:4/4 K:0|" + first + pitch(74))
    assert pitch(67) in forbidden  # G4 under D5: a fifth again, both moving up
    assert pitch(66) not in forbidden and ":" not in forbidden and pitch(64) not in forbidden  # F#4, a hold, E4 (down)
    # The same chord with the soprano held: nothing moves together with it.
    assert pitch(67) not in tracker_bias("\nM:4/4 K:0|" + first + ":")
    # Soprano and bass a compound fifth apart (C5, F3): G3 under D5 is forbidden, A3 is not.
    bass = tracker_bias("\nM:4/4 K:0|" + first + pitch(74) + "::")
    assert pitch(55) in bass and pitch(57) not in bass
    # Octaves between soprano and bass: C5 over C3, then D5 over D3 is forbidden.
    octave = pitch(72) + pitch(67) + pitch(64) + pitch(48) + "."
    assert pitch(50) in tracker_bias("\nM:4/4 K:0|" + octave + pitch(74) + ":" + ":")


def test_voice_leading_keeps_the_alto_within_an_octave_of_the_soprano():
    forbidden = tracker_bias("\nM:4/4 K:0|" + pitch(79))
    assert pitch(66) in forbidden and pitch(67) not in forbidden  # G5: F#4 is 13 semitones below, G4 12


def test_count_parallels_by_the_rule():
    assert count_parallels((72, 65, 60, 53), (74, 67, 62, 55)) == 5  # every pair but the fourth A-T
    assert count_parallels((72, 65, 60, 53), (74, 65, 60, 53)) == 0  # only the soprano moves
    assert count_parallels((72, 65, 60, 48), (71, 67, 62, 47)) == 1  # S-B octaves, both down; the rest do not
    frames = sounding_frames(pitch(72) + "___." + "::::.")
    assert frames == [((72, None, None, None), (True, False, False, False))] * 1 + [((72, None, None, None), (False,) * 4)]


def test_the_melody_critic_counts_full_bars_tonic_endings_and_meters():
    meters = {"meters": {"6/8": 10, "2/4": 4}, "min_pieces": 3, "by_label": {"jig": {"6/8": 9}}, "label_share": 0.02}
    critic = MelodyCritic(meters, "jig")
    # G major (K:1): the first ends on G, the second on D; the second's inner bar is short.
    pieces = ["M:6/8 K:1|a9|a>b>|a>b>|T@|", "M:2/4 K:1|a?|a9|a?|X?|", "M:2/4 K:1|a?|b?|"]
    judged = critic.judge(pieces)
    assert judged.values["known_meter"] == 1.0 and judged.values["label_meter"] == pytest.approx(1 / 3)
    assert judged.values["inner_bars_full"] == pytest.approx(3 / 4)  # 2 + 2 + 0 inner bars; one short
    assert judged.values["pieces_all_bars_full"] == pytest.approx(2 / 3)
    assert judged.values["tonic_ending"] == pytest.approx(1 / 3)  # T (G4) is the tonic; X (B4) and b (D#5) are not
    assert usual_meters(meters) == ("6/8", "2/4") and usual_meters(meters, "jig") == ("6/8",)


def test_the_chorale_critic_counts_parallels_per_hundred_onsets():
    line = "M:4/4 K:0|" + pitch(72) + pitch(65) + pitch(60) + pitch(53) + "." + pitch(74) + pitch(67) + pitch(62) \
        + pitch(55) + "." + "::::." * 14 + "|"
    judged = ChoraleCritic().judge([line])
    assert judged.values["parallels"] == pytest.approx(250.0)  # five parallels over two onsets
    assert judged.values["inner_bars_full"] is None  # one bar: no inner bar to judge


def test_piece_meters_counts_each_labels_meters():
    chars = MELODY_CHARS
    index = {c: i for i, c in enumerate(chars)}
    text = "M:6/8 K:0|a>b>|\nM:6/8 K:1|a>b>|\nM:2/4 K:0|a?|\n"
    record = piece_meters(np.array([index[c] for c in text]), chars, ["jig", "jig", "reel", "<none>"])
    assert record["meters"] == {"6/8": 2, "2/4": 1}
    assert record["by_label"] == {"jig": {"6/8": 2}, "reel": {"2/4": 1}}


def test_a_wav_is_brought_to_its_peak(tmp_path):
    import wave

    from generate.music.media import normalise_wav

    path = tmp_path / "quiet.wav"
    quiet = (np.sin(np.linspace(0, 200, 4000)) * 900).astype("<i2")  # about -31 dBFS, as fluidsynth leaves a tune
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1), out.setsampwidth(2), out.setframerate(8000), out.writeframes(quiet.tobytes())
    before = normalise_wav(path, -1.0)
    with wave.open(str(path), "rb") as read:
        samples = np.frombuffer(read.readframes(read.getnframes()), "<i2").astype(float)
    assert -32 < before < -30 and abs(20 * np.log10(np.abs(samples).max() / 32768) + 1.0) < 0.01
    assert np.corrcoef(samples, quiet)[0, 1] > 0.9999  # louder, not changed


def test_music_candidates_open_on_whole_headers_in_words():
    from generate.cowriting.candidates import CandidateMaker, describe
    from generate.sampling.generator import load_generator
    from generate.sampling.options import SampleOptions

    maker = CandidateMaker(load_generator("folk"), SampleOptions())
    headers = maker("", 4, 1.0, 1)
    meters = set(__import__("json").loads((maker.gen.run.pieces).read_text())["meters"]["meters"])
    assert len(headers) == 4 and all(h.startswith("M:") and h.endswith("|") for h in headers), headers
    assert all(h[2:].split(" ")[0] in meters for h in headers)
    assert all(" major or " in describe("", h, "melody") for h in headers)
    bars = maker(headers[0], 4, 1.0, 2)
    assert bars and all(b.endswith("|") and not b.startswith("M") for b in bars), bars


def test_a_part_played_twice_is_found():
    from generate.critics.music import repeats_a_part

    a, b = "a9a9a9|b9b9b9|c9c9c9|d9d9d9|", "e9e9e9|f9f9f9|g9g9g9|h9h9h9|"
    assert repeats_a_part(a + a + b + b) and repeats_a_part("a?a9|" + a + a)
    assert not repeats_a_part(a + b + a + b[:-7] + "|") and not repeats_a_part("a9a9a9|" * 3)  # three bars alike: a motif


def test_voice_leading_strikes_no_note_above_the_voice_over_it():
    forbidden = tracker_bias("\nM:4/4 K:0|" + pitch(72) + pitch(65))  # soprano C5, alto F4: the tenor is next
    assert pitch(66) in forbidden and pitch(65) not in forbidden and pitch(60) not in forbidden  # above the alto: no


def drive(tracker, text, chars=MELODY_CHARS):
    """Feeds `text` through a tracker on NumPy, and returns, before each character, the characters it allows."""
    index = {c: i for i, c in enumerate(chars)}
    tables = tracker.tensors(len(chars), numpy_ops)
    state = np.asarray([tracker.start], np.int32)
    allowed_before = []
    for c in text:
        bias = np.asarray(tables.char_bias(state))[0]
        allowed_before.append({chars[i] for i in np.flatnonzero(np.isfinite(bias))})
        state = np.asarray(tables.step(state, np.asarray([index[c]], np.int32)))
    return allowed_before


def test_a_tune_drawn_to_repeat_plays_each_part_back_note_for_note():
    from generate.sampling.repeats import RepeatedParts

    head, lead = "\nM:3/4 K:0|", "a9|"
    a, b = "a9a9a9|b9b9b9|c9c9c9|d9d9d9|", "e9e9e9|f9f9f9|g9g9g9|h9h9h9|"
    tune = head + lead + a + a + b + b + "a9|\n"
    before = drive(RepeatedParts(MELODY_CHARS, share=1.0, short_share=1.0), tune)
    played_back = [i for i, allowed_set in enumerate(before) if len(allowed_set) == 1]
    start_a, start_b = len(head + lead + a), len(head + lead + a + a + b)
    assert played_back == [*range(start_a, start_a + len(a)), *range(start_b, start_b + len(b))]
    assert all(before[i] == {tune[i]} for i in played_back)
    recording = range(len(head + lead), start_a)
    assert all("\n" not in before[i] and len(before[i]) > 1 for i in recording)  # the tune may not end mid-part
    assert "\n" in before[-1]  # after BB the model ends the tune as it likes
    # A second tune starts over; a tracker drawn never to repeat constrains nothing.
    again = drive(RepeatedParts(MELODY_CHARS, share=1.0, short_share=1.0), tune + tune[1:])
    assert [i for i, s in enumerate(again) if len(s) == 1] == played_back + [len(tune) - 1 + i for i in played_back]
    never = drive(RepeatedParts(MELODY_CHARS, share=0.0, short_share=1.0), tune)
    assert all(len(s) > 1 for s in never) and "\n" in never[start_a + 3]
    long_parts = drive(RepeatedParts(MELODY_CHARS, share=1.0, short_share=0.0), head + lead + a + b + a + b)
    assert [i for i, s in enumerate(long_parts) if len(s) == 1][:2] == [start_a + len(b), start_a + len(b) + 1]
    # Parts that would make the tune longer than the corpus's tunes run are not played: 8-bar parts need 33 bars.
    assert RepeatedParts(MELODY_CHARS, share=1.0, short_share=0.0, max_bars=20).settings == {"repeated_parts": 1.0,
                                                                                            "short_parts": 1.0}
    assert RepeatedParts(MELODY_CHARS, share=1.0, short_share=0.0, max_bars=16).settings["repeated_parts"] == 0.0


def test_piece_repeats_counts_each_label_s_repeating_tunes():
    from generate.music.sampling import piece_repeats, repeat_shares

    a, b = "a9a9a9|b9b9b9|c9c9c9|d9d9d9|", "e9e9e9|f9f9f9|g9g9g9|h9h9h9|"
    tunes = ["M:3/4 K:0|" + a + a + b + b, "M:3/4 K:0|" + a + b, "M:3/4 K:0|" + a + b + a + b]
    index = {c: i for i, c in enumerate(MELODY_CHARS)}
    ids = np.array([index[c] for c in "\n".join(tunes) + "\n"])
    record = piece_repeats(ids, MELODY_CHARS, ["reel", "jig", "reel"])
    assert record["share"] == round(2 / 3, 4) and record["short_share"] == 0.5  # the third plays 8 bars twice
    assert record["by_label"]["reel"]["share"] == 1.0 and record["by_label"]["jig"]["share"] == 0.0
    assert repeat_shares(record, "reel") == (round(2 / 3, 4), 0.5)  # two tunes are too few to say: the corpus's
