"""Music through the CLI: train on tiny ABC and MIDI corpora, sample MIDI, render text."""

import json
from fractions import Fraction

import mido
import pytest
from click.testing import CliRunner

from generate.cli import cli
from generate.music.melody import Event
from generate.music.midi import read_midi_notes, write_midi

from ..helpers import one_line_error

TUNE_BODIES = ["GABc dedB|dedB dedB|c2ec B2dB|c2A2 A2BA|", "D2FA d2fd|cBAG FGAF|E2GB e2ge|dcBA GFED|",
               "c2 e2 g2 e2|f2 d2 B2 G2|c2 e2 g2 c'2|b2 g2 c'4|"]


def make_folk_dir(base):
    folder = base / "folk"
    folder.mkdir()
    # 24 different tunes, all in G (duplicates would be dropped): each ends with its own bar.
    endings = [f"{'GABcd'[i % 5]}2{'dcBAG'[i // 5 % 5]}2G4|" for i in range(24)]
    tunes = [f"X:{i + 1}\nT:Tune {i + 1}\nM:4/4\nL:1/8\nK:G\n{TUNE_BODIES[i % 3]}{endings[i]}\n" for i in range(24)]
    (folder / "tunes.abc").write_text("\n".join(tunes))
    events = [Event(Fraction(i), 60 + (i * 5) % 12, Fraction(1)) for i in range(32)]
    write_midi(folder / "scale.mid", [events], meter="4/4")
    (folder / "broken.mid").write_bytes(b"MThd not really a midi file")
    (folder / "notes.txt").write_text("not music, ignored")
    return folder


def test_bars_notes_and_midi_primers(folk_run, tmp_path):
    runner = CliRunner()
    run, _ = folk_run
    bars = runner.invoke(cli, ["sample", str(run), "--bars", "3", "--seed", "1", "--prime", "M:4/4 K:1|", "--json", "-N", "3"])
    assert bars.exit_code == 0, bars.stderr
    for line in bars.stdout.splitlines():
        text = json.loads(line)["text"]
        body = text[len("M:4/4 K:1|"):]
        assert body.count("|") <= 3 and (body.endswith("|") or json.loads(line)["stopped"])
    notes = runner.invoke(cli, ["sample", str(run), "--notes", "4", "--seed", "2", "--prime", "M:4/4 K:1|", "--json"])
    printed = runner.invoke(cli, ["sample", str(run), "--notes", "4", "--seed", "2", "--prime", "M:4/4 K:1|"])
    assert printed.stdout.startswith("M:4/4 K:1|") and "add -o tune.mid" in printed.stderr  # raw encoding, and the hint
    from generate.music.melody import PITCH_CHARS

    assert sum(c in PITCH_CHARS for c in json.loads(notes.stdout)["text"][len("M:4/4 K:1|"):]) <= 4
    opening = tmp_path / "opening.mid"
    write_midi(opening, [[Event(Fraction(i), 67 + i, Fraction(1)) for i in range(4)]], meter="4/4")
    out = tmp_path / "cont.mid"
    cont = runner.invoke(cli, ["sample", str(run), "--prime-file", str(opening), "--drop-prime", "--bars", "2",
                               "--seed", "3", "-o", str(out)])
    assert cont.exit_code == 0, cont.stderr
    text = json.loads((tmp_path / "cont.mid.json").read_text())["text"]
    assert text.startswith("M:4/4 K:0|") and "T9U9V9W9" not in text  # the primer's header, not its notes
    wrong = runner.invoke(cli, ["sample", str(run), "--bars", "2", "--notes", "2"])
    assert wrong.exit_code == 2 and "expected one" in wrong.stderr


