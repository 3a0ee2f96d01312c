/*
 * The monitor's live link: the WebSocket (dash-extensions) delivers frames {prev, last, changes,
 * now}, which also wait in an inbox in arrival order; `advance` folds them into the store;
 * `watchSocket` reconnects with backoff, carrying the id of the last change applied. Also the
 * view in the URL and the browser's storage, and the one-second clock that drives ages, the
 * status, the slide and the window's cut-off -- in the browser, no request.
 */
(function () {
  "use strict";

  const M = window.wattsonMonitor;
  const connection = M.connection;
  const BACKOFF_FIRST_MS = 500;
  const BACKOFF_MAX_MS = 10000;

  // A socket of this host at `pathAndQuery` (both pages' sockets, alerts.js too).
  M.socketUrl = (pathAndQuery) => (window.location.protocol === "https:" ? "wss://" : "ws://")
    + window.location.host + pathAndQuery;

  // A closed socket re-opened by `reopen` with backoff (`conn`: {attempt, timer}, its own per
  // socket); the count starts again once it is open.
  M.keepOpen = function (state, conn, reopen) {
    if (state.readyState === WebSocket.OPEN) {
      conn.attempt = 0;
    } else if (state.readyState === WebSocket.CLOSED && !conn.timer) {
      const delay = Math.min(BACKOFF_FIRST_MS * 2 ** conn.attempt, BACKOFF_MAX_MS);
      conn.attempt += 1;
      conn.timer = setTimeout(() => {
        conn.timer = null;
        reopen();
      }, delay);
    }
    return M.noUpdate();
  };

  function socketUrl(since) {
    // The serial makes each URL new: the component only reconnects when its url changes.
    connection.serial += 1;
    connection.applied = since;
    return M.socketUrl("/ws/readings?since=" + since + "&n=" + connection.serial);
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

  // Every frame of each of our sockets (/ws/readings, /ws/alerts), in arrival order, by path.
  // Dash coalesces rapid updates of the component's `message` prop (a burst of writes would
  // otherwise cost a reconnect per lost frame), so the callbacks drain these inboxes and the prop
  // is only the signal that frames arrived. A new socket empties its path's inbox: the readings
  // socket replays from the last change applied, the alerts socket starts with a snapshot.
  const inboxes = {};
  M.inbox = (path) => (inboxes[path] = inboxes[path] || []);
  const NativeWebSocket = window.WebSocket;
  window.WebSocket = class extends NativeWebSocket {
    constructor(url, protocols) {
      super(url, protocols);
      const path = new URL(String(url), window.location.href).pathname;
      if (path.startsWith("/ws/")) {
        const inbox = M.inbox(path);
        inbox.length = 0;
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
    const frames = M.inbox("/ws/readings").splice(0).map(parseFrame).filter(Boolean);
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

  // ---- the view in the URL and in the browser's storage ----

  const PREFS_KEY = "monitor-prefs";  // where dcc.Store(id="monitor-prefs", local) keeps it
  const CHOICES = ["window", "unit", "tz"];
  let prefsRestored = false;

  function storedView() {
    try {
      return JSON.parse(window.localStorage.getItem(PREFS_KEY));
    } catch (error) {
      return null;  // storage off or unreadable: the defaults
    }
  }

  const sameSet = (a, b) => a.length === b.length && a.every((x) => b.includes(x));

  // A bare "/" opens the last view chosen here; a link's own view wins. Only once per load.
  // True when it changed a choice (whose callback then writes the URL).
  function restoreView(current, known) {
    if (prefsRestored) return false;
    prefsRestored = true;
    const view = storedView();
    if (window.location.search || !view) return false;
    const changed = CHOICES.filter((key) => view[key] && view[key] !== current[key]);
    changed.forEach((key) => window.dash_clientside.set_props("monitor-" + key, {value: view[key]}));
    const sensors = Array.isArray(view.sensors) ? view.sensors.filter((s) => known.includes(s)) : [];
    if (!sameSet(sensors, current.sensors)) {
      window.dash_clientside.set_props("monitor-sensors", {value: sensors});
      changed.push("sensors");
    }
    return changed.length > 0;
  }

  function viewQuery(view) {
    const query = new URLSearchParams();
    view.sensors.forEach((s) => query.append("sensor", s));  // none: every sensor
    CHOICES.forEach((key) => query.append(key, view[key]));
    return "?" + query.toString();
  }

  Object.assign(window.dash_clientside.monitor, {
    // A frame or a clock tick: fold changes into the store (the chart and cards follow it).
    advance: function (_message, _tick, data) {
      if (!data) return M.noUpdate();
      const {changes, last} = drain(data.last);
      connection.applied = last;
      const next = M.step(data, changes, M.clockNow(data));
      if (next === data && last === data.last) return M.noUpdate();
      return Object.assign({}, next, {last: last});
    },

    // A snapshot older than what was already applied: the socket will not send those changes
    // again, so replay them from the log.
    resync: function (data) {
      if (data && data.last < connection.applied) reconnect(data.last);
    },

    // Backoff from the socket's readyState; the first call opens the socket.
    watchSocket: function (state, data) {
      const since = data ? data.last : 0;
      return state ? M.keepOpen(state, connection, () => reconnect(since)) : socketUrl(since);
    },

    // The view into the URL (no reload) and the browser's storage.
    remember: function (sensors, windowName, unit, tz, data) {
      const view = {sensors: sensors || [], window: windowName, unit: unit, tz: tz};
      if (restoreView(view, (data && data.known) || [])) return M.noUpdate();
      window.history.replaceState(window.history.state, "", window.location.pathname + viewQuery(view));
      return view;
    },
  });

  // The clock: only while the monitor page is on screen.
  setInterval(function () {
    if (document.getElementById("monitor-graph") && window.dash_clientside.set_props) {
      window.dash_clientside.set_props("monitor-clock", {data: Date.now()});
    }
  }, 1000);
})();
