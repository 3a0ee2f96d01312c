"""Production serving: `gunicorn app:server` reads this file and needs no flags.

Flags still win over it (`gunicorn app:server -w 4`). Each process imports the app after the
fork (no preload), so each holds its own Redis subscription and its own watcher for outside writes.
"""
import gc
import logging
import os
import re
import signal
import threading


def whole_number(name, default):
    """A count from the environment, or a one-line refusal that names the variable."""
    value = os.environ.get(name, default).strip()
    if not value.isdigit() or int(value) < 1:
        raise SystemExit(f"{name} must be a whole number of at least 1, not {value!r}")
    return int(value)


bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8050')}"
workers = whole_number("WEB_PROCESSES", "2")
# gthread, because flask-sock holds each WebSocket on a thread of its own for as long as the page
# is open: a process serves at most WEB_THREADS sockets and requests at once. Idle threads are
# only made when needed, so a high ceiling is cheap. (Each socket also has simple_websocket's
# reader thread, outside this pool, and a file descriptor: see the README for 5,000 pages.)
worker_class = "gthread"
threads = whole_number("WEB_THREADS", "1000")
worker_connections = threads + 100  # room for kept-alive connections beside busy threads
preload_app = False
# Sockets are closed as soon as a process is told to stop (below); this only bounds requests
# still running then, so a restart never waits long.
graceful_timeout = 10
# One line per request only when asked for; errors and lifecycle events are always logged.
accesslog = "-" if os.environ.get("LOG_REQUESTS") else None
errorlog = "-"
loglevel = "info"
# gunicorn's control socket defaults to one path per user ($HOME/.gunicorn/gunicorn.ctl), which
# two instances on one host (tests, a second app) would fight over; we do not use it.
control_socket_disable = True


def post_fork(server, worker):
    """The app's own loggers (readings.hub, readings.feed, ...) write where gunicorn does."""
    root = logging.getLogger()
    root.handlers = list(logging.getLogger("gunicorn.error").handlers)
    root.setLevel(logging.INFO)


def warm_up(server):
    """Do once, before any client, what would otherwise slow down or break a first visit."""
    import dash
    from plotly.io.json import to_json_plotly  # what Dash encodes its answers with

    client = server.test_client()
    # Dash sets itself up on its first request, and that set-up is not thread-safe: many pages
    # arriving at a fresh process at once raced in it ("dictionary changed size during
    # iteration", handshakes answered 500). One request here, before any client's, does it once.
    page = client.get("/", headers={"Accept-Encoding": "identity"}).get_data(as_text=True)
    # The page's scripts and styles, compressed once into flask-compress's cache (plotly.js
    # alone takes ~0.4 s), in what browsers ask for.
    for url in re.findall(r'(?:src|href)="(/[^"]+)"', page):
        client.get(url, headers={"Accept-Encoding": "br"})
    # Each page's content once: plotly's figure classes load their validators on first use, and
    # the first figure of a process took ~1 s more than the next.
    with server.test_request_context("/"):
        for registered in dash.page_registry.values():
            layout = registered["layout"]
            to_json_plotly(layout() if callable(layout) else layout)


def post_worker_init(worker):
    """Warm up, then on SIGTERM close this process's WebSockets first: browsers reconnect, to any
    process, and replay from their last id, and the stop does not wait out the graceful timeout."""
    warm_up(worker.wsgi)
    # What the app built at start-up lives as long as the process: kept out of the collector's
    # full passes, which otherwise walked all of it (~120-170 ms a pass, every client's
    # news waiting behind it, measured at 1,000 open pages).
    gc.freeze()
    hub = worker.wsgi.extensions["readings_hub"]
    stopping = threading.Event()

    def close_sockets_when_stopping():
        stopping.wait()
        hub.drop_all()

    # The closing happens on a thread of its own: a signal handler must not wait on the hub's
    # locks, nor (under -k gevent) start a thread.
    threading.Thread(target=close_sockets_when_stopping, name="readings-close-on-stop",
                     daemon=True).start()
    stop_worker = worker.handle_exit

    def close_sockets_then_stop(signum, frame):
        stopping.set()
        stop_worker(signum, frame)

    signal.signal(signal.SIGTERM, close_sockets_then_stop)
