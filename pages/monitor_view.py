"""The monitor's view (sensors, window, unit, zone) as a link names it: pure, no Dash, so that
it is tested without an app. Not a page: pages/monitor.py uses it."""

# The window's name in the URL: (seconds, label on its button)
WINDOWS = {"15m": (900, "15 min"), "1h": (3600, "1 h"), "24h": (86400, "24 h"),
           "7d": (7 * 86400, "7 d"), "30d": (30 * 86400, "30 d")}
UNIT_LABELS = {"C": "°C", "F": "°F"}
TZ_LABELS = {"local": "Local", "utc": "UTC"}
DEFAULT_VIEW = {"window": "1h", "unit": "C", "tz": "local"}


def view_from_query(query, sensors):
    """The view a link asks for (`?sensor=lab&sensor=office&window=15m&unit=F&tz=utc`), with the
    defaults for what it leaves out, and a sentence for each value that is not one of the choices.

    `sensors` in the view: the sensors the link names, in the order of `sensors` (configured
    first); an empty list means every sensor, including those first seen after the page loads."""
    choices = {"window": WINDOWS, "unit": UNIT_LABELS, "tz": TZ_LABELS}
    view, problems = dict(DEFAULT_VIEW), []
    for key, allowed in choices.items():
        value = query.get(key)
        if isinstance(value, list):
            value = value[-1]
        if value is None:
            continue
        if value in allowed:
            view[key] = value
        else:
            problems.append(f"Ignored {key}={value}: expected one of {', '.join(allowed)}.")
    asked = query.get("sensor", [])
    asked = [asked] if isinstance(asked, str) else asked
    problems += [f"Ignored sensor={s}: no such sensor." for s in asked if s not in sensors]
    view["sensors"] = [s for s in sensors if s in asked]
    return view, problems
