"""GET /api/readings and /api/readings.csv against a real web server: the bytes against the table
(hand-written rows in every accepted form, poison rows from before the guards), the sensor filter,
the half-open range and its defaults, bad parameters, and a streamed (chunked) body."""
import csv
import io
import json
import os
import re
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from readings.export import BATCH
from tests import test_api_ingest

TOKEN = test_api_ingest.TOKEN
# The ingest tests' fixtures: a web server with INGEST_TOKEN for this module, an emptied database.
api_server, sql = test_api_ingest.api_server, test_api_ingest.sql

UTC = timezone.utc
RANGE = {"from": "2026-11-28T12:00:00Z", "to": "2026-11-28T13:00:00Z"}
# (name, sensor_id, taken_at as written, temperature_c), inserted in this order (ids rise).
ROWS = [
    ("a", "sensor-1", "2026-11-28 12:00:01", 20.0),
    ("b", "sensor-2", "2026-11-28T13:30:00.5+01:30", 21.5),        # 12:00:00.5 UTC
    ("c", "sensor-1", "2026-11-28 12:00:00", 19.25),               # exactly `from`: in
    ("d", "sensor-1", "2026-11-28 13:00:00", 22.0),                # exactly `to`: out
    ("e", "sensor-2", "2026-11-28T12:59:59.999999Z", -3.5),
    ("f", "sensor-1", "2026-11-28 11:59:59.999999", 18.0),         # just before: out
    ("g", "sensor-3", "2026-11-28T10:30:00-02:00", 17.125),        # 12:30 UTC
    ("h", "sensor-1", "2026-11-27T23:00:00-13:30", 23.0),          # 12:30 UTC too, the day after
    ("i", "sensor-3", "2026-11-29T00:15:00+11:30", 24.5),          # 12:45 UTC, the day before
    ("j", "sensor-1", "2026-11-28T11:00:00-02:00", 25.0),          # 13:00 UTC: out
    ("k", "sensor-2", "2026-11-28 12:20:00.123", 26.0),
]
# In the range, by time (then id): c b a k g h i e.
IN_RANGE = ["c", "b", "a", "k", "g", "h", "i", "e"]
UTC_TEXT = {"a": "2026-11-28T12:00:01.000000Z", "b": "2026-11-28T12:00:00.500000Z",
            "c": "2026-11-28T12:00:00.000000Z", "e": "2026-11-28T12:59:59.999999Z",
            "g": "2026-11-28T12:30:00.000000Z", "h": "2026-11-28T12:30:00.000000Z",
            "i": "2026-11-28T12:45:00.000000Z", "k": "2026-11-28T12:20:00.123000Z"}
# Rows the guards refuse today but a database from before them holds, inside the range.
POISON = [
    (b"sensor-1", "2026-11-28 12:10:00", 20.0),       # a BLOB sensor id
    ("sensor-1", "2026-11-28 12:10:01", "abc"),       # a text temperature
    ("sensor-1", "2026-11-28 12:10:02", 200.0),       # out of -50..150
    ("", "2026-11-28 12:10:03", 20.0),                # an empty sensor id
    ("sensor-2", "garbage", 20.0),                    # no time at all: in no range
    ("sensor-2", 2461008.0, 20.0),                    # a number, not text, for taken_at
]


def insert(sql, rows):
    for _, sensor_id, taken_at, temperature_c in rows:
        sql("INSERT INTO readings (sensor_id, taken_at, temperature_c) VALUES (?, ?, ?)",
            (sensor_id, taken_at, temperature_c))
    ids = [row[0] for row in sql("SELECT id FROM readings ORDER BY id DESC LIMIT ?", (len(rows),))]
    return dict(zip([row[0] for row in rows], reversed(ids)))


def insert_poison(sql):
    """Write POISON as a database made before migrations 0003 could hold it."""
    guards = sql("SELECT sql FROM sqlite_master WHERE name LIKE 'readings_guard_%'")
    sql("DROP TRIGGER readings_guard_insert")
    try:
        for row in POISON:
            sql("INSERT INTO readings (sensor_id, taken_at, temperature_c) VALUES (?, ?, ?)", row)
    finally:
        sql("DROP TRIGGER readings_guard_update")
        for (ddl,) in guards:
            sql(ddl)


