"""The one error type a user sees.

Anything the user can fix (a wrong name, a missing column, a bad file) raises
UserError. The CLI prints its message on one line and exits with code 2;
everything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A problem with the user's input, reported as one line, exit code 2."""

    exit_code = 2
