"""Temporal smoothing of per-sample class scores: Viterbi over the joint states, numpy only.

    sticky_transitions(shape, stay) -> (K, K) log transition matrix over joint states
    viterbi(log_emission, log_transition) -> (n,) most likely joint-state path

A plain Viterbi loops over every sample in Python (~10 s per million rows). Here the series is
cut into overlapping chunks decoded side by side, one vectorised step per position; each chunk
keeps only its middle, and the margins are long enough for sticky paths to agree again.
"""

import numpy as np

CHUNK = 512
MARGIN = 128


def sticky_transitions(shape, stay):
    """Log P(joint j -> joint k): each device independently stays with prob stay[d], else moves
    to one of its other states uniformly."""
    per_device = []
    for n_states, p in zip(shape, stay):
        t = np.full((n_states, n_states), (1 - p) / max(n_states - 1, 1))
        np.fill_diagonal(t, p)
        per_device.append(t)
    joint = per_device[0]
    for t in per_device[1:]:
        joint = np.kron(joint, t)  # kron order matches np.ravel_multi_index(shape)
    return np.log(joint)


def _decode(log_emission, log_transition):
    """Viterbi on a batch: log_emission (b, n, K) -> paths (b, n)."""
    b, n, k = log_emission.shape
    back = np.empty((b, n, k), dtype=np.int8 if k < 128 else np.int16)
    score = log_emission[:, 0]
    for t in range(1, n):
        cand = score[:, :, None] + log_transition[None]
        back[:, t] = cand.argmax(axis=1)
        score = cand.max(axis=1) + log_emission[:, t]
    path = np.empty((b, n), dtype=np.intp)
    path[:, -1] = score.argmax(axis=1)
    rows = np.arange(b)
    for t in range(n - 1, 0, -1):
        path[:, t - 1] = back[rows, t, path[:, t]]
    return path


def viterbi(log_emission, log_transition, chunk=CHUNK, margin=MARGIN):
    """Most likely state path; exact for series up to chunk + 2 * margin samples."""
    log_emission = np.asarray(log_emission, dtype=np.float32)
    n, k = log_emission.shape
    if n <= chunk + 2 * margin:
        return _decode(log_emission[None], log_transition)[0]
    n_chunks = -(-n // chunk)
    # Pad both ends with uninformative scores so every chunk has full margins.
    padded = np.zeros((n_chunks * chunk + 2 * margin, k), dtype=np.float32)
    padded[margin:margin + n] = log_emission
    starts = np.arange(n_chunks) * chunk
    windows = padded[starts[:, None] + np.arange(chunk + 2 * margin)]
    paths = _decode(windows, log_transition.astype(np.float32))
    return paths[:, margin:margin + chunk].reshape(-1)[:n]
