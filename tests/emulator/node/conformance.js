// The official Node SDK (pinned in package.json) against the emulator: create, fetch, list
// across pages, update with `twiml`, with `url` + `method`, and with `status`; errors as
// RestException; every webhook's X-Twilio-Signature checked with twilio.validateRequest.
//
// Run by tests/emulator/test_emulator_node_sdk.py, which owns the emulator's manual clock: this
// script asks it, one JSON line at a time on stdout, to advance time ({"advance": s}) or to hand
// over the webhooks the app received ({"hits": true}); the answer comes back as a line on stdin.
"use strict";

const readline = require("readline");
const twilio = require("twilio");

const { EMULATOR_URL, ACCOUNT_SID, AUTH_TOKEN, RECEIVER_URL, NUMBER } = process.env;
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();

async function ask(request) {
  process.stdout.write(JSON.stringify(request) + "\n");
  const { value, done } = await lines.next();
  if (done) throw new Error("the test closed the conversation");
  return JSON.parse(value);
}

function check(condition, what) {
  if (!condition) throw new Error("check failed: " + what);
}

async function refused(promise, status, code) {
  try {
    await promise;
  } catch (error) {
    check(error instanceof twilio.RestException, `RestException, got ${error}`);
    check(error.status === status && error.code === code, `HTTP ${status}/${code}, got ${error.status}/${error.code}`);
    return error;
  }
  throw new Error(`expected HTTP ${status}/${code}, the request succeeded`);
}

async function main() {
  const client = twilio(ACCOUNT_SID, AUTH_TOKEN);
  client.api.baseUrl = EMULATOR_URL;
  const summary = {};

  const call = await client.calls.create({
    to: "+15555550111",
    from: NUMBER,
    url: RECEIVER_URL + "/voice",
    statusCallback: RECEIVER_URL + "/status",
    statusCallbackEvent: ["initiated", "ringing", "answered", "completed"],
  });
  check(call.status === "queued" && /^CA[0-9a-f]{32}$/.test(call.sid), `created queued: ${call.status}`);
  check(call.direction === "outbound-api" && call.from === NUMBER, "direction and from");
  summary.sid = call.sid;

  await ask({ advance: 1 });
  const fetched = await client.calls(call.sid).fetch();
  check(fetched.status === "in-progress", `fetched in-progress: ${fetched.status}`);
  check(fetched.startTime instanceof Date, "startTime is a Date");

  const injected = await client.calls(call.sid).update({ twiml: "<Response><Say>Hello from Node</Say><Pause length=\"30\"/></Response>" });
  check(injected.status === "in-progress", "twiml update keeps the call in progress");
  await ask({ advance: 1 });

  const redirected = await client.calls(call.sid).update({ url: RECEIVER_URL + "/node-redirect?step=2", method: "GET" });
  check(redirected.status === "in-progress", "url update keeps the call in progress");
  await ask({ advance: 1 });

  const ended = await client.calls(call.sid).update({ status: "completed" });
  check(ended.status === "completed", `status=completed ends it: ${ended.status}`);
  await ask({ advance: 1 });

  const notLive = await refused(client.calls(call.sid).update({ url: RECEIVER_URL + "/late" }), 400, 21220);
  summary.not_in_progress = notLive.message;
  await refused(client.calls("CA" + "0".repeat(32)).fetch(), 404, 20404);
  await refused(client.calls.create({ to: "+15555550111", from: NUMBER, url: RECEIVER_URL + "/voice", timeout: 601 }), 400, 21208);
  await refused(client.calls.create({ to: "+15005550001", from: NUMBER, url: RECEIVER_URL + "/voice" }), 400, 21217);

  const more = [];
  for (let i = 0; i < 4; i++) {
    more.push((await client.calls.create({ to: "+1555555012" + i, from: NUMBER, twiml: "<Response><Hangup/></Response>" })).sid);
  }
  const listed = await client.calls.list({ pageSize: 2 });
  const all = new Set([call.sid, ...more]);
  check(listed.length === all.size && listed.every((c) => all.has(c.sid)), `list across pages: ${listed.length}`);
  const first = await client.calls.page({ pageSize: 2 });
  const second = await first.nextPage();
  check(first.instances.length === 2 && second.instances.length === 2, "page, then nextPage");
  check(first.instances[0].sid === more[3], "newest first");
  summary.pages = [first.instances.length, second.instances.length];

  await ask({ advance: 2 });
  const hits = await ask({ hits: true });
  check(hits.length === 6, `webhooks received (voice, redirect, four callbacks): ${hits.length}`);
  for (const hit of hits) {
    check(twilio.validateRequest(AUTH_TOKEN, hit.signature, hit.url, hit.params), `signature of ${hit.method} ${hit.url}`);
  }
  check(!twilio.validateRequest("wrong-token", hits[0].signature, hits[0].url, hits[0].params), "a wrong token fails");
  summary.validated = hits.length;
  await ask({ done: summary });
}

main().catch((error) => {
  process.stdout.write(JSON.stringify({ error: String((error && error.stack) || error) }) + "\n");
  process.exit(1);
});
