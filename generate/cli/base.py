"""The root `generate` group: one-line errors with exit codes, logging on stderr, a typed context.

Results go to stdout; logs, progress and the drawn seed go to stderr. Errors
are one line: exit status 2 for usage errors, 1 for other failures, and a
traceback only under -v. Every option can also come from an environment
variable named GENERATE_<COMMAND>_<OPTION>, e.g. GENERATE_SAMPLE_TEMPERATURE.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from dataclasses import dataclass

import click

from .. import __version__
from ..errors import GenerateError
from ..progress import clear_open_line
from ..units import bits

log = logging.getLogger("generate")


@dataclass
class State:
    """What the root group's options set, for every command."""

    quiet: bool = False  # warnings and errors only, no progress bars
    verbose: bool = False  # debug logs, TensorFlow's own logs, tracebacks

    @property
    def show_progress(self) -> bool:
        return not self.quiet


pass_state = click.make_pass_decorator(State, ensure=True)


class SentenceGroup(click.Group):
    """A command group that lists each command with the whole first sentence of its help, never cut mid-sentence."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, command.get_short_help_str(limit=1000)) for name in self.list_commands(ctx)
                if (command := self.get_command(ctx, name)) is not None and not command.hidden]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


class GenerateGroup(SentenceGroup):
    """A command group whose errors are one line on stderr, with exit codes 2 and 1."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        argv = list(args if args is not None else sys.argv[1:])
        # -v before or after the command name asks for tracebacks (see `logging_options`).
        verbose = "-v" in argv or "--verbose" in argv
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            code = result if isinstance(result, int) else 0
        except click.exceptions.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
            click.echo(f"Error: {exc.format_message()}{hint}", err=True)
            code = 2
        except click.exceptions.Abort:
            click.echo("Aborted.", err=True)
            code = 130
        except click.ClickException as exc:
            click.echo(f"Error: {exc.format_message()}", err=True)
            code = exc.exit_code
        except GenerateError as exc:
            if verbose:
                traceback.print_exc()
            click.echo(f"Error: {exc}", err=True)
            code = exc.exit_code
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            code = 130
        except BrokenPipeError:  # stdout closed early, e.g. `generate sample | head`
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            code = 141
        except Exception as exc:  # a bug: one line unless -v asks for the traceback
            if _interrupted(exc):
                click.echo("Interrupted.", err=True)
                code = 130
            else:
                if verbose:
                    traceback.print_exc()
                click.echo(f"Error: unexpected {type(exc).__name__}: {exc} (run with -v for the traceback)", err=True)
                code = 1
        if not standalone_mode:
            return code
        sys.exit(code)


def _interrupted(exc: BaseException) -> bool:
    """Whether Ctrl-C caused `exc`: a KeyboardInterrupt raised inside a C function that then returned a value
    reaches Python as a SystemError ("returned a result with an exception set") chained to it."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


class _StderrHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        clear_open_line()  # a preview or a signal's notice never starts on a progress bar's line
        click.echo(self.format(record), err=True)


def _setup_logging(quiet: bool, verbose: bool) -> None:
    for handler in [h for h in log.handlers if isinstance(h, _StderrHandler)]:
        log.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s" if not verbose else "%(levelname)s %(name)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
    log.propagate = False


def _set_logging(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if not value:
        return
    state = ctx.ensure_object(State)
    setattr(state, param.name, True)
    _setup_logging(state.quiet, state.verbose)


def logging_options(command):
    """-q and -v on a command itself, so that `generate sample -q` means what `generate -q sample` does."""
    for flag, name, text in (("-q", "quiet", "Only warnings and errors on stderr; no progress bars."),
                             ("-v", "verbose", "Debug logs, TensorFlow's own logs, and tracebacks on errors.")):
        command = click.option(flag, f"--{name}", name, is_flag=True, expose_value=False, is_eager=True,
                               callback=_set_logging, help=text)(command)
    return command


@click.group(cls=GenerateGroup, context_settings={"auto_envvar_prefix": "GENERATE", "help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="generate")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr; no progress bars.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logs, TensorFlow's own logs, and tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, quiet: bool, verbose: bool) -> None:
    """Train character-level RNNs on text, code and music, and sample from them."""
    _setup_logging(quiet, verbose)
    ctx.obj = State(quiet, verbose)


def bits_text(nats: float | None, digits: int = 4) -> str:
    """A loss as `N nats (M bpc)`, or n/a."""
    return "n/a" if nats is None else f"{nats:.{digits}f} nats ({bits(nats):.{digits}f} bpc)"
