"""Tables of the alerts and retention (schema: migrations/versions/0006_alerts.py)."""
from .models import UTCDateTime, db


class SensorThreshold(db.Model):
    """A sensor's band: a reading below low_c or above high_c raises an alert (None: no limit)."""

    __tablename__ = "sensor_thresholds"
    sensor_id = db.Column(db.Text, primary_key=True)
    low_c = db.Column(db.Float)
    high_c = db.Column(db.Float)
    updated_at = db.Column(UTCDateTime, nullable=False)


class Alert(db.Model):
    """One alert: open while ended_at is None; at most one open per (sensor, kind)."""

    __tablename__ = "alerts"
    id = db.Column(db.Integer, primary_key=True)
    sensor_id = db.Column(db.Text, nullable=False)
    kind = db.Column(db.String(8), nullable=False)
    started_at = db.Column(UTCDateTime, nullable=False)
    ended_at = db.Column(UTCDateTime)
    value = db.Column(db.Float)
    details = db.Column(db.Text)


class LogRetention(db.Model):
    """One row: the highest reading_changes id that retention has pruned (0 when none)."""

    __tablename__ = "log_retention"
    id = db.Column(db.Integer, primary_key=True)
    pruned_through_id = db.Column(db.Integer, nullable=False)
