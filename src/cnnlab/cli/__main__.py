"""``python -m cnnlab.cli``: the same as the ``cnnlab`` command."""

from . import entry_point

entry_point()
