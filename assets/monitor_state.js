/*
 * The monitor's store, kept up to date in the browser: pure functions of the store and a list
 * of pushed changes (window.wattsonMonitor.step). Per sensor shown: `series[s]` (the chart's raw
 * points and, in a long window, its finished buckets), `recent[s]` (the newest readings, any
 * validity, newest first); `fresh[s]` the newest valid reading's time (ms) of every sensor shown
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

  // A change to a row older than the raw readings: an INSERT is added to its bucket exactly, an
  // UPDATE or DELETE marks the bucket approximate (the frame does not carry the old value).
  function foldOld(buckets, changes, sensor, data) {
    const size = data.bucket_s * 1000;
    const byStart = new Map(buckets.map((b) => [b.t, b]));
    let changed = false;
    changes.forEach((change) => {
      const r = change.reading;
      const t = M.millis(r);
      if (r.sensor_id !== sensor || !(t < data.raw_from)) return;
      const start = Math.floor(t / size) * size;
      const old = byStart.get(start);
      if (change.op === "INSERT" && M.isValid(r)) {
        const b = old || {t: start, min: Infinity, mean: 0, max: -Infinity, n: 0};
        byStart.set(start, Object.assign({}, b, {
          min: Math.min(b.min, r.temperature_c), max: Math.max(b.max, r.temperature_c),
          mean: (b.mean * b.n + r.temperature_c) / (b.n + 1), n: b.n + 1}));
        changed = true;
      } else if (old) {
        byStart.set(start, Object.assign({}, old, {approx: true}));
        changed = true;
      }
    });
    return changed ? Array.from(byStart.values()).sort((a, b) => a.t - b.t) : buckets;
  }

  // A sensor's chart rows, oldest first: {t, min, mean, max, n, id}; one per reading in a raw
  // window; in a long one, one per bucket, the open buckets' computed here from their raw
  // readings (so a pushed reading lands in its bucket, never as a raw tail).
  M.rows = function (data, sensor) {
    const s = data.series[sensor] || {points: [], buckets: []};
    const rows = s.points.map((p) => ({
      t: M.millis(p), min: p.temperature_c, mean: p.temperature_c, max: p.temperature_c, n: 1, id: p.id}));
    if (!data.bucket_s) return rows;
    const size = data.bucket_s * 1000;
    const open = new Map();
    rows.forEach((r) => {
      const start = Math.floor(r.t / size) * size;
      const b = open.get(start) || {t: start, min: Infinity, mean: 0, max: -Infinity, n: 0, id: null};
      open.set(start, Object.assign(b, {
        min: Math.min(b.min, r.min), max: Math.max(b.max, r.max),
        mean: (b.mean * b.n + r.mean) / (b.n + 1), n: b.n + 1}));
    });
    return (s.buckets || []).concat(Array.from(open.values()))
      .map((b) => Object.assign({id: null}, b, {t: b.t + size / 2}));  // drawn at its middle
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
    added.forEach((s) => { series[s] = {points: [], buckets: []}; recent[s] = []; });
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
      series: {
        points: applyChanges(s.points, changes, sensor, inRaw).sort(M.byTime),
        buckets: data.bucket_s ? foldOld(s.buckets, changes, sensor, data) : s.buckets,
      },
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
    const dropBuckets = s.buckets.length > 0 && s.buckets[0].t + size < cutoff;
    if (!dropPoints && !dropBuckets) return s;
    return {
      points: dropPoints ? (first < 0 ? [] : s.points.slice(first)) : s.points,
      buckets: dropBuckets ? s.buckets.filter((b) => b.t + size >= cutoff) : s.buckets,
    };
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
