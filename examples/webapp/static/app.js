// The page of the hybridctx web app: no framework, no build step.
// It asks /api/ask and draws the reply: the route decision as bars, the spans
// highlighted in the document at their exact offsets, the packed-token gauge,
// and the answer whose [n] citations scroll to their span and flash it.
// Text from the server is only ever set as text, never parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
let info = null;
let currentDoc = null; // {doc_id, title, text}
let lastReply = null;

const METRICS = [
  { key: "tokens", label: "Tokens", fmt: (v, e) => v.toLocaleString("en") + (e.fits_window ? "" : " (> window)") },
  { key: "usd", label: "Cost", fmt: fmtUsd },
  { key: "latency_s", label: "Latency", fmt: (v) => (v >= 10 ? v.toFixed(0) : v.toFixed(2)) + " s" },
  { key: "kv_gib", label: "KV memory", fmt: (v) => (v === 0 ? "n/a" : v.toFixed(3) + " GiB") },
];

function fmtUsd(v) {
  if (v === 0) return "$0";
  if (v >= 1) return "$" + v.toFixed(2);
  return "$" + (v >= 0.0001 ? v.toFixed(4) : v.toFixed(6));
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

async function api(path, options) {
  const resp = await fetch(path, options);
  const body = await resp.json().catch(() => ({ error: `the server answered HTTP ${resp.status}` }));
  if (!resp.ok) throw new Error(body.error || `the server answered HTTP ${resp.status}`);
  return body;
}

function setState(state, message) {
  document.body.dataset.state = state;
  $("ask-button").disabled = state === "busy";
  if (message !== undefined) $("status").textContent = message;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
  setState("error");
}

// Offsets from the server count code points (Python str indices); JS strings
// count UTF-16 units, which differ only after a character outside the BMP.
function utf16Index(text) {
  if (!/[\uD800-\uDFFF]/.test(text)) return (i) => i;
  const map = [];
  let unit = 0;
  for (const ch of text) {
    map.push(unit);
    unit += ch.length;
  }
  map.push(unit);
  return (i) => map[i];
}

function renderDocument(text, spans) {
  const at = utf16Index(text);
  const frag = document.createDocumentFragment();
  let pos = 0;
  for (const span of [...spans].sort((a, b) => a.start - b.start)) {
    const start = at(span.start);
    const end = at(span.end);
    if (start < pos) continue; // packed spans never overlap; keep the first if they ever do
    frag.append(text.slice(pos, start));
    const mark = el("mark", "span", text.slice(start, end));
    mark.id = "span-" + span.marker;
    mark.dataset.marker = span.marker;
    mark.dataset.start = span.start;
    mark.dataset.end = span.end;
    mark.title = `[${span.marker}] chars ${span.start}–${span.end}, ${span.tokens} tokens, score ${span.score}`;
    frag.append(mark);
    pos = end;
  }
  frag.append(text.slice(pos));
  $("doc-view").replaceChildren(frag);
}

function focusSpan(marker) {
  const mark = $("span-" + marker);
  if (!mark) return;
  mark.scrollIntoView({ block: "center", behavior: "smooth" });
  mark.classList.remove("flash");
  void mark.offsetWidth; // restart the animation when clicked twice
  mark.classList.add("flash");
  clearTimeout(mark.flashTimer);
  mark.flashTimer = setTimeout(() => mark.classList.remove("flash"), 2400);
}

function renderRoute(reply) {
  const route = reply.route;
  $("route-mode").textContent = reply.mode + (reply.escalated ? " (escalated)" : "");
  $("route-mode").className = "badge " + reply.mode;
  let reason = `${route.profile}: ${route.reason}.`;
  if (reply.escalation) reason += ` Then: ${reply.escalation.reason}.`;
  $("route-reason").textContent = reason;
  const bars = $("route-bars");
  bars.replaceChildren();
  for (const metric of METRICS) {
    const group = el("div", "metric");
    group.dataset.metric = metric.key;
    group.append(el("div", "metric-label", metric.label));
    const values = ["full", "retrieval"].map((mode) => route.estimates[mode][metric.key]);
    const max = Math.max(...values);
    ["full", "retrieval"].forEach((mode, i) => {
      const row = el("div", `bar-row ${mode}${mode === route.mode ? " chosen" : ""}`);
      row.append(el("span", "bar-name", mode));
      const track = el("span", "bar-track");
      const bar = el("span", "bar " + mode);
      bar.style.width = max > 0 ? `${Math.max(0.5, (100 * values[i]) / max).toFixed(2)}%` : "0";
      track.append(bar);
      row.append(track, el("span", "bar-value", metric.fmt(values[i], route.estimates[mode])));
      group.append(row);
    });
    bars.append(group);
  }
}

function renderGauge(reply) {
  const share = reply.budget > 0 ? reply.tokens / reply.budget : 0;
  const gauge = $("gauge");
  gauge.dataset.tokens = reply.tokens;
  gauge.dataset.budget = reply.budget;
  gauge.setAttribute("aria-valuenow", reply.tokens);
  gauge.setAttribute("aria-valuemax", reply.budget);
  $("gauge-fill").style.width = `${Math.min(100, 100 * share).toFixed(1)}%`;
  $("gauge-fill").classList.toggle("over", reply.tokens > reply.budget);
  const what = reply.mode === "full" ? "the whole document" : `${reply.spans.length} spans`;
  let label = `${reply.tokens.toLocaleString("en")} / ${reply.budget.toLocaleString("en")} tokens ` +
    `(${(100 * share).toFixed(0)}%) · ${what} · ${reply.tokenizer}`;
  if (reply.dropped) label += ` · ${reply.dropped} more candidates did not fit`;
  $("gauge-label").textContent = label;
}

function citationLink(marker) {
  const link = el("a", "cite", `[${marker}]`);
  link.href = "#span-" + marker;
  link.dataset.marker = marker;
  link.addEventListener("click", (ev) => {
    ev.preventDefault();
    focusSpan(marker);
  });
  return link;
}

function renderAnswer(reply) {
  const out = $("answer");
  out.replaceChildren();
  if (reply.answer === null) {
    out.append(el("span", "muted", "No LLM (retrieval only): start the app without --no-llm to get answers."));
    $("answer-meta").textContent = "";
    return;
  }
  const text = reply.answer || "(empty answer)";
  const pattern = /\[(\d+(?:\s*,\s*\d+)*)\]/g;
  let last = 0;
  for (let m = pattern.exec(text); m; m = pattern.exec(text)) {
    out.append(text.slice(last, m.index));
    m[1].split(",").map((n) => Number(n.trim())).forEach((n) => {
      out.append(n >= 1 && n <= reply.spans.length ? citationLink(n) : `[${n}]`);
    });
    last = pattern.lastIndex;
  }
  out.append(text.slice(last));
  const usage = reply.usage ? `prompt ${reply.usage.prompt} + answer ${reply.usage.completion} tokens · ` : "";
  const total = reply.timings_ms.total;
  $("answer-meta").textContent = `${usage}${reply.llm}${total ? ` · ${(total / 1000).toFixed(1)} s` : ""}`;
}

function renderSpanList(reply) {
  const list = $("span-list");
  list.replaceChildren();
  for (const span of reply.spans) {
    const item = el("li", "span-item");
    item.dataset.marker = span.marker;
    item.append(citationLink(span.marker),
      ` chars ${span.start.toLocaleString("en")}–${span.end.toLocaleString("en")} · ${span.tokens} tokens · score ${span.score.toFixed(3)}`);
    list.append(item);
  }
}

async function loadDocument(docId) {
  const doc = await api("/api/document?doc_id=" + encodeURIComponent(docId));
  currentDoc = doc;
  $("doc-title").textContent = `${doc.title} · ${doc.chars.toLocaleString("en")} characters`;
  renderDocument(doc.text, []);
  $("doc-view").scrollTop = 0;
  $("results").hidden = true;
  lastReply = null;
}

function fillDocuments(documents, selected) {
  const select = $("doc-select");
  select.replaceChildren();
  for (const doc of documents) {
    const option = el("option", "", doc.title + (doc.bundled ? " (bundled)" : ""));
    option.value = doc.doc_id;
    select.append(option);
  }
  if (selected) select.value = selected;
}

async function onAsk(ev) {
  ev.preventDefault();
  $("error").hidden = true;
  const docId = $("doc-select").value;
  setState("busy", info.llm ? "routing, retrieving and answering…" : "routing and retrieving…");
  try {
    const reply = await api("/api/ask", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        question: $("question").value,
        doc_id: docId,
        budget: parseInt($("budget").value, 10) || 0,
        profile: $("profile-select").value,
      }),
    });
    if (!currentDoc || currentDoc.doc_id !== reply.doc_id) await loadDocument(reply.doc_id);
    lastReply = reply;
    renderDocument(currentDoc.text, reply.spans);
    renderRoute(reply);
    renderGauge(reply);
    renderAnswer(reply);
    renderSpanList(reply);
    $("results").hidden = false;
    const first = reply.citations[0] || (reply.spans[0] && reply.spans[0].marker);
    if (first) $("span-" + first).scrollIntoView({ block: "center" });
    setState("done", `${reply.mode} · ${reply.tokens}/${reply.budget} tokens · ${reply.spans.length} spans`);
  } catch (err) {
    showError(err.message);
    $("status").textContent = "refused";
  }
}

