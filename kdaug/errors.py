"""User-facing errors: the CLI prints their message on one line, without a traceback."""


class KdaugError(Exception):
    """Base of every error whose message is meant for the user as it is: the command could not
    do its work (a missing or damaged input, a model that will not load), exit status 1."""

    exit_code = 1


class UsageError(KdaugError):
    """The command line or a setting is wrong (an invalid value, flags that do not go together):
    exit status 2, as for argparse's own errors."""

    exit_code = 2


class InputError(KdaugError):
    """The input file or its columns cannot be used."""
