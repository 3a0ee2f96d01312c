"""Alerts in a real `celery -A tasks worker -B` (SAMPLE_PERIOD_S=1), real Redis, a SQLite file:
thresholds set through the domain, as the page will set them."""
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import redis
from conftest import wait_until

from readings import alerts, create_db_app


@pytest.fixture
def band(live_env):
    """set(low, high) on the test database, as the page will (migrates it first, too)."""
    app = create_db_app({"SQLALCHEMY_DATABASE_URI": live_env["DATABASE_URL"]})

    def set_band(low, high):
        with app.app_context():
            alerts.set_threshold("sensor-1", low, high)
    return set_band


class Inbox:
    """Messages on the alerts channel, gathered while a test waits."""

    def __init__(self, url):
        self.pubsub = redis.Redis.from_url(url).pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(alerts.CHANNEL)
        self.events = []

    def wait_for(self, event, kind, timeout=30):
        def arrived():
            while message := self.pubsub.get_message(timeout=0.2):
                self.events.append(json.loads(message["data"]))
            return [e for e in self.events if (e["event"], e["alert"]["kind"]) == (event, kind)]
        wait_until(arrived, timeout=timeout, what=f"an alert {event}: {kind}")
        return arrived()[0]["alert"]


@pytest.fixture
def inbox(redis_server):
    return Inbox(redis_server.url)


def test_a_reading_above_the_band_raises_high_and_raising_the_band_ends_it(
        live_env, band, inbox, request, db_exec):
    band(None, 0.0)  # the simulated room is around 21 C
    request.getfixturevalue("celery_worker")
    started = inbox.wait_for("started", "high")
    assert started["sensor_id"] == "sensor-1" and started["value"] > 0
    assert db_exec("SELECT kind, ended_at FROM alerts") == [("high", None)]
    band(None, 100.0)
    ended = inbox.wait_for("ended", "high")
    assert ended["id"] == started["id"] and ended["ended_at"] >= started["started_at"]
    rows = db_exec("SELECT id, kind, ended_at IS NOT NULL FROM alerts")
    assert rows == [(started["id"], "high", 1)]


@pytest.fixture
def switchable_sensor(http_device):
    """A device that answers 21.5, or 500 while `state["down"]` is set."""
    state = {"down": False}
    url = http_device(lambda path: (500, b"down") if state["down"] else (200, b"21.5"))
    return url + "/", state


def test_a_sensor_that_stops_answering_goes_stale_and_a_fresh_reading_ends_it(
        live_env, switchable_sensor, inbox, request, db_exec):
    live_env["SENSOR_URL"], device = switchable_sensor
    request.getfixturevalue("celery_worker")
    wait_until(lambda: db_exec("SELECT count(*) FROM readings")[0][0] >= 1, timeout=30,
               what="a first reading")
    assert db_exec("SELECT count(*) FROM alerts") == [(0,)]
    device["down"] = True
    started = inbox.wait_for("started", "stale")
    assert started["value"] is None and "no reading for more than 2.5 s" in started["details"]
    device["down"] = False
    ended = inbox.wait_for("ended", "stale")
    assert ended["id"] == started["id"]
    assert db_exec("SELECT kind, ended_at IS NOT NULL FROM alerts") == [("stale", 1)]


class Webhook:
    """A real HTTP server taking JSON POSTs; reply(n) for the n-th POST: a status, or None to hang."""

    def __init__(self, reply):
        self.posts, self.attempts, self.release = [], 0, threading.Event()
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                webhook.attempts += 1
                status = reply(webhook.attempts)
                if status is None:
                    webhook.release.wait(60)
                    return
                if status == 200:
                    webhook.posts.append(body)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"

    def stop(self):
        self.release.set()
        self.server.shutdown()


@pytest.fixture
def webhook():
    hooks = []

    def start(reply):
        hooks.append(Webhook(reply))
        return hooks[-1]
    yield start
    for hook in hooks:
        hook.stop()


def test_the_webhook_gets_start_and_end_after_failing_at_first(
        live_env, band, webhook, inbox, request):
    hook = webhook(lambda n: 500 if n in (1, 3) else 200)  # each event fails once, then succeeds
    live_env["ALERT_WEBHOOK_URL"] = hook.url
    band(None, 0.0)
    worker = request.getfixturevalue("celery_worker")
    started = inbox.wait_for("started", "high")
    wait_until(lambda: len(hook.posts) == 1, timeout=30, what="the start, retried")
    band(None, 100.0)
    inbox.wait_for("ended", "high")
    wait_until(lambda: len(hook.posts) == 2, timeout=30, what="the end, retried")
    assert [(p["event"], p["alert"]["id"]) for p in hook.posts] == [
        ("started", started["id"]), ("ended", started["id"])]
    assert hook.attempts == 4
    assert re.search(r"retry: Retry in \d+s: <HTTPError 500", worker.output())


def test_a_hanging_webhook_never_stops_sampling(live_env, band, webhook, inbox, request, db_exec):
    hook = webhook(lambda n: None)
    live_env["ALERT_WEBHOOK_URL"] = hook.url
    band(None, 0.0)
    worker = request.getfixturevalue("celery_worker")
    inbox.wait_for("started", "high")
    wait_until(lambda: hook.attempts >= 3, timeout=30, what="the webhook's retries")
    stored = db_exec("SELECT count(*) FROM readings")[0][0]
    wait_until(lambda: db_exec("SELECT count(*) FROM readings")[0][0] >= stored + 3, timeout=30,
               what="readings while the webhook hangs")
    assert "timed out" in worker.output()
    assert db_exec("SELECT count(*) FROM alerts") == [(1,)]


def test_a_failing_alert_step_is_logged_and_the_reading_stays_stored(live_env, request, db_exec):
    worker = request.getfixturevalue("celery_worker")
    wait_until(lambda: db_exec("SELECT count(*) FROM readings")[0][0] >= 1, timeout=30,
               what="a first reading")
    db_exec("ALTER TABLE alerts RENAME TO alerts_away")  # evaluation now fails on every reading
    stored = db_exec("SELECT count(*) FROM readings")[0][0]
    wait_until(lambda: db_exec("SELECT count(*) FROM readings")[0][0] >= stored + 2, timeout=30,
               what="readings stored while alerts fail")
    log = worker.output()
    assert "could not evaluate alerts; the reading is stored" in log
    assert not re.search(r"tasks\.sampling\.sample\[[^]]*\] raised unexpected", log)
