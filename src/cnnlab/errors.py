"""Exceptions that mean "the user's input is wrong", as opposed to a bug in cnnlab.

The command line turns these into one clear line and exit code 2. They subclass
``ValueError`` so that Python callers can catch them the usual way.
"""

from __future__ import annotations


class CnnlabError(ValueError):
    """Bad input from the user: a file, an option, a spec. The message is the whole story."""


class DatasetError(CnnlabError):
    """A dataset that cannot be found, read or trusted; the message names the file and the fault."""
