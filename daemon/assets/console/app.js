// The cfgd console: one page kept live by the daemon's event stream
// (/api/events: the Watch stream as server-sent events), writing through
// the JSON API (/api/*), which answers with the daemon's own refusals.
// Everything shown goes in as text (textContent), never as markup.
(() => {
"use strict";

const { drawTimeline, drawLegend, drawSchedule, describe } = window.cfgdDraw;
const $ = (id) => document.getElementById(id);

const state = {
  settings: new Map(),   // name -> resolved setting
  catalog: new Map(),    // name -> catalogue entry
  changes: [],           // the timeline, oldest first
  selected: null,        // the revision whose diff is open
  status: null,
  revision: null,
  epoch: null,
  lastId: null,          // "<epoch>:<revision>" of the last event seen
  source: null,          // the EventSource
  retryMs: 1000,
  revealed: false,
};

// ---------------------------------------------------------------- calls

function token() {
  return $("token").value.trim();
}

function headers(json) {
  const h = {};
  if (json) h["Content-Type"] = "application/json";
  if (token()) h["Authorization"] = "Bearer " + token();
  return h;
}

// A call to the API: the JSON answer, or a thrown refusal with the
// daemon's code, reason, message and problems.
async function call(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: headers(body !== undefined),
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  if (!res.ok) {
    const error = (data && data.error) || { code: String(res.status), message: text || res.statusText, problems: [] };
    throw Object.assign(new Error(error.message), { refusal: error });
  }
  return data;
}

// ---------------------------------------------------------------- words

function valueText(v) {
  return v ? v.text : "unset";
}

function valueNode(v) {
  const span = document.createElement("span");
  span.textContent = valueText(v) || "(empty)";
  if (!v || v.kind === "unset" || !v.text) span.className = "unset";
  if (v && v.kind === "masked") span.className = "masked";
  return span;
}

function layerNode(source) {
  const span = document.createElement("span");
  if (!source) { span.textContent = "—"; return span; }
  const badge = document.createElement("span");
  badge.className = "layer " + source.layer;
  badge.textContent = source.layer.replace("_", " ");
  span.append(badge, " ");
  const rest = source.label.replace(/^(defaults|profile|config file|\.env file|env)\s*/, "");
  if (rest) span.append(rest);
  return span;
}

function typeText(entry) {
  if (!entry) return "";
  const parts = [entry.items ? `${entry.type} of ${entry.items}` : entry.type];
  if (entry.min !== undefined && entry.min !== null) parts.push((entry.min_exclusive ? "> " : "≥ ") + entry.min);
  if (entry.max !== undefined && entry.max !== null) parts.push((entry.max_exclusive ? "< " : "≤ ") + entry.max);
  if (entry.choices && entry.choices.length) parts.push("one of " + entry.choices.join(", "));
  if (entry.optional) parts.push("optional");
  if (entry.secret && entry.type !== "secret") parts.push("secret");
  if (entry.computed) parts.push("default: " + entry.computed);
  return parts.join(", ");
}

function toast(text) {
  const t = $("toast");
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 4000);
}

// A refusal as `cfg` words it, from its typed problems: invalid values as
// "Validation error(s) for setting NAME" with what was expected, unknown
// names with their suggestion, anything else in the daemon's words.
function showRefusal(box, err) {
  const r = err.refusal || { message: String(err), problems: [] };
  box.className = "result bad";
  box.hidden = false;
  box.textContent = "";
  const head = document.createElement("div");
  head.className = "refusal-message";
  head.textContent = r.message;
  box.appendChild(head);
  if (r.problems && r.problems.length) {
    const ul = document.createElement("ul");
    for (const p of r.problems) {
      const li = document.createElement("li");
      li.dataset.kind = p.kind;
      if (p.kind === "invalid_value") {
        li.textContent = `Validation error(s) for setting ${p.given_name}: ${p.expected || p.message}`;
      } else if (p.kind === "unknown_name") {
        li.textContent = `Unknown setting name '${p.given_name}'.` + (p.suggestion ? ` Did you mean '${p.suggestion}'?` : "");
      } else {
        li.textContent = p.message;
      }
      if (p.source && p.source.label) li.append(` (${p.source.label})`);
      ul.appendChild(li);
    }
    if (r.omitted) {
      const li = document.createElement("li");
      li.textContent = `… and ${r.omitted} more`;
      ul.appendChild(li);
    }
    box.appendChild(ul);
  }
}

// What a write did, with `cfg set`'s warning when a higher layer keeps the
// new value out of force.
function showWritten(box, verb, w) {
  box.textContent = "";
  box.hidden = false;
  const warnings = [];
  for (const a of w.applied) {
    if (a.overridden_by && a.overridden_by.length) {
      const by = a.overridden_by.map((o) => `${o.source.label} (value '${o.value.text}')`).join(" and by ");
      const pronoun = a.overridden_by.length > 1 ? "they are" : "it is";
      warnings.push(`${a.given_name} is overridden by ${by}; the new value will not take effect until ${pronoun} removed.`);
    }
  }
  const head = document.createElement("div");
  const names = w.applied.map((a) => a.given_name).join(", ");
  head.textContent = w.changed
    ? `${verb} ${names} in profile '${w.profile}': revision ${w.revision}.`
    : `${verb} ${names} in profile '${w.profile}': nothing in force changed (revision ${w.revision}).`;
  box.appendChild(head);
  for (const text of warnings) {
    const d = document.createElement("div");
    d.className = "shadow-warning";
    d.textContent = text;
    box.appendChild(d);
  }
  box.className = "result " + (warnings.length ? "warn" : "ok");
}

// ---------------------------------------------------------------- settings

function renderSettings() {
  const tbody = $("settings").tBodies[0];
  const query = $("search").value.trim().toLowerCase();
  const rows = [];
  const names = [...state.settings.keys()].sort();
  for (const name of names) {
    const s = state.settings.get(name);
    const entry = state.catalog.get(name);
    const hay = [name, valueText(s.value), s.source ? s.source.label : "", entry ? entry.description : "",
      ...(entry ? entry.aliases : [])].join(" ").toLowerCase();
    if (query && !hay.includes(query)) continue;
    const tr = document.createElement("tr");
    tr.dataset.name = name;
    const tdName = document.createElement("td");
    tdName.className = "name";
    tdName.append(name);
    if (entry && entry.aliases.length) {
      const al = document.createElement("div");
      al.className = "aliases";
      al.textContent = "alias " + entry.aliases.join(", ");
      tdName.appendChild(al);
    }
    if (entry && entry.description) {
      const d = document.createElement("div");
      d.className = "desc";
      d.textContent = entry.description;
      tdName.appendChild(d);
    }
    const tdValue = document.createElement("td");
    tdValue.className = "value";
    tdValue.appendChild(valueNode(s.value));
    const tdFrom = document.createElement("td");
    tdFrom.className = "from";
    tdFrom.appendChild(layerNode(s.source));
    const tdShadow = document.createElement("td");
    tdShadow.className = "shadows";
    for (const sh of s.shadowed) {
      const d = document.createElement("div");
      d.className = "shadowed";
      d.append(valueText(sh.value), " — ", sh.source.label);
      tdShadow.appendChild(d);
    }
    const tdType = document.createElement("td");
    tdType.className = "type";
    tdType.textContent = typeText(entry);
    tr.append(tdName, tdValue, tdFrom, tdShadow, tdType);
    if (state.flash && state.flash.has(name)) tr.classList.add("flash");
    tr.addEventListener("click", () => {
      $("set-name").value = name;
      $("set-value").value = s.value && s.value.kind !== "masked" && s.value.kind !== "unset" ? s.value.text : "";
      $("set-value").focus();
    });
    rows.push(tr);
  }
  tbody.replaceChildren(...rows);
  state.flash = null;
  $("settings-count").textContent = `${rows.length} of ${state.settings.size}`;
  const list = $("names");
  if (list.childElementCount !== state.catalog.size) {
    list.replaceChildren(...[...state.catalog.values()].flatMap((e) => [e.name, ...e.aliases]).map((n) => {
      const o = document.createElement("option");
      o.value = n;
      return o;
    }));
  }
}

async function loadCatalog() {
  const c = await call("GET", "/api/catalog");
  state.catalog = new Map(c.entries.map((e) => [e.name, e]));
}

// Shadowed layers are not in a change event: fetch the settings it
// touched, and keep the answer only if it is not older than what is shown.
async function refreshSettings(names) {
  if (names.length === 0) return;
  const s = await call("GET", "/api/snapshot?names=" + encodeURIComponent(names.join(",")) + (state.revealed ? "&reveal=1" : ""));
  if (state.revision !== null && s.revision < state.revision) return;
  for (const r of s.settings) state.settings.set(r.name, r);
  renderSettings();
}

// ---------------------------------------------------------------- timeline

function renderTimeline() {
  drawTimeline($("timeline"), state.changes, state.selected, select);
  if (state.selected !== null) renderDiff();
}

function select(revision) {
  state.selected = revision;
  $("rollback-result").hidden = true;
  renderTimeline();
}

function sideNode(side) {
  const td = document.createElement("td");
  if (!side) { td.textContent = "—"; return td; }
  td.appendChild(valueNode(side.value));
  const src = document.createElement("span");
  src.className = "src";
  src.textContent = side.source ? side.source.label : "";
  td.appendChild(src);
  return td;
}

function renderDiff() {
  const c = state.changes.find((c) => c.revision === state.selected);
  const box = $("diff");
  if (!c) { box.hidden = true; return; }
  box.hidden = false;
  box.dataset.revision = c.revision;
  $("diff-title").textContent = `revision ${c.revision} · ${c.origin}` + (c.detail ? ` · ${describe(c)}` : "") +
    ` · ${new Date(c.time_ms).toLocaleString()}`;
  const rows = c.changes.map((k) => {
    const tr = document.createElement("tr");
    const name = document.createElement("td");
    name.textContent = k.name;
    tr.append(name, sideNode(k.old), sideNode(k.new));
    return tr;
  });
  if (rows.length === 0) {
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = 3;
    td.className = "unset";
    td.textContent = "no effective value changed (the profiles changed under a higher layer, or a profile was created or deleted)";
    tr.appendChild(td);
    rows.push(tr);
  }
  $("diff-rows").replaceChildren(...rows);
}

async function loadHistory() {
  const h = await call("GET", "/api/history?limit=500");
  state.changes = h.changes;
  renderTimeline();
}

// ---------------------------------------------------------------- status

function renderStatus() {
  const s = state.status;
  if (!s) return;
  const files = s.files.map((f) => {
    const li = document.createElement("li");
    li.dataset.path = f.path;
    const kind = document.createElement("span");
    kind.className = "kind";
    kind.textContent = { values: "values", catalog: "catalogue", dotenv: ".env", profiles: "profiles", log: "revision log" }[f.kind] || f.kind;
    li.append(kind, f.path);
    if (f.error) {
      li.className = "bad file-error";
      li.append(f.line ? `, line ${f.line}` : "");
      const err = document.createElement("div");
      err.className = "error";
      err.textContent = f.error;
      const kept = document.createElement("span");
      kept.className = "kept";
      kept.textContent = {
        log: "writes are refused until it can be written",
        profiles: "cfgd keeps the profiles it last read and refuses profile writes until this is fixed",
      }[f.kind] || "not applied: the last good content of this file stays in force";
      li.append(err, kept);
    }
    for (const w of f.warnings || []) {
      const d = document.createElement("div");
      d.className = "warning";
      d.textContent = w;
      li.appendChild(d);
    }
    return li;
  });
  $("files").replaceChildren(...files);
  $("files-panel").classList.toggle("has-errors", s.files.some((f) => f.error));
  $("active-profile").textContent = s.active_profile;
  const dl = $("daemon");
  const facts = [["version", s.version], ["gRPC", s.listen], ["config dir", s.config_dir], ["state dir", s.state_dir],
    ["profiles file", s.profiles_path], ["revision", s.revision], ["oldest kept", s.oldest_revision],
    ["watchers", s.watchers], ["settings", s.settings], ["started", new Date(s.started_ms).toLocaleString()],
    ["store", s.store ? s.store.kind + (s.store.endpoints.length ? " " + s.store.endpoints.join(",") : "") : "file"]];
  dl.replaceChildren(...facts.flatMap(([k, v]) => {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = String(v);
    return [dt, dd];
  }));
  renderProfiles(s.profiles);
}

function renderProfiles(p) {
  const items = p.profiles.map((info) => {
    const li = document.createElement("li");
    li.dataset.profile = info.name;
    if (info.active) li.className = "active";
    const name = document.createElement("span");
    name.className = "pname";
    name.textContent = info.name;
    name.title = "show its values";
    name.addEventListener("click", () => inspectProfile(info.name));
    const count = document.createElement("span");
    count.className = "count";
    count.textContent = `${info.settings} setting(s)` + (info.active ? " · active" : "");
    li.append(name, count);
    if (!info.active) {
      const use = document.createElement("button");
      use.textContent = "use";
      use.className = "use";
      use.addEventListener("click", () => profileAction("POST", `/api/profiles/${encodeURIComponent(info.name)}/use`, `Switched to profile '${info.name}'.`));
      const del = document.createElement("button");
      del.textContent = "delete";
      del.className = "delete";
      del.addEventListener("click", () => {
        if (confirm(`Delete profile '${info.name}'?`)) {
          profileAction("DELETE", `/api/profiles/${encodeURIComponent(info.name)}`, `Deleted profile '${info.name}'.`);
        }
      });
      li.append(use, del);
    }
    return li;
  });
  $("profiles").replaceChildren(...items);
  const from = $("profile-from");
  const keep = from.value;
  from.replaceChildren(new Option("empty", ""), ...p.profiles.map((i) => new Option("copy of " + i.name, i.name)));
  from.value = keep;
}

async function profileAction(method, path, done, body) {
  const box = $("profile-result");
  try {
    await call(method, path, body);
    box.className = "result ok";
    box.hidden = false;
    box.textContent = done;
  } catch (e) {
    showRefusal(box, e);
  }
}

async function inspectProfile(name) {
  const box = $("profile-values");
  try {
    const p = await call("GET", `/api/profiles/${encodeURIComponent(name)}` + (state.revealed ? "?reveal=1" : ""));
    box.hidden = false;
    box.textContent = "";
    const head = document.createElement("b");
    head.textContent = `profile '${p.name}'` + (p.active ? " (active)" : "");
    box.appendChild(head);
    const ul = document.createElement("ul");
    for (const e of p.entries) {
      const li = document.createElement("li");
      li.append(e.name, " = ", valueNode(e.value));
      ul.appendChild(li);
    }
    if (p.entries.length === 0) {
      const li = document.createElement("li");
      li.textContent = "no values";
      ul.appendChild(li);
    }
    box.appendChild(ul);
  } catch (e) {
    showRefusal($("profile-result"), e);
  }
}

// ---------------------------------------------------------------- schedule

function fillSchedule() {
  const get = (n) => state.settings.get(n);
  const r = get("PREFECT_TASKS_DEFAULT_RETRIES");
  const d = get("PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS");
  const j = get("PREFECT_TASKS_DEFAULT_RETRY_JITTER_FACTOR");
  const text = (s) => (s && s.value && s.value.kind !== "unset" ? s.value.text : "");
  if (!fillSchedule.touched) {
    $("sched-retries").value = text(r);
    $("sched-delays").value = text(d);
    $("sched-jitter").value = text(j);
  }
}

async function previewSchedule() {
  const q = new URLSearchParams({
    retries: $("sched-retries").value,
    delays: $("sched-delays").value,
    jitter: $("sched-jitter").value,
  });
  const box = $("sched-result");
  try {
    const s = await call("GET", "/api/retry-schedule?" + q);
    box.hidden = true;
    drawSchedule($("schedule"), s);
    const jitter = s.jittered ? `, jitter factor ${s.jitter}: each delay falls in the band shown (Prefect's clamped Poisson interval)` : ", no jitter";
    const more = s.retries > s.shown ? ` (first ${s.shown} of ${s.retries} shown; later retries repeat the last delay)` : "";
    $("sched-summary").textContent = `${s.retries} retr${s.retries === 1 ? "y" : "ies"}, delays ${s.delays_text}${jitter}. ` +
      `Waiting in all: ${window.cfgdDraw.seconds(s.total.delay)}` +
      (s.jittered ? ` (${window.cfgdDraw.seconds(s.total.low)} – ${window.cfgdDraw.seconds(s.total.high)})` : "") + more + ".";
  } catch (e) {
    showRefusal(box, e);
  }
}

async function setSchedule() {
  const assignments = [
    ["PREFECT_TASKS_DEFAULT_RETRIES", $("sched-retries").value],
    ["PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS", $("sched-delays").value],
  ];
  const jitter = $("sched-jitter").value.trim();
  const box = $("sched-result");
  try {
    const w = await call("POST", "/api/set", {
      assignments: (jitter ? [...assignments, ["PREFECT_TASKS_DEFAULT_RETRY_JITTER_FACTOR", jitter]] : assignments)
        .map(([name, value]) => ({ name, value })),
    });
    fillSchedule.touched = false;
    showWritten(box, "Set", w);
    // One write, all or nothing: an empty jitter is not an unset.
    const inForce = state.settings.get("PREFECT_TASKS_DEFAULT_RETRY_JITTER_FACTOR");
    if (!jitter && inForce && inForce.value && inForce.value.kind !== "unset") {
      const note = document.createElement("div");
      note.textContent = `PREFECT_TASKS_DEFAULT_RETRY_JITTER_FACTOR stays ${inForce.value.text} (unset it above for no jitter).`;
      box.appendChild(note);
    }
  } catch (e) {
    showRefusal(box, e);
  }
}

// ---------------------------------------------------------------- fleet

function tag(text, kind) {
  const t = document.createElement("span");
  t.className = "tag" + (kind ? " " + kind : "");
  t.textContent = text;
  return t;
}

function when(ms) {
  return new Date(ms).toLocaleString();
}

// The store this daemon uses, and whether shared writes are refused.
function renderStore(st) {
  const box = $("fleet-store");
  box.textContent = "";
  box.className = "store";
  if (!st) return;
  box.dataset.kind = st.kind;
  box.dataset.state = st.state;
  if (st.kind === "etcd") {
    box.append(`etcd store (${st.endpoints.join(", ")}) as host ${st.host}: shared revision ${st.shared_revision}` +
      (st.head_revision > st.shared_revision ? ` of ${st.head_revision} (catching up)` : "") +
      (st.last_contact_ms ? `, last answer ${when(st.last_contact_ms)}` : ", no answer yet"));
  } else {
    box.append("file store: this daemon and its own services");
  }
  if (st.state === "degraded") {
    box.className = "store degraded";
    const d = document.createElement("div");
    d.className = "degraded-since";
    d.textContent = `degraded since ${when(st.degraded_since_ms)}: shared writes are refused` + (st.error ? ` — ${st.error}` : "");
    box.appendChild(d);
  }
}

function renderFleet(f) {
  renderStore(f.store);
  const err = $("fleet-error");
  err.hidden = !f.error;
  err.textContent = f.error ? f.error + "; only this daemon is listed." : "";
  $("fleet-summary").textContent = (f.shared
    ? `${f.hosts.length} host(s) share the profile layer; newest shared revision ${f.head_text}`
    : `one daemon (file store), at revision ${f.head_text}`) +
    (f.lagging ? ` · ${f.lagging} lagging` : " · none lagging");
  const rows = f.hosts.map((h) => {
    const tr = document.createElement("tr");
    tr.dataset.host = h.host || h.listen;
    tr.dataset.revision = h.revision;
    if (h.lagging) tr.classList.add("lagging");
    if (h.degraded_since_ms) tr.classList.add("degraded");
    const host = document.createElement("td");
    host.className = "host";
    const b = document.createElement("b");
    b.textContent = h.host || "this daemon";
    host.appendChild(b);
    if (h.this_daemon) host.appendChild(tag("this console", "me"));
    if (h.degraded_since_ms) host.appendChild(tag(`degraded since ${when(h.degraded_since_ms)}`, "bad"));
    const sub = document.createElement("span");
    sub.className = "sub";
    sub.textContent = `${h.listen} · cfgd ${h.version}` + (h.reported_ms ? ` · reported ${when(h.reported_ms)}` : "");
    host.appendChild(sub);
    for (const p of h.problems) {
      const d = document.createElement("div");
      d.className = "problem";
      d.textContent = "not applied there: " + p;
      host.appendChild(d);
    }
    const rev = document.createElement("td");
    rev.className = "revision";
    rev.textContent = h.revision_text;
    if (h.lagging) rev.appendChild(tag("behind " + f.head_text, "lag"));
    const svc = document.createElement("td");
    svc.className = "services";
    const ul = document.createElement("ul");
    for (const s of h.services) {
      const li = document.createElement("li");
      li.dataset.service = s.service;
      li.dataset.instance = s.instance;
      li.dataset.revision = s.revision;
      li.dataset.state = s.state;
      if (s.lagging) li.classList.add("lagging");
      if (!s.connected) li.classList.add("disconnected");
      const name = document.createElement("span");
      name.className = "svc";
      name.textContent = `${s.service} ${s.instance}`;
      const r = document.createElement("span");
      r.className = "rev";
      r.textContent = s.revision ? s.revision_text : "–";
      li.append(name, r);
      if (s.state !== "applied") li.appendChild(tag(s.state, s.lagging ? "lag" : ""));
      ul.appendChild(li);
    }
    if (h.services.length === 0) {
      const li = document.createElement("li");
      li.className = "unset";
      li.textContent = "no service has reported";
      ul.appendChild(li);
    }
    svc.appendChild(ul);
    tr.append(host, rev, svc);
    return tr;
  });
  $("fleet").tBodies[0].replaceChildren(...rows);
}

// Fetched on every event (a set lands, a status changes) and on a timer:
// services report by acking, which makes no event. One call at a time; a
// request while one is out is made once it is back.
async function loadFleet() {
  if (loadFleet.busy) { loadFleet.again = true; return; }
  loadFleet.busy = true;
  try {
    do {
      loadFleet.again = false;
      renderFleet(await call("GET", "/api/fleet"));
    } while (loadFleet.again);
  } catch (e) {
    const err = $("fleet-error");
    err.hidden = false;
    err.textContent = "cannot read the fleet: " + e.message;
  } finally {
    loadFleet.busy = false;
  }
}

const FLEET_EVERY_MS = 2000;

// ---------------------------------------------------------------- the stream

function setConn(kind, text) {
  const c = $("conn");
  c.className = "conn " + kind;
  c.textContent = text;
}

function applySnapshot(s) {
  state.settings = new Map(s.settings.map((r) => [r.name, r]));
  state.revision = s.revision;
  state.epoch = s.epoch;
  $("revision").textContent = s.revision;
  $("epoch").textContent = s.epoch;
  $("active-profile").textContent = s.active_profile;
}

function onSnapshot(ev) {
  const d = JSON.parse(ev.data);
  state.lastId = ev.lastEventId || state.lastId;
  const reopened = d.reason !== "initial";
  applySnapshot(d.snapshot);
  // A resync means events were skipped: everything is fetched again.
  Promise.all([loadCatalog(), loadHistory()]).then(() => {
    renderSettings();
    fillSchedule();
    previewSchedule();
  }).catch((e) => toast("cannot load: " + e.message));
  if (reopened) toast(`resynced (${d.reason}): revision ${d.snapshot.revision}`);
  loadFleet();
}

function onChange(ev) {
  const c = JSON.parse(ev.data);
  state.lastId = ev.lastEventId || state.lastId;
  if (state.revision !== null && c.revision <= state.revision && state.changes.some((x) => x.revision === c.revision)) return;
  state.revision = c.revision;
  $("revision").textContent = c.revision;
  state.changes.push(c);
  if (state.changes.length > 500) state.changes.shift();
  const names = [];
  let unknown = false;
  for (const k of c.changes) {
    names.push(k.name);
    if (!k.new) { state.settings.delete(k.name); continue; }
    const prev = state.settings.get(k.name);
    if (!prev) unknown = true;
    state.settings.set(k.name, { name: k.name, value: k.new.value, source: k.new.source, shadowed: prev ? prev.shadowed : [], secret: k.secret });
  }
  state.flash = new Set(names);
  renderSettings();
  renderTimeline();
  fillSchedule();
  previewSchedule();
  const refresh = () => refreshSettings(names.filter((n) => state.settings.has(n))).catch(() => {});
  if (unknown || c.origin === "file") loadCatalog().then(refresh).catch(() => {});
  else refresh();
  loadFleet();
}

function onStatus(ev) {
  state.status = JSON.parse(ev.data);
  renderStatus();
  loadFleet();
}

// The browser's EventSource reconnects by itself after the stream ends
// (the daemon restarting), sending the last id as Last-Event-ID. If it
// gives up (a refused connection), a new one resumes with ?after=.
function connect() {
  if (state.source) state.source.close();
  const url = "/api/events" + (state.lastId ? "?after=" + encodeURIComponent(state.lastId) : "");
  const es = new EventSource(url);
  state.source = es;
  es.addEventListener("open", () => { state.retryMs = 1000; setConn("live", "live"); });
  es.addEventListener("snapshot", onSnapshot);
  es.addEventListener("change", onChange);
  es.addEventListener("status", onStatus);
  es.addEventListener("error", () => {
    if (es.readyState === EventSource.CLOSED) {
      setConn("offline", "offline — reconnecting");
      setTimeout(connect, state.retryMs);
      state.retryMs = Math.min(state.retryMs * 2, 15000);
    } else {
      setConn("connecting", "reconnecting…");
    }
  });
}

// ---------------------------------------------------------------- forms

function wire() {
  drawLegend($("legend"));
  $("search").addEventListener("input", renderSettings);
  $("set-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const box = $("set-result");
    const name = $("set-name").value.trim();
    try {
      const w = await call("POST", "/api/set", { assignments: [{ name, value: $("set-value").value }] });
      showWritten(box, "Set", w);
    } catch (err) {
      showRefusal(box, err);
    }
  });
  $("unset-submit").addEventListener("click", async () => {
    const box = $("set-result");
    try {
      const w = await call("POST", "/api/unset", { names: [$("set-name").value.trim()] });
      showWritten(box, "Unset", w);
    } catch (err) {
      showRefusal(box, err);
    }
  });
  $("rollback").addEventListener("click", async () => {
    const box = $("rollback-result");
    try {
      const w = await call("POST", "/api/rollback", { revision: state.selected });
      box.className = "result ok";
      box.hidden = false;
      box.textContent = w.changed
        ? `Rolled the profiles back to revision ${state.selected}: revision ${w.revision}.`
        : `The profiles are already as they were at revision ${state.selected}.`;
    } catch (err) {
      showRefusal(box, err);
    }
  });
  $("profile-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const name = $("profile-name").value.trim();
    const from = $("profile-from").value;
    profileAction("POST", "/api/profiles", `Created profile '${name}'.`, { name, from: from || null });
  });
  $("schedule-form").addEventListener("submit", (e) => { e.preventDefault(); previewSchedule(); });
  for (const id of ["sched-retries", "sched-delays", "sched-jitter"]) {
    $(id).addEventListener("input", () => { fillSchedule.touched = true; });
  }
  $("sched-set").addEventListener("click", setSchedule);
  $("reveal").addEventListener("click", async () => {
    try {
      const s = await call("GET", "/api/snapshot?reveal=1");
      applySnapshot(s);
      state.revealed = true;
      renderSettings();
      toast("secrets shown in clear until the page is reloaded");
    } catch (err) {
      toast(err.message);
    }
  });
  window.addEventListener("resize", () => { renderTimeline(); previewSchedule(); });
}

wire();
connect();
loadFleet();
setInterval(loadFleet, FLEET_EVERY_MS);
})();
