"""The music form automaton: whatever it allows decodes with nothing dropped; what the encoders write, it allows."""

from fractions import Fraction

import numpy as np
import pytest

from generate.music import chorale, melody
from generate.music.chorale import Chorale, decode_chorale, encode_chorale
from generate.music.melody import Event, Tune, decode_tune, encode_tune
from generate.sampling.music_form import music_automaton

MELODY_CHARS = tuple(sorted(set(melody.PITCH_CHARS + melody.REST + melody.TIE + melody.BAR + "".join(melody.DURATIONS)
                                + "M:/ K-\n" + "0123456789")))
CHORALE_CHARS = tuple(sorted(set(chorale.PITCH_CHARS + chorale.HOLD + chorale.REST + chorale.FRAME_END
                                 + chorale.FERMATA_END + chorale.BAR + "M:/ K-\n" + "0123456789")))


def allows(automaton, chars, text: str) -> str | None:
    """None if `automaton` allows every character of `text` in turn, else what it refused and where."""
    index = {c: i for i, c in enumerate(chars)}
    state = automaton.start
    for position, c in enumerate(text):
        if not np.isfinite(automaton.char_bias(state)[index[c]]):
            return f"{c!r} at {position} of {text!r}"
        state = automaton.next_state(state, index[c])
    return None


def random_pieces(automaton, chars, count: int, seed: int, max_chars: int = 3000) -> list[str]:
    """Pieces drawn at random from what the automaton allows, each ended by its newline."""
    rng = np.random.default_rng(seed)
    pieces, state, text = [], automaton.start, ""
    while len(pieces) < count:
        allowed = np.flatnonzero(np.isfinite(automaton.char_bias(state)))
        remaining_ok = automaton.distance[[automaton.next_state(state, i) for i in allowed]] < max_chars - len(text)
        choice = int(rng.choice(allowed[remaining_ok] if remaining_ok.any() else allowed))
        text += chars[choice]
        state = automaton.next_state(state, choice)
        if chars[choice] == "\n":
            pieces.append(text[:-1])
            text = ""
    return pieces


@pytest.mark.parametrize("encoding, chars, decode", [("melody", MELODY_CHARS, decode_tune),
                                                      ("chorale", CHORALE_CHARS, decode_chorale)])
def test_every_piece_the_automaton_allows_decodes_with_nothing_dropped(encoding, chars, decode):
    automaton = music_automaton(chars, encoding, min_bars=2, max_bars=5)
    for piece in random_pieces(automaton, chars, 40, seed=1):
        decoded, report = decode(piece)
        assert report.dropped == 0, piece
        header, _, body = piece.partition("|")
        assert melody._valid_meter(header.split()[0][2:]) and -7 <= int(header.split()[1][2:]) <= 7, piece
        assert 2 <= body.count("|") <= 5, piece  # bars within the bounds given


def test_what_the_encoders_write_is_allowed_and_broken_text_is_not():
    tune = Tune("6/8", -2, [Event(Fraction(i, 2), 60 + i, Fraction(1, 2)) for i in range(6)] + [Event(Fraction(3), None, Fraction(3, 2))],
                [Fraction(3, 2) * k for k in range(1, 4)])
    text, _ = encode_tune(tune)
    melodies = music_automaton(MELODY_CHARS, "melody", min_bars=1)
    assert allows(melodies, MELODY_CHARS, text + "\n") is None
    for broken in ("M:4/x K:0|", "M:0/4 K:0|", "M:4/4 K:9|", "M:4/4 K:-0|", "M:4/4 K:0||", "M:4/4 K:0|M|",
                   "M:4/4 K:0|-9|", "M:4/4 K:0|M9\n", "M:4/4 K:0|M9|M9 |", "M:4/4 K:0\n"):
        assert allows(melodies, MELODY_CHARS, broken) is not None, broken
    voices = [[Event(Fraction(0), 60 + v, Fraction(2)), Event(Fraction(2), None, Fraction(1)),
               Event(Fraction(3), 55 + v, Fraction(1))] for v in range(4)]
    piece, _ = encode_chorale(Chorale("4/4", 1, voices, [], [Fraction(3)]))
    chorales = music_automaton(CHORALE_CHARS, "chorale", min_bars=1)
    assert allows(chorales, CHORALE_CHARS, piece + "\n") is None
    for broken in ("M:4/4 K:1|:", "M:4/4 K:1|MMM.", "M:4/4 K:1|MMMMM", "M:4/4 K:1|\n", "M:4/4 K:1|MMMM.||", "M:4/4 K:1|M___.M:__.",
                   "M:4/4 K:1|MMMM..", "M:4/4 K:1|MMMM.\n"):
        assert allows(chorales, CHORALE_CHARS, broken) is not None, broken


def test_a_piece_ends_only_within_its_bounds():
    automaton = music_automaton(MELODY_CHARS, "melody", min_bars=3, max_bars=4)
    assert allows(automaton, MELODY_CHARS, "M:4/4 K:0|M^|M^|\n") is not None  # too short to end
    assert allows(automaton, MELODY_CHARS, "M:4/4 K:0|M^|M^|M^|\n") is None
    assert allows(automaton, MELODY_CHARS, "M:4/4 K:0|M^|M^|M^|M^|M") is not None  # past the longest: only the end
    assert allows(automaton, MELODY_CHARS, "M:4/4 K:0|M^|M^|M^|M^|\nM:3/4 K:2|") is None  # and the next piece starts
    with pytest.raises(ValueError, match="max_bars"):
        music_automaton(MELODY_CHARS, "melody", min_bars=5, max_bars=4)
