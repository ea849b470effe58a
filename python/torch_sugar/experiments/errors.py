"""The one exception type the experiment tool turns into a one-line error and exit code 2."""


class UsageError(Exception):
    """Bad input from the user (a flag value, a file, a column, the data itself).

    The command line prints ``torch-sugar compare: error: <message>`` on stderr and exits with 2,
    without a traceback; library callers get the exception.
    """
