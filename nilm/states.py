"""State discovery: a GaussianMixture per device on its single-device recording.

    fit_device_states(max_current, n_states, random_state) -> DeviceStates
    fit_states(recordings, random_state) -> dict[device, DeviceStates]  (Recording or array values)
    spike_mask(max_current) -> bool array of isolated one-sample outliers
    despike(max_current), rolling_median(x, width), centered_windows(x, width): shared helpers

Components are ordered by mean, so index 0 is OFF and the last is ON (nilm.devices.STATES).
Isolated one-sample outliers (the sensor's inrush, switching transients) are replaced by their
neighbours' median before fitting, so they never become a state; a 5-sample median and a log
scale make the fit robust (see _fitting_space). levels/spreads are in mA on the plain scale.
"""
from dataclasses import dataclass, replace

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from nilm.devices import DEVICES, STATES

# The meter's maximum-current resolution (mA); one step of the quantised signal.
QUANTUM_MA = 12.207

# A sample this far (mA) from both neighbours, on the same side, is a transient, not a level.
SPIKE_MA = 5 * QUANTUM_MA


@dataclass(frozen=True)
class DeviceStates:
    """Fitted states of one device, ordered OFF..ON."""

    levels: np.ndarray  # mean max current (mA) per state
    spreads: np.ndarray  # standard deviation (mA) per state
    weights: np.ndarray  # share of the recording per state
    labels: np.ndarray  # state index of every recording sample (spikes take their neighbours')
    spikes: np.ndarray  # bool, isolated outliers excluded from the fit
    fit_means: np.ndarray  # mixture means in the fitting space (see _fitting_space)
    fit_spreads: np.ndarray

    def assign(self, max_current):
        """Most likely state of every sample under the fitted mixture (numpy only)."""
        z = _fitting_space(max_current)[:, None]
        log_p = (np.log(self.weights) - np.log(self.fit_spreads)
                 - 0.5 * ((z - self.fit_means) / self.fit_spreads) ** 2)
        return log_p.argmax(axis=1)

    def label(self, max_current):
        """(state of every sample, spike mask); a spike takes the state of the sample before it."""
        labels = self.assign(max_current)
        spikes = spike_mask(max_current)
        idx = np.flatnonzero(spikes)
        labels[idx] = labels[np.maximum(idx - 1, 0)]
        return labels, spikes


def spike_mask(max_current, threshold=SPIKE_MA):
    """True where a sample sits more than threshold above (or below) both neighbours."""
    x = np.asarray(max_current, dtype=float)
    if x.size < 3:
        return np.zeros(x.size, dtype=bool)
    # The end samples have one neighbour: compare them with it twice.
    padded = np.r_[x[1], x, x[-2]]
    left, right = padded[:-2], padded[2:]
    up = x - np.maximum(left, right) > threshold
    down = np.minimum(left, right) - x > threshold
    return up | down


def centered_windows(x, width):
    """Centered windows of odd width, edges padded with the edge value."""
    half = width // 2
    return sliding_window_view(np.pad(x, half, mode="edge"), width)


def rolling_median(x, width):
    return np.median(centered_windows(x, width), axis=1)


def despike(current):
    """The series with isolated one-sample outliers replaced by the median of three."""
    x = np.asarray(current, dtype=float)
    mask = spike_mask(x)
    if mask.any():
        x = x.copy()
        x[mask] = rolling_median(x, 3)[mask]
    return x


def _fitting_space(max_current):
    """log(1 + steps) of the despiked, 5-median series.

    The sensor's ON level flickers between one and two steps, and OFF is a small share of its
    recording: on the plain scale the likeliest two-component fit splits ON in two. The median
    tightens each level and the log widens the gaps near zero, so OFF stands apart.
    """
    return np.log1p(rolling_median(despike(max_current), 5) / QUANTUM_MA)


def fit_device_states(max_current, n_states, random_state=None):
    """Fit a GaussianMixture with n_states components; order them by level."""
    from sklearn.mixture import GaussianMixture  # training only; labelling never imports it

    x = np.asarray(max_current, dtype=float)
    z = _fitting_space(x)
    if np.unique(z).size < n_states:
        raise ValueError(f"need at least {n_states} distinct current levels, got {np.unique(z).size}")
    # One shared variance: with per-component variances a wide component can swallow OFF and
    # the sensor's lower flicker level together (tried on every 50-80 % split of the recordings).
    gmm = GaussianMixture(n_components=n_states, covariance_type="tied", reg_covar=0.05 ** 2,
                          random_state=random_state).fit(z[:, None])
    order = np.argsort(gmm.means_[:, 0])
    fitted = DeviceStates(
        levels=np.zeros(n_states), spreads=np.zeros(n_states), weights=gmm.weights_[order],
        labels=np.zeros(0, dtype=int), spikes=spike_mask(x), fit_means=gmm.means_[order, 0],
        fit_spreads=np.full(n_states, np.sqrt(gmm.covariances_.item())),
    )
    labels, _ = fitted.label(x)
    clean = despike(x)
    levels = np.array([clean[labels == k].mean() if np.any(labels == k) else np.nan
                       for k in range(n_states)])
    spreads = np.array([clean[labels == k].std() if np.any(labels == k) else 0.0
                        for k in range(n_states)])
    return replace(fitted, levels=levels, spreads=np.maximum(spreads, QUANTUM_MA / 4), labels=labels)


def max_current_of(recording):
    """The max-current column of a Recording, or the array itself."""
    return np.asarray(getattr(recording, "max_current", recording), dtype=float)


def fit_states(recordings, random_state=None):
    """DeviceStates for every device in nilm.devices.DEVICES order."""
    return {
        device: fit_device_states(max_current_of(recordings[device]),
                                  len(STATES[device]), random_state)
        for device in DEVICES
    }
