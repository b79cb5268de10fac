"""The audit trail: who did what, when, to which call, through which door, and the outcome.

Every operator action on a call (with Twilio's answer or error), every claim, release and
takeover, every login and logout, and every change to an operator account is one row of
`operator_actions`. The panel's /admin/audit, its CSV export and the API's /api/audit all
read it through `search()`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from flask import has_request_context, request
from sqlalchemy import func, select

from models import OperatorAction, db

PER_PAGE = 50
CSV_COLUMNS = ("id", "created_at", "operator", "via", "address", "action", "call_sid", "ok",
               "error_code", "result", "params")


@dataclass(frozen=True)
class Actor:
    """Who did something, and through which door: the panel, the API, the command line, or
    the app's own configuration (ADMIN_USERNAME/ADMIN_PASSWORD)."""

    username: str
    operator_id: int | None
    via: str
    address: str | None = None

    @classmethod
    def of(cls, operator, via: str) -> Actor:
        """An operator, acting in this request."""
        return cls(operator.username, operator.id, via,
                   client_address() if has_request_context() else None)


def client_address() -> str:
    """The client's address (through ProxyFix: the address the proxy saw)."""
    return (request.remote_addr or "unknown")[:64]


def record(actor: Actor, action: str, params: dict, ok: bool = True, result: str = "",
           call_sid: str | None = None, code: int | None = None) -> OperatorAction:
    """Add one entry to the audit trail and commit it."""
    entry = OperatorAction(
        call_sid=call_sid, operator=actor.username[:255], operator_id=actor.operator_id,
        via=actor.via, address=actor.address, action=action,
        params=json.dumps(params, sort_keys=True), ok=ok, result=result, error_code=code,
    )
    db.session.add(entry)
    db.session.commit()
    return entry


class BadFilter(ValueError):
    """A filter value we cannot use (answered with a 400 or a flash)."""


@dataclass(frozen=True)
class Filters:
    """What the audit trail is narrowed to: operator, call, and a date range (inclusive)."""

    operator: str = ""
    call_sid: str = ""
    since: date | None = None
    until: date | None = None

    @classmethod
    def from_args(cls, args) -> Filters:
        """Read ?operator=, ?call=, ?from=YYYY-MM-DD and ?to=YYYY-MM-DD; BadFilter if wrong."""
        return cls(operator=(args.get("operator") or "").strip().lower()[:64],
                   call_sid=(args.get("call") or "").strip()[:34],
                   since=parse_day(args.get("from"), "from"),
                   until=parse_day(args.get("to"), "to"))

    def as_args(self) -> dict:
        """The filters as query arguments (for links to other pages and the CSV)."""
        return {key: value for key, value in (
            ("operator", self.operator), ("call", self.call_sid),
            ("from", self.since.isoformat() if self.since else ""),
            ("to", self.until.isoformat() if self.until else "")) if value}


def parse_day(raw: str | None, name: str) -> date | None:
    """A ?from=/?to= day (YYYY-MM-DD); None when empty, BadFilter when it is not a date."""
    if not raw:
        return None
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise BadFilter(f"{name} must be a date like 2026-11-23.") from None


def between_days(column, since: date | None, until: date | None) -> list:
    """Conditions for `column` (naive UTC) from the start of `since` to the end of `until`,
    both inclusive, either open."""
    conditions = []
    if since:
        conditions.append(column >= datetime.combine(since, time()))
    if until:
        conditions.append(column < datetime.combine(until + timedelta(days=1), time()))
    return conditions


def search(filters: Filters, page: int | None = 1, per_page: int = PER_PAGE):
    """Entries matching `filters`, newest first: (entries, total). `page=None`: all of them."""
    conditions = []
    if filters.operator:
        conditions.append(OperatorAction.operator == filters.operator)
    if filters.call_sid:
        conditions.append(OperatorAction.call_sid == filters.call_sid)
    conditions += between_days(OperatorAction.created_at, filters.since, filters.until)
    query = select(OperatorAction).where(*conditions) \
        .order_by(OperatorAction.created_at.desc(), OperatorAction.id.desc())
    total = db.session.scalar(select(func.count()).select_from(OperatorAction).where(*conditions))
    if page is not None:
        query = query.limit(per_page).offset((page - 1) * per_page)
    return db.session.scalars(query).all(), total


def csv_row(entry: OperatorAction) -> list:
    """One entry as a CSV row (CSV_COLUMNS); cells a spreadsheet would run as a formula are
    prefixed with a quote."""
    values = [entry.id, entry.created_at.isoformat(timespec="seconds") + "Z", entry.operator,
              entry.via, entry.address or "", entry.action, entry.call_sid or "",
              "ok" if entry.ok else "failed", entry.error_code or "", entry.result, entry.params]
    return [("'" + v) if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r")
            else v for v in values]
