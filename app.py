"""Wattson: the live temperature monitor and the NILM explorer in one Dash app.

`gunicorn app:server` serves it in production (settings in gunicorn.conf.py); `python app.py` is
the one-process development server, on PORT (default 8050). DATABASE_URL and REDIS_URL choose the
stores.
"""
import logging
import os
import signal

import dash
import dash_bootstrap_components as dbc
from dash import html
from werkzeug.serving import WSGIRequestHandler

from labelling.routes import bp as labelling_routes
from readings import api, create_db_app, health, start_live_feed


def navbar():
    links = [
        dbc.NavItem(dbc.NavLink(page["name"], href=page["relative_path"], active="exact"))
        for page in dash.page_registry.values()
    ]
    return dbc.Navbar(
        dbc.Container(
            [
                dbc.NavbarBrand("Wattson", href="/", className="fw-bold"),
                dbc.Nav(links, navbar=True, className="ms-auto"),
            ]
        ),
        color="primary",
        dark=True,
        className="mb-4",
    )


def layout():
    return html.Div([navbar(), dbc.Container(dash.page_container, fluid="lg", className="pb-5")])


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
    app.layout = layout
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
