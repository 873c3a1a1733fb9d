"""Job files: TOML that says what an unattended run makes, read and type-checked.

A job file has an optional `[defaults]` table and one `[[job]]` table per
job; a job's keys override the defaults. `SCHEMA` below is the reference
(docs/jobs.md prints it): every key, its type, its default and what it does.
A job's sampling keys are `generate sample`'s options, derived from their
declarations in `sampling/options.py`; `JOB_KEYS` are the job's own.
"""

from __future__ import annotations

import difflib
import re
import string
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import OptionError, UsageError
from ..fileio import tomllib
from ..music import RENDER_SUFFIXES
from ..sampling.options import SampleOptions, declarations, defaults, kinds

TEXT_FORMATS = ("txt", "md", "json")
MUSIC_FORMATS = ("mid", *RENDER_SUFFIXES)  # the MIDI file, and what renders beside it
FORMATS = TEXT_FORMATS + MUSIC_FORMATS
TEMPLATE_FIELDS = ("date", "time", "job", "n", "seed", "run_id")
# Job files written before every sampling option was a key said 0 for "off"; it still means that.
LEGACY_OFF = {"max_copy": 0}

# The keys a job has and `generate sample` has not. key: (accepted types, default, help); a list type also accepts a single value.
JOB_KEYS: dict[str, tuple[tuple[type, ...], object, str]] = {
    "name": ((str,), None, "letters, digits, '-' and '_'; unique in the file"),
    "model": ((str,), None, "a run directory or a shipped model name"),
    "out": ((str,), None, "output path template without extension: {date} {time} {job} {n} {seed} {run_id}; ending with / it is a directory"),
    "count": ((int,), 1, "outputs per run"),
    "formats": ((list,), ["txt"], f"output formats: {' '.join(TEXT_FORMATS)} for text and code; {' '.join(MUSIC_FORMATS)} for music"),
    "checkpoint": ((str,), "best", "best, latest or a .keras file in the run"),
    "dedupe": ((bool, float), False, "reject a sample identical (or, with a number, this similar) to an earlier output of the job"),
    "max_attempts": ((int,), 5, "samples tried per output before the job fails"),
    "keep": ((str, int), None, "retention: '30d' keeps 30 days of this job's outputs, 100 keeps the newest 100"),
    "manifest": ((str,), None, "the manifest file; default: manifest.jsonl in the template-free head of `out`"),
}


def _sample_keys() -> dict[str, tuple[tuple[type, ...], object, str]]:
    """Every sampling option a job file takes, derived from its declaration: types, default and help."""
    keys = {}
    field_kinds, field_defaults = kinds(), defaults()
    for name, declaration in declarations().items():
        if not declaration.job:
            continue
        kind = field_kinds[name]
        types = (list,) if kind.sequence else tuple(str if t is Path else t for t in dict.fromkeys(kind.types))
        types = tuple(dict.fromkeys(types + ((list,) if declaration.cycles else ())))
        default = list(field_defaults[name]) if kind.sequence else field_defaults[name]
        help_text = declaration.job_help or declaration.help
        if declaration.default_text:
            help_text += f" Default: {declaration.default_text}."
        keys[name] = (types, default, help_text)
    return keys


SAMPLE_KEYS = _sample_keys()
SCHEMA = {**JOB_KEYS, **SAMPLE_KEYS}  # every key a job file takes (docs/jobs.md's table lists them)
DIRECTORY_NAMES = "{job}-{n:02}"  # the files of an `out` that names a directory (ends with a slash)


def out_template(out: str) -> str:
    """The output template `out` stands for: a trailing slash means a directory, its files named by job and number."""
    return out + DIRECTORY_NAMES if out.endswith(("/", "\\")) else out


REQUIRED = ("name", "model", "out")