def test_in_key_keeps_every_sampled_pitch_in_the_key(folk_run):
    from generate.music.keys import in_key_fraction

    runner = CliRunner()
    run, _ = folk_run
    result = runner.invoke(cli, ["sample", str(run), "--prime", "M:4/4 K:1|", "--in-key", "-N", "6", "-n", "120",
                                 "--temperature", "1.5", "--seed", "3", "--json"])
    assert result.exit_code == 0, result.stderr
    counts = [in_key_fraction(json.loads(line)["text"]) for line in result.stdout.splitlines()]
    assert sum(n for _, n in counts) > 0 and all(k == n for k, n in counts)
    # Without a prime, each piece keeps to the key its own sampled header names, however garbled the rest.
    unprimed = runner.invoke(cli, ["sample", str(run), "--in-key", "-N", "16", "-n", "120", "--temperature", "0.5",
                                   "--seed", "4", "--json"])
    keyed = [sampled_key(json.loads(line)["text"]) for line in unprimed.stdout.splitlines()]
    keyed = [(sharps, body) for sharps, body in keyed if sharps is not None]
    assert len(keyed) >= 2 and all(notes_out_of_key(body, sharps) == 0 for sharps, body in keyed)


def sampled_key(text):
    """(sharps, body) as the key automaton reads a header: `K:<digit>` anywhere before the first bar line."""
    import re

    match = re.match(r"[^|\n]*?K:(-?\d)[^|\n]*\|([^\n]*)", text)
    return (int(match.group(1)), match.group(2)) if match and -6 <= int(match.group(1)) <= 5 else (None, "")


def notes_out_of_key(body, sharps):
    from generate.music.keys import out_of_key_chars

    return sum(c in out_of_key_chars("melody", sharps) for c in body)


def test_key_option_sets_every_sampled_header(folk_run, trained_run):
    runner = CliRunner()
    run, _ = folk_run
    result = runner.invoke(cli, ["sample", str(run), "--key", "E", "--in-key", "-N", "16", "-n", "150",
                                 "--seed", "5", "--temperature", "0.5", "--json"])
    assert result.exit_code == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    keyed = [sampled_key(r["text"]) for r in records if sampled_key(r["text"])[0] is not None]
    assert len(keyed) >= 2 and all(sharps == 4 for sharps, _ in keyed)  # the corpus only ever has K:1
    assert all(notes_out_of_key(body, 4) == 0 for _, body in keyed)
    assert records[0]["key"] == 4 and records[0]["key_penalty"] == "inf"
    for args, message in ((["--key", "H"], "--key"), (["--key", "9"], "--key"),
                          (["--key", "Bb"], "cannot write the header K:-2|"),
                          (["--key", "D", "--prime", "M:4/4 K:1|"], "already names K:1"),
                          (["--in-key", "--key-penalty", "2"], "expected one")):
        bad = runner.invoke(cli, ["sample", str(run), *args])
        assert bad.exit_code == 2 and message in bad.stderr, bad.stderr
    text_run = runner.invoke(cli, ["sample", str(trained_run), "--key-penalty", "1"])
    assert text_run.exit_code == 2 and "--key-penalty: expected a music run" in text_run.stderr


def test_bars_on_a_text_run_is_a_usage_error(trained_run):
    result = CliRunner().invoke(cli, ["sample", str(trained_run), "--bars", "2"])
    assert result.exit_code == 2 and "--bars: expected a music run" in result.stderr


@pytest.fixture(scope="module")
def folk_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("folk")
    folder = make_folk_dir(base)
    result = CliRunner().invoke(cli, ["train", str(base / "run"), str(folder), "--kind", "music", "--layers", "1",
                                      "--units", "32", "--batch-size", "4", "--seq-len", "32", "--epochs", "12"])
    assert result.exit_code == 0, result.stderr
    return base / "run", result.stderr


