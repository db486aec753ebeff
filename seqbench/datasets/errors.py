"""Errors raised while reading dataset files."""


class DataError(Exception):
    """A dataset file is corrupt or is not the file expected; the message names it and the fault."""
