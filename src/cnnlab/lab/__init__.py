"""``cnnlab lab``: a local web lab over the engine, the run directories and the study store.

:func:`cnnlab.lab.server.create_app` builds the Starlette app and :func:`cnnlab.lab.server.serve`
runs it with uvicorn; :mod:`cnnlab.lab.playground` is the live playground and
:mod:`cnnlab.lab.modelview` looks inside a run's model.
"""