def schema_table() -> str:
    """The reference table of every job-file key, as docs/jobs.md prints it (a test keeps the two equal)."""
    def toml(value: object) -> str:
        if value is None:
            return "-"
        text = str(value).lower() if isinstance(value, bool) else repr(value).replace("'", '"')
        return f"`{text}`"

    rows = ["| key | type | default | what it does |", "|---|---|---|---|"]
    for key, (types, default, help_text) in SCHEMA.items():
        kind = " or ".join("list" if t is list else t.__name__ for t in types)
        rows.append(f"| `{key}` | {kind} | {'required' if key in REQUIRED else toml(default)} | {help_text} |")
    return "\n".join(rows) + "\n"
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
        """The sampling options of output `n` (1-based), drawn from `seed`: every sample key, lists taken in turn."""
        cycles = {key for key, declared in declarations().items() if declared.cycles}
        values = {key: self.cycled(key, n - 1) if key in cycles else self[key] for key in SAMPLE_KEYS if key != "seed"}
        values = {key: tuple(value) if isinstance(value, list) else value for key, value in values.items()}
        values.update({key: None for key, off in LEGACY_OFF.items() if values.get(key) == off})
        return SampleOptions(**values, seed=seed, renders=tuple(f for f in self["formats"] if f in RENDER_SUFFIXES))

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
            same = [k for k in SCHEMA if k.replace("_", "") == key.replace("_", "").replace("-", "")]
            close = same or difflib.get_close_matches(key.replace("-", "_"), list(SCHEMA), n=1, cutoff=0.75)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UsageError(f"{path}: {where}: unknown key {key!r}{hint}")
        types = SCHEMA[key][0]
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if not ok:
            expected = " or ".join("list" if t is list else t.__name__ for t in types)
            raise UsageError(f"{path}: {where}: {key}: expected {expected}, received {type(value).__name__} {value!r}")


def _check_values(path: Path, where: str, job: dict) -> None:
    """The job's own keys; sampling keys are checked as `generate sample` checks them, by `schedule.validate`."""
    def fail(key: str, expected: str) -> None:
        raise UsageError(f"{path}: {where}: {key}: expected {expected}, received {job[key]!r}")

    for key in ("count", "max_attempts"):
        if job[key] < 1:
            fail(key, "an integer >= 1")
    if not job["formats"] or any(f not in FORMATS for f in job["formats"]):
        fail("formats", f"a non-empty list from {', '.join(FORMATS)}")
    if len(set(job["formats"])) != len(job["formats"]):
        fail("formats", "each format once")
    for key, kind in (("prime", str), ("temperature", (int, float)), ("stop", str)):
        if job[key] is None:
            continue
        values = job[key] if isinstance(job[key], list) else [job[key]]
        if (key != "stop" and not values) or not all(isinstance(v, kind) and not isinstance(v, bool) for v in values):
            fail(key, f"a {'string' if kind is str else 'number'} or a non-empty list of them")
    if isinstance(job["dedupe"], float) and not 0 < job["dedupe"] <= 1:
        fail("dedupe", "true, false, or a similarity in (0, 1]")
    keep = job["keep"]
    if keep is not None and not ((isinstance(keep, int) and keep >= 1) or (isinstance(keep, str) and re.fullmatch(r"[1-9][0-9]*d", keep))):
        fail("keep", "a number of outputs >= 1 or a number of days such as '30d'")
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(out_template(job["out"])) if f}
    except ValueError as exc:
        raise UsageError(f"{path}: {where}: out: expected a template such as 'out/{{date}}/{{job}}-{{n:02}}', received {job['out']!r} ({exc})") from None
    unknown = sorted({f.split(":")[0].split("!")[0] for f in fields} - set(TEMPLATE_FIELDS))
    if unknown:
        fail("out", f"fields from {', '.join('{' + f + '}' for f in TEMPLATE_FIELDS)}, not {{{unknown[0]}}}")
    if job["count"] > 1 and "n" not in {f.split(":")[0] for f in fields}:
        fail("out", "a template with {n} when count > 1, so outputs do not share a name")
