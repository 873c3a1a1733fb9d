"""`generate sample`'s flags, derived from the sampling options' declarations (`sampling/options.py`).

Each declared field becomes one flag: its name with dashes, its short alias,
its help, default and type. Booleans that default on (or to the run's choice)
get a `--no-` form. Ranges are not click types: the library's one set of
checks names the option either way (`--top-k: expected ...`).
"""

from __future__ import annotations

from pathlib import Path

import click

from ..sampling.options import Declaration, Kind, declarations, defaults, flag_name, kinds

RENDER_HELP = {
    "wav": "Music with -o: also a WAV beside each MIDI file (needs fluidsynth).",
    "png": "Music with -o: also a piano-roll PNG beside each MIDI file.",
    "musicxml": "Music with -o: also a MusicXML score beside each MIDI file.",
    "score": "Music with -o: also an engraved score, NAME.score.png (needs LilyPond).",
    "abc": "Music with -o: also the tune in ABC notation, NAME.abc.",
}


# `generate sample --help` in the groups people think in; the command reference (docs/commands.md) uses the same.
OPTION_GROUPS = {
    "What to write": ("checkpoint", "prime", "prime_file", "oov", "length", "num_samples", "stop", "warmup"),
    "How to draw": ("temperature", "top_k", "top_p", "greedy", "seed", "beam"),
    "Poems": ("lines", "acrostic", "form", "regulated", "new_lines", "rhyme", "meter"),
    "Music": ("bars", "notes", "key", "in_key", "key_penalty", "bpm", "instrument", "velocity", "gain"),
    "Filters and checks": ("syntax", "valid_only", "min_length", "max_copy"),
    "Labels": ("label", "then_label", "label_strength"),
    "Output": ("output", "overwrite", "as_json", "drop_prime", *RENDER_HELP),
}


class GroupedCommand(click.Command):
    """A command whose --help lists its options in `OPTION_GROUPS`' sections, the rest under "Other options"."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        records: dict[str, list[tuple[str, str]]] = {title: [] for title in OPTION_GROUPS}
        group_of = {name: title for title, names in OPTION_GROUPS.items() for name in names}
        records["Other options"] = []
        for param in (p for p in self.get_params(ctx) if isinstance(p, click.Option)):
            record = param.get_help_record(ctx)
            if record is not None:
                records[group_of.get(param.name, "Other options")].append(record)
        for title, rows in records.items():
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


def click_option(field: str, declaration: Declaration, kind: Kind, default: object):
    """The click option of one declared field."""
    names = [flag_name(field), *([declaration.short] if declaration.short else [])]
    help_text = declaration.help + (f" [default: {declaration.default_text}]" if declaration.default_text else "")
    settings: dict = {"default": default, "help": help_text}
    if kind.types == (bool,):
        if default is False:
            settings["is_flag"] = True
        else:
            names[0] = f"{names[0]}/--no-{field.replace('_', '-')}"
    elif kind.sequence:
        settings["multiple"] = True
    elif declaration.choices:
        settings["type"] = click.Choice(declaration.choices)
    elif Path in kind.types:
        settings["type"] = click.Path(exists=True, dir_okay=False, path_type=Path)
    elif kind.types == (int,):
        settings["type"] = int
    elif kind.types == (float, int):
        settings["type"] = float
    settings["show_default"] = default is not None and default is not False and default not in ((), "") \
        and not declaration.default_text
    return click.option(*names, **settings)


def sampling_options(command):
    """Decorates a command with a flag for every declared CLI option, and one per render."""
    field_kinds, field_defaults = kinds(), defaults()
    for name in reversed(RENDER_HELP):
        command = click.option(flag_name(name), is_flag=True, help=RENDER_HELP[name])(command)
    for field, declaration in reversed(list(declarations().items())):
        if declaration.cli:
            command = click_option(field, declaration, field_kinds[field], field_defaults[field])(command)
    return command
