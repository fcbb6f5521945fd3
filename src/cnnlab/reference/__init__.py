"""Framework references: the same networks as the NumPy engine, built in other frameworks.

``cnnlab.reference.torch`` builds the PyTorch twin of a cnnlab model config, copies weights
both ways, trains it with the engine's update rules, and reports how closely the two engines
agree (``parity_report``). It is imported only when asked for, so PyTorch stays optional;
this package itself imports nothing.
"""
