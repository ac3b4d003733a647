"""Errors a user can act on, and the wrapper that turns them into one line and an exit code."""

import sys


class DLKUNetError(Exception):
    """Base of every error caused by the user's input (paths, files, flags), not by a bug.

    Messages name the thing (file, flag) that is wrong, what was expected and what was found.
    """


class DatasetError(DLKUNetError):
    """Missing, unreadable or malformed data: roots, list files, npz/h5/NIfTI files."""


class CheckpointError(DLKUNetError):
    """A checkpoint that is missing, unreadable, unsafe, or holds another model."""


class TrainingError(DLKUNetError):
    """Training cannot go on (for example a non-finite loss)."""


def run_main(main, args):
    """Run ``main(args)``; a ``DLKUNetError`` becomes ``error: <message>`` on stderr and exit 1.

    Other exceptions are bugs and keep their traceback. Ctrl-C exits with 130 quietly.
    """
    try:
        return main(args)
    except DLKUNetError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