@pytest.fixture
def table(sql):
    ids = insert(sql, ROWS)
    insert_poison(sql)
    return ids


def get(server, path="/api/readings", **params):
    return requests.get(server.url + path, params=params, timeout=60)


def expected_csv(ids, names):
    lines = ["id,sensor_id,taken_at,temperature_c"]
    for name in names:
        row = next(r for r in ROWS if r[0] == name)
        lines.append(f"{ids[name]},{row[1]},{UTC_TEXT[name]},{row[3]!r}")
    return "\n".join(lines) + "\n"


def test_csv_holds_the_valid_rows_of_the_range_in_time_order(api_server, table):
    reply = get(api_server, "/api/readings.csv", **RANGE)
    assert reply.status_code == 200
    assert reply.headers["Content-Type"].startswith("text/csv")
    assert reply.text == expected_csv(table, IN_RANGE)


def test_json_holds_the_same_rows_and_counts_the_unreadable_ones(api_server, table):
    reply = get(api_server, **RANGE)
    assert reply.status_code == 200 and reply.headers["Content-Type"] == "application/json"
    rows = list(csv.DictReader(io.StringIO(expected_csv(table, IN_RANGE))))
    assert reply.json() == {
        "from": "2026-11-28T12:00:00.000000Z", "to": "2026-11-28T13:00:00.000000Z", "sensors": None,
        "readings": [{"id": int(r["id"]), "sensor_id": r["sensor_id"], "taken_at": r["taken_at"],
                      "temperature_c": float(r["temperature_c"])} for r in rows],
        "skipped": 4,  # BLOB id, text and out-of-range temperatures, empty id; "garbage" is in no range
    }


def test_sensor_may_repeat(api_server, table):
    params = {**RANGE, "sensor": ["sensor-1", "sensor-3"]}
    reply = get(api_server, "/api/readings.csv", **params)
    assert reply.text == expected_csv(table, ["c", "a", "g", "h", "i"])
    answer = get(api_server, **params).json()
    assert answer["sensors"] == ["sensor-1", "sensor-3"]
    assert answer["skipped"] == 2  # the text and out-of-range temperatures of sensor-1
    assert get(api_server, "/api/readings.csv", **RANGE, sensor="nobody").text == expected_csv(table, [])


def test_offsets_in_the_bounds_are_converted(api_server, table):
    reply = get(api_server, "/api/readings.csv", **{"from": "2026-11-28T13:30:00.5+01:30",
                                                     "to": "2026-11-28T07:30:00-05:00"})
    assert reply.text == expected_csv(table, ["b", "a", "k"])


def test_the_range_defaults_to_the_last_24_hours(api_server, sql):
    now = datetime.now(UTC)
    at = lambda hours: (now - timedelta(hours=hours)).strftime("%Y-%m-%d %H:%M:%S.%f")
    ids = insert(sql, [("old", "sensor-1", at(30), 1.0), ("recent", "sensor-1", at(23.9), 2.0),
                       ("new", "sensor-1", at(0.01), 3.0), ("ahead", "sensor-1", at(-0.5), 4.0)])
    exported = lambda **params: [r["id"] for r in get(api_server, **params).json()["readings"]]
    assert exported() == [ids["recent"], ids["new"]]
    since = (now - timedelta(hours=48)).isoformat()
    assert exported(**{"from": since}) == [ids["old"], ids["recent"], ids["new"]]
    until = (now - timedelta(hours=1)).isoformat()
    assert exported(to=until) == [ids["recent"]]


@pytest.mark.parametrize("params, words", [
    ({"from": "yesterday"}, "from: 'yesterday' is not an ISO 8601 time"),
    ({"to": "2026-02-30T00:00:00Z"}, "to: "),
    ({"from": "1969-12-31T00:00:00Z"}, "from 1970 to 9998"),
    ({"from": "2026-11-28T13:00:00Z", "to": "2026-11-28T12:00:00Z"}, "must be before to"),
    ({"from": "2026-11-28T12:00:00Z", "to": "2026-11-28T12:00:00Z"}, "must be before to"),
    ({"from": ["2026-11-28T12:00:00Z", "2026-11-28T12:30:00Z"]}, "from: given 2 times"),
    ({"sensor": ""}, "sensor: must not be empty"),
    ({"sensors": "sensor-1"}, "unknown parameter 'sensors'"),
])
def test_a_bad_parameter_gets_400_with_a_message(api_server, sql, params, words):
    for path in ("/api/readings", "/api/readings.csv"):
        reply = get(api_server, path, **params)
        assert reply.status_code == 400
        assert words in reply.json()["error"]


