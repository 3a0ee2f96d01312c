"""python -m nilm.report [--data DIR] [-o reports/nilm_report.html]: the exploratory analysis.

One self-contained HTML file (plotly.js inlined once, no external scripts) with: each device
recording's level histogram and mixture components, the recordings coloured by state, the main
recording with the model's labels and its doubtful stretches in plain words (nilm.doubt), the
expected level of every state combination, notes on what the data shows (numbers computed here,
not typed in), how the model was judged (the table stored by nilm.evaluate) and how it holds up
under stress (the stored stress matrix, beside the near-ceiling decoder).

Public API:
    data_facts(recordings, main, model, prediction) -> dict of the measured numbers in the notes
    ambiguous_pairs(combinations, tolerance) -> [(name, level, name, level)] of look-alike states
    doubtful_segments(main, prediction) -> [nilm.doubt.Doubt] of the main file (None: no confidence)
    build_report(recordings, main, model, results) -> HTML text
    main(argv=None) -> exit code
"""
import argparse
import html
import sys
from itertools import combinations as pairs
from pathlib import Path

import numpy as np
import plotly.io as pio

from nilm import doubt, figures, texts
from nilm.devices import DEVICES, REPO_ROOT, STATES
from nilm.model import joint_levels
from nilm.states import QUANTUM_MA, fit_states, spike_mask
from nilm.stress_matrix import matrix_rows

DEFAULT_OUTPUT = REPO_ROOT / "reports" / "nilm_report.html"
STYLE = """
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; margin: 0;
       background: #f6f7f9; color: #212529; overflow-wrap: break-word; }
main { max-width: 1100px; margin: 0 auto; padding: 1.5rem; }
section { background: #fff; border: 1px solid #e3e6ea; border-radius: 8px; padding: 1rem 1.25rem;
          margin-bottom: 1.25rem; }
h1 { margin-bottom: 0.25rem; } h2 { margin-top: 0.25rem; font-size: 1.3rem; }
h3 { font-size: 1rem; margin: 1rem 0 0.25rem; }
.scroll { overflow-x: auto; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0);
                   white-space: nowrap; }
@media (max-width: 600px) { main { padding: 0.5rem; } section { padding: 0.75rem; } }
p, li { line-height: 1.5; } .muted { color: #6c757d; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
th, td { text-align: left; padding: 0.35rem 0.6rem; border-bottom: 1px solid #e3e6ea; }
th { background: #264653; color: #fff; font-weight: 600; }
td { font-variant-numeric: tabular-nums; }
code { background: #f1f3f5; padding: 0 0.25em; border-radius: 3px; }
"""


def quantisation_step(currents):
    """The meter's step: the typical gap between neighbouring distinct levels (mA)."""
    levels = np.unique(np.concatenate(currents))
    gaps = np.diff(levels)
    small = gaps[(gaps > 0) & (gaps < 2 * QUANTUM_MA)]
    return float(np.median(small)) if small.size else float("nan")


def effective_ratio(max_currents, effective_currents):
    """Median and 1st..99th percentile of effective / maximum current, where the maximum is > 0."""
    m, e = np.concatenate(max_currents), np.concatenate(effective_currents)
    ratio = e[m > 0] / m[m > 0]
    return float(np.median(ratio)), tuple(float(v) for v in np.percentile(ratio, [1, 99]))


def ambiguous_pairs(combinations, tolerance=QUANTUM_MA):
    """Joint states whose expected levels lie within tolerance mA: one sample cannot tell them apart."""
    found = [(figures.combination_name(a), la, figures.combination_name(b), lb)
             for (a, la), (b, lb) in pairs(combinations, 2) if abs(la - lb) <= tolerance]
    return sorted(found, key=lambda p: abs(p[1] - p[3]))


