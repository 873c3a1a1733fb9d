"""The co-writing screen: a prompt_toolkit full-screen application around a `WriteSession`.

The screen shows the text so far, the numbered candidates, a status line and
a help line with every key. Keys call the session's actions; nothing here
draws or decides anything itself. Errors from an action (an edit with
characters the model does not know) go to the status line, and the session
stays as it was.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from collections.abc import Callable
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
from .candidates import describe
from .session import TEMPERATURE_STEP, WriteSession

log = logging.getLogger(__name__)

HELP = "1-9/↑↓⏎ take · r reroll · u undo · ^R redo · e edit · t/T temp · n/N count · s save · {play}q quit"


def shown(text: str) -> str:
    """A candidate on one line: newlines and the file separator made visible."""
    return text.replace("\n", "⏎").replace(FILE_SEPARATOR, "⟨end of file⟩")


class WriterApp:
    """Builds and runs the screen.

    Args:
        session: the session the keys act on.
        title: what the header names (the model).
        save: writes the text and its record; returns the path written, or raises GenerateError.
        check_text: raises GenerateError for an edit the model cannot continue (unknown characters).
        music_encoding: for music runs, how candidates are shown as notes; None for text and code.
        play: for music runs, renders the text so far plus a candidate to MIDI, or None.
    """

    def __init__(self, session: WriteSession, title: str, save: Callable[[], Path] | None,
                 check_text: Callable[[str], None], music_encoding: str | None = None,
                 play: Callable[[str, Path], None] | None = None):
        self.session = session
        self.title = title
        self.save = save
        self.check_text = check_text
        self.music_encoding = music_encoding
        self.play = play
        self.selected = 0
        self.status = "pick a candidate with its number"
        self.editing = False
        self.player: subprocess.Popen | None = None
        self.app = self._build()

    def run(self) -> None:
        self.app.run()
        if self.player and self.player.poll() is None:
            self.player.terminate()

    # ------------------------------------------------------------------ actions

    def act(self, action: Callable[[], object], done: str, nothing: str = "nothing changed") -> None:
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

    def save_now(self) -> None:
        if self.save is None:
            self.status = "no -o FILE given: nothing to save to (quit prints the text)"
            return
        try:
            self.status = f"saved {self.save()}"
        except GenerateError as exc:
            self.status = str(exc)

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
                            f"{s.count} candidates · seed {s.page.draw.seed} ")]

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

    def _build(self):
        editing = Condition(lambda: self.editing)
        editor = TextArea(multiline=True, wrap_lines=True, scrollbar=True)

        def text_so_far():
            return self.session.page.text.replace(FILE_SEPARATOR, "\n⟨end of file⟩\n") or "(empty: take a candidate)"

        def cursor():  # keeps the end of the text in view
            return Point(x=0, y=text_so_far().count("\n"))

        text_view = Window(FormattedTextControl(text_so_far, get_cursor_position=cursor, show_cursor=False),
                           wrap_lines=True)
        keys = KeyBindings()
        normal = ~editing
        self._bind_actions(keys, normal)
        self._bind_editing(keys, editing, editor, text_view)

        play = "p play · " if self.play else ""
        body = HSplit([
            Window(FormattedTextControl(self._header), height=1),
            ConditionalContainer(text_view, filter=normal),
            ConditionalContainer(editor, filter=editing),
            Window(height=1, char="─"),
            Window(FormattedTextControl(self._candidates), height=lambda: max(len(self.session.candidates), 1),
                   wrap_lines=False),
            Window(height=1, char="─"),
            Window(FormattedTextControl(lambda: [("bold", f" {self.status}")]), height=1),
            Window(FormattedTextControl(lambda: [("", " " + HELP.format(play=play))]), height=1),
        ])
        return Application(layout=Layout(body, focused_element=text_view), key_bindings=keys, full_screen=True,
                           mouse_support=False)

    def _bind_actions(self, keys: KeyBindings, normal) -> None:
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
        keys.add("s", filter=normal)(lambda event: self.save_now())
        keys.add("p", filter=normal)(lambda event: self.play_selected())
        keys.add("q", filter=normal)(lambda event: event.app.exit())
        keys.add("c-c")(lambda event: event.app.exit())

    def _bind_editing(self, keys: KeyBindings, editing, editor, text_view) -> None:
        """e edits the text in place; Esc keeps the edit (if the model can continue it), Ctrl-G drops it."""
        @keys.add("e", filter=~editing)
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
            self.editing = False
            self.status = "edit dropped"
            event.app.layout.focus(text_view)
