/*
 * The monitor's store, kept up to date in the browser: pure functions of the store and a list
 * of pushed changes (window.wattsonMonitor.step). Per sensor shown: `series[s]` (the chart's raw
 * points and, in a long window, its finished buckets as columns), `recent[s]` (the newest
 * readings, any validity, newest first); `fresh[s]` the newest valid reading's time (ms) of every sensor shown
 * or configured. A view of all sensors (`all`) takes in a sensor first seen in a change.
 */
(function () {
  "use strict";

  const M = window.wattsonMonitor;
  const anyReading = () => true;

  // Every change removes the row it names; the row comes back when it (still) belongs to the
  // sensor and is kept by `keep`. That also moves a row whose sensor or time was updated.
  function applyChanges(readings, changes, sensor, keep) {
    const byId = new Map(readings.map((r) => [r.id, r]));
    changes.forEach((change) => {
      byId.delete(change.reading.id);
      if (change.op !== "DELETE" && change.reading.sensor_id === sensor && keep(change.reading)) {
        byId.set(change.reading.id, change.reading);
      }
    });
    return Array.from(byId.values());
  }

  // ---- long windows: buckets (see readings/buckets.py for the design) ----

  // Buckets are columns, one list per field, oldest first (pages/monitor.py `columns`): a store
  // of ~1,440 bucket objects per sensor is what dash_renderer spent a 30 d page's load on.
  const STATS = ["min", "mean", "max", "n"];
  M.noBuckets = () => ({t: [], min: [], mean: [], max: [], n: []});
  const copyColumns = (cols) => Object.fromEntries(["t"].concat(STATS).map((f) => [f, cols[f].slice()]));

  // The index of bucket `start` in the sorted starts, or where it would go.
  function position(starts, start) {
    let low = 0, high = starts.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (starts[mid] < start) low = mid + 1; else high = mid;
    }
    return low;
  }

  // A value folded into bucket `start` of `cols` (changed in place), the bucket made if missing.
  function addValue(cols, start, value) {
    const i = position(cols.t, start);
    if (cols.t[i] !== start) {
      cols.t.splice(i, 0, start);
      [Infinity, 0, -Infinity, 0].forEach((v, k) => cols[STATS[k]].splice(i, 0, v));
    }
    const n = cols.n[i];
    cols.min[i] = Math.min(cols.min[i], value);
    cols.max[i] = Math.max(cols.max[i], value);
    cols.mean[i] = (cols.mean[i] * n + value) / (n + 1);
    cols.n[i] = n + 1;
  }

  // A change to a row older than the raw readings: an INSERT is added to its bucket exactly, an
  // UPDATE or DELETE marks the bucket approximate (`approx`, its start; the frame does not carry
  // the old value). The same series when no change touched a bucket.
  function foldOld(s, changes, sensor, data) {
    const size = data.bucket_s * 1000;
    const old = changes.filter((c) => c.reading.sensor_id === sensor && M.millis(c.reading) < data.raw_from);
    if (!old.length) return s;
    const cols = copyColumns(s.buckets), approx = new Set(s.approx || []);
    old.forEach((change) => {
      const r = change.reading;
      const start = Math.floor(M.millis(r) / size) * size;
      if (change.op === "INSERT" && M.isValid(r)) addValue(cols, start, r.temperature_c);
      else if (cols.t[position(cols.t, start)] === start) approx.add(start);
    });
    return Object.assign({}, s, {buckets: cols, approx: Array.from(approx)});
  }

  // A sensor's chart as columns, oldest first: {t, min, mean, max, n, id}; a row per reading in
  // a raw window; in a long one a row per bucket, the open buckets' computed here from their
  // raw readings (so a pushed reading lands in its bucket, never as a raw tail).
  function columnsOf(data, s) {
    if (!data.bucket_s) {
      const values = s.points.map((p) => p.temperature_c);
      return {t: s.points.map(M.millis), min: values, mean: values, max: values,
        n: values.map(() => 1), id: s.points.map((p) => p.id)};
    }
    const size = data.bucket_s * 1000;
    const cols = copyColumns(s.buckets);
    s.points.forEach((p) => addValue(cols, Math.floor(M.millis(p) / size) * size, p.temperature_c));
    return Object.assign(cols, {t: cols.t.map((t) => t + size / 2), id: cols.t.map(() => null)});  // drawn at its middle
  }

  // The cards (every clock tick), the summary and the chart each ask for a sensor's columns:
  // made once per series object, which `step` replaces whenever it changes one. Read-only.
  const madeColumns = new WeakMap();
  M.columns = function (data, sensor) {
    const s = data.series[sensor];
    if (!s) return columnsOf(data, {points: [], buckets: M.noBuckets()});
    const made = madeColumns.get(s);
    if (made && made.bucketS === data.bucket_s) return made.cols;
    const cols = columnsOf(data, s);
    madeColumns.set(s, {bucketS: data.bucket_s, cols: cols});
    return cols;
  };

  // Configured sensors first, in their order, then the others by name (readings.store.sensor_ids).
  function ordered(configured, sensors) {
    const others = sensors.filter((s) => !configured.includes(s)).sort();
    return configured.filter((s) => sensors.includes(s)).concat(others);
  }

  // A sensor first seen in these changes joins a view of all sensors (a valid reading names it:
  // an unreadable sensor id is no sensor).
  function newSensors(data, changes) {
    const seen = new Set();
    changes.forEach((c) => {
      const s = c.reading.sensor_id;
      if (c.op !== "DELETE" && M.isValid(c.reading) && !data.shown.includes(s)) seen.add(s);
    });
    return data.all ? Array.from(seen) : [];
  }

  function withSensors(data, added) {
    const series = Object.assign({}, data.series), recent = Object.assign({}, data.recent);
    added.forEach((s) => { series[s] = {points: [], buckets: M.noBuckets()}; recent[s] = []; });
    return Object.assign({}, data, {
      series: series, recent: recent,
      shown: ordered(data.configured, data.shown.concat(added)),
      known: data.known.concat(added.filter((s) => !data.known.includes(s))),
    });
  }

  // The newest valid reading time (ms) of each tracked sensor, given the ones known so far.
  function freshest(fresh, changes) {
    const next = Object.assign({}, fresh);
    changes.forEach((change) => {
      const r = change.reading;
      if (change.op !== "DELETE" && M.isValid(r) && r.sensor_id in next) {
        next[r.sensor_id] = Math.max(next[r.sensor_id] === null ? -Infinity : next[r.sensor_id], M.millis(r));
      }
    });
    return next;
  }

  function applyToSensor(data, sensor, changes) {
    const inRaw = (r) => M.isValid(r) && M.millis(r) >= (data.bucket_s ? data.raw_from : -Infinity);
    const s = data.series[sensor];
    return {
      series: Object.assign({}, data.bucket_s ? foldOld(s, changes, sensor, data) : s,
        {points: applyChanges(s.points, changes, sensor, inRaw).sort(M.byTime)}),
      recent: applyChanges(data.recent[sensor], changes, sensor, anyReading).sort(M.byTime).reverse()
        .slice(0, data.recent_max),
    };
  }

  // Points and buckets that left the window [now - window, now]; the same object when none did.
  function trimmed(s, data, now) {
    const cutoff = now - data.window_s * 1000;
    const size = (data.bucket_s || 0) * 1000;
    const first = s.points.findIndex((p) => M.millis(p) >= cutoff);
    const dropPoints = s.points.length > 0 && first !== 0;
    const kept = position(s.buckets.t, cutoff - size);  // the first bucket that ends in the window
    if (!dropPoints && kept === 0) return s;
    return Object.assign({}, s, {
      points: dropPoints ? (first < 0 ? [] : s.points.slice(first)) : s.points,
      buckets: kept === 0 ? s.buckets
        : Object.fromEntries(Object.entries(s.buckets).map(([field, c]) => [field, c.slice(kept)])),
    });
  }

  // The store after `changes` at time `now`; the same object when nothing changed.
  M.step = function (data, changes, now) {
    let next = data;
    if (changes.length) {
      next = withSensors(data, newSensors(data, changes));
      const series = {}, recent = {};
      next.shown.forEach((sensor) => {
        const applied = applyToSensor(next, sensor, changes);
        series[sensor] = applied.series;
        recent[sensor] = applied.recent;
      });
      const fresh = freshest(Object.assign(Object.fromEntries(next.shown.map((s) => [s, null])), next.fresh),
        changes);
      next = Object.assign({}, next, {series: series, recent: recent, fresh: fresh});
    }
    let trimmedAny = false;
    const series = {};
    next.shown.forEach((sensor) => {
      series[sensor] = trimmed(next.series[sensor], next, now);
      trimmedAny = trimmedAny || series[sensor] !== next.series[sensor];
    });
    return trimmedAny ? Object.assign({}, next, {series: series}) : next;
  };
})();
