/*
 * Thresholds and alerts on the monitor page, browser side (pages/monitor_alerts.py).
 *
 * The /ws/alerts socket (dash-extensions) sends a snapshot {event: "snapshot", open, log,
 * thresholds} on every (re)connect, then {event: "started" | "ended", alert} and
 * {event: "thresholds", thresholds}. Frames wait in an inbox in arrival order (Dash coalesces
 * rapid updates of the component's `message`); `advance` folds them into the alerts-data store,
 * `render` draws the banner and the log. A snapshot replaces everything, so an end missed while
 * the socket was down cannot leave a banner up.
 *
 * For the chart (any script may listen): window.wattsonThresholds = {sensor: {low_c, high_c}}
 * (null for an absent limit), and a "wattson:thresholds" event on window at load and whenever
 * the bands change (saved on this page or, pushed, on any other).
 */
(function () {
  "use strict";

  const LOG_ROWS = 50;  // pages/monitor_alerts.py LOG_ROWS
  const socket = {attempt: 0, timer: null, serial: 0};
  let published = null;  // the bands last put on window, as JSON text

  // ---- formatting ----

  // monitor.js's helpers, looked up when called: Dash loads this file first.
  const M = () => window.wattsonMonitor;

  // Times as the monitor writes them ("YYYY-MM-DD HH:MM:SS" in the browser's zone or UTC).
  function formatTime(iso, tz) {
    return M().displayTime(Date.parse(iso), tz).slice(0, 19);
  }

  function zoneName(tz) {
    return M().zoneName(tz);
  }

  // A limit in the page's unit, as the form shows it (at most two decimals), "" for none.
  function limitText(celsius, unit) {
    if (celsius === null || celsius === undefined) return "";
    return String(Math.round(M().inUnit(celsius, unit) * 100) / 100);
  }

  // ---- state: pure functions of the store and a frame ----

  const newestFirst = (a, b) => (a.started_at === b.started_at ? b.id - a.id
    : (a.started_at < b.started_at ? 1 : -1));

  function upsert(list, alert) {
    return list.filter((a) => a.id !== alert.id).concat([alert]);
  }

  // An alert that has ended stays ended: a start delivered after its end changes nothing.
  function known(state, alert) {
    const before = state.log.concat(state.open).find((a) => a.id === alert.id);
    return before && before.ended_at && !alert.ended_at ? before : alert;
  }

  function applyFrame(state, frame) {
    if (frame.event === "snapshot") {
      return {open: frame.open, log: frame.log, thresholds: frame.thresholds};
    }
    if (frame.event === "thresholds") return Object.assign({}, state, {thresholds: frame.thresholds});
    if (frame.event !== "started" && frame.event !== "ended") return state;
    const alert = known(state, frame.alert);
    const open = state.open.filter((a) => a.id !== alert.id);
    return Object.assign({}, state, {
      open: alert.ended_at ? open : upsert(open, alert).sort((a, b) => -newestFirst(a, b)),
      log: upsert(state.log, alert).sort(newestFirst).slice(0, LOG_ROWS),
    });
  }

  function parseFrame(text) {
    try {
      const frame = JSON.parse(text);
      if (frame && typeof frame.event === "string") return frame;
    } catch (error) { /* fall through */ }
    console.warn("alerts: ignoring a malformed frame", text);
    return null;
  }

  // ---- drawing ----

  function banner(alert, tz) {
    const html = M().html;
    return html("Div", [
      html("Strong", alert.sensor_id + " · " + alert.kind), ": " + alert.details,
      html("Span", " · since " + formatTime(alert.started_at, tz) + " " + zoneName(tz),
           {className: "text-nowrap"}),
    ], {role: "alert", className: "alert alert-" + (alert.kind === "stale" ? "warning" : "danger")
        + " py-2 mb-2 shadow-sm", id: "alerts-banner-" + alert.id});
  }

  // A row of the log, for monitor.js `fillRows` (plain DOM: a log of 50 alerts as Dash
  // components would be 250 of them, and the page's load quadratic in that count).
  function logRow(alert, tz) {
    return {
      cells: [alert.sensor_id, alert.kind, formatTime(alert.started_at, tz),
        alert.ended_at ? formatTime(alert.ended_at, tz) : "open",
        {text: alert.details || "", className: "small"}],
      className: alert.ended_at ? "" : "fw-semibold",
    };
  }

  function socketUrl() {
    socket.serial += 1;  // the component only reconnects when its url changes
    return M().socketUrl("/ws/alerts?n=" + socket.serial);
  }

  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.alerts = {
    applyFrame: applyFrame,
    formatTime: formatTime,
    limitText: limitText,

    advance: function (_message, data) {
      // monitor_socket.js keeps the socket's frames (Dash loads it after this file).
      const frames = window.wattsonMonitor.inbox("/ws/alerts").splice(0).map(parseFrame).filter(Boolean);
      const next = frames.reduce(applyFrame, data || {open: [], log: [], thresholds: {}});
      return next === data ? M().noUpdate() : next;
    },

    render: function (data, tz) {
      const zone = " (" + zoneName(tz) + ")";
      window.wattsonMonitor.fillRows("alerts-log-body", ((data && data.log) || []).map((a) => logRow(a, tz)));
      return [
        ((data && data.open) || []).map((a) => banner(a, tz)),
        "Started" + zone,
        "Ended" + zone,
      ];
    },

    // The chart's contract: the global, then the event; only when the bands changed.
    publishThresholds: function (data) {
      const text = JSON.stringify((data && data.thresholds) || {});
      if (text === published) return;
      published = text;
      window.wattsonThresholds = JSON.parse(text);
      window.dispatchEvent(new CustomEvent("wattson:thresholds"));
    },

    fillBand: function (sensor, unit, data) {
      const band = (data && data.thresholds && data.thresholds[sensor]) || {};
      const label = "(°" + unit + ")";
      return [limitText(band.low_c, unit), limitText(band.high_c, unit), label, label];
    },

    // The first call opens the socket; a closed one is re-opened with backoff.
    watchSocket: function (state) {
      if (!state) return socketUrl();
      return M().keepOpen(state, socket,
        () => window.dash_clientside.set_props("alerts-ws", {url: socketUrl()}));
    },
  };
})();
