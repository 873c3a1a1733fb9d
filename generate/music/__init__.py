"""Music as text: encodings of melodies and chorales, reading scores, writing MIDI and renders.

Everything here is independent of models: `melody` and `chorale` turn notes
into characters and back, `sources` and `dataset` read scores with music21
into encoded corpora, `keys` knows key signatures, `midi`, `render` and
`media` write files, and `sampling` holds what the sampler needs to know
about music (default lengths, --bars/--notes limits, primers, key penalties).
"""

ENCODINGS = ("melody", "chorale")  # how notes are written as text: one line per tune, or four voices per frame
TRANSPOSE_MODES = ("none", "common", "all")  # augmentation: as written, to C/Am, or into every key in range
MUSIC_SUFFIXES = (".mid", ".midi", ".abc", ".xml", ".mxl", ".musicxml", ".krn")  # files music21 reads
# What can be rendered beside a MIDI file, and the suffix that replaces `.mid` for it (`render.render_music`).
RENDER_SUFFIXES = {"wav": ".wav", "png": ".png", "musicxml": ".musicxml", "score": ".score.png", "abc": ".abc"}
