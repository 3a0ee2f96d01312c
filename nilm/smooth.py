"""Temporal smoothing over the joint states: Viterbi and posterior decoding, numpy only.

    sticky_transitions(shape, stay) -> (K, K) log transition matrix over joint states
    gated_transitions(shape, stay, device, plain, gated) -> (2, K, K): `device` switches on
        (leaves its first state) with probability `plain` per sample, or `gated` where allowed
    switching_transitions(shape, stays, device, switch_ons) -> (m, K, K): one matrix per row of
        stays (m, devices) and switch_ons (m,), e.g. per elapsed time and gate
    viterbi(log_emission, log_transition, which=None) -> (n,) most likely joint-state path
    posterior(log_emission, log_transition, which=None) -> ((n, K) P(state | series), (n,) log-lik terms)
    log_terms(log_emission, log_transition, which=None) -> posterior's (n,) log-lik terms alone
    pad(values, chunk, margin, fill); viterbi_padded / posterior_padded(...): the same chunked
        decode on a padded series, or on any run of its chunks (a long series part by part)

log_transition is one (K, K) matrix or a stack (m, K, K); which[t] (int, n) then picks the matrix
of the step t-1 -> t (e.g. by the time elapsed, or at an inrush spike, where the sensor switches
on more readily). Steps that use matrix 0 are vectorised over the whole batch; put the commonest
matrix first.

A plain decode loops over every sample in Python (~10 s per million rows). Here the series is
cut into overlapping chunks decoded side by side, one vectorised step per position; each chunk
keeps only its middle, and the margins are long enough for sticky paths to agree again.
"""

import numpy as np

CHUNK = 512
MARGIN = 128


def _device_matrix(n_states, stay):
    t = np.full((n_states, n_states), (1 - stay) / max(n_states - 1, 1))
    np.fill_diagonal(t, stay)
    return t


def _joint(matrices):
    joint = matrices[0]
    for t in matrices[1:]:
        joint = np.kron(joint, t)  # kron order matches np.ravel_multi_index(shape)
    return joint


def sticky_transitions(shape, stay):
    """Log P(joint j -> joint k): each device independently stays with prob stay[d], else moves
    to one of its other states uniformly."""
    return np.log(_joint([_device_matrix(n, p) for n, p in zip(shape, stay)]))


def gated_transitions(shape, stay, device, plain, gated):
    """Two log matrices: [0] where `device` leaves state 0 with probability `plain`, [1] where it
    does so with probability `gated`; every other move as in sticky_transitions."""
    return switching_transitions(shape, [stay, stay], device, [plain, gated])


def switching_transitions(shape, stays, device, switch_ons):
    """(m, K, K) log matrices: in matrix i each device d stays with probability stays[i][d], else
    moves uniformly to another state, except that `device` leaves state 0 with switch_ons[i]."""
    stacks = []
    for stay, switch_on in zip(stays, switch_ons):
        matrices = [_device_matrix(n, p) for n, p in zip(shape, stay)]
        first = matrices[device][0]
        first[1:] = switch_on / max(first.size - 1, 1)
        first[0] = 1 - switch_on
        stacks.append(_joint(matrices))
    with np.errstate(divide="ignore"):  # only a caller's explicit 0 is a ban: log 0 = -inf
        return np.log(np.stack(stacks))


def _as_stack(log_transition, n, which):
    stack = np.asarray(log_transition, dtype=np.float32)
    if stack.ndim == 2:
        stack = stack[None]
    which = np.zeros(n, dtype=np.intp) if which is None else np.asarray(which, dtype=np.intp)
    return stack, which


