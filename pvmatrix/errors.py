"""The one error type the CLI turns into a clear one-line message."""


class PvmError(Exception):
    """A user-facing failure: the message names the input at fault."""
