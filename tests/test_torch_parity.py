"""Every layer, loss and optimizer of the engine against PyTorch as the oracle (float32).

PyTorch is NCHW with kernels (out, in, kh, kw); the engine is NHWC with (kh, kw, in, out).
Keras's "same" padding (the odd pixel after) is reproduced by padding explicitly.
"""

from __future__ import annotations

import numpy as np
import pytest

from cnnlab.engine import functional, layers, losses, optimizers

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch
TF = torch.nn.functional
TOLERANCE = 1e-5


def assert_matches_torch(
    quantity: str, ours: np.ndarray, theirs, tolerance: float = TOLERANCE
) -> None:
    """Compare with a torch tensor (already in the engine's layout); name the quantity and the
    gap."""
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    assert ours.shape == theirs.shape, f"{quantity}: shape {ours.shape} vs torch {theirs.shape}"
    scale = max(1.0, float(np.abs(theirs).max()))
    gap = float(np.abs(ours - theirs).max()) / scale
    assert gap <= tolerance, (
        f"{quantity}: largest difference {gap:.2e} (scaled) exceeds {tolerance:.0e}"
    )


def nchw(x: np.ndarray):
    return torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)


def nhwc(t):
    return t.detach().permute(0, 2, 3, 1)


def torch_pad(t, shape, window, strides, padding, value=0.0):
    (top, bottom), (left, right) = functional.pads_hw(shape[1:3], window, strides, padding)
    return TF.pad(t, (left, right, top, bottom), value=value)


def run_layer(layer, x: np.ndarray, upstream: np.ndarray):
    layer.build(x.shape[1:], np.random.default_rng(0))
    y = layer.forward(x.copy(), training=True)
    return y, layer.backward(upstream.copy())


CONV_CASES = [
    ((4, 12, 12, 3), 8, 3, 1, "valid"),
    ((4, 12, 12, 3), 8, 3, 1, "same"),
    ((2, 12, 11, 2), 5, 3, 2, "same"),
    ((2, 13, 13, 4), 6, 5, 2, "valid"),
    ((2, 10, 10, 3), 4, (2, 4), (3, 1), "same"),
    ((2, 9, 9, 1), 3, 1, 3, "valid"),
]


@pytest.mark.parametrize("shape, filters, kernel, strides, padding", CONV_CASES)
def test_conv2d_matches_torch(shape, filters, kernel, strides, padding):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    layer = layers.Conv2D(filters, kernel, strides=strides, padding=padding, activation="relu")
    layer.build(shape[1:], rng)
    layer.params["bias"][...] = rng.standard_normal(filters).astype(np.float32)
    upstream = rng.standard_normal((shape[0], *layer.output_shape)).astype(np.float32)
    y = layer.forward(x.copy())
    dx = layer.backward(upstream.copy())  # backward may reuse its argument's memory

    tx = nchw(x)
    tk = torch.tensor(layer.params["kernel"].transpose(3, 2, 0, 1), requires_grad=True)
    tb = torch.tensor(layer.params["bias"], requires_grad=True)
    # PyTorch 2.13's oneDNN convolution corrupts the heap in backward when a stride exceeds
    # the kernel and torch runs on one thread; its native convolution is right for those.
    saved, torch.backends.mkldnn.enabled = (
        torch.backends.mkldnn.enabled,
        not any(s > k for k, s in zip(layer.kernel_size, layer.strides)),
    )
    try:
        ty = torch.relu(
            TF.conv2d(
                torch_pad(tx, shape, layer.kernel_size, layer.strides, padding),
                tk,
                tb,
                stride=layer.strides,
            )
        )
        ty.backward(torch.tensor(upstream.transpose(0, 3, 1, 2)))
    finally:
        torch.backends.mkldnn.enabled = saved
    assert_matches_torch("conv2d output", y, nhwc(ty))
    assert_matches_torch("conv2d input gradient", dx, nhwc(tx.grad))
    assert_matches_torch(
        "conv2d kernel gradient", layer.grads["kernel"], tk.grad.permute(2, 3, 1, 0)
    )
    assert_matches_torch("conv2d bias gradient", layer.grads["bias"], tb.grad)