def test_train_and_sample_melodies_to_midi(folk_run, tmp_path):
    runner = CliRunner()
    run, log = folk_run
    assert "broken.mid" in log and "25 pieces encoded" in log and "1 skipped" in log
    out = tmp_path / "tunes"
    sampled = runner.invoke(cli, ["sample", str(run), "-N", "3", "-n", "200", "--seed", "2", "-o", str(out),
                                  "--bpm", "90", "--instrument", "flute"])
    assert sampled.exit_code == 0, sampled.stderr
    paths = sampled.stdout.split()
    assert [p.rsplit("/", 1)[1] for p in paths] == ["sample-01.mid", "sample-02.mid", "sample-03.mid"]
    for path in paths:
        midi = mido.MidiFile(path)
        assert any(m.type == "program_change" and m.program == 73 for m in midi.tracks[1])
        record = json.loads(open(path + ".json").read())
        assert record["notes"] == sum(len(t) for t in read_midi_notes(path))
        assert "\n" not in record["text"]  # one tune per sample


def test_render_repairs_a_few_malformed_characters_and_refuses_text_that_is_not_music(tmp_path):
    prose = tmp_path / "licence.txt"
    prose.write_text("Permission is hereby granted, free of charge, to any person obtaining a copy\n" * 50)
    runner = CliRunner()
    refused = runner.invoke(cli, ["render", str(prose), "-o", str(tmp_path / "licence.mid")])
    assert one_line_error(refused, 2, "licence.txt", "are not melody music")
    assert not (tmp_path / "licence.mid").exists()
    source = tmp_path / "tune.txt"
    source.write_text("M:6/8 K:x|Vh9?|%%X99|A\nM:3/4 K:0|M9M9M9|O4P4Q4R4|M9M9M9|O4P4Q4R4|M9M9M9|")
    result = runner.invoke(cli, ["render", str(source), "-o", str(tmp_path / "tune.mid")])
    assert result.exit_code == 0, result.stderr
    record = json.loads((tmp_path / "tune.mid.json").read_text())
    assert record["pieces"] == 2 and record["dropped_chars"] > 0 and record["notes"] >= 4
    from music21 import converter

    assert len(converter.parse(str(tmp_path / "tune.mid")).stripTies().flatten().notes) == record["notes"]
    again = runner.invoke(cli, ["render", str(source), "-o", str(tmp_path / "tune.mid")])
    assert again.exit_code == 2 and "already exists" in again.stderr
    bad = runner.invoke(cli, ["render", str(source), "-o", str(tmp_path / "tune.wav")])
    assert bad.exit_code == 2 and "expected a .mid path" in bad.stderr


def test_music_sources_errors(tmp_path):
    runner = CliRunner()
    unknown = runner.invoke(cli, ["train", str(tmp_path / "r"), "corpus:jazz", "--kind", "music"])
    assert unknown.exit_code == 2 and "corpus:jazz" in unknown.stderr and "folk, bach" in unknown.stderr
    (tmp_path / "junk.mid").write_bytes(b"junk")
    nothing = runner.invoke(cli, ["train", str(tmp_path / "r"), str(tmp_path / "junk.mid"), "--kind", "music"])
    assert nothing.exit_code == 1 and "no music could be parsed" in nothing.stderr
    assert not (tmp_path / "r").exists()


