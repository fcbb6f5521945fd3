"""The engine's one exception of its own: a Keras feature that cnnlab does not implement.

It subclasses ``ValueError`` (so ``cnnlab.errors.CnnlabError`` handlers and plain Python
callers catch it) and ``NotImplementedError``; its message names the feature and what is
supported. ``cnnlab run`` prints it as one line instead of a traceback.
"""

from __future__ import annotations


class UnsupportedKerasFeature(ValueError, NotImplementedError):
    """A Keras name, argument or value that the engine does not implement."""
