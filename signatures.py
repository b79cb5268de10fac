"""X-Twilio-Signature verification for every route Twilio requests (reference §9)."""
from __future__ import annotations

from functools import wraps
from urllib.parse import quote

from flask import abort, current_app, g, request
from twilio.request_validator import RequestValidator


def requested_url() -> str:
    """The URL as Twilio requested it: PUBLIC_URL + path and query, else what the proxy saw."""
    path_and_query = _raw_path_and_query()
    public_url = current_app.config["PUBLIC_URL"]
    if public_url:
        return public_url + path_and_query
    # request.host and request.scheme already honour X-Forwarded-Host/-Proto (ProxyFix).
    return f"{request.scheme}://{request.host}{path_and_query}"


def _raw_path_and_query() -> str:
    """The path and query exactly as they arrived on the wire (signatures are byte-exact)."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw and raw.startswith("/"):
        return raw
    path = quote(request.script_root + request.path, safe="/:@!$&'()*+,;=-._~")
    query = request.query_string.decode("latin-1")
    return f"{path}?{query}" if query else path


def signature_verdict() -> str:
    """What the check of X-Twilio-Signature (this request signed with our Auth Token) says:
    valid, invalid, missing, or unchecked (checks off); the URL it was checked on is kept in
    g.signature_url."""
    url = g.signature_url = requested_url()
    config, req = current_app.config, request._get_current_object()  # once: every webhook
    if not config["TWILIO_VALIDATE_SIGNATURES"]:
        return "unchecked"
    signature = req.headers.get("X-Twilio-Signature")
    if signature is None:
        return "missing"
    token = config["TWILIO_AUTH_TOKEN"]
    params = req.form if req.method == "POST" else {}
    valid = bool(signature and token) and RequestValidator(token).validate(url, params, signature)
    return "valid" if valid else "invalid"


def twilio_signed(view):
    """Decorate a view so that requests without a valid X-Twilio-Signature get a 403."""

    @wraps(view)
    def checked(*args, **kwargs):
        g.signature = signature_verdict()
        if g.signature in ("invalid", "missing"):
            current_app.logger.warning(
                "Refused %s %s: X-Twilio-Signature %s for URL %s",
                request.method, request.path,
                "missing" if g.signature == "missing" else "does not match", g.signature_url,
            )
            abort(403, description="Invalid or missing X-Twilio-Signature.")
        return view(*args, **kwargs)

    return checked
