"""The digit detector of digits.py: an MLP over 8×8 patches whose layers share blocks, trained
with plain numpy.

Inside one patch, layer 1 sees each 2×2 cell of pixels (4×4 cells), layer 2 each 2×2 cell of
layer 1's units (2×2 cells), layer 3 the whole 2×2 grid of layer 2; every cell of a layer uses
the same block of weights. A layer's units are numbered (row·g + column)·c + channel on its
g×g grid — the order scan2conv reads — so the dense (in, out) matrices that `dense` writes out
are an ordinary MLP, 64 → 128 → 128 → 11, whose shared blocks scan2conv finds by itself.
"""
import numpy as np

CHANNELS = (1, 8, 32, 11)   # channels of the pixels and of each layer's units; 11: ten digits, background
GRIDS = (8, 4, 2, 1)        # positions per axis: 8×8 pixels → 4×4 → 2×2 → 1×1


def cells(h, g, c):
    """Units h (m, (2g)·(2g)·c) → (m·g·g, 2·2·c): each 2×2 cell's units, row-major, channels last."""
    m = h.shape[0]
    return h.reshape(m, g, 2, g, 2, c).transpose(0, 1, 3, 2, 4, 5).reshape(m * g * g, 4 * c)


def uncells(d, g, c):
    """The inverse of cells: (m·g·g, 2·2·c) → (m, (2g)·(2g)·c)."""
    m = d.shape[0] // (g * g)
    return d.reshape(m, g, g, 2, 2, c).transpose(0, 1, 3, 2, 4, 5).reshape(m, -1)


def forward(blocks, v):
    """v (m, 64) → (each layer's cells (m·g·g, 4·c_in), each layer's units (m, g·g·c_out));
    ReLU after every layer but the last: the last units are the 11 logits."""
    xs, hs, h = [], [], v
    for l, (w, b) in enumerate(blocks):
        x = cells(h, GRIDS[l + 1], CHANNELS[l])
        z = x @ w + b
        h = (z if l == len(blocks) - 1 else np.maximum(z, 0)).reshape(len(v), -1)
        xs.append(x)
        hs.append(h)
    return xs, hs


def gradients(blocks, v, labels):
    """Mean softmax cross-entropy's gradients [(dw, db) per layer]: a shared block's gradient is
    the sum over its cells, which the cells' rows of one matrix product add up."""
    xs, hs = forward(blocks, v)
    p = np.exp(hs[-1] - hs[-1].max(axis=1, keepdims=True))
    dz = p / p.sum(axis=1, keepdims=True)
    dz[np.arange(len(labels)), labels] -= 1
    dz /= len(labels)
    grads = []
    for l in reversed(range(len(blocks))):
        grads.append((xs[l].T @ dz, dz.sum(axis=0)))
        if l:
            dh = uncells(dz @ blocks[l][0].T, GRIDS[l + 1], CHANNELS[l]) * (hs[l - 1] > 0)
            dz = dh.reshape(-1, CHANNELS[l])
    return grads[::-1]


def train(v, labels, rng, epochs=12, batch=128, lr=5e-3):
    """Adam on mini-batches → blocks [(w (4·c_in, c_out), b (c_out,))] per layer."""
    blocks = [(rng.standard_normal((4 * c_in, c_out)) * np.sqrt(2 / (4 * c_in)), np.zeros(c_out))
              for c_in, c_out in zip(CHANNELS, CHANNELS[1:])]
    params = [p for wb in blocks for p in wb]
    m, s = [np.zeros_like(p) for p in params], [np.zeros_like(p) for p in params]
    step = 0
    for _ in range(epochs):
        order = rng.permutation(len(labels))
        for start in range(0, len(order), batch):
            i = order[start:start + batch]
            grads = [g for wb in gradients(blocks, v[i], labels[i]) for g in wb]
            step += 1
            for p, g, mp, sp in zip(params, grads, m, s):
                mp += 0.1 * (g - mp)
                sp += 0.001 * (g * g - sp)
                p -= lr * (mp / (1 - 0.9 ** step)) / (np.sqrt(sp / (1 - 0.999 ** step)) + 1e-8)
    return blocks


def dense(blocks):
    """The blocks copied into every cell of one patch → [W1, b1, W2, b2, W3, b3], W (in, out):
    W[((2p + i)·G + 2q + j)·c_in + ch, (p·g + q)·c_out + o] = w[(i·2 + j)·c_in + ch, o], 0 elsewhere."""
    out = []
    for l, (w, b) in enumerate(blocks):
        G, g, c_in, c_out = GRIDS[l], GRIDS[l + 1], CHANNELS[l], CHANNELS[l + 1]
        big = np.zeros((G, G, c_in, g, g, c_out))
        for p in range(g):
            for q in range(g):
                big[2 * p:2 * p + 2, 2 * q:2 * q + 2, :, p, q, :] = w.reshape(2, 2, c_in, c_out)
        out += [big.reshape(G * G * c_in, g * g * c_out), np.tile(b, g * g)]
    return out


def mlp_forward(weights, v):
    """The dense MLP [W1, b1, …] on v (m, 64) → logits (m, 11): ReLU between layers, none after."""
    h = v
    for l in range(0, len(weights), 2):
        h = h @ weights[l] + weights[l + 1]
        h = h if l == len(weights) - 2 else np.maximum(h, 0)
    return h
