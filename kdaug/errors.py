"""User-facing errors: the CLI prints their message on one line, without a traceback."""


class KdaugError(Exception):
    """Base of every error whose message is meant for the user as it is."""


class InputError(KdaugError):
    """The input file or its columns cannot be used."""
