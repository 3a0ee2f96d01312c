"""Wattson: the live temperature monitor and the NILM explorer in one Dash app.

`gunicorn app:server` serves it in production (settings in gunicorn.conf.py); `python app.py` is
the one-process development server, on PORT (default 8050). DATABASE_URL and REDIS_URL choose the
stores.
"""
import logging
import os
import signal
from urllib.parse import parse_qs

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, clientside_callback, html
from dash.fingerprint import check_fingerprint
from flask import request
from flask_compress import Compress
from werkzeug.serving import WSGIRequestHandler

# Alembic lists its built-in plugins at INFO in each web process as it is imported (by readings,
# through Flask-Migrate): lines that tell nobody anything. Its migration lines still show.
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

from labelling.routes import bp as labelling_routes  # noqa: E402
from readings import api, create_db_app, health, start_live_feed  # noqa: E402


def navbar():
    links = [
        dbc.NavItem(dbc.NavLink(page["name"], href=page["relative_path"], active="exact"))
        for page in dash.page_registry.values()
    ]
    # Below Bootstrap's md breakpoint the links fold behind the toggler (a phone's 390 px).
    return dbc.Navbar(
        dbc.Container(
            [
                dbc.NavbarBrand("Wattson", href="/", className="fw-bold"),
                dbc.NavbarToggler(id="navbar-toggler"),
                dbc.Collapse(dbc.Nav(links, navbar=True, className="ms-auto"),
                             id="navbar-collapse", navbar=True, is_open=False),
            ]
        ),
        color="primary",
        dark=True,
        expand="md",
        className="mb-4",
    )


clientside_callback(
    "function (clicks, isOpen) { return clicks ? !isOpen : isOpen; }",
    Output("navbar-collapse", "is_open"),
    Input("navbar-toggler", "n_clicks"),
    State("navbar-collapse", "is_open"),
)


def layout():
    return html.Div([navbar(), dbc.Container(dash.page_container, fluid="lg", className="pb-5")])


# --- Weight of the first load: compression and cache headers (issue 11 item 3) ---

# Dash's component URLs carry a fingerprint of their package version (check_fingerprint); its
# asset URLs carry `?m=<file mtime>`. Either changes when the content does, so both can be cached
# for a year without asking again. An asset fetched without its `m` (a hand-typed URL) is
# revalidated every time (ETag / Last-Modified from send_file), so an edit is never hidden.
YEAR_S = 365 * 24 * 3600
IMMUTABLE = f"public, max-age={YEAR_S}, immutable"
SUITES, ASSETS = "/_dash-component-suites/", "/assets/"
# What we serve that is text (the CSV export included); images are compressed already.
COMPRESSIBLE = ["text/html", "text/css", "text/csv", "text/plain", "text/javascript",
                "application/javascript", "application/json", "image/svg+xml", "image/x-icon",
                "image/vnd.microsoft.icon"]


def fingerprinted(path):
    return path.startswith(SUITES) and check_fingerprint(path)[1]


def immutable(path, query):
    """Whether the content under this URL can never change: a fingerprinted component URL, or
    an asset URL with its version stamp."""
    return fingerprinted(path) or (path.startswith(ASSETS) and "m" in query)


def cache_control(path, query):
    """The Cache-Control for a static URL, or None to leave it as it is (pages, callbacks, API,
    an unfingerprinted component URL, which Dash already answers with an ETag)."""
    if immutable(path, query):
        return IMMUTABLE
    if path.startswith(ASSETS):
        return "no-cache"
    return None


def set_cache_headers(response):
    value = cache_control(request.path, request.args)
    if value and response.status_code in (200, 304):
        response.headers["Cache-Control"] = value
    if response.status_code == 200 and response.is_streamed and value == IMMUTABLE:
        # An asset is sent as a stream, which flask-compress gzips anew on every request (1.5 MB
        # of plotly.js). Read whole, it is compressed once per process, in brotli when accepted,
        # and served from ImmutableOnlyCache after that. (Flask runs this before flask-compress.)
        # Only a whole file: a range's compressed part must never be cached as the file.
        response.direct_passthrough = False
        response.make_sequence()
    return response


class ImmutableOnlyCache:
    """flask-compress's cache of compressed bodies, kept for immutable URLs only (their content
    never changes under one URL): plotly.js costs ~0.3 s of CPU to compress, once per process
    and encoding instead of once per first visit. Every other response passes by."""

    def __init__(self):
        self.bodies = {}

    def get(self, key):
        return self.bodies.get(key)

    def set(self, key, value):
        _, _, url = key.partition(";")  # "<encoding>;<path>?<query>"
        path, _, query = url.partition("?")
        if immutable(path, parse_qs(query)):
            self.bodies[key] = value


def lighten(server):
    """Compress what the browser accepts: brotli, else gzip. A streamed response (the export)
    gets gzip only: zlib writes a block every few tens of kB of input, so the export keeps
    arriving as it is read, where brotli's encoder would hold up to its 4 MB window before
    writing anything."""
    server.config.setdefault("COMPRESS_ALGORITHM", ["br", "gzip"])
    server.config.setdefault("COMPRESS_ALGORITHM_STREAMING", ["gzip"])
    server.config.setdefault("COMPRESS_MIMETYPES", COMPRESSIBLE)
    server.config.setdefault("COMPRESS_CACHE_BACKEND", ImmutableOnlyCache)
    server.config.setdefault("COMPRESS_CACHE_KEY", lambda req: req.full_path)
    # Files from assets/ without their version are streamed: still answer If-None-Match.
    server.config.setdefault("COMPRESS_STREAMING_ENDPOINT_CONDITIONAL", ["static", "_dash_assets.static"])
    Compress(server)
    server.after_request(set_cache_headers)


# Bootstrap (Bootswatch Flatly 5.3.8, MIT) is served from assets/ rather than a CDN, so the page
# looks right offline and makes no request to another host.
def create_app(config=None):
    server = create_db_app(config)
    app = dash.Dash(
        __name__,
        server=server,
        use_pages=True,
        title="Wattson",
        update_title=None,  # no "Updating..." flicker in the tab title
        suppress_callback_exceptions=True,
    )
    app.index_string = app.index_string.replace("<html>", '<html lang="en">', 1)
    app.layout = layout
    lighten(server)
    server.register_blueprint(api.blueprint)
    server.register_blueprint(labelling_routes)  # /nilm/upload, /nilm/download
    health.init_app(server)
    start_live_feed(server, float(os.environ.get("FEED_CHECK_S", "0.1")))
    return app


class QuietRequestHandler(WSGIRequestHandler):
    """The development server without its line per request (errors are still logged)."""

    def log_request(self, *args, **kwargs):
        pass


app = create_app()
server = app.server

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    hub = server.extensions["readings_hub"]
    # SIGUSR1 closes every WebSocket; browsers reconnect and replay what they missed.
    signal.signal(signal.SIGUSR1, lambda *_: hub.drop_all())
    port = int(os.environ.get("PORT", "8050"))
    handler = WSGIRequestHandler if os.environ.get("LOG_REQUESTS") else QuietRequestHandler
    app.run(host=os.environ.get("HOST", "127.0.0.1"), port=port, debug=False, threaded=True,
            request_handler=handler)
