"""The operator panel: the live list, history, a call's page, and the operator actions.

Live updates are polls of server-rendered HTML: the database is the only source of truth,
so it works with any number of gunicorn workers. The live list asks for the rows changed
since its cursor (see "live list" below); a call's page polls its partial with htmx, sending
the fingerprint of what it shows, and a 204 leaves the page alone when nothing changed. Forms
with text fields live outside the polled regions, so focus and half-typed input are never
disturbed.
"""
from __future__ import annotations

import getpass
import hashlib
import json
import re
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import click
from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import current_user, login_required
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import joinedload

import actions
import audit
import call_control
import transcript as transcript_module
import twiml
from audit import Actor
from call_control import ControlError
from call_records import RECORDING_SID_PATTERN
from journey import demo_sources
from journey import journey as journey_of
from models import (
    ACTIVE_STATUSES,
    CANCELABLE_STATUSES,
    MAX_PAGE,
    RECORDING_FINAL_STATUSES,
    STATUS_RANK,
    VIEWER_SECONDS,
    Call,
    CallEvent,
    CallRecording,
    CallView,
    GatherResult,
    OperatorAction,
    db,
    rare,
    stale_before,
    upsert_dialect,
    utcnow,
)

bp = Blueprint("panel", __name__, cli_group=None)

HISTORY_PER_PAGE = 50
# After a call ends its page keeps polling this long, for the callbacks that follow the end.
ENDED_POLL_SECONDS = 30
FINGERPRINT_HEADER = "X-Fingerprint"


def init_app(app: Flask) -> None:
    """Register the panel's pages and the sync-calls CLI command."""
    app.register_blueprint(bp)
    app.jinja_env.globals["status_class"] = status_class
    app.jinja_env.globals["row_version"] = version
    app.jinja_env.filters["pretty_xml"] = twiml.pretty
    app.jinja_env.filters["duration"] = format_duration
    app.jinja_env.globals["utcnow"] = utcnow
    app.jinja_env.globals["MAX_MESSAGE_CHARS"] = twiml.MAX_MESSAGE_CHARS


@bp.get("/")
def index():
    """The site root is the panel."""
    return redirect(url_for("panel.live"))


# -------------------------------------------------------------- live list
#
# The page renders every live call once; after that each poll asks only for what changed
# since its cursor (Call.changed_at, indexed), so a poll when nothing changed reads no call
# and a poll after one change sends one row. Commits can land in a different order than
# their changed_at (two workers, two instances), so a poll looks FEED_LAG further back and
# the page says which of those rows it already has (X-Seen: sid@version, …).

FEED_LAG = timedelta(seconds=5)
# More changed rows than this since the cursor (a laptop waking up): send the whole list.
FEED_RESET_ROWS = 200
# How often each process marks the calls that went quiet as possibly stale.
STALE_SWEEP_SECONDS = 10
SEEN_HEADER = "X-Seen"
_LAST_SWEEP = "switchboard.stale_sweep"


def status_class(status: str) -> str:
    """CSS class for a status badge."""
    return "status-" + (status if status in STATUS_RANK else "unknown")