def test_render_png_and_wav(tmp_path, monkeypatch):
    import shutil
    import wave

    source = tmp_path / "tune.txt"
    source.write_text("M:3/4 K:1|T9V9X9|Y?_9|a>Y6X9|T@|")
    runner = CliRunner()
    if shutil.which("fluidsynth"):
        result = runner.invoke(cli, ["render", str(source), "-o", str(tmp_path / "a.mid"), "--png", "--wav"])
        assert result.exit_code == 0, result.stderr
        with wave.open(str(tmp_path / "a.wav")) as audio:
            assert audio.getnframes() > audio.getframerate() * 3  # 10 beats at 120 bpm is 5 s
    else:
        result = runner.invoke(cli, ["render", str(source), "-o", str(tmp_path / "a.mid"), "--png"])
        assert result.exit_code == 0, result.stderr
    assert (tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Without fluidsynth: one clear line naming the Debian package, and the MIDI file is still written.
    monkeypatch.setattr(shutil, "which", lambda name: None)
    missing = runner.invoke(cli, ["render", str(source), "-o", str(tmp_path / "b.mid"), "--wav"])
    assert missing.exit_code == 1 and "apt-get install fluidsynth" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1 and (tmp_path / "b.mid").exists()
    assert "fluidsynth" in json.loads((tmp_path / "b.mid.json").read_text())["render_errors"]["wav"]
    refused = runner.invoke(cli, ["render", str(source), "-o", str(tmp_path / "a.mid"), "--png"])
    assert refused.exit_code == 2 and "already exists" in refused.stderr  # a.png, a.mid are never replaced


def test_engraved_score_or_a_clear_missing_tool_message(tmp_path, monkeypatch):
    import shutil

    source = tmp_path / "tune.txt"
    source.write_text("M:6/8 K:2|a6c6e6f>|e>c>|a`|")
    runner = CliRunner()
    if shutil.which("lilypond"):
        result = runner.invoke(cli, ["render", str(source), "-o", str(tmp_path / "a.mid"), "--score"])
        assert result.exit_code == 0, result.stderr
        assert (tmp_path / "a.score.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    monkeypatch.setattr(shutil, "which", lambda name: None)
    missing = runner.invoke(cli, ["render", str(source), "-o", str(tmp_path / "b.mid"), "--score"])
    assert missing.exit_code == 1 and "apt-get install lilypond" in missing.stderr


def test_a_missing_tool_does_not_stop_the_other_samples(tmp_path, monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)  # no fluidsynth
    args = ["sample", "folk", "-N", "3", "--seed", "4", "--bars", "4", "-o", str(tmp_path / "tunes"), "--wav",
            "--bpm", "96", "--instrument", "flute", "--velocity", "70"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1 and "apt-get install fluidsynth" in result.stderr and "and 2 more" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert len(result.stdout.split()) == 3  # every output is listed
    for n in (1, 2, 3):
        assert (tmp_path / "tunes" / f"sample-0{n}.mid").stat().st_size > 0
        record = json.loads((tmp_path / "tunes" / f"sample-0{n}.mid.json").read_text())
        assert (record["bpm"], record["instrument"], record["velocity"], record["program"]) == (96, "flute", 70, 73)
        assert "wav" in record["render_errors"] and "wav" not in record


def test_a_music_run_records_its_piece_lengths_and_samples_decode_without_repair(folk_run):
    from generate.model.rundir import RunDir
    from generate.music.melody import decode_tune
    from generate.music.sampling import piece_lengths

    run, _ = folk_run
    recorded = json.loads((run / "pieces.json").read_text())
    low, median, high = RunDir(run).piece_bars()
    assert recorded["pieces"] == 25 and 1 <= low <= median <= high  # 24 ABC tunes and one MIDI scale
    assert piece_lengths(__import__("numpy").array([0, 1, 2, 1, 1, 3, 0, 1, 2, 1, 1, 1, 3]), 1, 3)["bars"] == [2, 3]  # three bar lines and four: two bars and three
    runner = CliRunner()
    formed = runner.invoke(cli, ["sample", str(run), "-N", "4", "--seed", "4", "-t", "1.5", "--json"])
    assert formed.exit_code == 0, formed.stderr
    for line in formed.stdout.splitlines():
        text = json.loads(line)["text"]
        tune, report = decode_tune(text.strip("\n"))
        assert report.dropped == 0 and text.startswith("M:"), text  # even a hot, tiny model writes well-formed tunes
        assert low <= text.count("|") - 1 <= high, text
    free = runner.invoke(cli, ["sample", str(run), "-N", "4", "--seed", "4", "-t", "1.5", "--json", "--no-syntax"])
    texts = [json.loads(line)["text"] for line in free.stdout.splitlines()]
    assert texts != [json.loads(line)["text"] for line in formed.stdout.splitlines()]  # the automaton changed them


def test_a_music_run_records_its_meters_and_eval_judges_its_samples_beside_its_corpus(folk_run, tmp_path):
    run, _ = folk_run
    recorded = json.loads((run / "pieces.json").read_text())["meters"]
    assert recorded["meters"] == {"4/4": 25}  # the ABC tunes and the MIDI scale are all in 4/4
    runner = CliRunner()
    judged = runner.invoke(cli, ["eval", str(run), "-N", "6", "--seed", "3", "--json"])
    assert judged.exit_code == 0, judged.stderr
    report = json.loads(judged.stdout)
    assert report["corpus"] is not None, judged.stderr
    samples, corpus = report["samples"]["measures"], report["corpus"]["measures"]
    assert report["critic"] == "melody" and report["samples"]["pieces"] == 6 and report["corpus"]["pieces"] == 25
    assert samples["known_meter"] == 1.0 and samples["inner_bars_full"] == 1.0  # by construction
    assert corpus["inner_bars_full"] == 1.0 and corpus["tonic_ending"] == 24 / 25  # the tunes end on G, the scale not
    assert set(report["distribution"]) == {"pitch classes", "note lengths", "pitch range", "mean interval", "note count"}
    table = runner.invoke(cli, ["eval", str(run), "-N", "2", "--seed", "3"])
    assert "inner bars whose notes fill the meter" in table.stdout and "overlap" in table.stdout
    # Files of the model's writing are judged as they are: a short inner bar counts against them.
    written = tmp_path / "tunes.txt"
    written.write_text("M:4/4 K:1|T9T9T9T9|T9T9|T?T?|T^|\n")
    from_files = json.loads(runner.invoke(cli, ["eval", str(run), str(written), "--json"]).stdout)
    assert from_files["samples"]["measures"]["inner_bars_full"] == 0.5 and from_files["samples"]["pieces"] == 1



def test_a_pickup_stays_a_pickup_in_musicxml(tmp_path):
    from music21 import converter

    source = tmp_path / "pickup.txt"
    source.write_text("M:6/8 K:1|a6|a>b>|a9b?|c@|a>-6a9|\n")  # an eighth's pickup, then full bars
    result = CliRunner().invoke(cli, ["render", str(source), "-o", str(tmp_path / "tune.mid"), "--musicxml"])
    assert result.exit_code == 0, result.stderr
    measures = list(converter.parse(str(tmp_path / "tune.musicxml")).parts[0].getElementsByClass("Measure"))
    assert measures[0].duration.quarterLength == 0.5  # the pickup, not a bar padded at its start
    assert [m.duration.quarterLength for m in measures[1:5]] == [3.0] * 4
    assert not [n for m in measures for n in m.notes if n.tie is not None]  # no bar line cuts a note in two
    midi_measures = list(converter.parse(str(tmp_path / "tune.mid")).parts[0].getElementsByClass("Measure"))
    assert [m.duration.quarterLength for m in midi_measures[:3]] == [0.5, 3.0, 3.0]  # the MIDI file's anacrusis too


def test_abc_output_reads_back_as_the_midi_file(tmp_path):
    from music21 import converter

    # D major (K:2): a pickup, C natural after a C sharp in one bar, a note tied across a bar line, a rest.
    source = tmp_path / "tune.txt"
    source.write_text("M:6/8 K:2|V6|X6Y6Z6a9_6|Y@|-9Y>W6|\n")
    result = CliRunner().invoke(cli, ["render", str(source), "-o", str(tmp_path / "tune.mid"), "--abc"])
    assert result.exit_code == 0, result.stderr
    abc = (tmp_path / "tune.abc").read_text()
    assert "M:6/8" in abc and "K:D" in abc and "-" in abc  # the tie across the bar line
    notes = converter.parse(str(tmp_path / "tune.abc"), format="abc").stripTies().flatten().notes
    read = [(n.pitch.midi, Fraction(n.offset).limit_denominator(24), Fraction(n.quarterLength).limit_denominator(24))
            for n in notes]
    assert read == [(pitch, onset, length) for onset, pitch, length in read_midi_notes(tmp_path / "tune.mid")[0]]