def test_what_the_ingest_api_stored_comes_back_out(api_server, sql):
    sent = [{"sensor_id": "roof", "temperature_c": 21.4, "taken_at": "2026-11-28T12:00:00.123456+02:00"},
            {"sensor_id": "roof", "temperature_c": -7.25, "taken_at": "2026-11-28T10:00:01Z"}]
    posted = requests.post(api_server.url + "/api/readings", json=sent, timeout=60,
                           headers={"Authorization": f"Bearer {TOKEN}"})
    ids = posted.json()["ids"]
    back = get(api_server, sensor="roof", **{"from": "2026-11-28T00:00:00Z", "to": "2026-11-29T00:00:00Z"})
    assert back.json()["readings"] == [
        {"id": ids[0], "sensor_id": "roof", "taken_at": "2026-11-28T10:00:00.123456Z",
         "temperature_c": 21.4},
        {"id": ids[1], "sensor_id": "roof", "taken_at": "2026-11-28T10:00:01.000000Z",
         "temperature_c": -7.25},
    ]


def test_a_large_export_is_streamed_in_batches(api_server, sql):
    count = 5 * BATCH + 17
    sql("WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?) "
        "INSERT INTO readings (sensor_id, taken_at, temperature_c) "
        "SELECT 'bulk', strftime('%Y-%m-%d %H:%M:%f', '2026-11-28 12:00:00', i || ' seconds'), i % 100 "
        "FROM n", (count,))
    span = {"from": "2026-11-28T00:00:00Z", "to": "2026-11-29T00:00:00Z"}
    for path, extra_lines in (("/api/readings.csv", 1), ("/api/readings", 2)):
        # identity: one HTTP chunk per batch even where responses are compressed.
        with requests.get(api_server.url + path, params=span, stream=True, timeout=60,
                          headers={"Accept-Encoding": "identity"}) as reply:
            assert reply.headers.get("Transfer-Encoding") == "chunked"
            assert "Content-Length" not in reply.headers
            chunks = list(reply.raw.read_chunked(decode_content=True))
        # A chunk per batch read: the server never held the whole export.
        assert len(chunks) > count // BATCH
        assert b"".join(chunks).count(b"\n") == count + extra_lines
    answer = get(api_server, **span).json()
    assert [r["temperature_c"] for r in answer["readings"]] == [float(i % 100) for i in range(count)]
    assert json.loads(get(api_server, **span).content) == answer


def test_the_export_needs_no_token_even_when_ingest_is_off(web_server, db_exec):
    db_exec("INSERT INTO readings (sensor_id, temperature_c) VALUES ('sensor-1', 20.5)")
    reply = get(web_server)
    assert reply.status_code == 200
    assert [r["temperature_c"] for r in reply.json()["readings"]] == [20.5]


def readme_curls():
    """The curl commands of the README's API section, continuation lines joined."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## Readings API", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    return [line.split("  #")[0] for line in lines if line.startswith("curl ")]


def test_the_readme_curl_examples_work(api_server, sql, tmp_path):
    curls = readme_curls()
    assert len(curls) == 4
    env = dict(os.environ, INGEST_TOKEN=TOKEN)
    outputs = [subprocess.run(["bash", "-c", command.replace("http://127.0.0.1:8050", api_server.url)
                               + " --silent --show-error --fail"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60, check=True).stdout
               for command in curls]
    one, two = json.loads(outputs[0])["ids"], json.loads(outputs[1])["ids"]
    assert len(one) == 1 and len(two) == 2
    exported = json.loads(outputs[2])
    assert [r["id"] for r in exported["readings"]] == [one[0], two[0], two[1]]
    assert exported["sensors"] == ["balcony", "cellar"]
    lines = (tmp_path / "readings.csv").read_text().splitlines()
    assert lines[0] == "id,sensor_id,taken_at,temperature_c" and len(lines) == 4
    assert lines[1] == f"{one[0]},balcony,2026-11-29T12:30:00.000000Z,21.4"
