"""The readings API on PostgreSQL, against a real web server: ingest with an Idempotency-Key (and
concurrent retries), then the export's bytes, poison rows from before the checks, and streaming."""
import threading
from contextlib import closing

import pytest
import requests
from pg import shell

from readings.export import BATCH
from tests.conftest import WebServer

TOKEN = "pg-token"


@pytest.fixture
def pg_api(live_env, pg_url, tmp_path):
    server = WebServer(dict(live_env, DATABASE_URL=pg_url, INGEST_TOKEN=TOKEN), tmp_path / "web.log")
    server.start()
    yield server, pg_url
    server.stop()


def post(server, body, key):
    return requests.post(server.url + "/api/readings", json=body, timeout=60,
                         headers={"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": key})


def test_ingest_and_export_on_postgresql(pg_api):
    server, url = pg_api
    items = [{"sensor_id": "roof", "temperature_c": 20.5, "taken_at": "2026-11-28T13:30:00.250001+01:30"},
             {"sensor_id": "cellar", "temperature_c": 11, "taken_at": "2026-11-28T12:00:00Z"},
             {"sensor_id": "roof", "temperature_c": -4.75, "taken_at": "2026-11-28T11:59:59.999999Z"}]
    replies = []
    threads = [threading.Thread(target=lambda: replies.append(post(server, items, "pg-race")))
               for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {reply.status_code for reply in replies} == {201}
    ids = replies[0].json()["ids"]
    assert all(reply.json() == {"ids": ids} for reply in replies) and len(ids) == 3

    with closing(shell(url)) as psql:
        assert psql.execute("SELECT count(*) FROM readings").fetchone() == (3,)
        # Rows from before the checks (NOT VALID keeps them), inside the range.
        psql.execute("ALTER TABLE readings DROP CONSTRAINT readings_temperature_c_check")
        psql.execute("ALTER TABLE readings DROP CONSTRAINT readings_sensor_id_check")
        psql.execute("INSERT INTO readings (sensor_id, taken_at, temperature_c) VALUES "
                     "('roof', '2026-11-28 12:10:00+00', 'NaN'), ('', '2026-11-28 12:10:01+00', 20)")
        psql.execute("INSERT INTO readings (sensor_id, taken_at, temperature_c) "
                     "SELECT 'bulk', timestamptz '2026-11-28 12:30:00+00' + i * interval '1 ms', i %% 50 "
                     "FROM generate_series(0, %s) AS i", (3 * BATCH,))

    span = {"from": "2026-11-28T12:00:00Z", "to": "2026-11-28T12:30:00Z"}
    csv_text = requests.get(server.url + "/api/readings.csv", params=span, timeout=60).text
    assert csv_text == ("id,sensor_id,taken_at,temperature_c\n"
                        f"{ids[1]},cellar,2026-11-28T12:00:00.000000Z,11.0\n"
                        f"{ids[0]},roof,2026-11-28T12:00:00.250001Z,20.5\n")
    answer = requests.get(server.url + "/api/readings", params={**span, "sensor": "roof"}, timeout=60).json()
    assert [r["id"] for r in answer["readings"]] == [ids[0]] and answer["skipped"] == 1

    whole = {"from": "2026-11-28T00:00:00Z", "to": "2026-11-29T00:00:00Z", "sensor": "bulk"}
    with requests.get(server.url + "/api/readings.csv", params=whole, stream=True, timeout=60,
                      headers={"Accept-Encoding": "identity"}) as reply:
        assert reply.headers.get("Transfer-Encoding") == "chunked"
        chunks = list(reply.raw.read_chunked(decode_content=True))
    assert len(chunks) > 3 and b"".join(chunks).count(b"\n") == 3 * BATCH + 2