POOL_CASES = [
    ((4, 26, 26, 8), 2, None, "valid"),
    ((4, 11, 11, 8), 2, None, "valid"),
    ((2, 9, 9, 3), 3, 2, "valid"),
    ((2, 9, 8, 3), 3, 2, "same"),
    ((2, 7, 7, 2), 2, 1, "same"),
]


@pytest.mark.parametrize("shape, pool, strides, padding", POOL_CASES)
def test_max_pooling_matches_torch(shape, pool, strides, padding):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(np.float32)
    layer = layers.MaxPooling2D(pool, strides=strides, padding=padding)
    layer.build(shape[1:])
    upstream = rng.standard_normal((shape[0], *layer.output_shape)).astype(np.float32)
    y, dx = run_layer(layer, x, upstream)
    tx = nchw(x)
    padded = torch_pad(tx, shape, layer.pool_size, layer.strides, padding, value=float("-inf"))
    ty = TF.max_pool2d(padded, layer.pool_size, stride=layer.strides)
    ty.backward(torch.tensor(upstream.transpose(0, 3, 1, 2)))
    assert_matches_torch("max pool output", y, nhwc(ty))
    assert_matches_torch("max pool input gradient", dx, nhwc(tx.grad))


@pytest.mark.parametrize("shape, pool, strides, padding", POOL_CASES)
def test_average_pooling_matches_torch(shape, pool, strides, padding):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape).astype(np.float32)
    layer = layers.AveragePooling2D(pool, strides=strides, padding=padding)
    layer.build(shape[1:])
    upstream = rng.standard_normal((shape[0], *layer.output_shape)).astype(np.float32)
    y, dx = run_layer(layer, x, upstream)
    tx = nchw(x)
    window, step = layer.pool_size, layer.strides
    sums = TF.avg_pool2d(
        torch_pad(tx, shape, window, step, padding), window, stride=step, divisor_override=1
    )
    counts = TF.avg_pool2d(
        torch_pad(torch.ones(1, 1, *shape[1:3]), shape, window, step, padding),
        window,
        stride=step,
        divisor_override=1,
    )
    ty = sums / counts  # Keras/TensorFlow: padded pixels are not counted
    ty.backward(torch.tensor(upstream.transpose(0, 3, 1, 2)))
    assert_matches_torch("average pool output", y, nhwc(ty))
    assert_matches_torch("average pool input gradient", dx, nhwc(tx.grad))


@pytest.mark.parametrize(
    "activation, torch_fn",
    [
        ("relu", torch.relu),
        ("sigmoid", torch.sigmoid),
        ("tanh", torch.tanh),
        ("softmax", lambda t: torch.softmax(t, dim=-1)),
        ("linear", lambda t: t),
    ],
)
def test_dense_matches_torch(activation, torch_fn):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((16, 20)).astype(np.float32)
    layer = layers.Dense(7, activation=activation)
    upstream = rng.standard_normal((16, 7)).astype(np.float32)
    y, dx = run_layer(layer, x, upstream)
    tx = torch.tensor(x, requires_grad=True)
    tk = torch.tensor(layer.params["kernel"], requires_grad=True)
    tb = torch.tensor(layer.params["bias"], requires_grad=True)
    ty = torch_fn(tx @ tk + tb)
    ty.backward(torch.tensor(upstream))
    assert_matches_torch(f"dense {activation} output", y, ty)
    assert_matches_torch(f"dense {activation} input gradient", dx, tx.grad)
    assert_matches_torch(f"dense {activation} kernel gradient", layer.grads["kernel"], tk.grad)
    assert_matches_torch(f"dense {activation} bias gradient", layer.grads["bias"], tb.grad)


def test_flatten_matches_torch_channels_last_order():
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    y, _ = run_layer(layers.Flatten(), x, np.zeros((2, 60), np.float32))
    assert_matches_torch("flatten", y, torch.tensor(x).reshape(2, -1))


