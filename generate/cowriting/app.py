"""The co-writing screen: a prompt_toolkit full-screen application around a `WriteSession`.

The screen shows the text so far, the numbered candidates, a status line and
a help line with every key. Keys call the session's actions; nothing here
draws or decides anything itself. Errors from an action (an edit with
characters the model does not know) go to the status line, and the session
stays as it was.

While the screen is up nothing may write to the terminal behind it: logs,
Python warnings and whatever the backend's C++ layer writes to file
descriptor 2 go to a log file instead, and warnings also to the status line.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from prompt_toolkit.application import Application
from prompt_toolkit.data_structures import Point
from prompt_toolkit.filters import Condition
from prompt_toolkit.key_binding import KeyBindings
from prompt_toolkit.layout import ConditionalContainer, HSplit, Layout, Window
from prompt_toolkit.layout.controls import FormattedTextControl
from prompt_toolkit.widgets import TextArea

from ..data.config import FILE_SEPARATOR
from ..errors import GenerateError
from ..music.media import find_soundfont
from .candidates import describe, describe_piece
from .session import TEMPERATURE_STEP, WriteSession

log = logging.getLogger(__name__)

HELP = "1-9/↑↓⏎ take · r reroll · u undo · ^R redo · e edit · t/T temp · n/N count · s save · {play}q quit"
WATCHED_LOGGERS = ("", "generate", "tensorflow", "absl", "keras", "py.warnings")  # "" is the root logger


class _StatusLine(logging.Handler):
    """Shows each warning on the screen's status line (the log file keeps every message)."""

    def __init__(self, show: Callable[[str], None]):
        super().__init__(logging.WARNING)
        self.show = show

    def emit(self, record: logging.LogRecord) -> None:
        first_line = (record.getMessage().strip().splitlines() or [""])[0]
        self.show(f"{record.levelname.lower()}: {first_line}")


