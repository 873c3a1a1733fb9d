"""Job files: TOML that says what an unattended run makes, read and type-checked.

A job file has an optional `[defaults]` table and one `[[job]]` table per
job; a job's keys override the defaults. `SCHEMA` below is the reference
(the README prints it): every key, its type, its default and what it does.
"""

from __future__ import annotations

import dataclasses
import re
import string
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import OptionError, UsageError
from ..fileio import tomllib
from ..music import RENDER_SUFFIXES
from ..sampling.options import DEFAULT_LENGTH, SampleOptions

TEXT_FORMATS = ("txt", "md", "json")
MUSIC_FORMATS = ("mid", *RENDER_SUFFIXES)  # the MIDI file, and what renders beside it
FORMATS = TEXT_FORMATS + MUSIC_FORMATS
_SAMPLE_DEFAULTS = {f.name: f.default for f in dataclasses.fields(SampleOptions)}
TEMPLATE_FIELDS = ("date", "time", "job", "n", "seed", "run_id")

# key: (accepted types, default, help). A list type also accepts a single value.
SCHEMA: dict[str, tuple[tuple[type, ...], object, str]] = {
    "name": ((str,), None, "required; letters, digits, '-' and '_'; unique in the file"),
    "model": ((str,), None, "required; a run directory or a shipped model name"),
    "out": ((str,), None, "required; output path template without extension: {date} {time} {job} {n} {seed} {run_id}"),
    "count": ((int,), 1, "outputs per run"),
    "formats": ((list,), ["txt"], f"output formats: {' '.join(TEXT_FORMATS)} for text and code; {' '.join(MUSIC_FORMATS)} for music"),
    "prime": ((str, list), "", "prime text; a list is used in turn, output n takes item n mod its length"),
    "temperature": ((float, int, list), _SAMPLE_DEFAULTS["temperature"], "sampling temperature; a list is used in turn like prime"),
    "top_k": ((int,), _SAMPLE_DEFAULTS["top_k"], "keep only the k likeliest characters (0: all)"),
    "top_p": ((float, int), _SAMPLE_DEFAULTS["top_p"], "keep the smallest set of characters with this probability"),
    "length": ((int,), None, f"characters per sample; default {DEFAULT_LENGTH['text']} for text, {DEFAULT_LENGTH['music']} for music (a piece ends sooner)"),
    "stop": ((list,), [], "strings that end a sample"),
    "seed": ((int,), None, "base seed; default: derived from the run id, so a rerun repeats it"),
    "checkpoint": ((str,), "best", "best, latest or a .keras file in the run"),
    "lines": ((int,), _SAMPLE_DEFAULTS["lines"], "a poem of this many lines"),
    "acrostic": ((str,), _SAMPLE_DEFAULTS["acrostic"], "line i begins with character i"),
    "form": ((str,), _SAMPLE_DEFAULTS["form"], "a Chinese form such as 5x4"),
    "bpm": ((float, int), _SAMPLE_DEFAULTS["bpm"], "music: tempo"),
    "instrument": ((str, int), _SAMPLE_DEFAULTS["instrument"], "music: General MIDI program name or number"),
    "velocity": ((int,), _SAMPLE_DEFAULTS["velocity"], "music: MIDI note velocity, 1-127"),
    "max_copy": ((int,), 0, "reject a sample sharing more than this many characters in a row with the corpus (0: off)"),
    "min_length": ((int,), 0, "reject a sample shorter than this many characters"),
    "dedupe": ((bool, float), False, "reject a sample identical (or, with a number, this similar) to an earlier output of the job"),
    "syntax": ((bool,), None, "code: keep brackets, quotes and indentation valid while sampling (default: on for Python runs)"),
    "valid_only": ((bool,), _SAMPLE_DEFAULTS["valid_only"], "reject code that does not parse and music that does not decode cleanly"),
    "max_attempts": ((int,), 5, "samples tried per output before the job fails"),
    "keep": ((str, int), None, "retention: '30d' keeps 30 days of this job's outputs, 100 keeps the newest 100"),
    "manifest": ((str,), None, "the manifest file; default: manifest.jsonl in the template-free head of `out`"),
}
REQUIRED = ("name", "model", "out")
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]+")


@dataclass
class Job:
    name: str
    model: str
    out: str
    source: Path  # the job file
    settings: dict = field(default_factory=dict)  # every SCHEMA key, defaults filled in

    def __getitem__(self, key: str):
        return self.settings[key]

    def sample_options(self, n: int, seed: int) -> SampleOptions:
        """The sampling options of output `n` (1-based), drawn from `seed`."""
        prime = self.cycled("prime", n - 1)
        return SampleOptions(
            prime=prime or None, length=self["length"] or None, temperature=float(self.cycled("temperature", n - 1)),
            top_k=self["top_k"], top_p=float(self["top_p"]), stop=tuple(self["stop"]), seed=seed,
            lines=self["lines"], acrostic=self["acrostic"], form=self["form"], valid_only=self["valid_only"],
            syntax=self["syntax"], bpm=float(self["bpm"]), instrument=self["instrument"], velocity=self["velocity"],
            renders=tuple(f for f in self["formats"] if f in RENDER_SUFFIXES),
        )

    def option_error(self, exc: OptionError) -> UsageError:
        """A sampling option's error in this file's terms: the file, the job and its key."""
        key = "formats" if exc.option in RENDER_SUFFIXES or exc.option == "renders" else exc.option
        return UsageError(f"{self.source}: job {self.name!r}: {key}: {exc.problem}")

    def cycled(self, key: str, n: int):
        """Item `n` (0-based) of a setting that may be a list used in turn."""
        value = self.settings[key]
        return value[n % len(value)] if isinstance(value, list) else value

    @property
    def manifest(self) -> Path:
        if self["manifest"]:
            return resolve_path(self["manifest"])
        return template_root(resolve_path(self.out)) / "manifest.jsonl"

    @property
    def retention(self) -> tuple[str, int] | None:
        """("days", N) or ("count", N), or None to keep everything."""
        keep = self["keep"]
        if keep is None:
            return None
        if isinstance(keep, int):
            return ("count", keep)
        return ("days", int(keep[:-1]))