def _viterbi_batch(log_emission, stack, which):
    """Viterbi on a batch: log_emission (b, n, K), which (b, n) -> paths (b, n)."""
    b, n, k = log_emission.shape
    back = np.empty((b, n, k), dtype=np.int8 if k < 128 else np.int16)
    score = log_emission[:, 0]
    special = which.any(axis=0)
    # cand[b, to, from]: the reduction over `from` runs along contiguous memory.
    into = np.ascontiguousarray(stack.transpose(0, 2, 1))
    for t in range(1, n):
        # Matrix 0 for the whole batch, or each chunk's own where any chunk needs another.
        cand = score[:, None, :] + (into[which[:, t]] if special[t] else into[0])
        best = cand.argmax(axis=2)
        back[:, t] = best
        # The best scores are where argmax points: gathering them beats a second reduction.
        score = np.take_along_axis(cand, best[:, :, None], axis=2)[:, :, 0] + log_emission[:, t]
    path = np.empty((b, n), dtype=np.intp)
    path[:, -1] = score.argmax(axis=1)
    rows = np.arange(b)
    for t in range(n - 1, 0, -1):
        path[:, t - 1] = back[rows, t, path[:, t]]
    return path


def _step(vector, matrices, which_t, special, transpose=False):
    """vector (b, K) times the matrix each row picks (forward), or matrix times it (backward)."""
    out = vector @ (matrices[0].T if transpose else matrices[0])
    if special:  # redo the few rows that pick another matrix
        rows = np.flatnonzero(which_t)
        out[rows] = np.einsum("bj,bkj->bk" if transpose else "bk,bkj->bj", vector[rows],
                              matrices[which_t[rows]])
    return out


def _forward_batch(log_emission, stack, which, keep=True):
    """Scaled forward pass on a batch: (b, n, K) -> (emission scaled by each row's peak, the
    matrices, forward (b, n, K) P(state at t | the series up to t), log terms (b, n): the log
    of each step's forward normaliser, their sum is the log-likelihood). Without keep, forward
    is None: the log terms alone need no (b, n, K) float64 history."""
    b, n, k = log_emission.shape
    # float64: with a hard ban (probability 0) float32 shares underflow to 0 on both passes.
    peak = log_emission.max(axis=2, keepdims=True)
    emission = np.exp(log_emission - peak, dtype=np.float64)
    matrices = np.exp(stack, dtype=np.float64)
    forward = np.empty((b, n, k)) if keep else None
    log_norm = np.empty((b, n))
    alpha = emission[:, 0] / emission[:, 0].sum(axis=1, keepdims=True)
    log_norm[:, 0] = np.log(emission[:, 0].sum(axis=1) / k)
    if keep:
        forward[:, 0] = alpha
    special = which.any(axis=0)
    for t in range(1, n):
        alpha = _step(alpha, matrices, which[:, t], special[t]) * emission[:, t]
        norm = alpha.sum(axis=1, keepdims=True)
        log_norm[:, t] = np.log(norm[:, 0])
        alpha /= norm
        if keep:
            forward[:, t] = alpha
    return emission, matrices, forward, log_norm + peak[:, :, 0]


def _log_terms_batch(log_emission, stack, which):
    """The forward pass alone on a batch: (b, n, K) -> (b, n) float32 log terms."""
    return _forward_batch(log_emission, stack, which, keep=False)[3].astype(np.float32)


def _weights_batch(log_emission, stack, which):
    """Scaled forward-backward on a batch: (b, n, K) -> the posteriors, float32 (b, n, K)."""
    return _backward(*_forward_batch(log_emission, stack, which)[:3], which).astype(np.float32)


def _posterior_batch(log_emission, stack, which):
    """Scaled forward-backward on a batch: (b, n, K) -> (b, n, K + 1): the posteriors, and last
    the log of each step's forward normaliser (their sum is the log-likelihood)."""
    emission, matrices, forward, terms = _forward_batch(log_emission, stack, which)
    return np.concatenate([_backward(emission, matrices, forward, which), terms[:, :, None]],
                          axis=2).astype(np.float32)


