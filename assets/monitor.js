/*
 * Monitor page, browser side: applies pushed changes without asking the server.
 *
 * The files share one namespace, window.wattsonMonitor (Dash loads assets in alphabetical order,
 * this one first; the others only use the namespace when called, never at load):
 *   monitor.js         formatting, times, the clock shared by the rest (here)
 *   monitor_state.js   `step`: pushed changes folded into the store, per sensor; buckets
 *   monitor_chart.js   `draw`, `slide`, `zoomed`: the chart, one trace group per sensor, thresholds
 *   monitor_cards.js   a card per sensor, the table, the feed-status badge, the CSV link
 *   monitor_socket.js  the WebSocket: inbox, `advance`, reconnect, the view in the URL, the clock
 * Invalid readings (`valid: false`, with a `reason`) are listed in the table only.
 */
(function () {
  "use strict";

  const M = window.wattsonMonitor = window.wattsonMonitor || {};

  // `applied`: the newest change id `advance` has put in the store, so a server snapshot that
  // lands later and older (a user's refresh racing a push) can be told and caught up.
  // `serverNow`/`localAt`: the server's clock in the last frame and when it arrived here.
  M.connection = {attempt: 0, timer: null, serial: 0, applied: 0, serverNow: null, localAt: 0};
  M.STALE_PERIODS = 2.5;  // a sensor with no reading for this many periods is stale

  M.html = (type, children, props) => ({
    type: type, namespace: "dash_html_components", props: Object.assign({children: children}, props),
  });

  M.noUpdate = () => window.dash_clientside.no_update;

  // ---- formatting (times in the browser's zone, or UTC when chosen) ----

  M.inUnit = (celsius, unit) => (unit === "F" ? celsius * 9 / 5 + 32 : celsius);

  function oneDecimal(value) {
    const text = value.toFixed(1);
    return text === "-0.0" ? "0.0" : text;
  }

  M.formatTemperature = (celsius, unit) => oneDecimal(M.inUnit(celsius, unit)) + " °" + unit;

  M.formatDelta = function (before, after, unit) {
    const change = (after - before) * (unit === "F" ? 9 / 5 : 1);
    const text = oneDecimal(Math.abs(change));
    const sign = text === "0.0" ? "±" : (change > 0 ? "+" : "−");
    return sign + text + " °" + unit + " since the previous reading";
  };

  M.formatAge = function (ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 2) return "just now";
    if (s < 120) return s + " s ago";
    if (s < 7200) return Math.floor(s / 60) + " min ago";
    if (s < 172800) return Math.floor(s / 3600) + " h ago";
    return Math.floor(s / 86400) + " days ago";
  };

  // Epoch ms as plotly reads a date: wall-clock text in UTC or in the browser's zone.
  M.displayTime = function (ms, tz) {
    const shift = tz === "utc" ? 0 : new Date(ms).getTimezoneOffset() * 60000;
    return new Date(ms - shift).toISOString().replace("T", " ").replace("Z", "");
  };

  // The browser's zone, asked once: Intl.DateTimeFormat() costs ~0.1 ms a call, and every
  // card, row and redraw names the zone.
  let localZone = null;
  M.zoneName = (tz) => (tz === "utc" ? "UTC"
    : localZone || (localZone = Intl.DateTimeFormat().resolvedOptions().timeZone));

  // ---- readings ----

  // A reading without a readable time sorts before all others (readings.feed.time_order).
  M.millis = (reading) => (reading.taken_at ? Date.parse(reading.taken_at) : -Infinity);

  M.byTime = function (a, b) {
    const ta = M.millis(a), tb = M.millis(b);
    return ta === tb ? a.id - b.id : (ta < tb ? -1 : 1);
  };

  M.isValid = (reading) => reading.valid !== false;

  // A sensor's colour: by its place among every sensor known, so a view change keeps it.
  M.color = (data, sensor) => data.palette[Math.max(0, data.known.indexOf(sensor)) % data.palette.length];

  // ---- the clock: the server's, so a skewed browser clock cannot fake ages or staleness:
  // the server time of the last frame plus the time elapsed here since. ----

  M.serverClock = function (data) {
    const c = M.connection;
    if (c.serverNow === null && data && Number.isFinite(data.now)) {
      c.serverNow = data.now;  // the snapshot's, until the first frame
      c.localAt = Date.now();
    }
    return c.serverNow === null ? null : c.serverNow + Date.now() - c.localAt;
  };

  // Now, for ages and the window: the server's clock when known, else the browser's.
  M.clockNow = function (data) {
    const clock = M.serverClock(data);
    return clock === null ? Date.now() : clock;
  };

  // Is a sensor silent for more than STALE_PERIODS (its newest valid reading, `fresh`)?
  M.isStale = (data, sensor, clock) => {
    const fresh = data.fresh[sensor];
    return fresh === null || fresh === undefined || clock - fresh > M.STALE_PERIODS * data.period_s * 1000;
  };

  // ---- long tables, as plain DOM ----
  // dash_renderer turns each newly drawn component into a store update that every component on
  // the page then checks, so drawing a table of 50 rows x 5 cells as Dash components made a
  // page's load quadratic (~250 of the ~480 components a 30 d page drew before its chart).
  // The rows of such tables are written here instead, as text (never HTML), into a tbody that
  // the layout leaves empty: React does not touch children it did not make.
  // `rows`: [{cells: [text or {text, className}], className}], in order.
  const pendingRows = {};

  function rowElement(row) {
    const tr = document.createElement("tr");
    if (row.className) tr.className = row.className;
    row.cells.forEach((cell) => {
      const td = document.createElement("td");
      const {text, className} = typeof cell === "object" && cell !== null ? cell : {text: cell};
      td.textContent = text;
      if (className) td.className = className;
      tr.appendChild(td);
    });
    return tr;
  }

  // Until the tbody is on the page (a callback can run before its layout is in the DOM).
  function paintRows(tbodyId, triesLeft) {
    const body = document.getElementById(tbodyId);
    if (!body) {
      if (triesLeft > 0) setTimeout(() => paintRows(tbodyId, triesLeft - 1), 50);
      return;
    }
    const rows = pendingRows[tbodyId];
    if (!rows) return;
    delete pendingRows[tbodyId];
    body.replaceChildren(...rows.map(rowElement));
  }

  M.fillRows = function (tbodyId, rows) {
    pendingRows[tbodyId] = rows;
    paintRows(tbodyId, 100);
  };

  // Add to the renderer's object, never replace it: it holds set_props and Patch.
  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.monitor = window.dash_clientside.monitor || {};
})();