def resolve_path(value: str) -> Path:
    """Paths in a job file are relative to the working directory, as on the command line (cron: `cd` first)."""
    return Path(value).expanduser()


def template_root(path: Path) -> Path:
    """The longest leading directory of a template with no {field} in it."""
    parts = []
    for part in path.parts[:-1]:
        if "{" in part:
            break
        parts.append(part)
    return Path(*parts) if parts else Path(".")


def load_jobs(path: Path) -> list[Job]:
    """Reads and validates a job file; every problem names the file, the job and the key.

    Raises:
        UsageError: unreadable TOML, an unknown key, a bad type or value, a missing required key.
    """
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})") from None
    unknown_top = sorted(set(raw) - {"defaults", "job"})
    if unknown_top:
        raise UsageError(f"{path}: unknown table {unknown_top[0]!r}; expected [defaults] and [[job]]")
    defaults = raw.get("defaults", {})
    if not isinstance(defaults, dict):
        raise UsageError(f"{path}: [defaults] must be a table")
    _check_keys(path, "[defaults]", defaults)
    tables = raw.get("job", [])
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise UsageError(f"{path}: expected at least one [[job]] table")
    jobs, seen = [], set()
    for index, table in enumerate(tables):
        where = f"job {table.get('name', f'#{index + 1}')!r}"
        _check_keys(path, where, table)
        merged = {key: spec[1] for key, spec in SCHEMA.items()}
        merged.update(defaults)
        merged.update(table)
        for key in REQUIRED:
            if not merged.get(key):
                raise UsageError(f"{path}: {where}: missing required key {key!r}")
        name = merged["name"]
        if not NAME_PATTERN.fullmatch(name):
            raise UsageError(f"{path}: {where}: name: expected letters, digits, '-' or '_', received {name!r}")
        if name in seen:
            raise UsageError(f"{path}: {where}: name: expected a unique name, {name!r} is used twice")
        seen.add(name)
        _check_values(path, where, merged)
        jobs.append(Job(name, merged["model"], merged["out"], path, merged))
    return jobs


def _check_keys(path: Path, where: str, table: dict) -> None:
    for key, value in table.items():
        if key not in SCHEMA:
            close = [k for k in SCHEMA if k.replace("_", "") == key.replace("_", "").replace("-", "")]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UsageError(f"{path}: {where}: unknown key {key!r}{hint}")
        types = SCHEMA[key][0]
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if not ok:
            expected = " or ".join("list" if t is list else t.__name__ for t in types)
            raise UsageError(f"{path}: {where}: {key}: expected {expected}, received {type(value).__name__} {value!r}")


def _check_values(path: Path, where: str, job: dict) -> None:
    def fail(key: str, expected: str) -> None:
        raise UsageError(f"{path}: {where}: {key}: expected {expected}, received {job[key]!r}")

    for key in ("count", "max_attempts"):
        if job[key] < 1:
            fail(key, "an integer >= 1")
    for key in ("length", "top_k", "max_copy", "min_length", "lines"):
        if job[key] is not None and job[key] < 0:
            fail(key, "an integer >= 0")
    if not job["formats"] or any(f not in FORMATS for f in job["formats"]):
        fail("formats", f"a non-empty list from {', '.join(FORMATS)}")
    if len(set(job["formats"])) != len(job["formats"]):
        fail("formats", "each format once")
    for key, kind in (("prime", str), ("temperature", (int, float)), ("stop", str)):
        values = job[key] if isinstance(job[key], list) else [job[key]]
        if (key != "stop" and not values) or not all(isinstance(v, kind) and not isinstance(v, bool) for v in values):
            fail(key, f"a {'string' if kind is str else 'number'} or a non-empty list of them")
    temps = job["temperature"] if isinstance(job["temperature"], list) else [job["temperature"]]
    if any(t < 0 for t in temps):
        fail("temperature", "numbers >= 0")
    if not 0 < job["top_p"] <= 1:
        fail("top_p", "a number in (0, 1]")
    if isinstance(job["dedupe"], float) and not 0 < job["dedupe"] <= 1:
        fail("dedupe", "true, false, or a similarity in (0, 1]")
    keep = job["keep"]
    if keep is not None and not ((isinstance(keep, int) and keep >= 1) or (isinstance(keep, str) and re.fullmatch(r"[1-9][0-9]*d", keep))):
        fail("keep", "a number of outputs >= 1 or a number of days such as '30d'")
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(job["out"]) if f}
    except ValueError as exc:
        raise UsageError(f"{path}: {where}: out: expected a template such as 'out/{{date}}/{{job}}-{{n:02}}', received {job['out']!r} ({exc})") from None
    unknown = sorted({f.split(":")[0].split("!")[0] for f in fields} - set(TEMPLATE_FIELDS))
    if unknown:
        fail("out", f"fields from {', '.join('{' + f + '}' for f in TEMPLATE_FIELDS)}, not {{{unknown[0]}}}")
    if job["count"] > 1 and "n" not in {f.split(":")[0] for f in fields}:
        fail("out", "a template with {n} when count > 1, so outputs do not share a name")
