"""A direct NumPy port of the original notebook's CuPy RNN (float64, one small product per step).

Kept for the speed comparison only: it is the baseline the from-scratch model must beat.
"""

import numpy as np


def initialize_parameters_rnn(n_x, n_a, n_y, seed=42):
    rng = np.random.RandomState(seed)
    return {
        "W_ax": rng.randn(n_a, n_x) * np.sqrt(1 / n_x),
        "W_aa": rng.randn(n_a, n_a) * np.sqrt(1 / n_a),
        "W_ya": rng.randn(n_y, n_a) * np.sqrt(1 / n_a),
        "b_a": np.zeros((n_a, 1)),
        "b_y": np.zeros((n_y, 1)),
    }


def one_hot_encode(labels, num_classes):
    one_hot = np.zeros((labels.size, num_classes))
    one_hot[np.arange(labels.size), labels] = 1
    return one_hot


def rnn_cell_forward(xt, a_prev, parameters):
    W_aa, W_ax, b_a = parameters["W_aa"], parameters["W_ax"], parameters["b_a"]
    a_next = np.tanh(np.dot(a_prev, W_aa.T) + np.dot(xt, W_ax.T) + b_a.T)
    return a_next, (a_next, a_prev, xt, parameters)


def softmax(z):
    e = np.exp(z - np.max(z, axis=1, keepdims=True))
    return e / np.sum(e, axis=1, keepdims=True)


def rnn_forward(x, a0, parameters):
    caches = []
    m, T_x, _n_x = x.shape
    _n_y, n_a = parameters["W_ya"].shape
    a = np.zeros((m, T_x, n_a))
    a_next = a0
    for t in range(T_x):
        a_next, cache = rnn_cell_forward(x[:, t, :], a_next, parameters)
        a[:, t, :] = a_next
        caches.append(cache)
    z = np.dot(a_next, parameters["W_ya"].T) + parameters["b_y"].T
    return softmax(z), a, caches


def compute_loss_rnn(y_pred, y_true):
    return -np.sum(y_true * np.log(y_pred + 1e-9)) / y_true.shape[0]


def rnn_cell_backward(da_next, cache):
    a_next, a_prev, xt, parameters = cache
    dz = da_next * (1 - a_next**2)
    return {
        "dW_ax": np.dot(dz.T, xt),
        "dW_aa": np.dot(dz.T, a_prev),
        "db_a": np.sum(dz, axis=0, keepdims=True).T,
        "da_prev": np.dot(dz, parameters["W_aa"]),
    }


def rnn_backward(y_pred, y_true, a, caches):
    m, T_x, _n_a = a.shape
    parameters = caches[0][3]
    dZ_out = y_pred - y_true
    dW_ya = (1 / m) * np.dot(dZ_out.T, a[:, T_x - 1, :])
    db_y = (1 / m) * np.sum(dZ_out, axis=0, keepdims=True).T
    da_next = np.dot(dZ_out, parameters["W_ya"])
    dW_ax = np.zeros_like(parameters["W_ax"])
    dW_aa = np.zeros_like(parameters["W_aa"])
    db_a = np.zeros_like(parameters["b_a"])
    for t in reversed(range(T_x)):
        g = rnn_cell_backward(da_next, caches[t])
        dW_ax += g["dW_ax"]
        dW_aa += g["dW_aa"]
        db_a += g["db_a"]
        da_next = g["da_prev"]
    return {"dW_ya": dW_ya, "db_y": db_y, "dW_ax": dW_ax / m, "dW_aa": dW_aa / m, "db_a": db_a / m}


def update_parameters_rnn(parameters, grads, learning_rate):
    for k in ("W_ax", "W_aa", "W_ya", "b_a", "b_y"):
        parameters[k] -= learning_rate * grads["d" + k]
    return parameters


def train_epoch(X_train, Y_train, parameters, n_a, batch_size=128, learning_rate=0.02, rng=np.random):
    """One epoch of the notebook's loop: shuffle, then forward, loss, backward, update per batch."""
    m = X_train.shape[0]
    permutation = rng.permutation(m)
    shuffled_X, shuffled_Y = X_train[permutation], Y_train[permutation]
    cost = 0.0
    for j in range(m // batch_size):
        mb_X = shuffled_X[j * batch_size : (j + 1) * batch_size]
        mb_Y = shuffled_Y[j * batch_size : (j + 1) * batch_size]
        y_pred, a, caches = rnn_forward(mb_X, np.zeros((mb_X.shape[0], n_a)), parameters)
        cost += compute_loss_rnn(y_pred, mb_Y)
        parameters = update_parameters_rnn(parameters, rnn_backward(y_pred, mb_Y, a, caches), learning_rate)
    return cost / (m // batch_size)
