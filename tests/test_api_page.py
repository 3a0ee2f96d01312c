"""A reading posted to the ingest API reaches an open monitor page like any other write."""
from datetime import datetime, timedelta, timezone

import requests

from tests import test_api_ingest
from tests.test_monitor_page import LATEST, open_monitor, table_rows, wait_for

# The ingest tests' fixtures: a web server with INGEST_TOKEN for this module, an emptied database.
api_server, sql = test_api_ingest.api_server, test_api_ingest.sql


def test_an_ingested_reading_appears_on_an_open_page(dash_duo, api_server, sql):
    open_monitor(dash_duo, api_server.url)
    now = datetime.now(timezone.utc)
    readings = [{"sensor_id": "sensor-1", "temperature_c": 18.5 + i,
                 "taken_at": (now - timedelta(seconds=3 - i)).isoformat()} for i in range(3)]
    reply = requests.post(api_server.url + "/api/readings", json=readings, timeout=60,
                          headers={"Authorization": f"Bearer {test_api_ingest.TOKEN}"})
    assert reply.status_code == 201, reply.text
    ids = reply.json()["ids"]
    wait_for(lambda: set(ids) <= set(table_rows(dash_duo)), "the posted readings in #readings-table")
    assert [table_rows(dash_duo)[i][1] for i in ids] == ["18.5 °C", "19.5 °C", "20.5 °C"]
    dash_duo.wait_for_text_to_equal(LATEST, "20.5 °C")