def data_facts(recordings, main, model, prediction):
    """The numbers quoted in the report's notes, measured on the recordings."""
    every = [*recordings.values(), main]
    ratio, ratio_range = effective_ratio([r.max_current for r in every],
                                         [r.effective_current for r in every])
    spikes = {}
    for name, recording in [*recordings.items(), ("main", main)]:
        current = recording.max_current
        spikes[name] = sorted(float(v) for v in current[spike_mask(current)] if v > 250)
    levels = model.state_levels_
    all_on = sum(float(levels[d][-1]) for d in DEVICES)
    steady = main.max_current[len(main) // 5:]  # after the first fifth the main file holds one level
    return {
        "quantum": quantisation_step([r.max_current for r in every]),
        "effective_ratio": ratio, "effective_ratio_range": ratio_range,
        "spikes": spikes,
        "gain": float(prediction.gain),
        "steady_median": float(np.median(steady)), "all_on_sum": all_on,
        "ambiguous": ambiguous_pairs(model.combination_levels()),
    }


def _fig(figure, first, title=None, described=None):
    """A figure, its title as an HTML heading: plotly's own title ran into the legend and the
    toolbar at 390 px, where a heading simply wraps. `described` = (key, text): the chart in words
    for screen readers, which the figure's wrapper names."""
    heading = f"<h3>{html.escape(title)}</h3>" if title else ""
    chart = pio.to_html(figure, full_html=False, include_plotlyjs=first,
                        config={**figures.CONFIG, "responsive": True})
    if not described:
        return heading + chart
    key, text = described
    label = html.escape(title or f"{key} chart", quote=True)
    return (f'{heading}<p id="chart-text-{key}" class="visually-hidden">{html.escape(text)}</p>'
            f'<div role="figure" aria-label="{label}" aria-describedby="chart-text-{key}">{chart}</div>')


def _notes(facts):
    spikes = "; ".join(f"{html.escape(name)}: {', '.join(f'{v:.0f}' for v in values)} mA"
                       for name, values in facts["spikes"].items() if values)
    ambiguous = "".join(f"<li>{html.escape(a)} ({la:.0f} mA) and {html.escape(b)} ({lb:.0f} mA)</li>"
                        for a, la, b, lb in facts["ambiguous"][:8])
    low, high = facts["effective_ratio_range"]
    return f"""
<ul>
<li><b>Quantisation.</b> The maximum current moves in steps of {facts['quantum']:.2f} mA:
every histogram below is drawn on that grid.</li>
<li><b>One signal, two columns.</b> Effective / maximum current has median
{facts['effective_ratio']:.4f} (1st to 99th percentile {low:.4f} to {high:.4f});
1/&radic;2 = {1 / np.sqrt(2):.4f}. The effective column adds nothing, so the model reads the maximum.</li>
<li><b>Inrush spikes.</b> Single samples far above both neighbours (and above 250 mA):
{spikes or 'none'}. The sensor
draws them when it switches on; they are transients, not states, and are left out of the mixture fits.</li>
<li><b>Gain.</b> The main recording is not the plain sum of the single recordings' levels. The
model estimates a gain of {facts['gain']:.3f} on it. After its first fifth the main file sits at a
median {facts['steady_median']:.0f} mA, while both screens ON plus the sensor ON sum to
{facts['all_on_sum']:.0f} mA: a ratio of {facts['steady_median'] / facts['all_on_sum']:.3f}.</li>
<li><b>Look-alike combinations.</b> {len(facts['ambiguous'])} pairs of joint states sit within one
step ({QUANTUM_MA:.2f} mA) of each other, for example:<ul>{ambiguous}</ul>
A single sample cannot separate them: the model decides over time, with a hidden Markov model
over the 18 joint states whose levels and gain it re-fits on the recording itself, and lets the
sensor switch on only at an inrush spike. The evaluation below says how well that works, and what
the decision tree on temporal features scores on its own.</li>
</ul>"""


def _evaluation(results):
    if not results:
        return "<p class='muted'>No stored evaluation: run <code>python -m nilm.evaluate</code>.</p>"
    s, t = results["settings"], results["targets"]
    met = "met" if t["met"] else "not met"
    return f"""
<p>There are no labels for the main recording, so the model is judged on held-out synthetic
aggregates: each single-device recording is split in time ({s['train_fraction']:.0%} of each
state's rows to train, the rest held out), aggregates are generated from the held-out parts with
known states, gains {', '.join(f'{g:.2f}' for g in s['gains'])} and short and long dwell times,
fixed seed {s['seed']}. Accuracy and macro-F1 are per device; joint accuracy counts rows where all
three devices are right. CO and the FHMM are the NILMTK baselines; the oracle knows the generator.</p>
<p>Targets: joint accuracy &ge; {t['joint_accuracy']} and &ge; {t['share_of_oracle']} &times; the
oracle's ({t['oracle']:.3f}); the model reaches {t['model']:.3f}: {met}.</p>
{_table(*texts.evaluation_rows(results))}"""


def _stress(results):
    matrix = (results or {}).get("stress")
    if not matrix:
        return ("<p class='muted'>No stored stress matrix: run <code>python -m nilm.evaluate</code> "
                "(or <code>--stress-only</code>).</p>")
    s = matrix["settings"]
    below = "".join(f"<li><b>{html.escape(r['name'])}</b> ({html.escape(r['verdict'])}, model "
                    f"{r['model']['mean']:.3f}): {html.escape(r['reason'])}.</li>"
                    for r in matrix["scenarios"] if r["reason"])
    return f"""
<p>A second generator (<code>nilm.stress</code>) that shares no code with the model builds
aggregates from contiguous blocks of the real recordings' segments, with stays drawn in seconds,
a jittered meter clock and a gain, under the conditions real meters show: noise, other gains, a
drifting gain, missing or extra spikes, short stays, one device alone, a 2 s meter, dropped rows.
{len(s['seeds'])} files of {s['rows_per_file']} rows per scenario, seeds never used to tune
anything. The near ceiling is a decoder that knows the generator's levels, spikes and dwell law
(but not each file's gain): what the data allow. Confidence is the model's posterior of each
device's state; a row counts as confident when every device is at &ge; {s['confident']}.
"Errors flagged" is the share of wrong rows that were not confident.</p>
{_fig(figures.stress_matrix_figure(matrix), False, None, ("stress", texts.stress_summary(matrix)))}
{_table(*matrix_rows(matrix))}
<p>Scenarios below joint accuracy {s['target_joint']}, and why:</p><ul>{below or '<li>none</li>'}</ul>"""


def doubtful_segments(main, prediction):
    """nilm.doubt's segments of the main file, or None when the prediction has no confidence."""
    if getattr(prediction, "confidence", None) is None:
        return None
    return doubt.doubtful_segments(main.timestamp, prediction.states, prediction.confidence,
                                   prediction.runner_up)


def _doubt(main, model, prediction, segments):
    """The doubtful stretches of the main file in plain words (nilm.doubt, nilm.texts)."""
    if segments is None:
        return "<p class='muted'>This model gives no confidence per row.</p>"
    levels = joint_levels(model.state_levels_) * prediction.gain
    overview = "".join(f"<p>{html.escape(line)}</p>" for line in texts.doubt_overview(segments, levels))
    items = "".join(f"<li>{html.escape(line)}</li>" for line in texts.doubt_lines(segments, levels))
    share = doubt.share_doubtful(prediction.confidence)
    return f"""
<p>For every row the model gives each device's confidence: the posterior probability of the
state it chose, given the whole recording. {share:.1%} of the rows of {html.escape(main.name)}
are below {doubt.DOUBT} for some device ({len(segments)} stretches, shaded on the plot above).
Each is listed with the explanation the model chose, the runner-up it weighed against it, and
why both fit.</p>
{overview}
<ul>{items or '<li>No stretch is doubtful.</li>'}</ul>"""


def _table(header, rows):
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<div class='scroll'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def build_report(recordings, main, model, results):
    """The report's HTML text."""
    fitted = fit_states(recordings, random_state=0)
    prediction = model.predict_details(main)
    facts = data_facts(recordings, main, model, prediction)
    t, current, states = main.timestamp, main.max_current, prediction.states
    device_figs = []
    for device in DEVICES:
        r, s = recordings[device], fitted[device]
        hist = figures.level_histogram(r.max_current, s.levels, s.spreads, s.weights, STATES[device])
        series = figures.state_series(r.timestamp, r.max_current, s.labels, STATES[device])
        levels = ", ".join(f"{name} {level:.0f} mA" for name, level in zip(STATES[device], s.levels))
        slug = device.lower().replace(" ", "-")
        device_figs.append(
            _fig(hist, not device_figs, f"{device}: levels and mixture",
                 (f"{slug}-levels", f"Histogram of {device}'s {len(r.max_current):,} samples with "
                                    f"its mixture's levels: {levels}."))
            + _fig(series, False, f"{device}: {r.name} coloured by state",
                   (f"{slug}-series", f"{device}'s current over time, each sample coloured by its "
                                      f"state; levels {levels}.")))
    shares = figures.shares(t, current, states, model.state_levels_)
    segments = doubtful_segments(main, prediction)
    aggregate = figures.shade_doubt(figures.aggregate_figure(t, current, states), segments or [])
    words = texts.chart_summaries(main, states, shares, prediction.gain, segments or [])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Wattson NILM report</title>
<style>{STYLE}</style></head><body><main>
<h1>Which device was on, and when?</h1>
<p class="muted">Exploratory analysis of the four recordings and the model's labels of the main one.</p>
<section><h2>What the data shows</h2>{_notes(facts)}</section>
<section><h2>The single-device recordings</h2>
<p>A Gaussian mixture per device (three components for the screens, two for the sensor), ordered
by mean: OFF &lt; IDLE &lt; ON. Each sample is coloured by its most likely component.</p>
{''.join(device_figs)}</section>
<section><h2>The main recording and its labels ({html.escape(main.name)})</h2>
{_fig(aggregate, False, "Aggregate current and predicted states", ("aggregate", words["aggregate"]))}
{_fig(figures.device_current_figure(t, states, model.state_levels_, prediction.gain), False,
      "Estimated current of each device, stacked", ("devices", words["devices"]))}
{_fig(figures.state_timeline(t, states), False, "State timeline per device",
      ("timeline", words["timeline"]))}
{_fig(figures.share_figure(shares), False, "Time and charge per device and state",
      ("shares", words["shares"]))}</section>
<section><h2>Which parts of the main file are doubtful</h2>
{_doubt(main, model, prediction, segments)}</section>
<section><h2>The expected level of every state combination</h2>
<p>Marks: the model's level of each of the 18 joint states times the estimated gain
({prediction.gain:.3f}), over the histogram of the main recording.</p>
{_fig(figures.combination_histogram(current, model.combination_levels(), prediction.gain), False,
      None, ("levels", words["levels"]))}
</section>
<section><h2>How the model was judged</h2>{_evaluation(results)}</section>
<section><h2>How the model holds up under stress</h2>{_stress(results)}</section>
<p id="nilm-report-end" class="muted">End of the report.</p>
</main></body></html>
"""


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m nilm.report", description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="directory of the recordings (default: nilm.devices.data_dir())")
    parser.add_argument("-o", "--output", default=str(DEFAULT_OUTPUT), help="the HTML file to write")
    args = parser.parse_args(argv)
    from nilm.evaluate import load_results
    from nilm.io import InputError, load_device_recordings, load_main
    from nilm.label import write_atomically
    from nilm.model import load

    try:
        text = build_report(load_device_recordings(args.data), load_main(args.data), load(),
                            load_results())
        output = Path(args.output)
        output.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(output, text.encode("utf-8"))
    except (InputError, OSError, ValueError) as error:
        print(f"nilm.report: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