def _backward(emission, matrices, forward, which):
    """The backward pass after _forward_batch: the posteriors (b, n, K) float64, in forward's place."""
    b, n, k = forward.shape
    special = which.any(axis=0)
    beta = np.full((b, k), 1.0 / k)
    posterior = forward  # overwritten from the end, row by row
    for t in range(n - 1, 0, -1):
        beta = _step(emission[:, t] * beta, matrices, which[:, t], special[t], transpose=True)
        norm = beta.sum(axis=1, keepdims=True)
        beta = np.where(norm > 0, beta / np.where(norm > 0, norm, 1.0), 1.0 / k)
        both = forward[:, t - 1] * beta
        total = both.sum(axis=1, keepdims=True)
        # Data that insists on a banned move beyond float64's range leaves the passes sure of
        # disjoint states (or the backward pass of none): keep the forward belief, not 0 / 0.
        posterior[:, t - 1] = np.where(total > 0, both / np.where(total > 0, total, 1.0), forward[:, t - 1])
    return posterior


def pad(values, chunk, margin, fill):
    """The series padded with `fill` to whole chunks plus a margin either side: the layout
    viterbi_padded and posterior_padded take (and a caller can build one part at a time)."""
    n = values.shape[0]
    padded = np.full((-(-n // chunk) * chunk + 2 * margin,) + values.shape[1:], fill, dtype=values.dtype)
    padded[margin:margin + n] = values
    return padded


def _padded(decode, log_emission, log_transition, which, chunk, margin):
    """Decode a padded series: chunks at every multiple of chunk, each with its margins."""
    stack, which = _as_stack(log_transition, log_emission.shape[0], which)
    starts = np.arange((log_emission.shape[0] - 2 * margin) // chunk) * chunk
    windows = starts[:, None] + np.arange(chunk + 2 * margin)
    out = decode(np.asarray(log_emission, dtype=np.float32)[windows], stack, which[windows])
    return out[:, margin:margin + chunk].reshape((-1,) + out.shape[2:])


def _chunked(decode, log_emission, log_transition, which, chunk, margin):
    log_emission = np.asarray(log_emission, dtype=np.float32)
    n = log_emission.shape[0]
    stack, which = _as_stack(log_transition, n, which)
    if n <= chunk + 2 * margin:
        return decode(log_emission[None], stack, which[None])[0]
    # Padding with uninformative scores gives every chunk full margins.
    return _padded(decode, pad(log_emission, chunk, margin, 0.0), stack, pad(which, chunk, margin, 0),
                   chunk, margin)[:n]


def viterbi_padded(log_emission, log_transition, which, chunk, margin):
    """viterbi on a series laid out by pad() (or a run of its chunks with their margins)."""
    return _padded(_viterbi_batch, log_emission, log_transition, which, chunk, margin)


def posterior_padded(log_emission, log_transition, which, chunk, margin):
    """posterior's first result on a series laid out by pad() (or a run of its chunks)."""
    return _padded(_weights_batch, log_emission, log_transition, which, chunk, margin)


def viterbi(log_emission, log_transition, chunk=CHUNK, margin=MARGIN, which=None):
    """Most likely state path; exact for series up to chunk + 2 * margin samples."""
    return _chunked(_viterbi_batch, log_emission, log_transition, which, chunk, margin)


def posterior(log_emission, log_transition, chunk=CHUNK, margin=MARGIN, which=None):
    """(P(state at t | the series) float32 (n, K), log P(x_t | x_<t) float32 (n,): its sum over
    a stretch is that stretch's log-likelihood); exact up to chunk + 2 * margin samples, beyond
    that each chunk is conditioned on its left margin only."""
    out = _chunked(_posterior_batch, log_emission, log_transition, which, chunk, margin)
    return out[:, :-1], out[:, -1]


def log_terms(log_emission, log_transition, chunk=CHUNK, margin=MARGIN, which=None):
    """posterior's second result alone (the forward pass only): log P(x_t | x_<t) float32 (n,),
    the same numbers at about half the cost, for scoring how well a series is explained."""
    return _chunked(_log_terms_batch, log_emission, log_transition, which, chunk, margin)
