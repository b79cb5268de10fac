"""JSON API for scripts, the panel and tests (HTTP Basic with the operator's credentials)."""
from __future__ import annotations

from flask import Blueprint, abort, jsonify, request
from werkzeug.exceptions import HTTPException

from auth import basic_auth_required
from models import ACTIVE_STATUSES, STATUS_RANK, Call, db

bp = Blueprint("api", __name__, url_prefix="/api")

MAX_PER_PAGE = 100


@bp.errorhandler(HTTPException)
def json_error(error: HTTPException):
    """Answer every API error as JSON with its status and a message."""
    response = jsonify(error=error.name.lower().replace(" ", "_"), message=error.description)
    response.status_code = error.code or 500
    return response


def _positive_int_arg(name: str, default: int) -> int:
    """Read a positive integer query parameter, or answer 400."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
        abort(400, description=f"{name} must be a positive integer")
    return int(raw)


@bp.get("/calls")
@basic_auth_required
def list_calls():
    """List calls newest first; ?status=…, ?active=1, ?page=, ?per_page= (at most 100)."""
    page = _positive_int_arg("page", 1)
    per_page = min(_positive_int_arg("per_page", 50), MAX_PER_PAGE)
    query = db.select(Call).order_by(Call.created_at.desc(), Call.sid.desc())
    status = request.args.get("status")
    if status:
        if status not in STATUS_RANK:
            abort(400, description=f"status must be one of: {', '.join(STATUS_RANK)}")
        query = query.where(Call.status == status)
    if request.args.get("active") in ("1", "true"):
        query = query.where(Call.status.in_(ACTIVE_STATUSES))
    pagination = db.paginate(query, page=page, per_page=per_page, error_out=False)
    return jsonify(
        calls=[call.to_dict() for call in pagination.items],
        page=pagination.page,
        per_page=pagination.per_page,
        total=pagination.total,
        pages=pagination.pages,
    )


@bp.get("/calls/<sid>")
@basic_auth_required
def get_call(sid: str):
    """One call with its recorded events (status timeline) and operator actions."""
    call = db.get_or_404(Call, sid, description=f"No call with CallSid {sid[:40]} is recorded")
    return jsonify(
        **call.to_dict(),
        events=[event.to_dict() for event in call.events],
        actions=[action.to_dict() for action in call.actions],
    )
