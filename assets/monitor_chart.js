/*
 * The monitor's chart, drawn in the browser from the store in the chosen unit and zone: per
 * sensor shown, a line (readings, or bucket means) and a long window's min / max band, in one
 * legend group (readings/figures.py has the shape); the thresholds other pages announce
 * (window.wattsonThresholds, event "wattson:thresholds") as bands; an x-axis that moves with
 * time unless the user has zoomed or panned.
 */
(function () {
  "use strict";

  const M = window.wattsonMonitor;
  const GAP_PERIODS = 2.5;  // a longer silence between two readings breaks the line
  const MIN_SPAN_C = 2;  // the y-axis shows at least this many degrees C: noise looks like noise

  // The user's zoom: {key} while the x-axis is theirs (see `zoomed`), for one window and unit.
  let zoom = null;
  const zoomKey = (data, unit) => data.window_s + "|" + unit;
  const isZoomed = (data, unit) => zoom !== null && zoom.key === zoomKey(data, unit);

  // The rows of M.columns as drawn: x (display times), ids, and `row` per drawn point (the
  // column index, or -1 for a break: a null between two rows further apart than the gap, so
  // plotly breaks the line there). Shared by a sensor's three traces: formatting every time
  // once, not three times, is most of what the browser spends on a long window's x values.
  function drawnRows(cols, tz, gapMs) {
    const x = [], ids = [], row = [];
    cols.t.forEach((t, i) => {
      if (i > 0 && t - cols.t[i - 1] > gapMs) {
        x.push(M.displayTime((t + cols.t[i - 1]) / 2, tz));
        ids.push(null);
        row.push(-1);
      }
      x.push(M.displayTime(t, tz));
      ids.push(cols.id[i]);
      row.push(i);
    });
    return {x: x, customdata: ids, row: row};
  }

  // A trace's x, y (column `field`, in the unit) and ids.
  function traceColumns(cols, rows, field, unit) {
    const y = rows.row.map((i) => (i < 0 ? null : M.inUnit(cols[field][i], unit)));
    return {x: rows.x, y: y, customdata: rows.customdata};
  }

  function translucent(color, alpha) {
    const [r, g, b] = [1, 3, 5].map((i) => parseInt(color.slice(i, i + 2), 16));
    return "rgba(" + r + ", " + g + ", " + b + ", " + alpha + ")";
  }

  // The sensors the user hid with the legend, as plotly holds them now: our redraws replace
  // the traces, so their `visible` is carried over here (and the band follows its line).
  function hiddenSensors() {
    const graph = document.querySelector("#monitor-graph .js-plotly-plot");
    const traces = (graph && graph.data) || [];
    return new Set(traces.filter((t) => t.visible === "legendonly" && t.showlegend !== false)
      .map((t) => t.name));
  }

  // A sensor's three traces: the line, then the band's max and min (filled between).
  function sensorTraces(data, sensor, unit, tz, hidden) {
    const cols = M.columns(data, sensor);
    const color = M.color(data, sensor);
    // Buckets are contiguous: only a missing bucket (or more than the gap) breaks the line.
    const gapMs = Math.max(GAP_PERIODS * data.period_s, 1.5 * (data.bucket_s || 0)) * 1000;
    const rows = drawnRows(cols, tz, gapMs);
    const band = data.bucket_s ? rows : {x: [], customdata: [], row: []};
    const common = {type: "scatter", name: sensor, legendgroup: sensor, connectgaps: false,
      visible: hidden.has(sensor) ? "legendonly" : true};
    const line = Object.assign({}, common, traceColumns(cols, rows, "mean", unit), {
      // A marker per reading; a bucketed window's ~2,000 means are a line (markers there blur
      // into a band and cost plotly most of its drawing time).
      mode: data.bucket_s ? "lines" : "lines+markers", line: {width: 2, color: color}, marker: {size: 6},
      hovertemplate: sensor + " %{x|%Y-%m-%d %H:%M:%S} " + M.zoneName(tz) + "<br><b>%{y:.1f} °" + unit
        + "</b>" + (data.bucket_s ? " (mean)" : "") + "<extra></extra>"});
    const edge = Object.assign({}, common, {mode: "lines", line: {width: 0, color: color},
      hoverinfo: "skip", showlegend: false});
    // A uid per trace, so plotly keeps what the legend hid across redraws (uirevision).
    return {cols: cols, traces: [
      Object.assign(line, {uid: sensor + "/line"}),
      Object.assign({}, edge, traceColumns(cols, band, "max", unit), {uid: sensor + "/max"}),
      Object.assign({}, edge, traceColumns(cols, band, "min", unit),
        {fill: "tonexty", fillcolor: translucent(color, 0.18), uid: sensor + "/min"}),
    ]};
  }

  // The thresholds the chart was last drawn with, as text: the page announces them once it has
  // them, often before the chart's first draw, and a redraw that changes nothing costs a
  // long window ~50 ms or more of the page's load.
  const announced = () => JSON.stringify(window.wattsonThresholds || {});
  let drawnWith = null;

  // The announced limits of a shown sensor, in C: [low, high], either null; null without any.
  function limits(sensor) {
    const all = window.wattsonThresholds || {};
    const t = all[sensor];
    if (!t) return null;
    const pick = (v) => (typeof v === "number" && Number.isFinite(v) ? v : null);
    const low = pick(t.low_c), high = pick(t.high_c);
    return low === null && high === null ? null : [low, high];
  }

  // A band between both limits across the x-range, or a dashed line at the only one.
  function thresholdShape(data, sensor, unit) {
    const both = limits(sensor);
    if (!both) return null;
    const [low, high] = both.map((v) => (v === null ? null : M.inUnit(v, unit)));
    const color = M.color(data, sensor);
    const across = {xref: "paper", x0: 0, x1: 1, yref: "y", layer: "below", name: sensor + " thresholds"};
    if (low !== null && high !== null) {
      return Object.assign(across, {type: "rect", y0: low, y1: high, fillcolor: translucent(color, 0.1),
        line: {width: 1, color: translucent(color, 0.5)}});
    }
    const at = low === null ? high : low;
    return Object.assign(across, {type: "line", y0: at, y1: at, line: {width: 1.5, color: color, dash: "dash"}});
  }

  // Centred on the data and the thresholds, padded out to MIN_SPAN_C (in the display unit).
  function yRange(values, unit) {
    const low = values.reduce((a, v) => Math.min(a, v), Infinity);
    const high = values.reduce((a, v) => Math.max(a, v), -Infinity);
    const span = Math.max(high - low, M.inUnit(MIN_SPAN_C, unit) - M.inUnit(0, unit));
    const pad = (span - (high - low)) / 2 + span * 0.05;
    return [low - pad, high + pad];
  }

  // The x-axis's end as last drawn (server clock, ms), and the smallest step worth a redraw:
  // a 2,000th of the window, under a pixel of the plot. A 15 min axis moves every second; a
  // 30 d one every ~20 min, not with a full Plotly redraw of 13,000 points each second.
  let drawnEnd = -Infinity;
  const SLIDE_PARTS = 2000;

  function xRange(data, tz) {
    const now = M.clockNow(data);
    drawnEnd = now;
    return [M.displayTime(now - data.window_s * 1000, tz), M.displayTime(now, tz)];
  }

  function drawPatch(data, unit, tz) {
    const patch = new window.dash_clientside.Patch();
    const hidden = hiddenSensors();
    const drawn = data.shown.map((s) => sensorTraces(data, s, unit, tz, hidden));
    const values = [];
    drawn.forEach((d) => d.cols.min.concat(d.cols.max).forEach((v) => values.push(M.inUnit(v, unit))));
    const empty = values.length === 0;  // see readings.figures.live_figure
    drawnWith = announced();
    const shapes = data.shown.map((s) => thresholdShape(data, s, unit)).filter(Boolean);
    shapes.forEach((s) => values.push(s.y0, s.y1));
    patch.assign(["data"], [].concat(...drawn.map((d) => d.traces)));
    patch.assign(["layout", "shapes"], shapes);
    patch.assign(["layout", "annotations", 0, "visible"], empty);
    patch.assign(["layout", "xaxis", "visible"], !empty);
    patch.assign(["layout", "yaxis", "visible"], !empty);
    patch.assign(["layout", "xaxis", "title", "text"], "time (" + M.zoneName(tz) + ")");
    patch.assign(["layout", "yaxis", "title", "text"], "°" + unit);
    if (isZoomed(data, unit)) return patch.build();  // the axes are the user's
    zoom = null;
    patch.assign(["layout", "xaxis", "range"], xRange(data, tz));
    patch.assign(["layout", "xaxis", "autorange"], false);
    if (values.length) {
      patch.assign(["layout", "yaxis", "range"], yRange(values, unit));
      patch.assign(["layout", "yaxis", "autorange"], false);
    }
    return patch.build();
  }

  // Redraw when another page part announces new thresholds (the contract with the alerts page).
  window.addEventListener("wattson:thresholds", function () {
    if (announced() === drawnWith) return;
    if (document.getElementById("monitor-graph") && window.dash_clientside.set_props) {
      window.dash_clientside.set_props("monitor-thresholds", {data: Date.now()});
    }
  });

  Object.assign(window.dash_clientside.monitor, {
    // The chart, whenever the store, the unit, the zone or the thresholds change.
    draw: function (data, unit, tz) {
      return data ? drawPatch(data, unit, tz) : M.noUpdate();
    },

    // The x-axis moves with time, by the server's clock: [now - window, now]; not while zoomed.
    slide: function (_tick, data, tz, unit) {
      if (!data || isZoomed(data, unit)) return M.noUpdate();
      if (Math.abs(M.clockNow(data) - drawnEnd) < data.window_s * 1000 / SLIDE_PARTS) return M.noUpdate();
      const patch = new window.dash_clientside.Patch();
      patch.assign(["layout", "xaxis", "range"], xRange(data, tz));
      return patch.build();
    },

    // plotly reports a user's zoom or pan with the x-range it chose (our own redraws report
    // nothing); a double-click resets to autorange: the chart slides again, redrawn at once.
    zoomed: function (relayout, data, unit, tz) {
      if (!relayout || !data) return M.noUpdate();
      if (relayout["xaxis.range[0]"] !== undefined || relayout["xaxis.range"] !== undefined) {
        zoom = {key: zoomKey(data, unit)};
        return M.noUpdate();
      }
      if (relayout["xaxis.autorange"]) {
        zoom = null;
        return drawPatch(data, unit, tz);
      }
      return M.noUpdate();
    },
  });
})();
