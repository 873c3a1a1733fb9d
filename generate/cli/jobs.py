"""`generate run JOBFILE` and `generate runs show DIR`: scheduled, unattended generation."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import click

from ..errors import GenerateError
from .base import SentenceGroup, State, log, pass_state


@click.command("run")
@click.argument("job_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--job", "only", default=None, help="Run only the job with this name.")
@click.option("--run-id", default=None, help="Names this run; rerunning an id remakes nothing and repeats its seeds [default: now].")
@click.option("--dry-run", is_flag=True, help="Validate the file and list what would be written; make nothing.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs instead of refusing them.")
@click.option("--wait/--no-wait", default=True, show_default=True, help="If another run holds this job file: wait for it, or exit 1.")
@click.option("--log", "log_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also append timestamped logs and the job summaries to FILE.")
@pass_state
def run_command(state: State, job_file: Path, only: str | None, run_id: str | None, dry_run: bool,
                overwrite: bool, wait: bool, log_file: Path | None) -> None:
    """Run every job in JOB_FILE (TOML): sample, filter, write outputs with sidecars, record a manifest.

    Prints each file it makes on stdout and one summary line per job on
    stderr. Quiet otherwise when stderr is not a terminal (cron). Exits 1 if
    any job failed, 2 if the file is invalid (then nothing runs).
    """
    from ..jobs.schedule import run_jobs  # NumPy and Keras load here, not for --help

    if not sys.stderr.isatty() and not state.verbose:
        for stderr_handler in log.handlers:  # cron mails whatever reaches stderr: keep it to what matters
            stderr_handler.setLevel(logging.WARNING)

    def on_file(path: Path, what: str) -> None:
        click.echo(str(path) if what == "made" else f"{what}\t{path}")

    with _log_file(log_file) as file_log:
        results = run_jobs(job_file, only, run_id, dry_run, overwrite, wait, on_file)
        for result in results if not dry_run else []:
            click.echo(result.summary(), err=True)
            file_log(result.summary())
    failed = [r.name for r in results if r.error]
    if failed:
        raise GenerateError(f"{len(failed)} of {len(results)} job(s) failed: {', '.join(failed)}")


@contextlib.contextmanager
def _log_file(path: Path | None) -> Iterator[Callable[[str], None]]:
    """Appends timestamped logs to `path` while the block runs; yields a function that logs one more line there."""
    if path is None:
        yield lambda line: None
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError as exc:
        raise click.BadParameter(f"{path}: cannot open ({exc.strerror})", param_hint="--log") from None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.setLevel(logging.INFO)
    log.addHandler(handler)
    log.setLevel(min(log.level, logging.INFO))
    try:
        yield lambda line: handler.handle(log.makeRecord(log.name, logging.INFO, __name__, 0, line, None, None))
    finally:
        log.removeHandler(handler)
        handler.close()


@click.group("runs", cls=SentenceGroup)
def runs_group() -> None:
    """Inspect what scheduled runs made."""


@runs_group.command("show")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per output.")
def runs_show(directory: Path, as_json: bool) -> None:
    """Show what was made in DIRECTORY: file, job, model, checkpoint, seed, prime, settings.

    Read from the outputs' JSON sidecars, which hold everything needed to
    regenerate each output exactly.
    """
    from ..jobs.manifest import made_outputs  # not loaded for --help, which stays instant

    outputs = made_outputs(directory)
    for facts in outputs:
        if as_json:
            click.echo(json.dumps(facts, ensure_ascii=False))
        else:
            click.echo(f"{facts['file']}\tjob {facts['job'] or '-'}\trun {facts['run_id'] or '-'}\tseed {facts['seed']}\t"
                       f"T {facts['temperature']}\tprime {facts['prime']!r}\t{Path(facts['model'] or '').name} "
                       f"{(facts['checkpoint_sha256'] or '')[:12]}\t{facts['created']}")
    if not outputs:
        log.warning("no generated outputs with sidecars under %s", directory)
