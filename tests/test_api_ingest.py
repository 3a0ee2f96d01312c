"""POST /api/readings against a real web server: the token, the body limit, validation that
names the field and item, all or nothing, and the Idempotency-Key."""
import json
import os
import socket
import sqlite3
import threading
import urllib.parse
from datetime import datetime, timedelta, timezone

import pytest
import requests

from readings.api import MAX_BODY_BYTES
from readings.ingest import MAX_ITEMS
from tests.conftest import WebServer

TOKEN = "s3cret-token"
UTC = timezone.utc


@pytest.fixture(scope="module")
def api_server(tmp_path_factory, redis_server):
    """One web server with INGEST_TOKEN set for the module (starting one per test is slow); its
    database is emptied before each test by `sql`."""
    workdir = tmp_path_factory.mktemp("api")
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{workdir / 'wattson.db'}", REDIS_URL=redis_server.url,
               SENSORS="sensor-1", PYTHONUNBUFFERED="1", INGEST_TOKEN=TOKEN)
    env.pop("SENSOR_URL", None)
    server = WebServer(env, workdir / "web.log").start()
    server.database = workdir / "wattson.db"
    yield server
    server.stop()


@pytest.fixture
def sql(api_server):
    """Run SQL on the API server's database as a person with the sqlite3 shell would."""

    def run(statement, params=()):
        with sqlite3.connect(api_server.database, timeout=5, isolation_level=None) as connection:
            return connection.execute(statement, params).fetchall()

    run("DELETE FROM readings")
    run("DELETE FROM ingest_keys")
    return run


