"""The readings API, a Flask blueprint: POST /api/readings stores readings sent by devices and
tools (bearer token), GET /api/readings and /api/readings.csv export them, streamed.

The export needs no token: the monitor page and its WebSocket already show every reading to
anyone who can reach the server, so a token would protect nothing that is not public already.
"""
import hmac
import json
from datetime import datetime, timezone

from flask import Blueprint, Response, abort, current_app, jsonify, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from . import export, ingest
from .models import db

# 1,000 readings take ~100 kB; the app-wide MAX_CONTENT_LENGTH is sized for Dash callbacks.
MAX_BODY_BYTES = 2**20
MAX_KEY_CHARS = 255

blueprint = Blueprint("api", __name__, url_prefix="/api")


def problem(status, message, **details):
    response = jsonify(error=message, **details)
    response.status_code = status
    return response


@blueprint.errorhandler(HTTPException)
def http_error(error):
    """JSON, not Flask's HTML page, for the 404 and 413 raised in these views."""
    return problem(error.code, error.description)


@blueprint.errorhandler(OperationalError)
def database_busy(error):
    """A locked or unreachable database: nothing was stored, and a retry may succeed."""
    current_app.logger.warning("readings API: database error: %s", error)
    response = problem(503, "the database is busy or unreachable; nothing was stored, retry "
                            "(with the same Idempotency-Key)")
    response.headers["Retry-After"] = "1"
    return response


def authorized(header, token):
    scheme, _, given = header.partition(" ")
    # Constant time: how much of a guess matches must not show in the response time.
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def read_body():
    """The request body, or 413 if it is over MAX_BODY_BYTES: from its Content-Length before
    reading, or while reading a chunked one."""
    # One byte over the limit: werkzeug's stream stops at the limit without saying it cut anything.
    request.max_content_length = MAX_BODY_BYTES + 1
    try:
        body = request.get_data(cache=False)
    except RequestEntityTooLarge:
        body = None
    if body is None or len(body) > MAX_BODY_BYTES:
        abort(413, f"the body is over {MAX_BODY_BYTES} bytes (1 MiB); send fewer readings at once")
    return body


def idempotency_key():
    key = request.headers.get("Idempotency-Key")
    if key is not None and not (0 < len(key) <= MAX_KEY_CHARS and key.isascii() and key.isprintable()):
        abort(400, f"Idempotency-Key must be 1 to {MAX_KEY_CHARS} printable ASCII characters")
    return key


@blueprint.post("/readings")
def post_readings():
    token = current_app.config.get("INGEST_TOKEN")
    if not token:
        abort(404, "the ingest API is off: set INGEST_TOKEN to turn it on")
    if not authorized(request.headers.get("Authorization", ""), token):
        response = problem(401, "send Authorization: Bearer <INGEST_TOKEN>")
        response.headers["WWW-Authenticate"] = "Bearer"
        return response
    body = read_body()
    key, now = idempotency_key(), datetime.now(timezone.utc)
    body_sha256 = ingest.digest(body)
    try:
        earlier = key is not None and ingest.earlier_answer(key, body_sha256, now)
    except ingest.KeyReused as reused:
        return problem(422, str(reused))
    if earlier:
        return jsonify(earlier[1]), earlier[0]
    try:
        data = json.loads(body)
    except ValueError as error:  # also bytes that are not UTF-8
        return problem(400, f"malformed JSON: {error}")
    except RecursionError:
        return problem(400, "malformed JSON: nested too deeply")
    try:
        rows = ingest.parse_items(data, now)
    except ingest.BadItem as bad:
        return problem(422, str(bad), field=bad.field, index=bad.index)
    status, answer = ingest.store(rows, now, key, body_sha256)
    return jsonify(answer), status


def _export(chunks, mimetype, **headers):
    try:
        sensors, start, end = export.parse_query(request.args, datetime.now(timezone.utc))
    except ValueError as error:
        return problem(400, str(error))
    # The engine, not the request's session: the rows are read after this view has returned.
    readings = export.Export(db.engine, sensors, start, end)
    # No Content-Length: the server sends each batch as it is read (chunked transfer).
    return Response((chunk for chunk in chunks(readings) if chunk), mimetype=mimetype, headers=headers)


@blueprint.get("/readings")
def get_readings_json():
    return _export(export.json_chunks, "application/json")


@blueprint.get("/readings.csv")
def get_readings_csv():
    return _export(export.csv_chunks, "text/csv",
                   **{"Content-Disposition": 'attachment; filename="readings.csv"'})
