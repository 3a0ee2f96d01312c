"""Where temperatures come from, and what counts as a believable one.

A source is a callable returning degrees Celsius (or raising SourceError when it cannot answer).
"""
import http.client
import json
import math
import random
import socket
import threading
import time
import urllib.parse

MIN_C, MAX_C = -50.0, 150.0


class SourceError(Exception):
    """The sensor could not be read this time (unreachable, bad reply)."""


class InvalidReading(ValueError):
    """A value that must not be stored; the message says why."""


def validate(value):
    """The value as a float if it is a finite temperature within MIN_C..MAX_C, else InvalidReading."""
    if isinstance(value, bool):
        raise InvalidReading(f"not a number: {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidReading(f"not a number: {value!r}") from None
    if not math.isfinite(number):
        raise InvalidReading(f"not finite: {number!r}")
    if not MIN_C <= number <= MAX_C:
        raise InvalidReading(f"{number} C is outside {MIN_C:g}..{MAX_C:g} C")
    return number


class SimulatedSensor:
    """A believable room: a daily cycle around a base level, a slow random-walk drift, noise,
    reported at 0.1 C resolution. Deterministic for a given seed and sequence of times."""

    def __init__(self, base_c=21.0, daily_amplitude_c=1.5, drift_step_c=0.02, noise_c=0.05, seed=None):
        self.base_c = base_c
        self.daily_amplitude_c = daily_amplitude_c
        self.drift_step_c = drift_step_c
        self.noise_c = noise_c
        self.rng = random.Random(seed)
        self.drift_c = 0.0

    def __call__(self, now=None):
        now = time.time() if now is None else now
        hours = (now % 86400) / 3600
        # Coolest around 05:00, warmest around 17:00.
        daily = -self.daily_amplitude_c * math.cos(2 * math.pi * (hours - 5) / 24)
        # Mean-reverting drift stays within a degree or two of the base.
        self.drift_c = 0.98 * self.drift_c + self.rng.gauss(0, self.drift_step_c)
        value = self.base_c + daily + self.drift_c + self.rng.gauss(0, self.noise_c)
        return round(value, 1)


def parse_reply(body):
    """A temperature from an HTTP reply: a plain number, or JSON (a number, or an object with
    temperature_c / temperature / value)."""
    text = body.decode("utf-8", "replace").strip() if isinstance(body, bytes) else str(body).strip()
    try:
        data = json.loads(text)
    except ValueError:
        raise SourceError(f"reply is neither a number nor JSON: {text[:80]!r}") from None
    if isinstance(data, dict):
        for key in ("temperature_c", "temperature", "value"):
            if key in data:
                return data[key]
        raise SourceError(f"JSON reply has no temperature_c, temperature or value: {text[:80]!r}")
    return data


class HttpSensor:
    """A real device that answers GET url with its temperature, within deadline_s in total.

    A per-operation timeout is not enough: a device that sends one byte every 2 s never trips a 3 s
    timeout and would hold the worker for as long as it trickles. A timer cuts the connection when
    the whole exchange (connect, request, headers, body) has taken deadline_s.
    """

    def __init__(self, url, deadline_s=3.0):
        self.url = url
        self.deadline_s = deadline_s
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SourceError(f"SENSOR_URL must be an http(s) URL, not {url!r}")
        self._parts = parts

    def __call__(self, now=None):
        try:
            return parse_reply(self._get())
        except (OSError, http.client.HTTPException) as error:  # refused, reset, timed out, cut
            raise SourceError(f"{self.url} unreachable: {error or type(error).__name__}") from None

    def _get(self):
        parts = self._parts
        kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        connection = kind(parts.hostname, parts.port, timeout=self.deadline_s)
        started = time.monotonic()
        connection.connect()
        sock = connection.sock  # kept: the connection forgets it once a reply says "close"
        cut = threading.Timer(max(0.0, self.deadline_s - (time.monotonic() - started)),
                              _shut, (sock,))
        cut.start()
        try:
            connection.request("GET", urllib.parse.urlunsplit(("", "", parts.path or "/",
                                                               parts.query, "")))
            reply = connection.getresponse()
            body = reply.read(64 * 1024)
        finally:
            cut.cancel()
            connection.close()
        if time.monotonic() - started >= self.deadline_s:
            raise TimeoutError(f"no complete reply within {self.deadline_s:g} s")
        if reply.status != 200:
            raise SourceError(f"{self.url} answered HTTP {reply.status} {reply.reason}")
        return body


def _shut(sock):
    # shutdown() wakes a recv() blocked in another thread; close() alone would not.
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def source_for(sensor_id, sensor_url=None, deadline_s=3.0):
    """The HTTP source when SENSOR_URL is set ({sensor} in it names the sensor), else a simulation."""
    if sensor_url:
        return HttpSensor(sensor_url.replace("{sensor}", sensor_id), deadline_s)
    return SimulatedSensor(seed=sensor_id)
