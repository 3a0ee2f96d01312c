import math
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import trickle

from readings.sources import (
    HttpSensor,
    InvalidReading,
    SimulatedSensor,
    SourceError,
    parse_reply,
    source_for,
    validate,
)


@pytest.mark.parametrize("value", [21.4, "21.4", -50, 150, 0])
def test_validate_accepts_finite_values_in_range(value):
    assert validate(value) == float(value)


@pytest.mark.parametrize("value, reason", [
    (float("nan"), "not finite"), (float("inf"), "not finite"), (-50.1, "outside"),
    (150.01, "outside"), ("warm", "not a number"), (None, "not a number"), (True, "not a number"),
])
def test_validate_rejects_with_reason(value, reason):
    with pytest.raises(InvalidReading, match=reason):
        validate(value)


def test_simulated_sensor_is_believable_indoors():
    sensor = SimulatedSensor(seed="s")
    start = 1_764_000_000
    values = [sensor(start + 10 * i) for i in range(8640)]  # one day at 10 s
    assert all(15 < v < 28 for v in values)
    assert all(round(v, 1) == v for v in values)  # 0.1 C resolution
    steps = [abs(b - a) for a, b in zip(values, values[1:])]
    assert max(steps) < 0.6  # no jumps between consecutive readings
    assert max(values) - min(values) > 1.0  # the daily cycle shows


def test_simulated_sensor_is_reproducible_per_seed():
    times = [1_764_000_000 + 10 * i for i in range(50)]
    a, b = SimulatedSensor(seed="x"), SimulatedSensor(seed="x")
    assert [a(t) for t in times] == [b(t) for t in times]


@pytest.mark.parametrize("body, expected", [
    (b"21.5", 21.5), (b" 19 \n", 19), (b'{"temperature_c": 20.1}', 20.1),
    (b'{"temperature": 18}', 18), (b'{"value": "17.5"}', "17.5"),
])
def test_parse_reply_accepts_numbers_and_json(body, expected):
    assert parse_reply(body) == expected


@pytest.mark.parametrize("body", [b"hot", b'{"humidity": 40}', b"<html>"])
def test_parse_reply_rejects_other_bodies(body):
    with pytest.raises(SourceError):
        parse_reply(body)


@pytest.fixture
def http_sensor_server(http_device):
    replies = {"/s1": (200, b'{"temperature_c": 22.3}'), "/nan": (200, b"NaN")}
    return http_device(lambda path: replies.get(path, (404, b"no")))


def test_http_sensor_reads_a_real_device(http_sensor_server):
    assert validate(source_for("s1", http_sensor_server + "/{sensor}")()) == 22.3


def test_http_sensor_nan_is_caught_by_validation(http_sensor_server):
    value = HttpSensor(http_sensor_server + "/nan")()
    assert math.isnan(value)
    with pytest.raises(InvalidReading):
        validate(value)


def test_http_sensor_unreachable_is_a_source_error():
    with pytest.raises(SourceError, match="unreachable"):
        HttpSensor("http://127.0.0.1:9/none", deadline_s=1)()


def test_http_error_status_is_a_source_error(http_sensor_server):
    with pytest.raises(SourceError):
        HttpSensor(http_sensor_server + "/missing")()


def test_http_sensor_gives_up_on_a_trickling_device_at_its_deadline(http_device):
    # One byte every 0.5 s never trips a per-read timeout; only a total deadline stops it.
    url = http_device(lambda path: (200, trickle(0.5)))
    started = time.monotonic()
    with pytest.raises(SourceError, match="unreachable"):
        HttpSensor(url, deadline_s=1.5)()
    assert time.monotonic() - started < 10  # not the minute the device would trickle for


def test_http_sensor_reads_a_prompt_device_while_another_request_trickles(http_device):
    url = http_device(lambda path: (200, trickle(0.5) if path == "/slow" else b"21.5"))
    with ThreadPoolExecutor() as pool:
        slow = pool.submit(HttpSensor(url + "/slow", deadline_s=1.5))
        assert HttpSensor(url + "/good", deadline_s=1)() == 21.5
        with pytest.raises(SourceError):
            slow.result()


def test_http_sensor_refuses_a_url_that_is_not_http():
    with pytest.raises(SourceError, match="SENSOR_URL must be an http"):
        HttpSensor("ftp://example/x")