@contextlib.contextmanager
def messages_off_the_screen(log_file: Path, show: Callable[[str], None]) -> Iterator[None]:
    """While inside, stderr (logs, warnings, C++ notices on fd 2) appends to `log_file`; warnings also reach `show`.

    The screen draws on stdout; stderr is the same terminal, so anything written there would land on the
    screen and shift it. Python's loggers keep their handlers, which write to `sys.stderr`, now the file.
    """
    sys.stderr.flush()
    try:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        target = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError:  # a read-only cache: the messages are lost rather than drawn over the screen
        log_file = Path(os.devnull)
        target = os.open(log_file, os.O_WRONLY)
    saved = os.dup(2)
    os.write(target, f"--- generate write, {dt.datetime.now().isoformat(timespec='seconds')}\n".encode())
    os.dup2(target, 2)
    os.close(target)
    python_stderr, sys.stderr = sys.stderr, open(log_file, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
    handler = _StatusLine(show)
    loggers = [logging.getLogger(name) for name in WATCHED_LOGGERS]
    for logger in loggers:
        logger.addHandler(handler)
    logging.captureWarnings(True)
    try:
        yield
    finally:
        logging.captureWarnings(False)
        for logger in loggers:
            logger.removeHandler(handler)
        sys.stderr.close()
        sys.stderr = python_stderr
        os.dup2(saved, 2)
        os.close(saved)


def shown(text: str) -> str:
    """A candidate on one line: newlines and the file separator made visible."""
    return text.replace("\n", "⏎").replace(FILE_SEPARATOR, "⟨end of file⟩")


class WriterApp:
    """Builds and runs the screen.

    Args:
        session: the session the keys act on.
        title: what the header names (the model).
        save: writes the text and its record to a path; returns the path written, or raises GenerateError.
        check_text: raises GenerateError for an edit the model cannot continue (unknown characters).
        save_to: where `s` saves; None asks for a file name the first time.
        check_output: raises GenerateError for a file name typed at the save prompt that must not be written
            (one that exists, without --overwrite).
        music_encoding: for music runs, how candidates and the text are shown as notes; None for text and code.
        play: for music runs, renders the text so far plus a candidate to MIDI, or None.
        log_file: where messages go while the screen is up.
        app_options: passed to prompt_toolkit's `Application` (tests give a pipe input and a dummy output).
    """

    def __init__(self, session: WriteSession, title: str, save: Callable[[Path], Path],
                 check_text: Callable[[str], None], save_to: Path | None = None,
                 check_output: Callable[[Path], None] = lambda path: None, music_encoding: str | None = None,
                 play: Callable[[str, Path], None] | None = None, log_file: Path | None = None, **app_options):
        self.session = session
        self.title = title
        self.save = save
        self.check_text = check_text
        self.output = save_to
        self.check_output = check_output
        self.music_encoding = music_encoding
        self.play = play
        self.log_file = log_file or Path(tempfile.gettempdir()) / "generate-write.log"
        self.selected = 0
        self.status = "pick a candidate with its number"
        self.message = ""  # the last warning logged during the last action, on a line of its own
        self.editing = False
        self.naming = False  # the save prompt is open
        self.player: subprocess.Popen | None = None
        self.app = self._build(app_options)

    def run(self) -> bool:
        """Runs the screen until q or Ctrl-C; returns True for Ctrl-C."""
        with messages_off_the_screen(self.log_file, self._show_message):
            interrupted = bool(self.app.run())
        if self.player and self.player.poll() is None:
            self.player.terminate()
        return interrupted

    def _show_message(self, message: str) -> None:
        self.message = message
        if self.app.is_running:
            self.app.invalidate()

    # ------------------------------------------------------------------ actions

    def act(self, action: Callable[[], object], done: str, nothing: str = "nothing changed") -> None:
        self.message = ""
        try:
            result = action()
        except (GenerateError, IndexError) as exc:
            self.status = str(exc)
            return
        self.status = done if result is not False else nothing
        self.selected = min(self.selected, max(len(self.session.candidates) - 1, 0))

    def take(self, index: int) -> None:
        if index >= len(self.session.candidates):
            self.status = f"no candidate {index + 1}: there are {len(self.session.candidates)}"
            return
        self.act(lambda: self.session.take(index), f"took candidate {index + 1}")

    def save_now(self, path: Path | None = None) -> bool:
        """Saves to `path`, or to the output already chosen; False (the status says why) when nothing was saved."""
        if path is None and self.output is None:
            self.status = "no -o FILE given: nothing to save to"
            return False
        try:
            if path is not None:
                self.check_output(path)
            self.output = path or self.output
            self.status = f"saved {self.save(self.output)}"
            return True
        except GenerateError as exc:
            self.status = str(exc)
            return False

    def play_selected(self) -> None:
        if self.play is None:
            self.status = "p plays music candidates"
            return
        if not shutil.which("fluidsynth"):
            self.status = "playing needs fluidsynth (apt-get install fluidsynth)"
            return
        if not self.session.candidates:
            self.status = "no candidate to play"
            return
        midi = Path(tempfile.mkdtemp(prefix="generate-write-")) / "candidate.mid"
        try:
            self.play(self.session.page.text + self.session.candidates[self.selected], midi)
            if self.player and self.player.poll() is None:
                self.player.terminate()
            self.player = subprocess.Popen(["fluidsynth", "-ni", "-q", str(find_soundfont()), str(midi)],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.status = f"playing candidate {self.selected + 1}"
        except (GenerateError, OSError) as exc:
            self.status = f"cannot play: {exc}"

    # ------------------------------------------------------------------ screen

    def _header(self):
        s = self.session
        return [("reverse", f" generate write · {self.title} · temperature {s.temperature:.1f} · "
                            f"{s.count} candidates · seed {s.seed} · draw {s.page.draw.number} ")]

    def _candidates(self):
        lines = []
        candidates = self.session.candidates
        if not candidates:
            return [("italic", "  no candidates: the piece is complete (s saves, u undoes)")]
        for i, text in enumerate(candidates):
            label = describe(self.session.page.text, text, self.music_encoding) if self.music_encoding else shown(text)
            style = "reverse" if i == self.selected else ""
            lines.append((style, f" {i + 1}  {label or '(nothing)'}"))
            lines.append(("", "\n"))
        return lines[:-1]

    def _text_so_far(self) -> str:
        text = self.session.page.text
        if self.music_encoding:  # as notes, like the candidates, not as raw encoding
            return describe_piece(text, self.music_encoding) or "(empty: take a candidate)"
        return text.replace(FILE_SEPARATOR, "\n⟨end of file⟩\n") or "(empty: take a candidate)"

    def _build(self, app_options: dict):
        editing = Condition(lambda: self.editing)
        naming = Condition(lambda: self.naming)
        editor = TextArea(multiline=True, wrap_lines=True, scrollbar=True)
        file_name = TextArea(multiline=False, prompt=" save as: ")

        def cursor():  # keeps the end of the text in view
            return Point(x=0, y=self._text_so_far().count("\n"))

        text_view = Window(FormattedTextControl(self._text_so_far, get_cursor_position=cursor, show_cursor=False),
                           wrap_lines=True)
        keys = KeyBindings()
        normal = ~editing & ~naming
        self._bind_actions(keys, normal, file_name)
        self._bind_editing(keys, editing, editor, text_view)
        self._bind_naming(keys, naming, file_name, text_view)

        play = "p play · " if self.play else ""
        body = HSplit([
            Window(FormattedTextControl(self._header), height=1),
            ConditionalContainer(text_view, filter=~editing),
            ConditionalContainer(editor, filter=editing),
            Window(height=1, char="─"),
            Window(FormattedTextControl(self._candidates), height=lambda: max(len(self.session.candidates), 1),
                   wrap_lines=False),
            Window(height=1, char="─"),
            Window(FormattedTextControl(lambda: [("bold", f" {self.status}")]), height=1),
            ConditionalContainer(Window(FormattedTextControl(lambda: [("italic", f" {self.message} (all messages: "
                                                                                  f"{self.log_file})")]), height=1),
                                 filter=Condition(lambda: bool(self.message))),
            ConditionalContainer(file_name, filter=naming),
            Window(FormattedTextControl(lambda: [("", " " + HELP.format(play=play))]), height=1),
        ])
        return Application(layout=Layout(body, focused_element=text_view), key_bindings=keys, full_screen=True,
                           mouse_support=False, **app_options)

    def _bind_actions(self, keys: KeyBindings, normal, file_name: TextArea) -> None:
        """The co-writing keys: take, move, reroll, undo and redo, temperature, count, save, play, quit."""
        for digit in "123456789":
            keys.add(digit, filter=normal)(lambda event, i=int(digit) - 1: self.take(i))
        keys.add("enter", filter=normal)(lambda event: self.take(self.selected))
        keys.add("up", filter=normal)(lambda event: setattr(self, "selected", max(self.selected - 1, 0)))
        keys.add("down", filter=normal)(lambda event: setattr(
            self, "selected", min(self.selected + 1, max(len(self.session.candidates) - 1, 0))))
        keys.add("r", filter=normal)(lambda event: self.act(self.session.reroll, "rerolled"))
        keys.add("u", filter=normal)(lambda event: self.act(self.session.undo, "undone", "nothing to undo"))
        keys.add("c-r", filter=normal)(lambda event: self.act(self.session.redo, "redone", "nothing to redo"))
        keys.add("t", filter=normal)(lambda event: self.act(
            lambda: self.session.set_temperature(self.session.temperature - TEMPERATURE_STEP), "temperature lowered", "the temperature is at its lowest"))
        keys.add("T", filter=normal)(lambda event: self.act(
            lambda: self.session.set_temperature(self.session.temperature + TEMPERATURE_STEP), "temperature raised", "the temperature is at its highest"))
        keys.add("n", filter=normal)(lambda event: self.act(lambda: self.session.set_count(self.session.count - 1),
                                                            "fewer candidates", "one candidate is the fewest"))
        keys.add("N", filter=normal)(lambda event: self.act(lambda: self.session.set_count(self.session.count + 1),
                                                            "more candidates", "nine candidates is the most"))
        keys.add("p", filter=normal)(lambda event: self.play_selected())
        keys.add("q", filter=normal)(lambda event: event.app.exit(result=False))
        keys.add("c-c")(lambda event: event.app.exit(result=True))  # the text is kept as q keeps it; exit 130

        @keys.add("s", filter=normal)
        def _save(event):
            if self.output is not None:
                self.save_now()
                return
            self.naming = True
            self.status = "a file name (.txt, .md, .json; .mid for music); Enter saves, Esc cancels"
            event.app.layout.focus(file_name)

    def _bind_naming(self, keys: KeyBindings, naming, file_name: TextArea, text_view) -> None:
        """The save prompt: Enter saves to the typed name and keeps it for later saves; Esc cancels."""
        @keys.add("enter", filter=naming)
        def _chosen(event):
            name = file_name.text.strip()
            if not name:
                self.status = "type a file name, or Esc to cancel"
                return
            if self.save_now(Path(name).expanduser()):
                self._back_to_text(event, text_view, self.status)

        @keys.add("escape", filter=naming)
        def _cancel(event):
            self._back_to_text(event, text_view, "not saved")

    def _back_to_text(self, event, text_view, status: str) -> None:
        """Closes the editor or the save prompt and returns the keys to the text."""
        self.editing = self.naming = False
        self.status = status
        event.app.layout.focus(text_view)

    def _bind_editing(self, keys: KeyBindings, editing, editor, text_view) -> None:
        """e edits the text in place; Esc keeps the edit (if the model can continue it), Ctrl-G drops it."""
        @keys.add("e", filter=~editing & ~Condition(lambda: self.naming))
        def _edit(event):
            self.editing = True
            editor.text = self.session.page.text
            editor.buffer.cursor_position = len(editor.text)
            self.status = "editing: Esc keeps the edit, Ctrl-G drops it"
            event.app.layout.focus(editor)

        @keys.add("escape", filter=editing)
        def _done(event):
            try:
                self.check_text(editor.text)
            except GenerateError as exc:
                self.status = f"{exc} (fix it, or Ctrl-G to drop the edit)"
                return
            self.editing = False
            if editor.text != self.session.page.text:
                self.act(lambda: self.session.edit(editor.text), "edited")
            else:
                self.status = "unchanged"
            event.app.layout.focus(text_view)

        @keys.add("c-g", filter=editing)
        def _drop(event):
            self._back_to_text(event, text_view, "edit dropped")
