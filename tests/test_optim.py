"""The NumPy optimizers against two update steps computed by hand (float64, CPU)."""

from __future__ import annotations

import numpy as np
import pytest

from seqbench.models.backend import NumpyBackend
from seqbench.models.optim import SGD, Adam, Momentum, clip_grad_norm, make_optimizer

P0 = [1.0, -2.0]
GRADS = ([0.5, -0.25], [0.1, 0.3])


def two_steps(name: str, lr: float = 0.1, **kw) -> tuple[np.ndarray, object]:
    params = {"w": np.array(P0)}
    opt = make_optimizer(name, params, lr, NumpyBackend(), **kw)
    for g in GRADS:
        opt.prepare()
        opt.apply(params, {"w": np.array(g)})
    return params["w"], opt


def test_sgd_two_steps():
    # p1 = p0 - 0.1 g1 = [0.95, -1.975];  p2 = p1 - 0.1 g2 = [0.94, -2.005]
    w, opt = two_steps("sgd")
    assert isinstance(opt, SGD)
    np.testing.assert_allclose(w, [0.94, -2.005], rtol=1e-12)


def test_momentum_two_steps():
    # v1 = g1 = [0.5, -0.25], p1 = [0.95, -1.975];  v2 = 0.9 v1 + g2 = [0.55, 0.075], p2 = p1 - 0.1 v2
    w, opt = two_steps("momentum")
    assert isinstance(opt, Momentum)
    np.testing.assert_allclose(opt.v["w"], [0.55, 0.075], rtol=1e-12)
    np.testing.assert_allclose(w, [0.895, -1.9825], rtol=1e-12)


def test_momentum_coefficient_is_used():
    # mu = 0.5: v2 = 0.5 v1 + g2 = [0.35, 0.175]; p2 = [0.95, -1.975] - 0.1 v2
    w, _ = two_steps("momentum", momentum=0.5)
    np.testing.assert_allclose(w, [0.915, -1.9925], rtol=1e-12)


def test_adam_two_steps():
    # b1 = 0.9, b2 = 0.999.  Step 1: m = 0.1 g1, v = 0.001 g1^2, so m^ = g1, v^ = g1^2 and
    # p1 = p0 - 0.1 g1 / |g1| = [0.9, -1.9].
    # Step 2: m = 0.9 m + 0.1 g2 = [0.055, 0.0075];  v = 0.999 v + 0.001 g2^2 = [2.5975e-4, 1.524375e-4]
    # m^ = m / 0.19 = [0.28947368, 0.03947368];  v^ = v / 0.001999 = [0.12993997, 0.07625688]
    # p2 = p1 - 0.1 m^ / sqrt(v^) = [0.9 - 0.0803040, -1.9 - 0.0142945]
    w, opt = two_steps("adam")
    assert isinstance(opt, Adam) and opt.t == 2
    np.testing.assert_allclose(opt.m["w"], [0.055, 0.0075], rtol=1e-12)
    np.testing.assert_allclose(opt.v["w"], [2.5975e-4, 1.524375e-4], rtol=1e-12)
    np.testing.assert_allclose(w, [0.8196960, -1.9142945], rtol=1e-6)


def test_adam_first_step_is_lr_times_the_sign_of_the_gradient():
    params = {"w": np.array(P0)}
    opt = Adam(params, 0.01, NumpyBackend())
    opt.prepare()
    opt.apply(params, {"w": np.array([0.05, -40.0])})
    np.testing.assert_allclose(params["w"], [0.99, -1.99], rtol=1e-6)


def test_adam_eps_guards_a_zero_gradient():
    params = {"w": np.array(P0)}
    opt = Adam(params, 0.1, NumpyBackend(), eps=1e-8)
    for _ in range(2):
        opt.prepare()
        opt.apply(params, {"w": np.zeros(2)})
    np.testing.assert_array_equal(params["w"], P0)


def test_adam_betas_are_its_own():
    # b1 = b2 = 0.5: m1 = 0.5 g1 = [0.25, -0.125], v1 = 0.5 g1^2 = [0.125, 0.03125], p1 = [0.9, -1.9];
    # m2 = 0.5 m1 + 0.5 g2 = [0.175, 0.0875], v2 = 0.5 v1 + 0.5 g2^2 = [0.0675, 0.060625];
    # m^ = m2 / 0.75, v^ = v2 / 0.75
    params = {"w": np.array(P0)}
    opt = Adam(params, 0.1, NumpyBackend(), beta1=0.5, beta2=0.5)
    for g in GRADS:
        opt.prepare()
        opt.apply(params, {"w": np.array(g)})
    np.testing.assert_allclose(opt.m["w"], [0.175, 0.0875], rtol=1e-12)
    np.testing.assert_allclose(opt.v["w"], [0.0675, 0.060625], rtol=1e-12)
    m_hat, v_hat = np.array([0.175, 0.0875]) / 0.75, np.array([0.0675, 0.060625]) / 0.75
    np.testing.assert_allclose(params["w"], np.array([0.9, -1.9]) - 0.1 * m_hat / np.sqrt(v_hat), rtol=1e-6)


def test_a_learning_rate_change_takes_effect_at_the_next_step():
    params = {"w": np.array(P0)}
    opt = make_optimizer("sgd", params, 0.1, NumpyBackend())
    opt.prepare()
    opt.apply(params, {"w": np.array(GRADS[0])})
    opt.lr = 0.01
    opt.prepare()
    opt.apply(params, {"w": np.array(GRADS[1])})
    np.testing.assert_allclose(params["w"], [0.949, -1.978], rtol=1e-12)


def test_unknown_optimizer_names_the_choices():
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop' \\(expected one of sgd, momentum, adam\\)"):
        make_optimizer("rmsprop", {"w": np.zeros(1)}, 0.1, NumpyBackend())


@pytest.mark.parametrize("max_norm, scaled", [(1.0, [0.6, 0.8, 0.0]), (10.0, [3.0, 4.0, 0.0])])
def test_clip_grad_norm_scales_all_gradients_together(max_norm, scaled):
    grads = {"a": np.array([3.0, 4.0]), "b": np.array([0.0])}
    norm = clip_grad_norm(np, grads, max_norm)
    assert float(norm) == pytest.approx(5.0, rel=1e-12)
    np.testing.assert_allclose(np.concatenate([grads["a"], grads["b"]]), scaled, rtol=1e-6)


def test_momentum_defaults_to_0_9():
    params = {"w": np.array(P0)}
    opt = Momentum(params, 0.1, NumpyBackend())
    assert opt.mu == 0.9
    for g in GRADS:
        opt.prepare()
        opt.apply(params, {"w": np.array(g)})
    np.testing.assert_allclose(params["w"], [0.895, -1.9825], rtol=1e-12)
