"""`generate run JOBFILE` and `generate runs show DIR`: scheduled, unattended generation.

A thin layer over `schedule.py`; `cli.py` adds these commands to the main group.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

log = logging.getLogger("generate")


@click.command("run")
@click.argument("job_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--job", "only", default=None, help="Run only the job with this name.")
@click.option("--run-id", default=None, help="Names this run; rerunning an id remakes nothing and repeats its seeds [default: now].")
@click.option("--dry-run", is_flag=True, help="Validate the file and list what would be written; make nothing.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs instead of refusing them.")
@click.option("--wait/--no-wait", default=True, show_default=True, help="If another run holds this job file: wait for it, or exit 1.")
@click.option("--log", "log_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also append timestamped logs and the job summaries to FILE.")
@click.pass_context
def run_command(ctx: click.Context, job_file: Path, only: str | None, run_id: str | None, dry_run: bool,
                overwrite: bool, wait: bool, log_file: Path | None) -> None:
    """Run every job in JOB_FILE (TOML): sample, filter, write outputs with sidecars, record a manifest.

    Prints each file it makes on stdout and one summary line per job on
    stderr. Quiet otherwise when stderr is not a terminal (cron). Exits 1 if
    any job failed, 2 if the file is invalid (then nothing runs).
    """
    from .errors import GenerateError
    from .schedule import run_jobs

    if not sys.stderr.isatty() and not ctx.obj["verbose"]:
        for stderr_handler in log.handlers:  # cron mails whatever reaches stderr: keep it to what matters
            stderr_handler.setLevel(logging.WARNING)
    handler = None
    if log_file is not None:
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.FileHandler(log_file, encoding="utf-8")
        except OSError as exc:
            raise click.BadParameter(f"{log_file}: cannot open ({exc.strerror})", param_hint="--log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        handler.setLevel(logging.INFO)
        log.addHandler(handler)
        log.setLevel(min(log.level, logging.INFO))
    try:
        def on_file(path: Path, what: str) -> None:
            click.echo(str(path) if what == "made" else f"{what}\t{path}")

        results = run_jobs(job_file, only, run_id, dry_run, overwrite, wait, on_file)
        for result in results if not dry_run else []:
            click.echo(result.summary(), err=True)
            if handler is not None:
                handler.handle(log.makeRecord(log.name, logging.INFO, __name__, 0, result.summary(), None, None))
        failed = [r.name for r in results if r.error]
        if failed:
            raise GenerateError(f"{len(failed)} of {len(results)} job(s) failed: {', '.join(failed)}")
    finally:
        if handler is not None:
            log.removeHandler(handler)
            handler.close()


@click.group("runs")
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
    shown = 0
    for sidecar in sorted(directory.rglob("*.json")):
        output = sidecar.with_name(sidecar.name[: -len(".json")])
        if not output.exists():
            continue
        try:
            record = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(record, dict) or "seed" not in record or "checkpoint" not in record:
            continue
        shown += 1
        facts = {"file": str(output), "job": record.get("job"), "run_id": record.get("run_id"), "model": record.get("run"),
                 "checkpoint_sha256": record.get("checkpoint_sha256"), "seed": record.get("seed"), "prime": record.get("prime"),
                 "temperature": record.get("temperature"), "top_k": record.get("top_k"), "top_p": record.get("top_p"),
                 "length": record.get("length"), "max_copy": record.get("max_copy"), "created": record.get("created")}
        if as_json:
            click.echo(json.dumps(facts, ensure_ascii=False))
        else:
            click.echo(f"{facts['file']}\tjob {facts['job'] or '-'}\trun {facts['run_id'] or '-'}\tseed {facts['seed']}\t"
                       f"T {facts['temperature']}\tprime {facts['prime']!r}\t{Path(facts['model'] or '').name} "
                       f"{(facts['checkpoint_sha256'] or '')[:12]}\t{facts['created']}")
    if not shown:
        log.warning("no generated outputs with sidecars under %s", directory)