def post(server, body, token=TOKEN, **headers):
    """POST body (JSON-encoded unless bytes) as a device would; the response."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return requests.post(server.url + "/api/readings", data=data, timeout=60,
                         headers={"Content-Type": "application/json", **headers})


def stored(sql):
    return sql("SELECT id, sensor_id, taken_at, temperature_c FROM readings ORDER BY id")


def an_hour_ago():
    return datetime.now(UTC).replace(microsecond=250000) - timedelta(hours=1)


def test_a_reading_is_stored_with_its_time_converted_to_utc(api_server, sql):
    moment = an_hour_ago()
    local = moment.astimezone(timezone(timedelta(hours=1, minutes=30))).isoformat()
    reply = post(api_server, {"sensor_id": "balcony", "temperature_c": 21.4, "taken_at": local})
    assert reply.status_code == 201, reply.text
    (reading_id,) = reply.json()["ids"]
    assert stored(sql) == [(reading_id, "balcony", moment.strftime("%Y-%m-%d %H:%M:%S.%f"), 21.4)]


def test_a_reading_without_taken_at_is_taken_now(api_server, sql):
    before = datetime.now(UTC)
    reply = post(api_server, {"sensor_id": "sensor-1", "temperature_c": "19.5"})
    after = datetime.now(UTC)
    assert reply.status_code == 201, reply.text
    [(_, _, taken_at, temperature)] = stored(sql)
    assert before <= datetime.fromisoformat(taken_at).replace(tzinfo=UTC) <= after
    assert temperature == 19.5  # a numeric string, as the worker accepts from an HTTP sensor


@pytest.mark.parametrize("authorization", [
    None, "", "Bearer", "Bearer ", "Bearer wrong", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}",
    f"Basic {TOKEN}", TOKEN,
])
def test_without_the_token_nothing_is_stored(api_server, sql, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    reply = post(api_server, {"sensor_id": "sensor-1", "temperature_c": 20}, token=None, **headers)
    assert reply.status_code == 401
    assert reply.headers["WWW-Authenticate"] == "Bearer"
    assert "Authorization: Bearer" in reply.json()["error"]
    assert stored(sql) == []


def test_the_scheme_is_case_insensitive(api_server, sql):
    reply = post(api_server, {"sensor_id": "sensor-1", "temperature_c": 20}, token=None,
                 Authorization=f"bearer {TOKEN}")
    assert reply.status_code == 201


def test_without_a_configured_token_the_endpoint_is_off(web_server, db_exec):
    reply = post(web_server, {"sensor_id": "sensor-1", "temperature_c": 20})
    assert reply.status_code == 404
    assert "INGEST_TOKEN" in reply.json()["error"]
    assert stored(db_exec) == []


def test_a_body_over_1_mb_is_refused_with_413(api_server, sql):
    item = {"sensor_id": "sensor-1", "temperature_c": 20}
    body = json.dumps([item]).encode()
    padded = body[:-1] + b" " * (MAX_BODY_BYTES + 1 - len(body)) + b"]"
    assert len(padded) == MAX_BODY_BYTES + 1
    reply = post(api_server, padded)
    assert reply.status_code == 413 and "1 MiB" in reply.json()["error"]
    assert stored(sql) == []
    # Exactly at the limit it is read (and stored).
    assert post(api_server, padded[:-2] + b"]").status_code == 201


def test_a_chunked_body_over_1_mb_is_refused_too(api_server, sql):
    """Without a Content-Length the limit holds while reading."""
    body = json.dumps([{"sensor_id": "sensor-1", "temperature_c": 20}]).encode()
    padding = (b" " * 2**16 for _ in range(MAX_BODY_BYTES // 2**16 + 1))
    reply = requests.post(api_server.url + "/api/readings", data=iter([body[:-1], *padding, b"]"]),
                          headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
    assert reply.status_code == 413
    assert stored(sql) == []
    small = requests.post(api_server.url + "/api/readings", data=iter([body[:-1], b" " * 10, b"]"]),
                          headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
    assert small.status_code == 201 and len(stored(sql)) == 1


def test_a_body_declared_over_1_mb_is_refused_before_it_is_sent(api_server):
    parts = urllib.parse.urlsplit(api_server.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=60) as conn:
        conn.sendall(b"POST /api/readings HTTP/1.1\r\nHost: " + parts.netloc.encode() + b"\r\n"
                     b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
                     b"Content-Length: " + str(100 * MAX_BODY_BYTES).encode() + b"\r\n\r\n")
        status_line = conn.makefile("rb").readline()
    assert status_line.split()[1] == b"413"


@pytest.mark.parametrize("body, message", [
    (b"{", "malformed JSON"),
    (b"", "malformed JSON"),
    (b"{'sensor_id': 'a'}", "malformed JSON"),
    (b'{"sensor_id": "\xff", "temperature_c": 20}', "malformed JSON"),
    (b"[" * 200_000 + b"]" * 200_000, "nested too deeply"),
])
def test_malformed_json_is_refused_with_400(api_server, sql, body, message):
    reply = post(api_server, body)
    assert reply.status_code == 400
    assert message in reply.json()["error"]
    assert stored(sql) == []


GOOD = {"sensor_id": "sensor-1", "temperature_c": 20.5}


@pytest.mark.parametrize("item, field, words", [
    ({"temperature_c": 20}, "sensor_id", "missing"),
    ({"sensor_id": "", "temperature_c": 20}, "sensor_id", "non-empty"),
    ({"sensor_id": "   ", "temperature_c": 20}, "sensor_id", "non-empty"),
    ({"sensor_id": 7, "temperature_c": 20}, "sensor_id", "text"),
    ({"sensor_id": "x" * 129, "temperature_c": 20}, "sensor_id", "at most 128"),
    ({"sensor_id": "a\nb", "temperature_c": 20}, "sensor_id", "printable"),
    ({"sensor_id": "sensor-1"}, "temperature_c", "missing"),
    ({"sensor_id": "sensor-1", "temperature_c": None}, "temperature_c", "not a number"),
    ({"sensor_id": "sensor-1", "temperature_c": "warm"}, "temperature_c", "not a number"),
    ({"sensor_id": "sensor-1", "temperature_c": True}, "temperature_c", "not a number"),
    ({"sensor_id": "sensor-1", "temperature_c": "warm" * 200_000}, "temperature_c", "not a number"),
    ({"sensor_id": "sensor-1", "temperature_c": 150.01}, "temperature_c", "outside -50..150"),
    ({"sensor_id": "sensor-1", "temperature_c": -273}, "temperature_c", "outside -50..150"),
    ({"sensor_id": "sensor-1", "temperature_c": float("nan")}, "temperature_c", "not finite"),
    ({"sensor_id": "sensor-1", "temperature_c": 10**400}, "temperature_c", "not a finite number"),
    ({**GOOD, "taken_at": "yesterday"}, "taken_at", "ISO 8601"),
    ({**GOOD, "taken_at": 1764417600}, "taken_at", "ISO 8601"),
    ({**GOOD, "taken_at": "2026-02-30T12:00:00Z"}, "taken_at", "ISO 8601"),
    ({**GOOD, "taken_at": "1969-12-31T23:59:59Z"}, "taken_at", "before 1970"),
    ({**GOOD, "taken_at": "9999-12-31T23:59:59Z"}, "taken_at", "in the future"),
    ({**GOOD, "temp": 20}, "temp", "unknown field"),
    ("21.4", "item", "must be an object"),
])
def test_a_bad_item_is_refused_naming_its_field_and_index_and_nothing_is_stored(
        api_server, sql, item, field, words):
    reply = post(api_server, [GOOD, GOOD, item])
    assert reply.status_code == 422, reply.text
    problem = reply.json()
    assert (problem["field"], problem["index"]) == (field, 2)
    assert problem["error"].startswith(f"item 2: {field}: ") and words in problem["error"]
    assert len(problem["error"]) < 300
    assert stored(sql) == []  # the two good items before it were not stored either
    single = post(api_server, item)
    assert single.status_code == 422
    assert single.json()["error"].startswith(f"{field}: ") and single.json()["index"] is None


def test_a_list_of_1000_is_stored_in_order_and_1001_is_refused(api_server, sql):
    start = an_hour_ago()
    items = [{"sensor_id": f"s{i % 7}", "temperature_c": round(-50 + i * 0.2, 1),
              "taken_at": (start + timedelta(seconds=i)).isoformat()} for i in range(MAX_ITEMS)]
    too_many = post(api_server, items + [GOOD])
    assert too_many.status_code == 422 and "1 to 1000" in too_many.json()["error"]
    assert post(api_server, []).status_code == 422
    reply = post(api_server, items)
    assert reply.status_code == 201
    ids = reply.json()["ids"]
    rows = stored(sql)
    assert [row[0] for row in rows] == ids and len(ids) == MAX_ITEMS
    assert [(row[1], row[3]) for row in rows] == [(i["sensor_id"], i["temperature_c"]) for i in items]


def test_the_same_idempotency_key_stores_once_and_answers_the_same(api_server, sql):
    items = [GOOD, {**GOOD, "temperature_c": 21}]
    first = post(api_server, items, **{"Idempotency-Key": "batch-1"})
    again = post(api_server, items, **{"Idempotency-Key": "batch-1"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() and len(first.json()["ids"]) == 2
    assert len(stored(sql)) == 2
    # Another key is another request.
    other = post(api_server, items, **{"Idempotency-Key": "batch-2"})
    assert other.status_code == 201 and other.json() != first.json()
    assert len(stored(sql)) == 4


def test_a_key_reused_for_another_body_is_refused(api_server, sql):
    assert post(api_server, GOOD, **{"Idempotency-Key": "k"}).status_code == 201
    reply = post(api_server, {**GOOD, "temperature_c": 30}, **{"Idempotency-Key": "k"})
    assert reply.status_code == 422 and "different request" in reply.json()["error"]
    assert len(stored(sql)) == 1


def test_a_refused_request_does_not_use_up_its_key(api_server, sql):
    bad = {**GOOD, "temperature_c": 999}
    assert post(api_server, bad, **{"Idempotency-Key": "k"}).status_code == 422
    assert post(api_server, GOOD, **{"Idempotency-Key": "k"}).status_code == 201
    assert len(stored(sql)) == 1


def test_a_key_older_than_24_hours_is_forgotten(api_server, sql):
    first = post(api_server, GOOD, **{"Idempotency-Key": "old"}).json()
    sql("UPDATE ingest_keys SET created_at = ?",
            ((datetime.now(UTC) - timedelta(hours=24, seconds=1)).strftime("%Y-%m-%d %H:%M:%S.%f"),))
    again = post(api_server, GOOD, **{"Idempotency-Key": "old"})
    assert again.status_code == 201 and again.json() != first
    assert len(stored(sql)) == 2
    assert sql("SELECT count(*) FROM ingest_keys") == [(1,)]  # the expired row was pruned


def test_concurrent_retries_with_one_key_store_once(api_server, sql):
    items = [{**GOOD, "temperature_c": t} for t in (20, 21, 22)]
    replies = []

    def send():
        replies.append(post(api_server, items, **{"Idempotency-Key": "race"}))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {r.status_code for r in replies} == {201}
    assert len({json.dumps(r.json()) for r in replies}) == 1
    assert len(stored(sql)) == 3


@pytest.mark.parametrize("key", ["", "x" * 256, "ключ"])
def test_a_bad_idempotency_key_is_refused_with_400(api_server, sql, key):
    reply = post(api_server, GOOD, **{"Idempotency-Key": key.encode().decode("latin-1")})
    assert reply.status_code == 400 and "Idempotency-Key" in reply.json()["error"]
    assert stored(sql) == []


def test_a_locked_database_answers_503_and_the_retry_stores_once(api_server, sql):
    holder = sqlite3.connect(api_server.database, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")  # longer than the app's busy timeout (5 s)
        busy = post(api_server, GOOD, **{"Idempotency-Key": "busy"})
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "1"
    assert "nothing was stored" in busy.json()["error"]
    assert stored(sql) == []
    retry = post(api_server, GOOD, **{"Idempotency-Key": "busy"})
    assert retry.status_code == 201 and len(stored(sql)) == 1
