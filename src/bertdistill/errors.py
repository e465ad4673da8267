"""The one exception type users see: a message that names the file, column, row or key to fix."""


class BertdistillError(Exception):
    """Bad input or configuration. The CLI prints the message on one line and exits non-zero."""