def format_duration(seconds) -> str:
    """A duration the same way everywhere (history, call page, live list; app.js ticks it in
    the same words): "45 s", "4 min 05 s", "1 h 02 min 05 s"; "—" when unknown."""
    if seconds is None:
        return "—"
    if isinstance(seconds, timedelta):
        seconds = seconds.total_seconds()
    hours, rest = divmod(max(0, int(seconds)), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min {secs:02d} s"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def stamp(changed_at: datetime) -> str:
    """A changed_at as the live list's versions and cursors write it (to the microsecond:
    the same text format compares in time order)."""
    return changed_at.isoformat(timespec="microseconds")


def version(call: Call) -> str:
    """The version of a call's row in the live list."""
    return stamp(call.changed_at)


def mark_stale_calls(force: bool = False) -> None:
    """Mark the live calls nobody heard from for STALE_AFTER_SECONDS as shown stale (a change
    for the live list), at most every STALE_SWEEP_SECONDS per process unless `force`."""
    now = time.monotonic()
    if not force and now - current_app.extensions.get(_LAST_SWEEP, -STALE_SWEEP_SECONDS) \
            < STALE_SWEEP_SECONDS:
        return
    current_app.extensions[_LAST_SWEEP] = now
    db.session.execute(
        update(Call).where(Call.live(), Call.shown_stale.is_(False),
                           Call.updated_at < stale_before())
        .values(shown_stale=True, changed_at=utcnow()).execution_options(synchronize_session=False))
    db.session.commit()


def _live_calls(mine: bool) -> list[Call]:
    """Live calls, newest first, each child leg right under its parent; `mine`: only the calls
    the current operator handles."""
    query = select(Call).where(Call.live()).options(joinedload(Call.handler_operator)) \
        .order_by(*Call.newest_first())
    if mine:
        query = query.where(Call.handler_id == current_user.id)
    calls = db.session.scalars(query).all()
    live_sids = {c.sid for c in calls}
    children: dict[str, list[Call]] = {}
    for c in calls:
        if c.parent_call_sid in live_sids:
            children.setdefault(c.parent_call_sid, []).append(c)
    ordered: list[Call] = []
    for c in calls:
        if c.parent_call_sid in live_sids:
            continue
        ordered.append(c)
        ordered.extend(reversed(children.get(c.sid, [])))
    return ordered


def _counts() -> dict[str, int]:
    """How many calls are live, and how many of them ring (for the tab title)."""
    rows = db.session.execute(select(Call.status, func.count()).where(Call.live())
                              .group_by(Call.status)).all()
    by_status = dict(rows)
    return {"live": sum(by_status.values()),
            "ringing": sum(by_status.get(s, 0) for s in CANCELABLE_STATUSES)}


def _cursor() -> str:
    """The newest change the database holds: where a freshly rendered page's feed starts."""
    newest = db.session.scalar(select(func.max(Call.changed_at)))
    return stamp(newest or datetime(1970, 1, 1))


def _parse_seen(header: str) -> dict[str, str]:
    """X-Seen: "sid@version, …" → {sid: version} (malformed entries are ignored)."""
    seen = {}
    for item in header.split(",")[:FEED_RESET_ROWS * 2]:
        sid, _, at = item.strip().partition("@")
        if sid and at:
            seen[sid] = at
    return seen


def _belongs(call: Call, mine: bool) -> bool:
    return call.is_active and (not mine or call.handler_id == current_user.id)


@bp.get("/admin")
@login_required
def live():
    """The live list of calls, kept current by polling for what changed."""
    mark_stale_calls()
    mine = request.args.get("mine") == "1"
    return render_template("live.html", demo=_demo_mode(), mine=mine, calls=_live_calls(mine),
                           cursor=_cursor(), counts=_counts(),
                           poll_ms=current_app.config["PANEL_POLL_MS"],
                           hold_ms=current_app.config["PANEL_HOLD_MS"],
                           lag_ms=int(FEED_LAG.total_seconds() * 1000),
                           phone_number=current_app.config["TWILIO_PHONE_NUMBER"])


@bp.get("/admin/live")
@login_required
def live_rows():
    """What changed in the live list since ?since= (204: nothing), as rows to put in place
    and rows to take out; without ?since=, or after too many changes, the whole list."""
    mark_stale_calls()
    mine = request.args.get("mine") == "1"
    raw_since = request.args.get("since", "")
    if not raw_since:
        return _whole_list(mine)
    try:
        since = datetime.fromisoformat(raw_since)
    except ValueError:
        abort(400, description="since must be an ISO 8601 time, as the page received it.")
    seen = _parse_seen(request.headers.get(SEEN_HEADER, ""))
    changed = db.session.execute(
        select(Call.sid, Call.changed_at).where(Call.changed_at > since - FEED_LAG)
        .limit(FEED_RESET_ROWS + 1)).all()
    if len(changed) > FEED_RESET_ROWS:
        return _whole_list(mine)
    fresh = [sid for sid, at in changed
             if seen.get(sid) != stamp(at)]
    if not fresh:
        return Response(status=204)
    calls = db.session.scalars(select(Call).where(Call.sid.in_(fresh))
                               .options(joinedload(Call.handler_operator))
                               .order_by(Call.created_at, Call.sid)).all()
    newest = stamp(max(at for _, at in changed))
    return render_template("_live_update.html", cursor=max(newest, raw_since), counts=_counts(),
                           calls=[c for c in calls if _belongs(c, mine)],
                           gone=[c for c in calls if not _belongs(c, mine)], reset=False,
                           mine=mine)


def _whole_list(mine: bool):
    return render_template("_live_update.html", cursor=_cursor(), counts=_counts(),
                           calls=_live_calls(mine), gone=[], reset=True, mine=mine)


# -------------------------------------------------------------- history

# The directions Twilio gives a call, as the history's filter names them.
DIRECTIONS = {"inbound": "Inbound", "outbound-api": "Placed by us",
              "outbound-dial": "Dialed legs (transfers)"}


@dataclass(frozen=True)
class HistoryFilters:
    """What the history is narrowed to; each is a query argument of its own."""

    status: str = ""  # a Twilio status, or "live"
    number: str = ""  # From or To: "+1555…" starts with it, other digits appear anywhere
    name: str = ""  # the caller's name (CNAM) contains it, any case
    since: date | None = None  # started on or after this day (UTC)
    until: date | None = None  # started on or before this day (UTC)
    direction: str = ""

    @classmethod
    def from_args(cls, args) -> tuple[HistoryFilters, list[str]]:
        """The filters in ?status=&number=&name=&from=&to=&direction=, and what was ignored
        (a value we cannot use is dropped, never an error page)."""
        ignored = []
        status = args.get("status", "")
        if status not in STATUS_RANK and status not in ("", "live"):
            ignored.append(f"Ignored the status {status[:32]!r}: not a call status.")
            status = ""
        days = {}
        for name, label in (("from", "From date"), ("to", "To date")):
            try:
                days[name] = audit.parse_day(args.get(name), name)
            except audit.BadFilter:
                ignored.append(f"Ignored the {label} {args.get(name)[:32]!r}: use a date like "
                               "2026-11-23.")
                days[name] = None
        if days["from"] and days["to"] and days["from"] > days["to"]:
            ignored.append("The From date is after the To date: no call can match.")
        direction = args.get("direction", "")
        if direction and direction not in DIRECTIONS:
            ignored.append(f"Ignored the direction {direction[:32]!r}.")
            direction = ""
        return cls(status=status, number=args.get("number", "").strip()[:64],
                   name=args.get("name", "").strip()[:64], since=days["from"],
                   until=days["to"], direction=direction), ignored

    def as_args(self) -> dict:
        """The filters as query arguments (for links to other pages of the same list)."""
        return {key: value for key, value in (
            ("status", self.status), ("number", self.number), ("name", self.name),
            ("from", self.since.isoformat() if self.since else ""),
            ("to", self.until.isoformat() if self.until else ""),
            ("direction", self.direction)) if value}

    def conditions(self) -> list:
        """The SQL conditions. Status and dates are served by the (status,) created_at, sid
        indexes, a number starting with + by the number indexes."""
        conditions = []
        if self.status == "live":
            conditions.append(Call.status.in_(ACTIVE_STATUSES))
        elif self.status:
            conditions.append(Call.status == self.status)
        if self.number:
            conditions.append(_number_condition(self.number))
        if self.name:
            conditions.append(Call.caller_name.ilike(_contains(self.name), escape="\\"))
        if self.direction:
            conditions.append(Call.direction == self.direction)
        return conditions + audit.between_days(Call.created_at, self.since, self.until)


def _contains(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, its wildcards taken literally."""
    return "%" + text.replace("\\", "\\\\").replace("_", r"\_").replace("%", r"\%") + "%"


def _number_condition(raw: str):
    """'+1555…' matches numbers starting with it (indexed); other input (digits, or a
    client:/sip: address) matches anywhere in From or To."""
    value = actions.normalize_number(raw) if raw.strip().startswith("+") else raw.strip()
    if value.startswith("+"):
        upper = value + "\U0010ffff"
        return or_(and_(Call.from_number >= value, Call.from_number < upper),
                   and_(Call.to_number >= value, Call.to_number < upper))
    pattern = _contains("".join(ch for ch in value if ch.isalnum() or ch in "@:._-"))
    return or_(Call.from_number.like(pattern, escape="\\"),
               Call.to_number.like(pattern, escape="\\"))


def page_number(raw: str | None) -> int:
    """A panel page's ?page=: 1 when missing or not a number, at most MAX_PAGE (a page past
    the last is then sent to the last one)."""
    if not raw or not raw.isascii() or not raw.isdigit():
        return 1
    return max(1, min(int(raw) if len(raw) <= 9 else MAX_PAGE, MAX_PAGE))


def history_page(filters: HistoryFilters, page: int, per_page: int = HISTORY_PER_PAGE):
    """One page of calls, newest first: (calls, total). The page's SIDs come from the index
    alone, then only those rows are read, so the last page costs about what the first does."""
    conditions = filters.conditions()
    total = db.session.scalar(select(func.count()).select_from(Call).where(*conditions))
    order = (Call.created_at.desc(), Call.sid.desc())
    sids = db.session.scalars(
        select(Call.sid).where(*conditions).order_by(*order)
        .limit(per_page).offset((page - 1) * per_page)
    ).all()
    calls = db.session.scalars(select(Call).where(Call.sid.in_(sids)).order_by(*order)).all() \
        if sids else []
    return calls, total


@dataclass
class HistoryRow:
    """A row of the history: a call, or one of its child legs (`under_parent`) right below
    it. A leg whose parent is on another page stays in its own place, linked to the parent."""

    call: Call
    under_parent: bool = False


def with_legs(calls: list[Call]) -> list[HistoryRow]:
    """The page's calls with each one's child legs right under it (all its legs, whether or
    not they match the filters: they are part of the call). One indexed query."""
    on_page = {call.sid for call in calls}
    heads = [call.sid for call in calls if call.parent_call_sid not in on_page]
    legs: dict[str, list[Call]] = {}
    for leg in db.session.scalars(select(Call).where(rare(Call.parent_call_sid.in_(heads)))
                                  .order_by(Call.created_at, Call.sid)).all() if heads else []:
        legs.setdefault(leg.parent_call_sid, []).append(leg)
    attached = {leg.sid for group in legs.values() for leg in group}
    rows = []
    for call in calls:
        if call.sid in attached:
            continue
        rows.append(HistoryRow(call))
        rows.extend(HistoryRow(leg, under_parent=True) for leg in legs.get(call.sid, []))
    return rows


@bp.get("/admin/history")
@login_required
def history():
    """Every call, newest first, paginated, child legs under their parent; filters by status,
    number, caller name, dates and direction."""
    filters, ignored = HistoryFilters.from_args(request.args)
    for message in ignored:
        flash(message, "error")
    page = page_number(request.args.get("page"))
    calls, total = history_page(filters, page)
    pages = max(1, -(-total // HISTORY_PER_PAGE))
    if page > pages and total:
        return redirect(url_for("panel.history", page=pages, **filters.as_args()))
    return render_template("history.html", rows=with_legs(calls), total=total, page=page,
                           pages=pages, filters=filters, statuses=list(STATUS_RANK),
                           directions=DIRECTIONS, per_page=HISTORY_PER_PAGE)


# -------------------------------------------------------------- one call

def _fingerprint(data) -> str:
    return hashlib.sha256(repr(data).encode()).hexdigest()[:20]


def _unchanged(fingerprint: str) -> bool:
    """True when the poller already shows exactly this (then we answer 204: no swap)."""
    return request.headers.get("HX-Request") == "true" and \
        request.headers.get(FINGERPRINT_HEADER) == fingerprint


def _call_or_404(sid: str) -> Call:
    return db.get_or_404(Call, sid, description="No call with that CallSid is recorded.")


def _call_context(call: Call) -> dict:
    """Everything the call page's polled region shows."""
    events = db.session.scalars(
        select(CallEvent).where(CallEvent.call_sid == call.sid).order_by(CallEvent.id)
    ).all()
    operator_actions = db.session.scalars(
        select(OperatorAction).where(OperatorAction.call_sid == call.sid)
        .order_by(OperatorAction.id.desc())
    ).all()
    children = db.session.scalars(
        select(Call).where(rare(Call.parent_call_sid == call.sid)).order_by(Call.created_at)
    ).all()
    transcript, twilio_events, transcript_error = demo_sources(call.sid)
    stale = call.is_stale
    polling = _keeps_polling(call)
    _seen(call)
    others = [v for v in viewers(call.sid) if v.id != current_user.id]
    timeline = status_timeline(events)
    heard = transcript_module.fold((transcript or {}).get("transcript") or [],
                                   current_app.config["HOLD_MUSIC_URL"])
    steps = journey_of(call.sid, current_app.config["TWILIO_AUTH_TOKEN"], heard, twilio_events)
    fingerprint = _fingerprint([
        call.status, call.duration, stale, polling, [e.id for e in events], call.handler_id,
        [v.username for v in others],
        [a.id for a in operator_actions], [(c.sid, c.status) for c in children],
        json.dumps(transcript, sort_keys=True, default=str), transcript_error,
        [(step.kind, step.at, step.summary, step.repeats, step.twilio) for step in steps],
    ])
    return {
        "call": call, "events": timeline, "journey": steps, "operator_actions": operator_actions,
        "children": children, "transcript": transcript, "transcript_error": transcript_error,
        "transcript_lines": heard,
        "stale": stale, "polling": polling, "fingerprint": fingerprint, "other_viewers": others,
        "poll_ms": current_app.config["PANEL_POLL_MS"], "demo": _demo_mode(),
        "parent": db.session.get(Call, call.parent_call_sid) if call.parent_call_sid else None,
    }


def _keeps_polling(call: Call) -> bool:
    """A call's page polls while the call is live, and a little after (for the callbacks
    that follow the end)."""
    return call.is_active or call.updated_at > utcnow() - timedelta(seconds=ENDED_POLL_SECONDS)


def status_timeline(events: list[CallEvent]) -> list[CallEvent]:
    """One entry per status, the first that told us (an answer is reported by /voice and by
    the `in-progress` callback; a sync may report what a callback already did)."""
    seen: set[str] = set()
    timeline = []
    for event in events:
        if event.status not in seen:
            seen.add(event.status)
            timeline.append(event)
    return timeline


def _render_call_page(call: Call, status: int = 200, values: dict | None = None):
    hold_path = url_for("voice.hold")
    presets = twiml.presets(current_app.config["HOLD_MUSIC_URL"], hold_path=hold_path,
                            gathered_path=url_for("voice.gathered"),
                            recorded_path=url_for("voice.recorded"),
                            status_path=url_for("voice.status"),
                            recording_status_path=url_for("voice.recording_status"))
    values = values or {}
    return render_template(
        "call.html", presets=presets, values=values,
        twiml_text=values.get("twiml", presets[0].twiml),
        max_twiml=twiml.MAX_TWIML_CHARS, earlier_number=other_party(call),
        earlier_calls=earlier_calls(call),
        **_results_context(call), **_call_context(call),
    ), status


@bp.get("/admin/calls/<sid>")
@login_required
def call_page(sid: str):
    """A call: its status timeline, child legs, operator actions, transcript, and controls."""
    return _render_call_page(_call_or_404(sid))


@bp.get("/admin/calls/<sid>/live")
@login_required
def call_live(sid: str):
    """The call page's polled region alone, for htmx; 204 when nothing changed."""
    context = _call_context(_call_or_404(sid))
    if _unchanged(context["fingerprint"]):
        return Response(status=204)
    return render_template("_call_live.html", oob=True, **context)


# -------------------------------------------------------------- what the caller did

# A recording whose status callback has not come yet keeps its call's results polling this
# long: Twilio processes the file after the call, usually within seconds.
RECORDING_WAIT_SECONDS = 300
EARLIER_CALLS = 5


def _results_context(call: Call) -> dict:
    """The call page's "what the caller did" region: recordings and <Gather> answers."""
    recordings = db.session.scalars(select(CallRecording).where(
        CallRecording.call_sid == call.sid).order_by(CallRecording.id)).all()
    gathered = db.session.scalars(select(GatherResult).where(
        GatherResult.call_sid == call.sid).order_by(GatherResult.id)).all()
    waiting_since = utcnow() - timedelta(seconds=RECORDING_WAIT_SECONDS)
    polling = _keeps_polling(call) or any(
        r.status not in RECORDING_FINAL_STATUSES and r.received_at > waiting_since
        for r in recordings)
    fingerprint = _fingerprint([
        polling, [(r.recording_sid, r.status, r.duration, r.error_code) for r in recordings],
        [answer.id for answer in gathered]])
    return {"recordings": recordings, "gathered": gathered, "results_polling": polling,
            "results_fingerprint": fingerprint}


@bp.get("/admin/calls/<sid>/results")
@login_required
def call_results(sid: str):
    """The call page's recordings and keys/words region alone, for htmx; 204 when nothing
    changed (a playing recording is never interrupted by a poll)."""
    call = _call_or_404(sid)
    context = _results_context(call)
    if _unchanged(context["results_fingerprint"]):
        return Response(status=204)
    return render_template("_call_results.html", call=call,
                           poll_ms=current_app.config["PANEL_POLL_MS"], **context)


def relay_recording(sid: str, fmt: str) -> Response:
    """A recording's audio, fetched from Twilio with our credentials and streamed on: the
    browser (and the CSP's media-src 'self') only ever sees our URL. At most
    RECORDING_MAX_BYTES; 404 for a recording we do not have or Twilio has no audio for,
    502 (504 on a timeout) when Twilio cannot give it."""
    if fmt not in call_control.RECORDING_FORMATS or not RECORDING_SID_PATTERN.match(sid):
        abort(404, description="No such recording: use RE… followed by .mp3 or .wav.")
    recording = db.session.scalar(select(CallRecording).where(
        CallRecording.recording_sid == sid))
    if recording is None:
        abort(404, description=f"No recording {sid} is recorded.")
    if not recording.has_media:
        abort(404, description=f"Twilio has no audio for recording {sid} ({recording.status}"
                               + (f", error {recording.error_code}" if recording.error_code
                                  else "") + ").")
    try:
        upstream = call_control.recording_media(sid, fmt, request.headers.get("Range"))
    except ControlError as error:
        code = 404 if error.http_status == 404 else 504 if error.timed_out else 502
        abort(code, description=error.message)
    limit = current_app.config["RECORDING_MAX_BYTES"]
    kind = upstream.headers.get("Content-Type", "").split(";")[0].strip().lower()
    length = upstream.headers.get("Content-Length", "")
    refusal = None
    if not (kind.startswith("audio/") or kind == "application/octet-stream"):
        refusal = f"Twilio answered with {kind[:60] or 'no content type'}, not audio."
    elif length.isdigit() and int(length) > limit:
        refusal = (f"The recording is {int(length):,} bytes; the panel plays at most "
                   f"{limit:,} (RECORDING_MAX_BYTES).")
    if refusal:
        upstream.close()
        abort(502, description=refusal)

    def body():
        sent = 0
        try:
            for chunk in upstream.iter_content(64 * 1024):
                sent += len(chunk)
                if sent > limit:
                    current_app.logger.warning("Recording %s cut at %d bytes", sid, limit)
                    return
                yield chunk
        finally:
            upstream.close()

    headers = {"Cache-Control": "private, max-age=3600",
               "Accept-Ranges": upstream.headers.get("Accept-Ranges", "none")}
    if "Content-Encoding" not in upstream.headers:  # else requests hands us decoded bytes
        for name in ("Content-Length", "Content-Range"):
            if name in upstream.headers:
                headers[name] = upstream.headers[name]
    response = Response(stream_with_context(body()), status=upstream.status_code,
                        headers=headers, content_type=kind if kind.startswith("audio/")
                        else call_control.RECORDING_FORMATS[fmt])
    response.call_on_close(upstream.close)
    return response


@bp.get("/admin/recordings/<sid>.<fmt>")
@login_required
def recording_audio(sid: str, fmt: str):
    """A recording's audio for the call page's player (mp3 or wav), through us: Twilio's
    media may need our credentials, which never reach the page."""
    return relay_recording(sid, fmt)


def other_party(call: Call) -> str | None:
    """The number on the other end of the line from us: the caller of an inbound call, the
    callee of one we placed or dialed."""
    inbound = not (call.direction or "").startswith("outbound")
    number = call.from_number if inbound else call.to_number
    return None if not number or number == current_app.config["TWILIO_PHONE_NUMBER"] else number


def earlier_calls(call: Call, limit: int = EARLIER_CALLS) -> list[Call]:
    """The last few calls with the same number before this one, newest first: the newest few
    from it and the newest few to it, each through its own number index, then merged."""
    number = other_party(call)
    if number is None:
        return []
    before = or_(Call.created_at < call.created_at,
                 and_(Call.created_at == call.created_at, Call.sid < call.sid))
    found = {}
    for column in (Call.from_number, Call.to_number):
        found.update((c.sid, c) for c in db.session.scalars(
            select(Call).where(rare(column == number), before)
            .order_by(Call.created_at.desc(), Call.sid.desc()).limit(limit)))
    return sorted(found.values(), key=lambda c: (c.created_at, c.sid), reverse=True)[:limit]


# -------------------------------------------------------------- actions

def _actor() -> Actor:
    return Actor.of(current_user, "panel")


def _seen(call: Call) -> None:
    """Note that the current operator has the call's page open (its polling keeps it fresh)."""
    dialect = upsert_dialect(db.engine.dialect.name)
    values = {"call_sid": call.sid, "operator_id": current_user.id, "seen_at": utcnow()}
    if dialect is None:  # other databases: a plain merge
        db.session.merge(CallView(**values))
    else:
        statement = dialect.insert(CallView).values(values)
        db.session.execute(statement.on_conflict_do_update(
            index_elements=["call_sid", "operator_id"], set_={"seen_at": values["seen_at"]}))
    db.session.commit()


def viewers(sid: str) -> list:
    """Operators who had the call's page open in the last VIEWER_SECONDS, by username."""
    since = utcnow() - timedelta(seconds=VIEWER_SECONDS)
    views = db.session.scalars(select(CallView).where(CallView.call_sid == sid,
                                                      CallView.seen_at > since)).all()
    return sorted((view.operator for view in views), key=lambda operator: operator.username)


def _after_action(result: actions.ActionResult, sid: str, values: dict | None = None):
    """Show the outcome: back to the list, or to the call page (keeping what was typed on failure)."""
    back_to_list = request.form.get("next") == "live"
    if result.http_status == 404 and result.call_sid is None:
        abort(404, description=result.message)
    if not result.ok and not back_to_list:
        flash(result.message, "error")
        call = db.session.get(Call, sid)
        return _render_call_page(call, result.http_status, values)
    flash(result.message, "ok" if result.ok else "error")
    if back_to_list:
        return redirect(url_for("panel.live"))
    return redirect(url_for("panel.call_page", sid=sid))


@bp.post("/admin/calls/<sid>/hangup")
@login_required
def hang_up(sid: str):
    """Hang up a call (the button asks for confirmation first)."""
    return _after_action(actions.hang_up(sid, _actor()), sid)


@bp.post("/admin/calls/<sid>/cancel")
@login_required
def cancel(sid: str):
    """Cancel a queued or ringing call."""
    return _after_action(actions.cancel(sid, _actor()), sid)


@bp.post("/admin/calls/<sid>/redirect")
@login_required
def redirect_call(sid: str):
    """Redirect a call to a TwiML URL."""
    url, method = request.form.get("url", ""), request.form.get("method", "POST")
    result = actions.redirect(sid, url, method, _actor())
    return _after_action(result, sid, {"url": url, "method": method})


@bp.post("/admin/calls/<sid>/twiml")
@login_required
def send_twiml(sid: str):
    """Send TwiML to a call (checked before anything reaches Twilio)."""
    text = request.form.get("twiml", "")
    return _after_action(actions.send_twiml(sid, text, _actor()), sid, {"twiml": text})


@bp.post("/admin/calls/<sid>/claim")
@login_required
def claim(sid: str):
    """Claim a call: "I'm on it"."""
    return _after_action(actions.claim(sid, _actor()), sid)


@bp.post("/admin/calls/<sid>/takeover")
@login_required
def takeover(sid: str):
    """Take a call over from the operator handling it (the button asks first)."""
    return _after_action(actions.claim(sid, _actor(), takeover=True), sid)


@bp.post("/admin/calls/<sid>/release")
@login_required
def release(sid: str):
    """Give a call up, so another operator can claim it."""
    return _after_action(actions.release(sid, _actor()), sid)


@bp.post("/admin/calls")
@login_required
def place_call():
    """Place an outbound call; it is tracked like an inbound one. Once answered it hears our
    hold loop, a message (then the call ends), or the TwiML at a URL. A refusal shows the
    live list again with what was typed."""
    form = request.form
    answer = form.get("answer") or "hold"
    result = actions.place_call(form.get("to"), form.get("from") or None, _actor(),
                                answer=answer, message=form.get("message"),
                                url=form.get("url"), method=form.get("method"))
    flash(result.message, "ok" if result.ok else "error")
    if result.ok:
        return redirect(url_for("panel.call_page", sid=result.call_sid))
    g.place_call_values = {key: form.get(key, "") for key in
                           ("to", "from", "answer", "message", "url", "method")}
    return live(), result.http_status


@bp.post("/admin/sync")
@login_required
def sync():
    """Fetch the real status of every live call from Twilio and record what changed."""
    result = actions.sync_live_calls(_actor())
    flash(result.message, "ok" if result.ok else "error")
    return redirect(url_for("panel.live"))


@bp.post("/admin/simulate")
@login_required
def simulate():
    """Demo mode: make the emulator ring us like an inbound caller."""
    if not _demo_mode():
        abort(404)
    from_number = actions.normalize_number(request.form.get("from") or "+15555550123")
    caller_name = (request.form.get("caller_name") or "").strip()[:100] or None
    try:
        call = call_control.simulate_incoming(from_number, caller_name)
    except ControlError as error:
        flash(f"The emulator refused: {error.message}", "error")
    else:
        sid = call.get("call_sid") if isinstance(call, dict) else None
        flash(f"Simulated a call from {from_number}" + (f" ({sid})." if sid else "."), "ok")
    return redirect(url_for("panel.live"))


_DIGITS = re.compile(r"^[0-9*#]{1,64}$")


@bp.post("/admin/calls/<sid>/caller/digits")
@login_required
def caller_presses(sid: str):
    """Demo mode: the simulated caller presses keys (as at a <Gather>)."""
    call = _demo_call_or_404(sid)
    digits = (request.form.get("digits") or "").strip()
    if not _DIGITS.match(digits):
        flash("Keys must be one to 64 of 0–9, * and #.", "error")
    else:
        _as_the_caller(lambda: call_control.caller_presses(call.sid, digits),
                       f"The caller pressed {digits}.")
    return redirect(url_for("panel.call_page", sid=call.sid))


@bp.post("/admin/calls/<sid>/caller/hangup")
@login_required
def caller_hangs_up(sid: str):
    """Demo mode: the simulated caller hangs up."""
    call = _demo_call_or_404(sid)
    _as_the_caller(lambda: call_control.caller_hangs_up(call.sid), "The caller hung up.")
    return redirect(url_for("panel.call_page", sid=call.sid))


@bp.post("/admin/calls/<sid>/caller/stay")
@login_required
def caller_stays(sid: str):
    """Demo mode: the simulated caller stays on the line until someone hangs up."""
    call = _demo_call_or_404(sid)
    _as_the_caller(lambda: call_control.caller_stays(call.sid),
                   "The caller will stay on the line until someone hangs up.")
    return redirect(url_for("panel.call_page", sid=call.sid))


def _demo_call_or_404(sid: str) -> Call:
    if not _demo_mode():
        abort(404)
    return _call_or_404(sid)


def _as_the_caller(act, done: str) -> None:
    """Ask the emulator to act as the caller; flash what happened."""
    try:
        act()
    except ControlError as error:
        flash(f"The emulator refused: {error.message}", "error")
    else:
        flash(done, "ok")


def _demo_mode() -> bool:
    return bool(current_app.config["EMULATOR_URL"])


@bp.cli.command("sync-calls")
def sync_calls_command():
    """Fetch the real status of calls the database thinks are live, and record changes."""
    with current_app.test_request_context(current_app.config["PUBLIC_URL"] or "/"):
        result = actions.sync_live_calls(Actor(getpass.getuser(), None, "cli"))
    click.echo(result.message)
    if not result.ok:
        raise SystemExit(1)
