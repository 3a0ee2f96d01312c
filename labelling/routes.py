"""POST /nilm/upload streams a recording into the job store; GET /nilm/download/<job> sends its labels.

The upload is the raw file as the body (the page posts the browser's File), its name in ?name=.
It is read from request.stream a chunk at a time and compressed on the way, so a web process holds
about a fifth of the file, never the whole of it, let alone Dash's base64-in-JSON copy. Bodies over
store.UPLOAD_MAX_BYTES are refused with 413 before they are read when they say their length, and
as soon as they pass the limit when they do not.

Same-origin only, as the readings socket: a browser's POST from another site carries its Origin.
"""
import logging
from urllib.parse import quote

from flask import Blueprint, Response, jsonify, request
from kombu.exceptions import OperationalError

from readings.socket import same_origin

from . import jobs, store

log = logging.getLogger(__name__)
bp = Blueprint("labelling", __name__, url_prefix="/nilm")
GONE = "That upload is no longer on the server; please upload it again."


@bp.post("/upload")
def upload():
    if not same_origin(request.headers.get("Origin"), request.host):
        log.warning("refused cross-origin upload from %r", request.headers.get("Origin"))
        return refusal(403, "Uploads are accepted from this site's own pages only.")
    name = request.args.get("name", "").strip() or "upload.csv"
    size = request.content_length
    if size is not None and size > store.UPLOAD_MAX_BYTES:
        return refusal(413, store.too_big_message(name, size))
    # The app-wide cap is for Dash callbacks; past this one compress_chunks has already refused.
    request.max_content_length = store.UPLOAD_MAX_BYTES + store.CHUNK
    try:
        packed = store.compress_chunks(iter(lambda: request.stream.read(store.CHUNK), b""), name)
    except store.TooLarge as error:
        return refusal(413, str(error))
    try:
        job_id = jobs.submit(name, packed)
    except OperationalError:
        log.exception("could not queue the labelling of %r", name)
        return refusal(503, f"{name} could not be queued for labelling now; please try again shortly.")
    return jsonify(job=job_id, name=name)


@bp.route("/download/<job_id>", methods=["GET", "HEAD"])
def download(job_id):
    if request.method == "HEAD":  # the page checks before it starts a download it can name
        return ("", 200) if store.has_labelled(job_id) else (GONE, 404)
    found = store.labelled_chunks(job_id)
    if found is None:
        return GONE, 404, {"Content-Type": "text/plain; charset=utf-8"}
    name, chunks = found
    return Response(chunks, mimetype="text/csv", headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"})


def refusal(status, message):
    response = jsonify(error=message)
    response.status_code = status
    # A refused body may still be on its way: close the connection rather than read it.
    response.headers["Connection"] = "close"
    return response
