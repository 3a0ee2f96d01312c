/*
 * Monitor page, browser side: applies pushed changes without asking the server.
 *
 * The WebSocket (dash-extensions) delivers frames {prev, last, changes}, which also wait in an
 * inbox in arrival order; `advance` folds them into the monitor-data store and patches the chart; `render` and `showAge` draw the rest; `watchSocket`
 * reconnects with backoff, carrying the id of the last change applied. A one-second timer drives
 * the age text and drops points that leave the window -- in the browser, no request.
 */
(function () {
  "use strict";

  const BACKOFF_FIRST_MS = 500;
  const BACKOFF_MAX_MS = 10000;
  const OFFLINE_AFTER = 3;  // failed attempts before the badge says offline (retries continue)
  const MAX_FRONT_DELETES = 20;  // beyond this a full reassignment is cheaper than many deletes

  // `applied`: the newest change id `advance` has put in the store, so a server snapshot that
  // lands later and older (a user's refresh racing a push) can be told and caught up.
  const connection = {attempt: 0, timer: null, serial: 0, applied: 0};

  const html = (type, children, props) => ({
    type: type, namespace: "dash_html_components", props: Object.assign({children: children}, props),
  });

  // ---- formatting (the page shows UTC throughout, like the chart axis) ----

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

  function describeRange(points, unit) {
    if (!points.length) return "no readings";
    const values = points.map((p) => p.temperature_c);
    const count = points.length === 1 ? "1 reading" : points.length + " readings";
    return formatTemperature(Math.min(...values), unit) + " to "
      + formatTemperature(Math.max(...values), unit) + " · " + count;
  }

  function plotlyTime(takenAt) {  // same rule as readings.figures.plotly_time
    return takenAt.replace("Z", "").replace("T", " ");
  }

  // ---- state: pure functions of the store and a list of changes ----

  function millis(reading) {
    return Date.parse(reading.taken_at);
  }

  function byTime(a, b) {
    return (millis(a) - millis(b)) || (a.id - b.id);
  }

  // Every change removes the row it names; the row comes back when it (still) belongs to the
  // sensor. That also moves a row whose sensor or time was updated.
  function applyChanges(readings, changes, sensor) {
    const byId = new Map(readings.map((r) => [r.id, r]));
    changes.forEach((change) => {
      byId.delete(change.reading.id);
      if (change.op !== "DELETE" && change.reading.sensor_id === sensor) {
        byId.set(change.reading.id, change.reading);
      }
    });
    return Array.from(byId.values());
  }

  function step(data, changes, now) {
    let points = data.points;
    let recent = data.recent;
    if (changes.length) {
      points = applyChanges(points, changes, data.sensor).sort(byTime);
      recent = applyChanges(recent, changes, data.sensor).sort(byTime).reverse()
        .slice(0, data.recent_max);
    }
    const cutoff = now - data.window_s * 1000;
    const first = points.findIndex((p) => millis(p) >= cutoff);
    if (first !== 0) points = first < 0 ? [] : points.slice(first);
    return Object.assign({}, data, {points: points, recent: recent});
  }

  // How many points left the front, if `after` is `before` minus a head plus a tail; else -1.
  function droppedHead(before, after) {
    let head = after.length ? before.indexOf(after[0]) : before.length;
    if (head < 0) head = before.length;
    for (let i = head; i < before.length; i++) {
      if (before[i] !== after[i - head]) return -1;
    }
    return head;
  }

  function figurePatch(before, after, unit) {
    const patch = new window.dash_clientside.Patch();
    const columns = {
      x: (p) => plotlyTime(p.taken_at),
      y: (p) => inUnit(p.temperature_c, unit),
      customdata: (p) => p.id,
    };
    const empty = after.length === 0;  // see readings.figures.live_figure
    patch.assign(["layout", "annotations", 0, "visible"], empty);
    patch.assign(["layout", "xaxis", "visible"], !empty);
    patch.assign(["layout", "yaxis", "visible"], !empty);
    const head = droppedHead(before, after);
    if (head < 0 || head > MAX_FRONT_DELETES) {
      Object.keys(columns).forEach((k) => patch.assign(["data", 0, k], after.map(columns[k])));
      return patch.build();
    }
    const tail = after.slice(before.length - head);
    Object.keys(columns).forEach((k) => {
      for (let i = 0; i < head; i++) patch.delete(["data", 0, k, 0]);
      if (tail.length) patch.extend(["data", 0, k], tail.map(columns[k]));
    });
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
  // `prev` is ahead of it means one went missing: replay from the log.
  function drain(last) {
    const changes = [];
    const frames = inbox.splice(0).map(parseFrame).filter(Boolean);
    for (const frame of frames) {
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

  // Add to the renderer's object, never replace it: it holds set_props and Patch.
  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.monitor = {
    // A frame or a clock tick: fold changes into the store, patch the chart.
    advance: function (_message, _tick, data, unit) {
      if (!data) return [noUpdate(), noUpdate()];
      const {changes, last} = drain(data.last);
      connection.applied = last;
      const next = step(data, changes, Date.now());
      next.last = last;
      const pointsChanged = next.points !== data.points;
      if (!pointsChanged && next.recent === data.recent && last === data.last) {
        return [noUpdate(), noUpdate()];
      }
      return [next, pointsChanged ? figurePatch(data.points, next.points, unit) : noUpdate()];
    },

    // A snapshot older than what was already applied: the socket will not send those changes
    // again, so replay them from the log.
    resync: function (data) {
      if (data && data.last < connection.applied) reconnect(data.last);
    },

    render: function (data, unit) {
      const recent = (data && data.recent) || [];
      const latest = recent[0];
      const rows = recent.slice(0, data && data.table_rows).map((r) => html("Tr", [
        html("Td", plotlyTime(r.taken_at).slice(0, 19)),
        html("Td", formatTemperature(r.temperature_c, unit), {className: "text-end"}),
        html("Td", String(r.id), {className: "text-end text-muted"}),
      ]));
      return [
        (data && data.sensor) || "no sensor",
        latest ? formatTemperature(latest.temperature_c, unit) : "—",
        recent.length > 1 ? formatDelta(recent[1].temperature_c, latest.temperature_c, unit) : "",
        latest ? "taken " + plotlyTime(latest.taken_at).slice(0, 19) + " UTC" : "no readings yet",
        describeRange((data && data.points) || [], unit),
        rows,
      ];
    },

    showAge: function (_tick, data) {
      const latest = data && data.recent && data.recent[0];
      return latest ? formatAge(Date.now() - millis(latest)) : "";
    },

    // Badge and backoff from the socket's readyState; the first call opens the socket.
    watchSocket: function (state, data) {
      const since = data ? data.last : 0;
      if (!state) {
        return [socketUrl(since), "connecting", "secondary"];
      }
      if (state.readyState === WebSocket.OPEN) {
        connection.attempt = 0;
        return [noUpdate(), "live", "success"];
      }
      if (state.readyState !== WebSocket.CLOSED || connection.timer) {
        return [noUpdate(), noUpdate(), noUpdate()];
      }
      const delay = Math.min(BACKOFF_FIRST_MS * 2 ** connection.attempt, BACKOFF_MAX_MS);
      connection.attempt += 1;
      connection.timer = setTimeout(() => {
        connection.timer = null;
        reconnect(since);
      }, delay);
      return connection.attempt > OFFLINE_AFTER
        ? [noUpdate(), "offline", "danger"]
        : [noUpdate(), "reconnecting", "warning"];
    },
  };

  // The clock: only while the monitor page is on screen.
  setInterval(function () {
    if (document.getElementById("monitor-age") && window.dash_clientside.set_props) {
      window.dash_clientside.set_props("monitor-clock", {data: Date.now()});
    }
  }, 1000);
})();
