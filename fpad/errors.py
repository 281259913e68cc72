"""The one exception type users see.

Every error caused by bad input (an unknown format, a malformed network file, an impossible
request) is raised as :class:`FpadError` with a single line that names what is wrong and how to
fix it. The CLI prints that line to stderr and exits with status 2, never a traceback.
"""


class FpadError(ValueError):
    """Bad input: the message is one line naming the problem and the fix."""
