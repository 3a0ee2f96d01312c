"""Alerts and retention on PostgreSQL: its partial unique index, timestamptz and trigger function."""
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from readings import alerts, create_db_app, pg, retention
from readings.models import db
from readings.sampling import write_sample

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def pg_app(pg_url):
    app = create_db_app({"SQLALCHEMY_DATABASE_URI": pg_url})
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def test_alerts_start_once_and_end_on_postgresql(pg_app):
    alerts.set_threshold("sensor-1", 18, 25)
    write_sample("sensor-1", 30.0, NOW)
    [started] = alerts.evaluate_sensor("sensor-1", NOW, 25)
    assert alerts.evaluate_sensor("sensor-1", NOW, 25) == []
    with pytest.raises(Exception, match="alerts_one_open"):
        db.session.execute(text("INSERT INTO alerts (sensor_id, kind, started_at) "
                                "VALUES ('sensor-1', 'high', now())"))
    db.session.rollback()
    write_sample("sensor-1", 20.0, NOW + timedelta(seconds=10))
    [ended] = alerts.evaluate_sensor("sensor-1", NOW, 25)
    assert (ended["event"], ended["alert"]["id"]) == ("ended", started["alert"]["id"])
    with pytest.raises(Exception, match="sensor_thresholds_band_check"):
        db.session.execute(text("INSERT INTO sensor_thresholds VALUES ('x', 30, 20, now())"))
    db.session.rollback()


def test_retention_on_postgresql_leaves_no_delete_in_the_log(pg_app):
    for days in (120, 91, 1):
        write_sample("sensor-1", 20.0, NOW - timedelta(days=days))
    # Until a relay has ordered a change (seq) nobody can have seen it, so nothing is pruned.
    assert retention.prune(NOW, 90) == {"readings": 2, "changes": 0, "alerts": 0}
    assert pg.assign_order() > 0
    assert retention.prune(NOW, 90) == {"readings": 0, "changes": 2, "alerts": 0}
    assert db.session.execute(text("SELECT op, reading_id FROM reading_changes")).all() == [
        ("INSERT", 3)]
    assert retention.pruned_through() == 2