@pytest.mark.parametrize("name", ["categorical_crossentropy", "sparse_categorical_crossentropy"])
def test_softmax_cross_entropy_matches_torch(name):
    rng = np.random.default_rng(4)
    logits = rng.standard_normal((32, 10)).astype(np.float32) * 3
    labels = rng.integers(0, 10, 32)
    targets = np.eye(10, dtype=np.float32)[labels] if name.startswith("categorical") else labels
    probs = layers.Activation("softmax").forward(logits)
    loss = losses.get(name)
    tz = torch.tensor(logits, requires_grad=True)
    tloss = TF.cross_entropy(tz, torch.tensor(labels))
    tloss.backward()
    assert abs(loss(targets, probs) - tloss.item()) < TOLERANCE
    assert_matches_torch(
        f"{name} gradient", loss.gradient_before_activation(targets, probs), tz.grad
    )


def test_binary_cross_entropy_and_mse_match_torch():
    rng = np.random.default_rng(5)
    z = rng.standard_normal((16, 3)).astype(np.float32)
    y = rng.integers(0, 2, (16, 3)).astype(np.float32)
    p = layers.Activation("sigmoid").forward(z)
    tz = torch.tensor(z, requires_grad=True)
    tloss = TF.binary_cross_entropy_with_logits(tz, torch.tensor(y))
    tloss.backward()
    bce = losses.get("binary_crossentropy")
    assert abs(bce(y, p) - tloss.item()) < TOLERANCE
    assert_matches_torch("bce gradient", bce.gradient_before_activation(y, p), tz.grad)
    tp = torch.tensor(z, requires_grad=True)
    tmse = TF.mse_loss(tp, torch.tensor(y))
    tmse.backward()
    mse = losses.get("mse")
    assert abs(mse(y, z) - tmse.item()) < TOLERANCE
    assert_matches_torch("mse gradient", mse.gradient(y, z), tp.grad)


OPTIMIZER_CASES = [
    (lambda: optimizers.SGD(0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
    (
        lambda: optimizers.SGD(0.05, momentum=0.9),
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9),
    ),
    (
        lambda: optimizers.SGD(0.05, momentum=0.9, nesterov=True),
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
    ),
    (
        lambda: optimizers.Adam(),
        lambda p: torch.optim.Adam(p, lr=1e-3, betas=(0.9, 0.999), eps=1e-7),
    ),
    (
        lambda: optimizers.Adam(0.01, beta_1=0.8),
        lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.999), eps=1e-7),
    ),
    (lambda: optimizers.RMSprop(), lambda p: torch.optim.RMSprop(p, lr=1e-3, alpha=0.9, eps=1e-7)),
]


@pytest.mark.parametrize("ours, theirs", OPTIMIZER_CASES)
def test_optimizer_steps_match_torch_optim(ours, theirs):
    """20 steps with the same gradients; the epsilon conventions differ by far less than 1e-5."""
    rng = np.random.default_rng(6)
    param = rng.standard_normal((5, 4)).astype(np.float32)
    tparam = torch.tensor(param.copy(), requires_grad=True)
    optimizer, toptimizer = ours(), theirs([tparam])
    for _ in range(20):
        grad = rng.standard_normal((5, 4)).astype(np.float32)
        optimizer.apply([("layer/kernel", param, grad)])
        tparam.grad = torch.tensor(grad)
        toptimizer.step()
    assert_matches_torch(f"{type(optimizer).__name__} weights after 20 steps", param, tparam)
    assert optimizer.iterations == 20


@pytest.mark.parametrize("pool, strides", [(2, None), (3, 2), (2, 1)])
def test_max_pooling_ties_route_like_torch(pool, strides):
    """Small integers make ties common; both engines must pick the same pixel of each window."""
    rng = np.random.default_rng(7)
    x = rng.integers(0, 3, (2, 8, 8, 3)).astype(np.float32)
    layer = layers.MaxPooling2D(pool, strides=strides)
    layer.build(x.shape[1:])
    upstream = rng.standard_normal((2, *layer.output_shape)).astype(np.float32)
    _, dx = run_layer(layer, x, upstream)
    tx = nchw(x)
    ty = TF.max_pool2d(tx, layer.pool_size, stride=layer.strides)
    ty.backward(torch.tensor(upstream.transpose(0, 3, 1, 2)))
    assert_matches_torch("max pool input gradient with ties", dx, nhwc(tx.grad))
