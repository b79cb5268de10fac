"""Twilio's error codes that Switchboard can meet, explained where they appear: a line of
cause, a line of fix, and Twilio's page for the code (https://www.twilio.com/docs/api/errors)."""
from __future__ import annotations

from dataclasses import dataclass

DOCS = "https://www.twilio.com/docs/api/errors/{code}"


@dataclass(frozen=True)
class Explanation:
    """What an error code means for this app."""

    code: int
    title: str
    cause: str
    fix: str

    @property
    def link(self) -> str:
        """Twilio's page for the code."""
        return DOCS.format(code=self.code)

    def to_dict(self) -> dict:
        """The explanation as the JSON API gives it."""
        return {"code": self.code, "title": self.title, "cause": self.cause, "fix": self.fix,
                "link": self.link}


_KNOWN = [
    # TwiML and webhooks: what Twilio met when it fetched or ran our TwiML.
    (11200, "HTTP retrieval failure",
     "Twilio could not fetch TwiML from the URL: no answer, a connection error, or an HTTP error.",
     "Check that the URL is right and reachable from the internet (ngrok running, PUBLIC_URL "
     "set), and that it answers 200 with TwiML."),
    (11205, "HTTP connection failure",
     "Twilio could not connect to the URL's server at all.",
     "Check the host name and port, and that the server (or ngrok) is up."),
    (11750, "TwiML response body too large",
     "The URL answered with more than 64 kB of TwiML.",
     "Answer with a shorter document; play long audio with <Play> instead."),
    (12100, "Document parse failure",
     "The URL's answer was not well-formed XML.",
     "Answer with valid TwiML: check the document in the panel's Send TwiML checker."),
    (12102, "Invalid root element",
     "The document's root element was not <Response>.",
     "Wrap the verbs in <Response>…</Response>."),
    (12300, "Invalid Content-Type",
     "The URL answered with a Content-Type Twilio does not run (not XML, not audio).",
     "Answer TwiML with Content-Type text/xml (or application/xml)."),
    (15004, "Call failed: relative URL in TwiML",
     "A verb named a relative URL Twilio could not resolve against the document's URL.",
     "Use absolute URLs; the panel makes them absolute when it sends TwiML."),
    # REST: what the API refused.
    (20003, "Authentication failed",
     "The Account SID and Auth Token the app used were refused.",
     "Set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN to the account's live credentials."),
    (20404, "Resource not found",
     "Twilio has no such call on this account (a wrong SID, or another account's call).",
     "Check the CallSid; Sync with Twilio marks calls Twilio does not know."),
    (20429, "Too many requests",
     "The account sent more API requests than its rate limit allows.",
     "Retry after a pause (the SDK does not); spread bulk actions out."),
    (21205, "Url is not a valid URL",
     "The Url parameter was not an absolute http(s) URL Twilio accepts.",
     "Give an absolute URL such as https://example.com/twiml, or a path of ours like /voice/hold."),
    (21210, "From is not a verified number",
     "Calls must come from a number the account owns or a verified caller ID.",
     "Set TWILIO_PHONE_NUMBER (or From) to one of the account's numbers."),
    (21211, "Invalid To number",
     "The number to call is not a valid phone number.",
     "Give the number in E.164 form, like +15555550123."),
    (21212, "Invalid From number",
     "The From number is not a valid phone number or client.",
     "Give From in E.164 form, like +15555550100."),
    (21213, "From is required",
     "A call was created without a From number.",
     "Set TWILIO_PHONE_NUMBER, or give From."),
    (21214, "To number cannot be reached",
     "Twilio could not route a call to that number.",
     "Check the number; try another."),
    (21215, "Geographic permission needed",
     "The account may not call that country or area.",
     "Enable the destination in the Console's Voice geographic permissions."),
    (21216, "Number is blocked",
     "Twilio refuses calls to that number (for example a premium-rate number).",
     "Call another number."),
    (21217, "Invalid phone number",
     "The To number is not a valid phone number.",
     "Give the number in E.164 form, like +15555550123."),
    (21218, "Invalid ApplicationSid",
     "The ApplicationSid given does not exist on the account.",
     "Check the TwiML App's SID, or give Url instead."),
    (21220, "Call is not in progress",
     "New TwiML (Url or Twiml) is accepted only for a call in progress: it was still ringing, "
     "or it had just ended.",
     "Wait for an answer (or Cancel a ringing call); the panel offers these only while the "
     "call is in progress."),
    (32018, "TwiML too long",
     "The Twiml parameter is limited to 4000 characters.",
     "Send a shorter document, or host it and Redirect to its URL."),
]

ERRORS = {code: Explanation(code, title, cause, fix) for code, title, cause, fix in _KNOWN}


def explain(code: int | None) -> Explanation | None:
    """The explanation of a Twilio error code; a generic one (with the link) for codes not
    listed, None for no code."""
    if code is None:
        return None
    return ERRORS.get(code) or Explanation(
        code, f"Twilio error {code}", "See Twilio's page for this code.",
        "Twilio's page for the code lists causes and fixes.")
