/*
 * What the monitor says in words, drawn in the browser from the store: a card per sensor shown
 * (latest value, change, age, stale mark, range in the window), the table of latest readings,
 * the feed-status badge, the sensor chooser's options and the CSV link of the current view.
 */
(function () {
  "use strict";

  const M = window.wattsonMonitor;
  const html = M.html;
  const OFFLINE_AFTER = 3;  // failed attempts before the badge says offline (retries continue)
  let lastKnown = null;
  const STATUS_COLORS = {live: "success", stale: "secondary", reconnecting: "warning", offline: "danger"};

  function describeRange(cols, unit) {
    if (!cols.t.length) return "no readings";
    const n = cols.n.reduce((sum, count) => sum + count, 0);  // valid readings only
    const count = n === 1 ? "1 reading" : n + " readings";
    const low = cols.min.reduce((a, v) => Math.min(a, v), Infinity);
    const high = cols.max.reduce((a, v) => Math.max(a, v), -Infinity);
    return M.formatTemperature(low, unit) + " to " + M.formatTemperature(high, unit) + " · " + count;
  }

  const when = (r, tz) => M.displayTime(M.millis(r), tz).slice(0, 19);

  function card(data, sensor, unit, tz, clock) {
    const [latest, before] = (data.recent[sensor] || []).filter(M.isValid);
    const stale = M.isStale(data, sensor, clock);
    const name = [html("Span", sensor, {className: "monitor-sensor-name"})];
    if (!data.configured.includes(sensor)) name.push(" · not configured");
    return html("Div", html("Div", [
      html("Div", name, {className: "monitor-label"}),
      html("Div", latest ? M.formatTemperature(latest.temperature_c, unit) : "—", {className: "monitor-latest"}),
      html("Div", before ? M.formatDelta(before.temperature_c, latest.temperature_c, unit) : "",
        {className: "monitor-delta"}),
      html("Div", [
        html("Span", latest ? M.formatAge(clock - M.millis(latest)) : "", {className: "monitor-age fw-semibold"}),
        html("Br"),
        html("Span", latest ? "taken " + when(latest, tz) + " " + M.zoneName(tz) : "no readings yet",
          {className: "monitor-taken-at"}),
      ], {className: "text-muted small mt-1"}),
      // In words, not colour only: no reading for more than STALE_PERIODS sample periods.
      stale ? html("Div", "stale: no reading for over " + M.STALE_PERIODS * data.period_s + " s",
        {className: "monitor-stale"}) : null,
      html("Div", describeRange(M.columns(data, sensor), unit), {className: "monitor-range mt-1"}),
    ].filter(Boolean), {className: "card-body py-2"}), {
      className: "card monitor-sensor-card" + (stale ? " monitor-sensor-stale" : ""),
      "data-sensor": sensor,
      style: {borderLeftColor: M.color(data, sensor)},
    });
  }

  // The status word keeps its meaning: live while any configured sensor's readings arrive.
  function feedWord(open, clock, data) {
    if (!open) return M.connection.attempt > OFFLINE_AFTER ? "offline" : "reconnecting";
    if (clock === null || !data) return "stale";
    return data.configured.some((s) => !M.isStale(data, s, clock)) ? "live" : "stale";
  }

  Object.assign(window.dash_clientside.monitor, {
    renderCards: function (data, unit, tz) {
      if (!data) return M.noUpdate();
      const clock = M.clockNow(data);
      return data.shown.map((s) => card(data, s, unit, tz, clock));
    },

    // The newest readings of every sensor shown, invalid ones with their reason (as plain DOM
    // rows: M.fillRows); the zone in the column head and beside the chart.
    renderTable: function (data, unit, tz) {
      const recent = data ? [].concat(...data.shown.map((s) => data.recent[s] || [])) : [];
      M.fillRows("monitor-table-body", recent.sort(M.byTime).reverse().slice(0, data && data.table_rows)
        .map((r) => ({
          cells: [
            r.taken_at ? when(r, tz) : "—",
            r.sensor_id,
            M.isValid(r) ? {text: M.formatTemperature(r.temperature_c, unit), className: "text-end"}
              : {text: "invalid: " + r.reason, className: "text-end monitor-invalid"},
            {text: String(r.id), className: "text-end text-muted"},
          ],
          className: M.isValid(r) ? "" : "monitor-invalid-row",
        })));
      return ["Taken at (" + M.zoneName(tz) + ")", "Times in " + M.zoneName(tz)];
    },

    // The chart in words, for screen readers: the window, then each sensor's range and latest.
    chartSummary: function (data, unit, tz) {
      if (!data) return M.noUpdate();
      const count = (n, unit) => n + " " + unit + (n === 1 ? "" : "s");
      const w = data.window_s;
      const span = w < 3600 ? count(w / 60, "minute") : w < 172800 ? count(w / 3600, "hour")
        : count(w / 86400, "day");
      const parts = data.shown.map(function (s) {
        const [latest] = (data.recent[s] || []).filter(M.isValid);
        return s + ": " + describeRange(M.columns(data, s), unit)
          + (latest ? ", latest " + M.formatTemperature(latest.temperature_c, unit) : "");
      });
      return "Temperature over the last " + span + " (" + M.zoneName(tz) + "). "
        + (parts.length ? parts.join("; ") + "." : "No sensors.");
    },

    // The chooser's options: every sensor known, redrawn only when one is added.
    sensorOptions: function (data) {
      const known = data ? JSON.stringify(data.known) : null;
      if (known === null || known === lastKnown) return M.noUpdate();
      lastKnown = known;
      return data.known;
    },

    // The view as CSV: the sensors shown over [now - window, now] (readings/export.py).
    downloadHref: function (data) {
      if (!data) return M.noUpdate();
      const now = M.clockNow(data);
      const query = new URLSearchParams();
      data.shown.forEach((s) => query.append("sensor", s));
      query.append("from", new Date(now - data.window_s * 1000).toISOString());
      query.append("to", new Date(now).toISOString());
      return "/api/readings.csv?" + query.toString();
    },

    // The feed-status badge: its word, and the shown sensors that are silent, by name.
    showStatus: function (state, _tick, data) {
      const open = Boolean(state) && state.readyState === WebSocket.OPEN;
      const clock = M.serverClock(data);
      const word = feedWord(open, clock, data);
      const silent = open && data && clock !== null ? data.shown.filter((s) => M.isStale(data, s, clock)) : [];
      const text = silent.length ? (word === "live" ? "live · stale: " : "stale: ") + silent.join(", ") : word;
      return [text, STATUS_COLORS[word]];
    },
  });
})();