async function onUpload() {
  const input = $("upload");
  const file = input.files[0];
  if (!file) return;
  $("error").hidden = true;
  const form = new FormData();
  form.append("file", file);
  setState("busy", `indexing ${file.name}…`);
  try {
    const added = await api("/api/documents", { method: "POST", body: form });
    fillDocuments((await api("/api/documents")).documents, added.document.doc_id);
    await loadDocument(added.document.doc_id);
    setState("ready", added.report);
  } catch (err) {
    showError(err.message);
    $("status").textContent = "upload refused";
  } finally {
    input.value = "";
  }
}

async function init() {
  try {
    info = await api("/api/info");
  } catch (err) {
    showError(err.message);
    return;
  }
  fillDocuments(info.documents);
  const profiles = $("profile-select");
  for (const name of info.profiles) {
    const option = el("option", "", name);
    option.value = name;
    profiles.append(option);
  }
  profiles.value = info.profile;
  $("budget").value = info.budget.default;
  $("budget").min = info.budget.min;
  $("ask-form").addEventListener("submit", onAsk);
  $("upload").addEventListener("change", onUpload);
  $("doc-select").addEventListener("change", () => loadDocument($("doc-select").value).catch((e) => showError(e.message)));
  if (info.documents.length) await loadDocument($("doc-select").value);
  setState("ready", `LLM: ${info.llm || "none (retrieval only)"} · ${info.documents.length} document(s)`);
}

document.addEventListener("DOMContentLoaded", init);
