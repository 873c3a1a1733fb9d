"""Keys: which pitch characters fall outside a key signature, for `--in-key`."""

from __future__ import annotations

from . import chorale, melody

MAJOR_STEPS = (0, 2, 4, 5, 7, 9, 11)
KEY_SIGNATURES = range(-6, 6)  # key signatures as sharps (negative: flats), as music headers write them
KEY_SIGNATURES_TEXT = "a key signature from -6 (six flats) to 5 (five sharps)"


def diatonic_pitch_classes(sharps: int) -> set[int]:
    """The seven pitch classes a key signature of `sharps` (negative: flats) leaves unaltered."""
    tonic = (7 * sharps) % 12  # the major key with this signature
    return {(tonic + step) % 12 for step in MAJOR_STEPS}


def out_of_key_chars(encoding: str, sharps: int) -> str:
    """Pitch characters of `encoding` whose pitch is not in the key signature."""
    table, lowest = (chorale.PITCH_CHARS, chorale.LOWEST_PITCH) if encoding == "chorale" else (melody.PITCH_CHARS, melody.LOWEST_PITCH)
    allowed = diatonic_pitch_classes(sharps)
    return "".join(c for i, c in enumerate(table) if (lowest + i) % 12 not in allowed)


def header_sharps(text: str) -> int | None:
    """The `K:` of a music header at the start of `text`, or None if there is no complete header."""
    if not text.startswith("M:") or "|" not in text:
        return None
    for token in text.split("|", 1)[0].split():
        key, _, value = token.partition(":")
        if key == "K" and value.lstrip("-").isdigit():
            return int(value)
    return None


def in_key_fraction(text: str, encoding: str = "melody") -> tuple[int, int]:
    """(notes in the header's key, notes) for one encoded piece; (0, 0) without a header."""
    sharps = header_sharps(text)
    if sharps is None:
        return 0, 0
    body = text.split("|", 1)[1]
    table = chorale.PITCH_CHARS if encoding == "chorale" else melody.PITCH_CHARS
    outside = set(out_of_key_chars(encoding, sharps))
    notes = [c for c in body if c in table]
    return sum(c not in outside for c in notes), len(notes)


def transposed_sharps(sharps: int, semitones: int) -> int:
    """The key signature after transposing by `semitones`, as -6..5 sharps."""
    tonic = (7 * sharps + semitones) % 12
    signature = (7 * tonic) % 12  # 7 is its own inverse modulo 12
    return signature - 12 if signature > 5 else signature


def transpositions(sharps: int, mode: str) -> list[int]:
    """Semitone shifts for augmentation: `none` [0], `common` (to no sharps or flats), or `all` twelve."""
    if mode == "common":
        tonic = (7 * sharps) % 12
        return [-tonic if tonic <= 6 else 12 - tonic]
    if mode == "all":
        return list(range(-6, 6))
    return [0]


MAJOR_KEYS = ("C", "G", "D", "A", "E", "B", "F#", "C#", "Cb", "Gb", "Db", "Ab", "Eb", "Bb", "F")  # by sharps, mod 15
MINOR_KEYS = ("A", "E", "B", "F#", "C#", "G#", "D#", "A#", "Ab", "Eb", "Bb", "F", "C", "G", "D")


def key_words(sharps: int) -> str:
    """A key signature in words: 1 is `G major or E minor (1 sharp)`."""
    signature = "no sharps or flats" if sharps == 0 else \
        f"{abs(sharps)} {'sharp' if sharps > 0 else 'flat'}{'s' if abs(sharps) > 1 else ''}"
    return f"{MAJOR_KEYS[sharps % 15]} major or {MINOR_KEYS[sharps % 15]} minor ({signature})"


_LETTERS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def parse_key(text: str) -> int:
    """A key signature, as sharps (negative: flats), from `2`, `-3`, `D`, `Bb`, `F#m` or `E minor`.

    Raises:
        ValueError: anything else.
    """
    value = text.strip()
    if value.lstrip("+-").isdigit():
        sharps = int(value)
        if sharps in KEY_SIGNATURES:
            return sharps
        raise ValueError(f"expected {KEY_SIGNATURES_TEXT}, received {text!r}")
    name = value.replace(" ", "").lower()
    minor = name.endswith(("m", "min", "minor")) and not name.endswith("major")
    name = name.removesuffix("major").removesuffix("maj").removesuffix("minor").removesuffix("min").removesuffix("m")
    if not name or name[0].upper() not in _LETTERS or name[1:] not in ("", "#", "b"):
        raise ValueError(f"expected sharps (-6..5) or a key name such as D, Bb, F#m or 'E minor', received {text!r}")
    tonic = _LETTERS[name[0].upper()] + {"": 0, "#": 1, "b": -1}[name[1:]] + (3 if minor else 0)
    return transposed_sharps(0, tonic)
