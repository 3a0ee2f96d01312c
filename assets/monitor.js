/*
 * Monitor page, browser side: applies pushed changes without asking the server.
 *
 * The WebSocket (dash-extensions) delivers frames {prev, last, changes, now}, which also wait in
 * an inbox in arrival order; `advance` folds them into the monitor-data store and patches the
 * chart; `render` and `showAge` draw the rest; `watchSocket` reconnects with backoff, carrying the
 * id of the last change applied; `showStatus` says whether data is arriving. A one-second timer
 * drives the age text, the status, and drops points that leave the window -- in the browser, no
 * request. Invalid readings (`valid: false`, with a `reason`) are listed in the table only.
 */
(function () {
  "use strict";

  const BACKOFF_FIRST_MS = 500;
  const BACKOFF_MAX_MS = 10000;
  const OFFLINE_AFTER = 3;  // failed attempts before the badge says offline (retries continue)

  // `applied`: the newest change id `advance` has put in the store, so a server snapshot that
  // lands later and older (a user's refresh racing a push) can be told and caught up.
  // `serverNow`/`localAt`: the server's clock in the last frame and when it arrived here.
  const connection = {attempt: 0, timer: null, serial: 0, applied: 0, serverNow: null, localAt: 0};
  const STALE_PERIODS = 2.5;  // no configured sensor's reading for this many periods: stale

  const html = (type, children, props) => ({
    type: type, namespace: "dash_html_components", props: Object.assign({children: children}, props),
  });

  // ---- formatting (times in the browser's zone, or UTC when chosen) ----

  function inUnit(celsius, unit) {
    return unit === "F" ? celsius * 9 / 5 + 32 : celsius;
  }

  function oneDecimal(value) {
    const text = value.toFixed(1);
    return text === "-0.0" ? "0.0" : text;
  }

  function formatTemperature(celsius, unit) {
    return oneDecimal(inUnit(celsius, unit)) + " °" + unit;
  }

  function formatDelta(before, after, unit) {
    const change = (after - before) * (unit === "F" ? 9 / 5 : 1);
    const text = oneDecimal(Math.abs(change));
    const sign = text === "0.0" ? "±" : (change > 0 ? "+" : "−");
    return sign + text + " °" + unit + " since the previous reading";
  }

  function formatAge(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 2) return "just now";
    if (s < 120) return s + " s ago";
    if (s < 7200) return Math.floor(s / 60) + " min ago";
    if (s < 172800) return Math.floor(s / 3600) + " h ago";
    return Math.floor(s / 86400) + " days ago";
  }

  function describeRange(rows, unit) {
    if (!rows.length) return "no readings";
    const n = rows.reduce((sum, r) => sum + r.n, 0);  // valid readings only: see step
    const count = n === 1 ? "1 reading" : n + " readings";
    return formatTemperature(Math.min(...rows.map((r) => r.min)), unit) + " to "
      + formatTemperature(Math.max(...rows.map((r) => r.max)), unit) + " · " + count;
  }

  // ---- state: pure functions of the store and a list of changes ----

  // A reading without a readable time sorts before all others (readings.feed.time_order).
  function millis(reading) {
    return reading.taken_at ? Date.parse(reading.taken_at) : -Infinity;
  }

  function byTime(a, b) {
    const ta = millis(a), tb = millis(b);
    return ta === tb ? a.id - b.id : (ta < tb ? -1 : 1);
  }

  const isValid = (reading) => reading.valid !== false;
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

  // The store's newest reading time of a configured sensor in ms: a server snapshot has it as
  // text (`freshest`), the browser keeps it up to date as `freshest_ms`.
  function freshestMs(data) {
    if (data.freshest_ms !== undefined) return data.freshest_ms;
    return data.freshest ? Date.parse(data.freshest) : null;
  }

  // The newest valid reading time (ms) of a configured sensor, given the one known so far.
  function freshest(known, changes, sensors) {
    let newest = known;
    changes.forEach((change) => {
      const r = change.reading;
      if (change.op !== "DELETE" && isValid(r) && sensors.includes(r.sensor_id)) {
        newest = Math.max(newest === null ? -Infinity : newest, millis(r));
      }
    });
    return newest;
  }

  // ---- long windows: buckets (see readings/buckets.py for the design) ----

  const rawFrom = (data) => (data.bucket_s ? data.raw_from : -Infinity);

  // A change to a row older than the raw readings: an INSERT is added to its bucket exactly, an
  // UPDATE or DELETE marks the bucket approximate (the frame does not carry the old value).
  function foldOld(buckets, changes, data) {
    const size = data.bucket_s * 1000;
    const byStart = new Map(buckets.map((b) => [b.t, b]));
    let changed = false;
    changes.forEach((change) => {
      const r = change.reading;
      const t = millis(r);
      if (r.sensor_id !== data.sensor || !(t < data.raw_from)) return;
      const start = Math.floor(t / size) * size;
      const old = byStart.get(start);
      if (change.op === "INSERT" && isValid(r)) {
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

  // The chart's rows, oldest first: {t, min, mean, max, n, id}; one per reading in a raw window,
  // one per bucket in a long one (the open bucket's from the raw readings, here).
  function series(data) {
    const rows = data.points.map((p) => ({
      t: millis(p), min: p.temperature_c, mean: p.temperature_c, max: p.temperature_c, n: 1, id: p.id}));
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
    return (data.buckets || []).concat(Array.from(open.values()))
      .map((b) => Object.assign({id: null}, b, {t: b.t + size / 2}));  // drawn at its middle
  }

  function step(data, changes, now) {
    let points = data.points;
    let recent = data.recent;
    let buckets = data.buckets || [];
    let fresh = freshestMs(data);
    if (changes.length) {
      const inRaw = (r) => isValid(r) && millis(r) >= rawFrom(data);
      points = applyChanges(points, changes, data.sensor, inRaw).sort(byTime);
      if (data.bucket_s) buckets = foldOld(buckets, changes, data);
      recent = applyChanges(recent, changes, data.sensor, anyReading).sort(byTime).reverse()
        .slice(0, data.recent_max);
      fresh = freshest(fresh, changes, data.sensors || []);
    }
    const cutoff = now - data.window_s * 1000;
    const first = points.findIndex((p) => millis(p) >= cutoff);
    if (first !== 0) points = first < 0 ? [] : points.slice(first);
    const size = (data.bucket_s || 0) * 1000;
    if (buckets.length && buckets[0].t + size < cutoff) buckets = buckets.filter((b) => b.t + size >= cutoff);
    return Object.assign({}, data, {points: points, recent: recent, buckets: buckets, freshest_ms: fresh});
  }

  // ---- status: is data arriving? Judged by the server's clock, so a skewed browser clock
  // cannot fake it: the server time of the last frame plus the time elapsed here since. ----

  function serverClock(data) {
    if (connection.serverNow === null && data && Number.isFinite(data.now)) {
      connection.serverNow = data.now;  // the snapshot's, until the first frame
      connection.localAt = Date.now();
    }
    return connection.serverNow === null ? null : connection.serverNow + Date.now() - connection.localAt;
  }

  // Now, for ages and the window: the server's clock when known, else the browser's.
  function clockNow(data) {
    const clock = serverClock(data);
    return clock === null ? Date.now() : clock;
  }

  function feedStatus(open, attempts, clock, data) {
    if (!open) return attempts > OFFLINE_AFTER ? "offline" : "reconnecting";
    const fresh = data ? freshestMs(data) : null;
    if (clock === null || fresh === null) return "stale";
    return clock - fresh > STALE_PERIODS * data.period_s * 1000 ? "stale" : "live";
  }

  const STATUS_COLORS = {live: "success", stale: "secondary", reconnecting: "warning", offline: "danger"};

  // ---- the chart: drawn here from the store, in the chosen unit and time zone ----

  const GAP_PERIODS = 2.5;  // a longer silence between two readings breaks the line
  const MIN_SPAN_C = 2;  // the y-axis shows at least this many degrees C: noise looks like noise

  // Epoch ms as plotly reads a date: wall-clock text in UTC or in the browser's zone.
  function displayTime(ms, tz) {
    const shift = tz === "utc" ? 0 : new Date(ms).getTimezoneOffset() * 60000;
    return new Date(ms - shift).toISOString().replace("T", " ").replace("Z", "");
  }

  // x, y (the `field` of each row) and ids of a trace; a null y between two rows further apart
  // than the gap, so plotly breaks the line there.
  function traceColumns(rows, field, unit, tz, gapMs) {
    const x = [], y = [], ids = [];
    rows.forEach((r, i) => {
      if (i > 0 && r.t - rows[i - 1].t > gapMs) {
        x.push(displayTime((r.t + rows[i - 1].t) / 2, tz));
        y.push(null);
        ids.push(null);
      }
      x.push(displayTime(r.t, tz));
      y.push(inUnit(r[field], unit));
      ids.push(r.id);
    });
    return {x: x, y: y, customdata: ids};
  }

  // Centred on the data, padded out to MIN_SPAN_C (in the display unit).
  function yRange(rows, unit) {
    const low = inUnit(Math.min(...rows.map((r) => r.min)), unit);
    const high = inUnit(Math.max(...rows.map((r) => r.max)), unit);
    const span = Math.max(high - low, inUnit(MIN_SPAN_C, unit) - inUnit(0, unit));
    const pad = (span - (high - low)) / 2 + span * 0.05;
    return [low - pad, high + pad];
  }

  function xRange(data, tz) {
    const now = clockNow(data);
    return [displayTime(now - data.window_s * 1000, tz), displayTime(now, tz)];
  }

  function zoneName(tz) {
    return tz === "utc" ? "UTC" : Intl.DateTimeFormat().resolvedOptions().timeZone;
  }

  function drawPatch(data, unit, tz) {
    const patch = new window.dash_clientside.Patch();
    const rows = series(data);
    const empty = rows.length === 0;  // see readings.figures.live_figure
    patch.assign(["layout", "annotations", 0, "visible"], empty);
    patch.assign(["layout", "xaxis", "visible"], !empty);
    patch.assign(["layout", "yaxis", "visible"], !empty);
    patch.assign(["layout", "xaxis", "range"], xRange(data, tz));
    patch.assign(["layout", "xaxis", "autorange"], false);
    patch.assign(["layout", "xaxis", "title", "text"], "time (" + zoneName(tz) + ")");
    if (!empty) {
      patch.assign(["layout", "yaxis", "range"], yRange(rows, unit));
      patch.assign(["layout", "yaxis", "autorange"], false);
    }
    // Buckets are contiguous: only a missing bucket (or more than the gap) breaks the line.
    const gapMs = Math.max(GAP_PERIODS * data.period_s, 1.5 * (data.bucket_s || 0)) * 1000;
    const band = data.bucket_s ? rows : [];
    // trace 0 the line (readings or bucket means), 1 and 2 the bucket's max and min band
    ["mean", "max", "min"].forEach((field, trace) => {
      const columns = traceColumns(trace ? band : rows, field, unit, tz, gapMs);
      Object.keys(columns).forEach((k) => patch.assign(["data", trace, k], columns[k]));
    });
    patch.assign(["data", 0, "hovertemplate"], "%{x|%Y-%m-%d %H:%M:%S} " + zoneName(tz)
      + "<br><b>%{y:.1f} °" + unit + "</b>" + (data.bucket_s ? " (mean)" : "") + "<extra></extra>");
    return patch.build();
  }

  // ---- the socket ----

  function socketUrl(since) {
    const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    // The serial makes each URL new: the component only reconnects when its url changes.
    connection.serial += 1;
    connection.applied = since;
    return scheme + window.location.host + "/ws/readings?since=" + since + "&n=" + connection.serial;
  }

  function reconnect(since) {
    window.dash_clientside.set_props("monitor-ws", {url: socketUrl(since)});
  }

  function parseFrame(text) {
    try {
      const frame = JSON.parse(text);
      if (Number.isInteger(frame.prev) && Number.isInteger(frame.last) && Array.isArray(frame.changes)) {
        if (Number.isFinite(frame.now)) {
          connection.serverNow = frame.now;
          connection.localAt = Date.now();
        }
        return frame;
      }
    } catch (error) { /* fall through */ }
    console.warn("monitor: ignoring a malformed frame", text);
    return null;
  }

  // Every frame of the readings socket, in arrival order. Dash coalesces rapid updates of the
  // component's `message` prop (a burst of writes would otherwise cost a reconnect per lost
  // frame), so `advance` drains this inbox and the prop is only the signal that frames arrived.
  const inbox = [];
  const NativeWebSocket = window.WebSocket;
  window.WebSocket = class extends NativeWebSocket {
    constructor(url, protocols) {
      super(url, protocols);
      if (String(url).includes("/ws/readings")) {
        inbox.length = 0;  // a new socket replays from the last change applied
        this.addEventListener("message", (event) => inbox.push(event.data));
      }
    }
  };

  // The changes of the waiting frames that follow `last`, and the new `last`. A frame whose
  // `prev` is ahead of it means one went missing: replay from the log. A resync frame means the
  // server could not serve `last` (its database was reset): ask for a fresh snapshot, which
  // `resync` below then replays on from.
  function drain(last) {
    const changes = [];
    const frames = inbox.splice(0).map(parseFrame).filter(Boolean);
    for (const frame of frames) {
      if (frame.resync) {
        window.dash_clientside.set_props("monitor-resync", {data: Date.now()});
        continue;
      }
      if (frame.prev > last) {
        reconnect(last);
        break;
      }
      frame.changes.forEach((c) => { if (c.id > last) changes.push(c); });
      last = Math.max(last, frame.last);
    }
    return {changes: changes, last: last};
  }

  const noUpdate = () => window.dash_clientside.no_update;

  // ---- the view in the URL and in the browser's storage ----

  const PREFS_KEY = "monitor-prefs";  // where dcc.Store(id="monitor-prefs", local) keeps it
  let prefsRestored = false;

  function storedView() {
    try {
      return JSON.parse(window.localStorage.getItem(PREFS_KEY));
    } catch (error) {
      return null;  // storage off or unreadable: the defaults
    }
  }

  // A bare "/" opens the last view chosen here; a link's own view wins. Only once per load.
  // True when it changed a choice (whose callback then writes the URL).
  function restoreView(current) {
    if (prefsRestored) return false;
    prefsRestored = true;
    const view = storedView();
    if (window.location.search || !view) return false;
    const known = Array.from(document.querySelectorAll("#monitor-sensor option"), (o) => o.value);
    if (!known.includes(view.sensor)) delete view.sensor;
    const changed = ["sensor", "window", "unit", "tz"].filter(
      (key) => view[key] && view[key] !== current[key]);
    changed.forEach((key) => window.dash_clientside.set_props("monitor-" + key, {value: view[key]}));
    return changed.length > 0;
  }

  function viewQuery(view) {
    const query = new URLSearchParams();
    if (view.sensor) query.append("sensor", view.sensor);
    ["window", "unit", "tz"].forEach((key) => query.append(key, view[key]));
    return "?" + query.toString();
  }

  // Add to the renderer's object, never replace it: it holds set_props and Patch.
  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.monitor = {
    // A frame or a clock tick: fold changes into the store, patch the chart.
    advance: function (_message, _tick, data) {
      if (!data) return noUpdate();
      const {changes, last} = drain(data.last);
      connection.applied = last;
      const next = step(data, changes, clockNow(data));
      next.last = last;
      if (next.points === data.points && next.recent === data.recent && last === data.last
          && next.freshest_ms === data.freshest_ms) {
        return noUpdate();
      }
      return next;
    },

    // The chart, whenever the store, the unit or the zone changes.
    draw: function (data, unit, tz) {
      return data ? drawPatch(data, unit, tz) : noUpdate();
    },

    // The x-axis moves with time, by the server's clock: [now - window, now].
    slide: function (_tick, data, tz) {
      if (!data) return noUpdate();
      const patch = new window.dash_clientside.Patch();
      patch.assign(["layout", "xaxis", "range"], xRange(data, tz));
      return patch.build();
    },

    // A snapshot older than what was already applied: the socket will not send those changes
    // again, so replay them from the log.
    resync: function (data) {
      if (data && data.last < connection.applied) reconnect(data.last);
    },

    render: function (data, unit, tz) {
      const when = (r) => displayTime(millis(r), tz).slice(0, 19);
      const recent = (data && data.recent) || [];
      const [latest, before] = recent.filter(isValid);
      const rows = recent.slice(0, data && data.table_rows).map((r) => html("Tr", [
        html("Td", r.taken_at ? when(r) : "—"),
        isValid(r)
          ? html("Td", formatTemperature(r.temperature_c, unit), {className: "text-end"})
          : html("Td", "invalid: " + r.reason, {className: "text-end monitor-invalid"}),
        html("Td", String(r.id), {className: "text-end text-muted"}),
      ], isValid(r) ? {} : {className: "monitor-invalid-row"}));
      return [
        (data && data.sensor) || "no sensor",
        latest ? formatTemperature(latest.temperature_c, unit) : "—",
        before ? formatDelta(before.temperature_c, latest.temperature_c, unit) : "",
        latest ? "taken " + when(latest) + " " + zoneName(tz) : "no readings yet",
        describeRange(data ? series(data) : [], unit),
        rows,
        "Taken at (" + zoneName(tz) + ")",
        "Times in " + zoneName(tz),
      ];
    },

    showAge: function (_tick, data) {
      const latest = data && data.recent && data.recent.find(isValid);
      return latest ? formatAge(clockNow(data) - millis(latest)) : "";
    },

    // Backoff from the socket's readyState; the first call opens the socket.
    watchSocket: function (state, data) {
      const since = data ? data.last : 0;
      if (!state) return socketUrl(since);
      if (state.readyState === WebSocket.OPEN) {
        connection.attempt = 0;
        return noUpdate();
      }
      if (state.readyState !== WebSocket.CLOSED || connection.timer) return noUpdate();
      const delay = Math.min(BACKOFF_FIRST_MS * 2 ** connection.attempt, BACKOFF_MAX_MS);
      connection.attempt += 1;
      connection.timer = setTimeout(() => {
        connection.timer = null;
        reconnect(since);
      }, delay);
      return noUpdate();
    },

    // The view into the URL (no reload) and the browser's storage.
    remember: function (sensor, windowName, unit, tz) {
      const view = {sensor: sensor, window: windowName, unit: unit, tz: tz};
      if (restoreView(view)) return noUpdate();
      window.history.replaceState(window.history.state, "", window.location.pathname + viewQuery(view));
      return view;
    },

    // The feed-status badge: on every socket state, clock tick and store change.
    showStatus: function (state, _tick, data) {
      const open = Boolean(state) && state.readyState === WebSocket.OPEN;
      const status = feedStatus(open, connection.attempt, serverClock(data), data);
      return [status, STATUS_COLORS[status]];
    },
  };

  // The clock: only while the monitor page is on screen.
  setInterval(function () {
    if (document.getElementById("monitor-age") && window.dash_clientside.set_props) {
      window.dash_clientside.set_props("monitor-clock", {data: Date.now()});
    }
  }, 1000);
})();
