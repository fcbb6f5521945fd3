"""A workaround for a PyTorch bug: convolutions whose stride is larger than the kernel run
with oneDNN off.

PyTorch 2.13 (CPU) corrupts the heap in oneDNN's convolution backward when a stride is larger
than the kernel (e.g. a 1x1 kernel with stride 3) and torch runs on one thread: glibc aborts
with ``free(): invalid next size``, reproducible with torch alone under ``MALLOC_CHECK_=3``.
Such layers (``strides_skip_pixels``) run their forward, and the model its backward passes,
inside ``onednn(enabled=False)``, which uses torch's native convolution instead.
``tests/test_reference_torch.py::test_strides_larger_than_the_kernel_do_not_corrupt_memory``
guards it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def onednn(enabled: bool) -> Iterator[None]:
    """Switch PyTorch's oneDNN (mkldnn) kernels on or off for the block."""
    saved = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = enabled
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = saved


def strides_skip_pixels(kernel_size: tuple[int, int], strides: tuple[int, int]) -> bool:
    """True when a stride is larger than the kernel. PyTorch 2.13's oneDNN convolution
    corrupts the heap in the backward pass of such a layer when torch runs on one thread
    (e.g. a 1x1 kernel with stride 3); its native convolution is used for them instead."""
    return any(s > k for k, s in zip(kernel_size, strides))
