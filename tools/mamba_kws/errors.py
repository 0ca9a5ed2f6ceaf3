"""User-facing errors and the one place that turns them into a clear line and an exit code.

Anything a user can cause (a missing data set, a corrupt file, a bad config, an arena too
small) raises a subclass of `KWSError` with a message that says what to do. Entry scripts run
through `cli_main`, which prints `error: <message>` on one line and exits 2: no traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable


class KWSError(Exception):
    """Base of every error a user can cause; its message is shown as it is."""


class DataError(KWSError):
    """A data set that is missing, incomplete or unreadable."""


class CheckpointError(KWSError):
    """A checkpoint that is missing, corrupt, or does not match its config."""


class UsageError(KWSError):
    """A command-line option that is missing, malformed or out of range."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose errors are one line: a bad option raises UsageError (exit 2 through cli_main)
    instead of printing the usage text."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def cli_main(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> int:
    """Run an entry point; user errors become one line on stderr and exit status 2."""
    from .audio import AudioError
    from .config import ConfigError

    try:
        code = main(argv)
    except (KWSError, ConfigError, AudioError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(code or 0)
