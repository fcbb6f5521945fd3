"""The ``cnnlab`` command.

Every command prints a progress bar on long work, writes into a run directory (``--out``,
default ``runs/<timestamp>-<name>``) and, on bad input, exits with code 2 and one line
saying what is wrong (the traceback only with ``--debug``).

``app`` holds the command group and the options commands share; each command lives in the
module of its idea (``train``: a model and its run directory; ``explore``; ``report``;
``approx``; ``study``; ``compare``; ``programs``: ``run`` and ``lab``). ``main`` is here.
"""

from __future__ import annotations

import sys
import traceback

import click

from ..errors import CnnlabError
from . import approx, compare, explore, programs, report, study, train  # noqa: F401 - registers
from .app import cli

__all__ = ["cli", "main", "entry_point"]


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 2 bad input, 130 interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((i for i, arg in enumerate(argv) if not arg.startswith("-")), len(argv))
    own = (
        argv[: command + 1] if argv[command : command + 1] == ["run"] else argv
    )  # the rest is the program's
    debug = "--debug" in own
    if debug:  # accepted after the subcommand too: `cnnlab train ... --debug`
        argv = ["--debug", *(arg for arg in own if arg != "--debug"), *argv[len(own) :]]
    try:
        code = cli.main(args=argv, prog_name="cnnlab", standalone_mode=False)
        return code if isinstance(code, int) else 0
    except click.exceptions.NoArgsIsHelpError as err:
        err.show()
        return 2
    except click.UsageError as err:
        command = err.ctx.command_path if err.ctx else "cnnlab"
        print(f"cnnlab: error: {err.format_message()} (see '{command} --help')", file=sys.stderr)
        return 2
    except click.ClickException as err:
        print(f"cnnlab: error: {err.format_message()}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, click.exceptions.Abort) as err:
        reason = err.__cause__ or err  # click wraps Ctrl-C in Abort; the message is on the cause
        print(f"cnnlab: {str(reason) or 'interrupted'}", file=sys.stderr)
        return 130
    except (CnnlabError, ValueError, OSError) as err:
        if debug:
            traceback.print_exc()
        hint = (
            ""
            if isinstance(err, (CnnlabError, OSError)) or debug
            else " (run with --debug for the traceback)"
        )
        print(f"cnnlab: error: {err}{hint}", file=sys.stderr)
        return 2


def entry_point() -> None:
    sys.exit(main())
