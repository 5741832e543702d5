/*
 * The operator's console (docs/console.md). Everything it shows comes from
 * the node that served it, which asks the other nodes itself: the page
 * needs no collector and keeps working while PostgreSQL is down. When that
 * node stops answering, the page carries on with another member of the
 * cluster (GET /api/v1/cluster, kept from the last answer), as players do,
 * sending its session as "Authorization: Session TOKEN" because the
 * cookie does not go to another origin.
 *
 * What a role may not call is not shown: each view names the roles that
 * may see it (data-role), and the others are removed from the page.
 */
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);

  /* ---------------------------------------------------------------- DOM */

  // el("td", {class: "n", text: "3"}, child...): attributes, "text", "on*"
  // handlers; children are nodes or strings (never parsed as HTML).
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const k of kids) if (k !== null && k !== undefined) e.append(k);
    return e;
  }

  /* ---------------------------------------------------------------- formats */

  const dash = "—";
  function num(v, digits) {
    if (v === null || v === undefined || Number.isNaN(v)) return dash;
    return Number(v).toLocaleString("en-US", { maximumFractionDigits: digits ?? 0 });
  }
  function rate(v) {
    if (v === null || v === undefined) return dash;
    return num(v, v < 10 ? 1 : 0);
  }
  function bytes(v) {
    if (v === null || v === undefined) return dash;
    const u = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let i = 0;
    while (Math.abs(v) >= 1024 && i < u.length - 1) { v /= 1024; i++; }
    return (i === 0 ? num(v) : num(v, v < 10 ? 2 : v < 100 ? 1 : 0)) + " " + u[i];
  }
  function duration(s) {
    if (s === null || s === undefined) return dash;
    s = Math.max(0, Math.round(s));
    const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600),
      m = Math.floor(s % 3600 / 60), sec = s % 60;
    if (d) return `${d}d ${h}h`;
    if (h) return `${h}h ${m}m`;
    if (m) return `${m}m ${sec}s`;
    return `${sec}s`;
  }
  function ms(v) {
    if (v === null || v === undefined) return dash;
    if (v >= 60000) return duration(v / 1000);
    if (v >= 1000) return num(v / 1000, 1) + " s";
    return num(v, v < 10 ? 2 : 0) + " ms";
  }
  function pct(r) {
    return r === null || r === undefined ? dash : num(r * 100, 1) + " %";
  }
  // Unix seconds (or an RFC 3339 string) as local date and time.
  function when(t) {
    if (t === null || t === undefined || t === "") return dash;
    const d = typeof t === "number" ? new Date(t * 1000) : new Date(t);
    if (Number.isNaN(d.getTime())) return String(t);
    return d.toLocaleString("en-GB", { dateStyle: "short", timeStyle: "medium" });
  }
  function ago(unixS) {
    return unixS ? duration(Date.now() / 1000 - unixS) + " ago" : dash;
  }
  function playTime(msPlayed) {
    const h = msPlayed / 3600000;
    return h >= 1 ? num(h, 1) + " h" : duration(msPlayed / 1000);
  }

  /* ---------------------------------------------------------------- results on screen */

  // Every action's outcome, as a note at the bottom right (a click
  // dismisses it; errors stay longer).
  function note(text, bad) {
    const d = el("div", { class: bad ? "bad" : null, role: bad ? "alert" : "status", text });
    d.addEventListener("click", () => d.remove());
    $("results").prepend(d);
    while ($("results").children.length > 5) $("results").lastChild.remove();
    setTimeout(() => d.remove(), bad ? 15000 : 8000);
  }

  /* ---------------------------------------------------------------- the API */

  class ApiError extends Error {
    // fields: a 422's problems by field ({"year": "must be ..."}), or null.
    constructor(status, message, fields) {
      super(message);
      this.status = status;
      this.fields = fields || null;
    }
  }
  // The node could not be reached at all (refused, reset, timed out).
  class NetError extends Error {}

  const S = {
    me: null,         // {user, role, csrf_token, token}
    base: "",         // "" is the origin that served the page; else a member's address
    members: [],      // addresses of the alive members, from the last /api/v1/cluster
    nodes: [],        // the last overview's nodes
    health: null,
    view: null,
  };
  const TIMEOUT_MS = 6000;

  // body: a value sent as JSON, or a Blob sent as it is (its type the
  // Content-Type: a cover).
  async function once(base, method, path, body) {
    const headers = {};
    const blob = body instanceof Blob;
    if (body !== undefined) headers["Content-Type"] = blob ? body.type || "application/octet-stream" : "application/json";
    if (base) {
      // Another origin: the browser sends no cookie there (and must not:
      // the node answers with a wildcard origin); the session goes as a
      // header, which needs no CSRF token.
      headers.Authorization = "Session " + S.me.token;
    } else if (method !== "GET" && S.me && S.me.csrf_token) {
      headers["X-CSRF-Token"] = S.me.csrf_token;
    }
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
    let r;
    try {
      r = await fetch(base + path, {
        method, headers, signal: ctl.signal, cache: "no-store",
        credentials: base ? "omit" : "same-origin", mode: base ? "cors" : "same-origin",
        body: body === undefined ? undefined : blob ? body : JSON.stringify(body),
      });
    } catch (e) {
      throw new NetError(`${base || location.origin} did not answer (${e.name === "AbortError" ? "timed out" : e.message})`);
    } finally {
      clearTimeout(timer);
    }
    const text = await r.text().catch(() => "");
    let j = null;
    try { j = text ? JSON.parse(text) : null; } catch (e) { j = null; }
    if (!r.ok) {
      const msg = j && j.error && j.error.message ? j.error.message : `${r.status} ${r.statusText}`;
      throw new ApiError(r.status, msg, j && j.error && j.error.fields);
    }
    return j;
  }

  // The next address to try once `tried` failed: the page's own origin
  // first, then the members in the order of the list.
  function nextBase(tried) {
    const cands = [""].concat(S.members);
    for (const c of cands) {
      if (tried.has(c)) continue;
      // An https page may not read an http address (mixed content).
      if (c && location.protocol === "https:" && c.startsWith("http:")) continue;
      return c;
    }
    return null;
  }

  function moveTo(base, why) {
    S.base = base;
    const b = $("banner");
    if (!base) {
      b.hidden = true;
      return;
    }
    b.hidden = false;
    b.className = "banner";
    b.textContent = `${why}; the console now reads from ${base}.`;
  }

  // A request with failover: reads go to the next member when the node
  // does not answer. A write is never sent twice (it may have been done
  // before the connection broke): it fails, and the next request goes to
  // the next member.
  async function api(method, path, body) {
    const tried = new Set();
    for (;;) {
      try {
        return await once(S.base, method, path, body);
      } catch (e) {
        if (e instanceof ApiError && e.status === 401 && S.me) {
          loggedOut(e.message);
        }
        if (!(e instanceof NetError)) throw e;
        tried.add(S.base);
        // The page's origin is in the member list under its own address.
        if (S.base === "") tried.add(location.origin);
        const next = nextBase(tried);
        if (next === null) {
          const b = $("banner");
          b.hidden = false;
          b.className = "banner bad";
          b.textContent = "No node of the cluster answers; retrying.";
          throw e;
        }
        moveTo(next, `${S.base || location.origin} stopped answering`);
        if (method !== "GET") throw e;
      }
    }
  }

  /* ---------------------------------------------------------------- polling */

  // A loop per figure: runs fn, then again `every` ms after it finished
  // (never two at once), while `when()` holds and the page is visible.
  const loops = [];
  function loop(every, fn, when) {
    const l = { every, fn, when: when || (() => true), timer: null, running: false };
    const run = async () => {
      l.timer = null;
      if (!S.me) return;
      if (!document.hidden && l.when()) {
        l.running = true;
        try { await fn(); } catch (e) { /* each fn shows its own errors */ }
        l.running = false;
      }
      l.timer = setTimeout(run, l.every);
    };
    l.kick = () => {
      if (l.running) return;
      if (l.timer) clearTimeout(l.timer);
      run();
    };
    loops.push(l);
    return l;
  }
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) for (const l of loops) l.kick();
  });

  /* ---------------------------------------------------------------- tables */

  // Renders rows into container as a table that is updated in place (a
  // button being clicked is not replaced under the pointer). cols:
  // [{label, cls, value(row) -> string | Node, sig(row)?}]; a cell is
  // redrawn only when its signature (its text, by default) changes.
  function table(container, cols, rows, key, rowClass) {
    let t = container.querySelector("table");
    if (!t) {
      t = el("table", { class: "cards" },
        el("thead", {}, el("tr", {}, ...cols.map((c) => el("th", { class: c.cls, text: c.label })))),
        el("tbody"));
      container.replaceChildren(t);
    }
    const tb = t.tBodies[0];
    const old = new Map([...tb.rows].map((tr) => [tr.dataset.key, tr]));
    let prev = null;
    for (const r of rows) {
      const k = String(key(r));
      let tr = old.get(k);
      if (tr) old.delete(k);
      else {
        tr = el("tr", { "data-key": k }, ...cols.map((c) => el("td", { class: c.cls, "data-label": c.label })));
      }
      tr.className = rowClass ? rowClass(r) || "" : "";
      cols.forEach((c, i) => {
        const td = tr.cells[i];
        const v = c.value(r);
        const sig = c.sig ? c.sig(r) : (typeof v === "string" ? v : null);
        if (sig !== null && td.dataset.sig === sig) return;
        td.dataset.sig = sig === null ? "" : sig;
        if (v instanceof Node) td.replaceChildren(v);
        else td.textContent = v;
      });
      // In the answer's order.
      if (prev ? prev.nextSibling !== tr : tb.firstChild !== tr) {
        if (prev) prev.after(tr); else tb.prepend(tr);
      }
      prev = tr;
    }
    for (const tr of old.values()) tr.remove();
    if (!rows.length) container.replaceChildren(el("p", { class: "muted", text: "None." }));
  }

  function errorBox(container, what, e) {
    container.replaceChildren(el("p", { class: "err", text: `${what}: ${e.message}` }));
  }

  // A button that asks "sure?" first: the first click arms it for 5 s.
  function confirmButton(label, sure, cls, action) {
    const b = el("button", { class: `small ${cls || ""}`, type: "button", text: label });
    let armed = null;
    b.addEventListener("click", async () => {
      if (!armed) {
        b.textContent = sure;
        b.classList.add("danger");
        armed = setTimeout(() => { armed = null; b.textContent = label; b.classList.remove("danger"); }, 5000);
        return;
      }
      clearTimeout(armed);
      armed = null;
      b.disabled = true;
      try { await action(); } finally {
        b.disabled = false;
        b.textContent = label;
        b.classList.remove("danger");
      }
    });
    return b;
  }

  // What was made once and is not shown again (a token, a key, a password).
  function secret(container, title, items) {
    const box = el("div", { class: "secret" }, el("b", { text: title }),
      el("p", { class: "muted small", text: "Shown once: copy it now, it cannot be shown again." }));
    for (const [label, value] of items) {
      const code = el("code", { class: "mono", text: value });
      const copy = el("button", { type: "button", class: "small quiet", text: "Copy" });
      copy.addEventListener("click", async () => {
        try {
          await navigator.clipboard.writeText(value);
          copy.textContent = "Copied";
        } catch (e) {
          // No clipboard outside a secure context: select it for Ctrl-C.
          const sel = getSelection();
          sel.selectAllChildren(code);
          copy.textContent = "Selected";
        }
      });
      box.append(el("div", { class: "row spread" }, el("span", { class: "muted", text: label }), copy), code);
    }
    box.append(el("button", { type: "button", class: "small quiet", text: "Done", onclick: () => box.remove() }));
    container.replaceChildren(box);
  }

  /* ---------------------------------------------------------------- overview */

  function nodeName(n) {
    return n ? n.address.replace(/^https?:\/\//, "") : "?";
  }
  function nodeById(id) {
    return S.nodes.find((n) => n.id === id);
  }

  function renderHealth(h) {
    const dot = (cls) => el("span", { class: `dot ${cls}` });
    const yes = (v) => v === true ? "ok" : v === false ? "bad" : "off";
    const lag = h.replication_lag_ms;
    const box = $("health");
    box.hidden = false;
    box.replaceChildren(
      el("span", { id: "h-alive" }, dot(h.alive ? "ok" : "off"), `${h.alive} alive`),
      el("span", { id: "h-suspect" }, dot(h.suspect ? "warn" : "off"), `${h.suspect} suspect`),
      el("span", { id: "h-dead" }, dot(h.dead ? "bad" : "off"), `${h.dead} dead`),
      el("span", {}, dot(yes(h.database.reachable)),
        `database ${h.database.kind} ${h.database.reachable ? "reachable" : "unreachable"}`),
      el("span", {}, dot(yes(h.origin.reachable)),
        `origin ${h.origin.kind} ${h.origin.reachable === null ? "not read yet" : h.origin.reachable ? "reachable" : "unreachable"}`),
      el("span", {}, dot(lag === null ? "off" : lag > 5000 ? "warn" : "ok"),
        `replication lag ${lag === null ? "unknown" : ms(lag)}`),
    );
  }

  function stateCell(n) {
    const wrap = el("span", {}, el("span", { class: `badge ${n.state}`, text: n.state }));
    if (n.drained) wrap.append(" ", el("span", { class: "badge drained", text: "drained" }));
    if (n.state !== "dead" && n.answered === false) wrap.append(" ", el("span", { class: "badge suspect", text: "no answer" }));
    return wrap;
  }

  function nodeActions(n) {
    const box = el("span", { class: "row" });
    box.append(el("button", { type: "button", class: "small quiet", text: "Log", onclick: () => showLog(n.id) }));
    if (n.state !== "dead" && n.answered) {
      if (n.drained) {
        box.append(el("button", {
          type: "button", class: "small", text: "Undrain", "data-action": "undrain",
          onclick: () => drain(n, false),
        }));
      } else {
        const b = confirmButton("Drain", "Confirm drain", "", () => drain(n, true));
        b.dataset.action = "drain";
        box.append(b);
      }
    }
    return box;
  }

  async function drain(n, on) {
    try {
      const r = await api(on ? "POST" : "DELETE", `/api/v1/nodes/${n.id}/drain`);
      note(on ? `${nodeName(n)} drained: new streams go to the other nodes; those in flight finish.`
        : `${nodeName(n)} undrained: it takes new streams again.`);
      const cur = nodeById(n.id);
      if (cur) cur.drained = r.drained;
      overviewLoop.kick();
    } catch (e) {
      note(`${on ? "Drain" : "Undrain"} of ${nodeName(n)} failed: ${e.message}`, true);
    }
  }

  const NODE_COLS = [
    { label: "Node", value: (n) => el("span", {},
        el("span", { class: "mono", text: nodeName(n) }),
        n.self ? el("span", { class: "badge me", text: "answering" }) : null,
        n.site ? el("div", { class: "muted small", text: n.site }) : null),
      sig: (n) => `${n.address}|${n.site}|${n.self}` },
    { label: "State", cls: "state", value: stateCell, sig: (n) => `${n.state}|${n.drained}|${n.answered}` },
    { label: "Version", value: (n) => n.version ?? dash },
    { label: "Uptime", cls: "n", value: (n) => duration(n.uptime_s) },
    { label: "Connections", cls: "n", value: (n) => num(n.connections) },
    { label: "Requests/s", cls: "n", value: (n) => rate(n.requests_per_s) },
    { label: "Out/s", cls: "n", value: (n) => n.bytes_out_per_s === null ? dash : bytes(n.bytes_out_per_s) + "/s" },
    { label: "Cache used", cls: "n", value: (n) => n.cache_bytes === null ? dash
        : `${bytes(n.cache_bytes)} of ${bytes(n.cache_budget_bytes)}` },
    { label: "Hit ratio", cls: "n", value: (n) => pct(n.cache_hit_ratio) },
    { label: "Lag", cls: "n", value: (n) => ms(n.replication_lag_ms) },
    { label: "Plays to ship", cls: "n", value: (n) => num(n.plays_queued) },
    { label: "", cls: "actions", value: nodeActions, sig: (n) => `${n.state}|${n.drained}|${n.answered}` },
  ];

  let overviewAt = 0;
  async function pollOverview() {
    let o;
    try {
      o = await api("GET", "/api/v1/overview");
    } catch (e) {
      $("overview-age").textContent = `The overview did not load: ${e.message}` +
        (overviewAt ? ` (figures from ${duration((Date.now() - overviewAt) / 1000)} ago)` : "");
      return;
    }
    overviewAt = Date.now();
    S.health = o.health;
    S.nodes = o.nodes;
    renderHealth(o.health);
    table($("nodes"), NODE_COLS, o.nodes, (n) => n.id, (n) => n.state);
    $("overview-age").textContent = `Updated ${new Date().toLocaleTimeString("en-GB")}; every node not dead is asked each second.`;
    updateNodeChoices();
  }

  // The member list a player keeps: where to go when this node stops.
  async function pollMembers() {
    try {
      const c = await api("GET", "/api/v1/cluster");
      S.members = c.nodes.filter((n) => n.state === "alive").map((n) => n.address.replace(/\/+$/, ""));
      S.memberNames = new Map(c.nodes.map((n) => [n.id, n.address]));
    } catch (e) { /* keep the last list */ }
  }

  /* ---------------------------------------------------------------- charts */

  const FIELDS = ["requests", "bytes_out", "errors_4xx", "errors_5xx", "cache_hits", "cache_misses",
    "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "ttfb_p50_ms", "ttfb_p95_ms", "ttfb_p99_ms"];
  const SUMMED = new Set(["requests", "bytes_out", "errors_4xx", "errors_5xx", "cache_hits", "cache_misses"]);
  const HOUR = 3600;
  const series = new Map(); // node id -> {t: [], field: []...}, oldest first, the last hour

  function hitRatio(d) {
    // Over a trailing minute: a ratio of one second's few lookups jumps
    // between 0 and 100 %.
    const out = new Array(d.t.length).fill(null);
    let hits = 0, looks = 0, j = 0;
    for (let i = 0; i < d.t.length; i++) {
      hits += d.cache_hits[i] || 0;
      looks += (d.cache_hits[i] || 0) + (d.cache_misses[i] || 0);
      while (d.t[j] <= d.t[i] - 60) {
        hits -= d.cache_hits[j] || 0;
        looks -= (d.cache_hits[j] || 0) + (d.cache_misses[j] || 0);
        j++;
      }
      out[i] = looks > 0 ? 100 * hits / looks : null;
    }
    return out;
  }

  const C = { blue: "#4ea1ff", green: "#3ec27a", amber: "#e8b53a", red: "#f0625d", violet: "#b48cff" };
  const CHARTS = [
    { id: "requests", title: "Requests/s", fmt: (v) => rate(v), now: "mean",
      lines: [["requests", "requests", C.blue]] },
    { id: "bandwidth", title: "Bandwidth out", fmt: (v) => bytes(v) + "/s", now: "mean",
      lines: [["bytes/s", "bytes_out", C.green]] },
    { id: "latency", title: "Latency (not streams), ms", fmt: (v) => ms(v), now: "last", gappy: true,
      lines: [["p50", "latency_p50_ms", C.blue], ["p95", "latency_p95_ms", C.amber], ["p99", "latency_p99_ms", C.red]] },
    { id: "ttfb", title: "Stream time to first byte, ms", fmt: (v) => ms(v), now: "last", gappy: true,
      lines: [["p50", "ttfb_p50_ms", C.blue], ["p95", "ttfb_p95_ms", C.amber], ["p99", "ttfb_p99_ms", C.red]] },
    { id: "errors", title: "Errors/s", fmt: (v) => rate(v), now: "mean",
      lines: [["4xx", "errors_4xx", C.amber], ["5xx", "errors_5xx", C.red]] },
    { id: "hits", title: "Cache hit ratio (trailing minute), %", fmt: (v) => num(v, 1) + " %", now: "last",
      lines: [["hit ratio", "hit_ratio", C.violet]], range: [0, 100] },
  ];

  function merge(id, s) {
    let d = series.get(id);
    if (!d) {
      d = { t: [] };
      for (const f of FIELDS) d[f] = [];
      series.set(id, d);
    }
    const last = d.t.length ? d.t[d.t.length - 1] : 0;
    for (let i = 0; i < s.t.length; i++) {
      if (s.t[i] <= last) continue;
      d.t.push(s.t[i]);
      for (const f of FIELDS) d[f].push(s[f] ? s[f][i] : null);
    }
    const cut = d.t.findIndex((t) => t > d.t[d.t.length - 1] - HOUR);
    if (cut > 0) for (const k of Object.keys(d)) d[k].splice(0, cut);
  }

  // The cluster's seconds: counts summed over the nodes, percentiles the
  // highest node's (percentiles of different nodes do not add up).
  function clusterSeries() {
    const ts = new Set();
    for (const d of series.values()) for (const t of d.t) ts.add(t);
    const t = [...ts].sort((a, b) => a - b);
    const at = new Map(t.map((v, i) => [v, i]));
    const out = { t };
    for (const f of FIELDS) out[f] = new Array(t.length).fill(SUMMED.has(f) ? 0 : null);
    for (const d of series.values()) {
      for (let i = 0; i < d.t.length; i++) {
        const k = at.get(d.t[i]);
        for (const f of FIELDS) {
          const v = d[f][i];
          if (v === null || v === undefined) continue;
          if (SUMMED.has(f)) out[f][k] += v;
          else out[f][k] = out[f][k] === null ? v : Math.max(out[f][k], v);
        }
      }
    }
    return out;
  }

  const AXIS = { stroke: "#8b95a3", grid: { stroke: "#252b33", width: 1 }, ticks: { stroke: "#2a3038", width: 1 } };
  // A y axis as wide as its longest label (uPlot's default cuts "7.7 KiB/s").
  function axisWidth(u, values) {
    const longest = values && values.length ? Math.max(...values.map((v) => String(v).length)) : 2;
    return 16 + 7 * longest;
  }

  const plots = new Map(); // chart id -> {u, head}
  function ensureCharts() {
    if (plots.size || typeof uPlot === "undefined") return;
    const box = $("charts");
    for (const c of CHARTS) {
      const plot = el("div", { class: "plot" });
      const head = el("span", { class: "now" });
      box.append(el("div", { class: "chart", id: `chart-${c.id}` }, el("h3", {}, el("span", { text: c.title }), head), plot));
      const u = new uPlot({
        width: Math.max(200, plot.clientWidth || 400), height: 190,
        cursor: { drag: { x: false, y: false } },
        legend: { live: true },
        scales: { x: { time: true }, y: c.range ? { range: c.range } : { range: (u, lo, hi) => [0, hi > 0 ? hi * 1.1 : 1] } },
        axes: [AXIS, { ...AXIS, size: axisWidth, values: (u, vals) => vals.map((v) => c.fmt(v)) }],
        series: [{}].concat(c.lines.map(([label, , color]) => ({
          label, stroke: color, width: 1.5, spanGaps: false, value: (u, v) => v === null ? dash : c.fmt(v),
          // Percentiles are null in a second without such requests: a
          // lone second between gaps is a point, which a line would not show.
          points: c.gappy ? { show: true, size: 4, fill: color } : undefined,
        }))),
      }, [[], ...c.lines.map(() => [])], plot);
      new ResizeObserver(() => {
        const w = plot.clientWidth;
        if (w > 0 && Math.abs(w - u.width) > 2) u.setSize({ width: w, height: 190 });
      }).observe(plot);
      plots.set(c.id, { u, head, c });
    }
  }

  function drawCharts() {
    ensureCharts();
    const scope = $("chart-scope").value || "cluster";
    const d = scope === "cluster" ? clusterSeries() : series.get(scope);
    if (!d) return;
    d.hit_ratio = hitRatio(d);
    for (const { u, head, c } of plots.values()) {
      const data = [d.t, ...c.lines.map(([, f]) => d[f])];
      u.setData(data);
      const first = d[c.lines[0][1]];
      let v = null;
      if (c.now === "mean") {
        const tail = first.slice(-10).filter((x) => x !== null);
        v = tail.length ? tail.reduce((a, b) => a + b, 0) / tail.length : null;
      } else {
        for (let i = first.length - 1; i >= 0 && v === null; i--) v = first[i];
      }
      head.textContent = v === null ? "" : `${c.fmt(v)} now`;
      u.root.dataset.points = String(first.filter((x) => x !== null).length);
    }
  }

  async function pollSeries() {
    const live = S.nodes.filter((n) => n.state !== "dead" && n.answered);
    await Promise.all(live.map(async (n) => {
      const d = series.get(n.id);
      const since = d && d.t.length ? d.t[d.t.length - 1] : 0;
      try {
        merge(n.id, await api("GET", `/api/v1/nodes/${n.id}/series${since ? "?since=" + since : ""}`));
      } catch (e) { /* a node that did not answer keeps what it had */ }
    }));
    drawCharts();
  }

  function updateNodeChoices() {
    for (const [sel, withCluster] of [[$("chart-scope"), true], [$("log-node"), false]]) {
      if (!sel) continue;
      const want = (withCluster ? [["cluster", "the cluster"]] : [])
        .concat(S.nodes.map((n) => [n.id, nodeName(n) + (n.state === "dead" ? " (dead)" : "")]));
      const have = [...sel.options].map((o) => [o.value, o.textContent]);
      if (JSON.stringify(want) === JSON.stringify(have)) continue;
      const cur = sel.value;
      sel.replaceChildren(...want.map(([v, t]) => el("option", { value: v, text: t })));
      if (want.some(([v]) => v === cur)) sel.value = cur;
    }
  }

  /* ---------------------------------------------------------------- playing now */

  const titles = new Map(); // track id -> "Title — Artist"
  async function trackTitle(id) {
    if (!titles.has(id)) {
      titles.set(id, api("GET", `/api/v1/tracks/${id}`)
        .then((t) => `${t.title ?? "(untitled)"} — ${t.artist ?? "unknown artist"}`)
        .catch(() => { titles.delete(id); return id; }));
    }
    return titles.get(id);
  }

  // Key ids by their names, for "who" in the streams (people are named already).
  const keyNames = new Map();
  async function loadKeyNames() {
    try {
      const r = await api("GET", "/api/v1/keys");
      for (const k of r.keys) keyNames.set(`key:${k.id}`, k.name ? `${k.name} (key ${k.id})` : `key ${k.id}`);
    } catch (e) { /* the ids stay */ }
  }

  async function pollLive() {
    const box = $("live");
    let r;
    try {
      r = await api("GET", "/api/v1/live");
    } catch (e) {
      errorBox(box, "What is playing could not be read", e);
      return;
    }
    const streams = [];
    for (const n of r.nodes) for (const s of n.streams) streams.push({ ...s, node: n.node });
    if (streams.some((s) => s.who.startsWith("key:") && !keyNames.has(s.who))) await loadKeyNames();
    const names = await Promise.all(streams.map((s) => trackTitle(s.track_id)));
    streams.forEach((s, i) => { s.title = names[i]; });
    // A store key names its location and zone by their ids.
    const isId = (v) => /^[0-9a-f]{16}$/.test(v || "");
    if (streams.some((s) => isId(s.location) || isId(s.zone))) {
      await storeNames(streams.flatMap((s) => [s.location, s.zone]).filter(isId));
      for (const s of streams) {
        if (isId(s.location)) s.location = placeName(s.location);
        if (isId(s.zone)) s.zone = placeName(s.zone);
      }
    }
    const byLoc = new Map();
    for (const s of streams) {
      const k = s.location || "";
      if (!byLoc.has(k)) byLoc.set(k, []);
      byLoc.get(k).push(s);
    }
    const out = [el("p", { class: "muted", text: `${streams.length} stream${streams.length === 1 ? "" : "s"} in flight.` })];
    const locs = [...byLoc.keys()].sort((a, b) => (a === "") - (b === "") || a.localeCompare(b));
    for (const loc of locs) {
      const rows = byLoc.get(loc).sort((a, b) => (a.zone || "").localeCompare(b.zone || "") || a.started - b.started);
      const wrap = el("div", { class: "table-wrap" });
      table(wrap, [
        { label: "Zone", value: (s) => s.zone || dash },
        { label: "Track", value: (s) => s.title },
        { label: "Who", value: (s) => keyNames.get(s.who) || s.who },
        { label: "Node", value: (s) => nodeName(nodeById(s.node)) },
        { label: "Since", cls: "n", value: (s) => ago(s.started) },
      ], rows, (s) => `${s.node}|${s.who}|${s.track_id}|${s.started}`);
      out.push(el("div", { class: "group" }, el("h3", { text: loc || "Not a store (users, other keys)" }), wrap));
    }
    if (r.unanswered && r.unanswered.length) {
      out.push(el("p", { class: "err", text: `Not answering, their streams are not shown: ${r.unanswered.map((id) => nodeName(nodeById(id))).join(", ")}` }));
    }
    box.replaceChildren(...out);
  }

  /* ---------------------------------------------------------------- plays */

  let playsPlot = null, playsResize = null;
  async function loadPlays() {
    const hours = Number($("plays-period").value);
    const now = Date.now();
    const from = new Date(Math.floor(now / 3600000) * 3600000 - (hours - 1) * 3600000);
    const q = `from=${encodeURIComponent(from.toISOString())}`;
    const hourly = $("plays-hourly"), top = $("plays-top");
    try {
      const r = await api("GET", `/api/v1/reports/plays?group=hour&${q}`);
      // Every hour of the period, those without plays at 0.
      const by = new Map(r.rows.map((x) => [x.id, x.plays]));
      const t = [], v = [];
      for (let h = 0; h < hours; h++) {
        const d = new Date(from.getTime() + h * 3600000);
        t.push(d.getTime() / 1000);
        v.push(by.get(d.toISOString().slice(0, 13)) || 0);
      }
      const total = v.reduce((a, b) => a + b, 0);
      if (!playsPlot && typeof uPlot !== "undefined") {
        hourly.replaceChildren();
        playsPlot = new uPlot({
          width: Math.max(200, hourly.clientWidth || 600), height: 220,
          legend: { show: false }, cursor: { drag: { x: false, y: false } },
          // Half an hour either side: the first and last bars whole.
          scales: { x: { time: true, range: (u, lo, hi) => [lo - 1800, hi + 1800] },
            y: { range: (u, lo, hi) => [0, Math.max(1, hi * 1.1)] } },
          axes: [AXIS, { ...AXIS, size: axisWidth }],
          series: [{}, { label: "plays", stroke: C.blue, fill: "#4ea1ff55", paths: uPlot.paths.bars({ size: [0.8, 40] }), points: { show: false } }],
        }, [t, v], hourly);
        const u = playsPlot;
        playsResize = new ResizeObserver(() => {
          const w = hourly.clientWidth;
          if (w > 0 && Math.abs(w - u.width) > 2) u.setSize({ width: w, height: 220 });
        });
        playsResize.observe(hourly);
        hourly.append(el("p", { class: "muted small", id: "plays-total" }));
      } else if (playsPlot) {
        playsPlot.setData([t, v]);
      }
      const tot = $("plays-total");
      if (tot) tot.textContent = `${num(total)} plays in the period (UTC hours, local time on the axis).`;
    } catch (e) {
      // The chart goes with the error in its place; the next answer makes another.
      if (playsPlot) {
        playsResize.disconnect();
        playsPlot.destroy();
        playsPlot = null;
      }
      errorBox(hourly, "Plays per hour could not be read", e);
    }
    try {
      const r = await api("GET", `/api/v1/reports/plays?group=track&${q}`);
      table(top, [
        { label: "#", cls: "n", value: (x) => String(r.rows.indexOf(x) + 1) },
        { label: "Track", value: (x) => x.name ?? x.id },
        { label: "Plays", cls: "n", value: (x) => num(x.plays) },
        { label: "Time played", cls: "n", value: (x) => playTime(x.ms_played) },
      ], r.rows.slice(0, 20), (x) => x.id);
    } catch (e) {
      errorBox(top, "Top tracks could not be read", e);
    }
  }

  /* ---------------------------------------------------------------- library */

  async function loadLibrary() {
    const box = $("library");
    let r;
    try {
      r = await api("GET", "/api/v1/library");
    } catch (e) {
      errorBox(box, "The library summary is not available", e);
      return;
    }
    const fig = (label, v) => el("div", {}, el("b", { text: v }), el("span", { class: "muted", text: label }));
    const ingests = el("div", { class: "table-wrap" });
    table(ingests, [
      { label: "Started", value: (i) => when(i.started) },
      { label: "Finished", value: (i) => i.finished ? when(i.finished) : "running" },
      { label: "Host", value: (i) => i.host ?? dash },
      { label: "Added", cls: "n", value: (i) => num(i.added) },
      { label: "Updated", cls: "n", value: (i) => num(i.updated) },
      { label: "Unchanged", cls: "n", value: (i) => num(i.unchanged) },
      { label: "Failed", cls: "n", value: (i) => num(i.failed) },
      { label: "Errors", value: (i) => i.errors && i.errors.length
          ? el("ul", { class: "list" }, ...i.errors.map((x) => el("li", {}, el("span", { class: "mono small", text: x.path }), el("div", { class: "err", text: x.message }))))
          : dash, sig: (i) => JSON.stringify(i.errors || []) },
    ], r.ingests || [], (i) => i.id);
    box.replaceChildren(
      el("div", { class: "figures" },
        fig("artists", num(r.artists)), fig("albums", num(r.albums)), fig("tracks", num(r.tracks)),
        fig("of music", duration((r.duration_ms || 0) / 1000)), fig("in the origin", bytes(r.origin_bytes))),
      el("h3", { text: "Latest ingests" }), ingests);
  }

  /* ---------------------------------------------------------------- library: browse and edit */

  // The catalog by page (GET /api/v1/tracks or /albums, by title) or a
  // search's best 50; a track or album is edited in a form (PATCH, the
  // 422's problems next to their fields), an album's cover replaced (PUT
  // .../cover), either deleted after a confirmation (DELETE).
  const PAGE = 25;
  const B = { kind: "tracks", offset: 0, focus: null, seq: 0, rows: [], shown: null };

  // A link's address on the node the page reads from (cover_url is a path).
  function href(path) {
    return path ? S.base + path : null;
  }

  const TRACK_COLS = [
    { label: "Title", value: (t) => el("span", {}, t.title ?? "(untitled)",
        t.explicit ? el("span", { class: "badge drained", text: "E", title: "explicit" }) : null),
      sig: (t) => `${t.title}|${t.explicit}` },
    { label: "Artist", value: (t) => t.artist ?? dash },
    { label: "Album", value: (t) => t.album ?? dash },
    { label: "#", cls: "n", value: (t) => t.track_number ? (t.disc_number > 1 ? `${t.disc_number}.` : "") + t.track_number : dash },
    { label: "Year", cls: "n", value: (t) => t.year ? String(t.year) : dash },
    { label: "Length", cls: "n", value: (t) => duration((t.duration_ms || 0) / 1000) },
    { label: "Format", value: (t) => t.codec ? `${t.codec}${t.bitrate ? " " + Math.round(t.bitrate / 1000) + "k" : ""}` : dash },
    { label: "", cls: "actions", sig: (t) => t.id, value: (t) => el("span", { class: "row" },
        el("button", { type: "button", class: "small quiet", text: "Edit", "data-action": "edit", onclick: () => editTrack(t.id) }),
        el("button", { type: "button", class: "small quiet", text: "Delete", "data-action": "delete",
          onclick: () => confirmDelete("track", t) })) },
  ];
  const ALBUM_COLS = [
    { label: "Cover", value: (a) => a.cover_url
        ? el("img", { class: "cover", src: href(a.cover_url), alt: "", loading: "lazy" })
        : el("span", { class: "nocover" }), sig: (a) => a.cover_url || "" },
    { label: "Title", value: (a) => a.title ?? "(untitled)" },
    { label: "Artist", value: (a) => a.artist ?? dash },
    { label: "Year", cls: "n", value: (a) => a.year ? String(a.year) : dash },
    { label: "Tracks", cls: "n", value: (a) => num(a.track_count) },
    { label: "Length", cls: "n", value: (a) => duration((a.duration_ms || 0) / 1000) },
    { label: "", cls: "actions", sig: (a) => a.id, value: (a) => el("span", { class: "row" },
        el("button", { type: "button", class: "small quiet", text: "Tracks", onclick: () => albumTracks(a) }),
        el("button", { type: "button", class: "small quiet", text: "Edit", "data-action": "edit", onclick: () => editAlbum(a.id) }),
        el("button", { type: "button", class: "small quiet", text: "Cover", "data-action": "cover", onclick: () => pickCover(a) }),
        el("button", { type: "button", class: "small quiet", text: "Delete", "data-action": "delete",
          onclick: () => confirmDelete("album", a) })) },
  ];

  function browseKind(kind) {
    B.kind = kind;
    B.offset = 0;
    B.focus = null;
    for (const k of ["tracks", "albums"]) {
      $(`browse-${k}`).classList.toggle("on", k === kind);
      $(`browse-${k}`).setAttribute("aria-pressed", String(k === kind));
    }
    $("browse").replaceChildren();
    loadBrowse();
  }

  // focus: {kind: "track"|"album", id} shows that one alone (an upload's
  // result links here), {kind: "album-tracks", album} an album's tracks.
  async function loadBrowse() {
    const box = $("browse"), note_ = $("browse-note");
    const seq = ++B.seq;
    const q = $("browse-q").value.trim();
    let rows, total = null, what;
    try {
      if (B.focus && B.focus.kind === "track") {
        rows = [await api("GET", `/api/v1/tracks/${B.focus.id}`)];
        what = "One track";
      } else if (B.focus && B.focus.kind === "album-tracks") {
        const a = await api("GET", `/api/v1/albums/${B.focus.album.id}`);
        rows = a.tracks || [];
        what = `The tracks of ${a.title ?? "(untitled)"}${a.artist ? " by " + a.artist : ""}`;
      } else if (q) {
        const r = await api("GET", `/api/v1/search?q=${encodeURIComponent(q)}&limit=50`);
        rows = B.kind === "tracks" ? r.tracks : r.albums;
        what = `${rows.length}${rows.length === 50 ? " best" : ""} ${rows.length === 1 ? B.kind.slice(0, -1) : B.kind} matching “${q}”`;
      } else {
        const r = await api("GET", `/api/v1/${B.kind}?limit=${PAGE}&offset=${B.offset}`);
        rows = r[B.kind];
        total = r.total;
        what = total ? `${num(B.offset + 1)}–${num(B.offset + rows.length)} of ${num(total)} ${B.kind}, by title` : "";
      }
    } catch (e) {
      if (seq === B.seq) errorBox(box, `The ${B.kind} could not be read`, e);
      return;
    }
    if (seq !== B.seq) return; // an answer to an older question
    const isTracks = B.focus ? B.focus.kind !== "album" : B.kind === "tracks";
    B.rows = rows;
    B.shown = isTracks ? "tracks" : "albums";
    const cur = box.querySelector("table");
    if (cur && cur.dataset.kind !== B.shown) box.replaceChildren();
    table(box, isTracks ? TRACK_COLS : ALBUM_COLS, rows, (x) => x.id,
      (x) => B.focus && x.id === B.focus.id ? "focus" : "");
    const t = box.querySelector("table");
    if (t) t.dataset.kind = B.shown;
    note_.replaceChildren(el("span", { text: what }),
      ...(B.focus ? [el("button", { type: "button", class: "small quiet", id: "browse-all", text: "Show all",
        onclick: () => { B.focus = null; if (location.hash.startsWith("#library/")) history.replaceState(null, "", "#library"); loadBrowse(); } })] : []));
    const paged = total !== null;
    $("browse-prev").hidden = $("browse-next").hidden = !paged;
    $("browse-page").textContent = paged && total > PAGE ? `page ${Math.floor(B.offset / PAGE) + 1} of ${Math.ceil(total / PAGE)}` : "";
    $("browse-prev").disabled = B.offset === 0;
    $("browse-next").disabled = !paged || B.offset + PAGE >= total;
  }

  function albumTracks(a) {
    B.focus = { kind: "album-tracks", album: a, id: null };
    loadBrowse();
  }

  // The fields a form edits: [name, label, type, nullable]; type is
  // text, int or flag. Those not nullable cannot be cleared (the API says so).
  const EDIT_FIELDS = {
    track: [["title", "Title", "text", false], ["artist", "Artist", "text", false],
      ["album", "Album", "text", false], ["album_artist", "Album artist", "text", false],
      ["track_number", "Track number", "int", true], ["disc_number", "Disc number", "int", true],
      ["year", "Year", "int", true], ["genre", "Genre", "text", true],
      ["isrc", "ISRC", "text", true], ["label", "Label", "text", true],
      ["explicit", "Explicit", "flag", true]],
    album: [["title", "Title", "text", false], ["artist", "Album artist", "text", false],
      ["year", "Year", "int", true], ["genre", "Genre", "text", true], ["label", "Label", "text", true]],
  };

  function fieldValue(type, v) {
    if (type === "flag") return v === true ? "yes" : v === false ? "no" : "";
    return v === null || v === undefined ? "" : String(v);
  }

  // What the form says, for one field, as the API takes it. A number
  // field that is not a number goes as the text typed: the 422 says why.
  function formValue(type, nullable, raw) {
    if (type === "flag") return raw === "yes" ? true : raw === "no" ? false : null;
    const v = raw.trim();
    if (v === "" && nullable) return null;
    if (type === "int" && /^-?\d+$/.test(v)) return Number(v);
    return type === "int" ? v : raw;
  }

  // A node of a version without catalog editing answers 405.
  function noEditing(e) {
    return e.status === 405 ? " (this node has no catalog editing yet)" : "";
  }

  let editing = null; // {kind, id, obj}
  async function openEditor(kind, id) {
    let obj;
    try {
      obj = await api("GET", `/api/v1/${kind}s/${id}`);
    } catch (e) {
      note(`The ${kind} could not be read: ${e.message}`, true);
      return;
    }
    editing = { kind, id, obj };
    $("edit-title").textContent = kind === "track"
      ? `Edit the track “${obj.title ?? "(untitled)"}”` : `Edit the album “${obj.title ?? "(untitled)"}”`;
    $("edit-err").textContent = "";
    $("edit-fields").replaceChildren(...EDIT_FIELDS[kind].map(([name, label, type]) => {
      const input = type === "flag"
        ? el("select", { name }, el("option", { value: "", text: "unknown" }), el("option", { value: "yes", text: "yes" }), el("option", { value: "no", text: "no" }))
        : el("input", { name, autocomplete: "off", inputmode: type === "int" ? "numeric" : null });
      input.value = fieldValue(type, obj[name]);
      return el("label", { class: type === "text" && !["genre", "isrc", "label"].includes(name) ? "wide" : null, "data-field": name },
        label, input, el("span", { class: "ferr" }));
    }));
    $("edit-save").disabled = false;
    $("edit-dialog").showModal();
  }
  const editTrack = (id) => openEditor("track", id);
  const editAlbum = (id) => openEditor("album", id);

  async function saveEdit(ev) {
    ev.preventDefault();
    if (!editing) return;
    const { kind, id, obj } = editing;
    const body = {};
    for (const [name, , type, nullable] of EDIT_FIELDS[kind]) {
      const input = $("edit-fields").querySelector(`[name=${name}]`);
      const v = formValue(type, nullable, input.value);
      if (v !== (obj[name] ?? null)) body[name] = v;
    }
    for (const l of $("edit-fields").querySelectorAll("label")) {
      l.classList.remove("bad");
      l.querySelector(".ferr").textContent = "";
    }
    $("edit-err").textContent = "";
    if (!Object.keys(body).length) {
      $("edit-dialog").close();
      return;
    }
    $("edit-save").disabled = true;
    try {
      const r = await api("PATCH", `/api/v1/${kind}s/${id}`, body);
      $("edit-dialog").close();
      editing = null;
      titles.delete(id);
      note(`The ${kind} “${(r && r.title) ?? obj.title ?? id}” was saved (${Object.keys(body).join(", ")}).`);
      loadBrowse();
      loadLibrary();
    } catch (e) {
      $("edit-save").disabled = false;
      if (e.fields) {
        for (const [f, msg] of Object.entries(e.fields)) {
          const l = $("edit-fields").querySelector(`label[data-field="${CSS.escape(f)}"]`);
          if (l) {
            l.classList.add("bad");
            l.querySelector(".ferr").textContent = msg;
          }
        }
      }
      $("edit-err").textContent = `Not saved: ${e.message}${noEditing(e)}`;
    }
  }

  let coverFor = null;
  function pickCover(a) {
    coverFor = a;
    $("cover-file").value = "";
    $("cover-file").click();
  }
  async function putCover() {
    const f = $("cover-file").files[0], a = coverFor;
    if (!f || !a) return;
    if (!/^image\/(jpeg|png)$/.test(f.type)) {
      note(`${f.name} is not a JPEG or PNG picture.`, true);
      return;
    }
    try {
      await api("PUT", `/api/v1/albums/${a.id}/cover`, f);
      note(`The cover of “${a.title ?? a.id}” was replaced by ${f.name}.`);
      // The same address shows the new picture once the browser asks again.
      for (const img of $("browse").querySelectorAll("img.cover")) {
        if (img.closest("tr").dataset.key === a.id) img.src = href(`/api/v1/albums/${a.id}/cover`) + `?v=${Date.now()}`;
      }
      loadBrowse();
    } catch (e) {
      note(`The cover of “${a.title ?? a.id}” was not replaced: ${e.message}${noEditing(e)}`, true);
    }
  }

  let deleting = null;
  function confirmDelete(kind, x) {
    deleting = { kind, x };
    $("confirm-title").textContent = `Delete the ${kind} “${x.title ?? "(untitled)"}”?`;
    $("confirm-text").textContent = kind === "album"
      ? `${x.artist ? "By " + x.artist + ". " : ""}${x.track_count === 1 ? "Its one track goes" : `Its ${num(x.track_count)} tracks go`} with it: the audio is removed from the origin and no longer streamed. This cannot be undone.`
      : `${x.artist ? "By " + x.artist + ", " : ""}${x.album ? "on " + x.album + ". " : ""}Its audio is removed from the origin and it is no longer streamed. This cannot be undone.`;
    $("confirm-err").textContent = "";
    $("confirm-ok").disabled = false;
    $("confirm-ok").textContent = `Delete the ${kind}`;
    $("confirm-dialog").showModal();
  }
  async function doDelete() {
    if (!deleting) return;
    const { kind, x } = deleting;
    $("confirm-ok").disabled = true;
    try {
      await api("DELETE", `/api/v1/${kind}s/${x.id}`);
      $("confirm-dialog").close();
      deleting = null;
      note(`The ${kind} “${x.title ?? x.id}” was deleted.`);
      if (B.focus && B.focus.id === x.id) B.focus = null;
      loadBrowse();
      loadLibrary();
    } catch (e) {
      $("confirm-ok").disabled = false;
      $("confirm-err").textContent = `Not deleted: ${e.message}${noEditing(e)}`;
    }
  }

  let browseWired = false;
  function browseForms() {
    if (browseWired || !$("browse")) return;
    browseWired = true;
    $("browse-tracks").addEventListener("click", () => browseKind("tracks"));
    $("browse-albums").addEventListener("click", () => browseKind("albums"));
    let t = null;
    $("browse-q").addEventListener("input", () => {
      clearTimeout(t);
      t = setTimeout(() => { B.offset = 0; B.focus = null; loadBrowse(); }, 200);
    });
    $("browse-prev").addEventListener("click", () => { B.offset = Math.max(0, B.offset - PAGE); loadBrowse(); });
    $("browse-next").addEventListener("click", () => { B.offset += PAGE; loadBrowse(); });
    $("edit-form").addEventListener("submit", saveEdit);
    $("edit-cancel").addEventListener("click", () => { $("edit-dialog").close(); editing = null; });
    $("confirm-cancel").addEventListener("click", () => { $("confirm-dialog").close(); deleting = null; });
    $("confirm-ok").addEventListener("click", doDelete);
    $("cover-file").addEventListener("change", putCover);
  }

  // #library, #library/track/ID, #library/album/ID.
  function showLibrary(args) {
    loadLibrary();
    if (args[0] === "track" && /^[0-9a-f]{16}$/.test(args[1] || "")) {
      B.kind = "tracks";
      B.focus = { kind: "track", id: args[1] };
      $("browse-q").value = "";
    }
    loadBrowse();
  }

  /* ---------------------------------------------------------------- upload */

  // Files go to the node with tus (tus-js-client, inlined in the page):
  // a few at a time, the rest queued; each in one PATCH (no chunkSize),
  // retried after a lost connection from the offset the node kept. The
  // upload's address is kept in localStorage by the file's name, type,
  // size and date (tus's fingerprint), so the same file chosen again after
  // a reload goes on where the node stopped. After the last byte the node
  // ingests it; the page asks its status until done (the tracks) or
  // failed (why).
  const UP_PARALLEL = 3;
  const UP_POLL_MS = 700;
  const UP_WAIT_MS = 15 * 60 * 1000; // an ingest still not done: say so, stop asking
  // In a folder, only what looks like audio (or an album's archive) goes up:
  // covers, playlists and rip logs would each be a failed upload.
  const AUDIO_EXT = /\.(mp3|mp2|flac|ogg|oga|opus|m4a|m4b|mp4|aac|wav|wave|aif|aiff|aifc|wma|ape|wv|mka|alac|dsf|zip|tar|tgz|tar\.gz)$/i;
  const UP = { jobs: [], running: 0, n: 0, max: null, batchStart: 0 };

  const tusOK = () => typeof tus !== "undefined" && tus.isSupported;

  function uploadId(url) {
    const m = /\/api\/v1\/uploads\/([0-9a-f]{32})$/.exec(url || "");
    return m ? m[1] : null;
  }

  // Why the node refused, in words, from a tus-js-client error.
  function uploadError(err) {
    const res = err && err.originalResponse;
    const status = res ? res.getStatus() : 0;
    let msg = "";
    if (res) {
      try { msg = JSON.parse(res.getBody()).error.message; } catch (e) { msg = ""; }
    }
    switch (status) {
      case 0: return { status, refused: false, text: `the node did not answer (${(err && err.message || "").split(",")[0]}); retried, then given up` };
      case 401: return { status, refused: true, text: `refused (401): ${msg || "not logged in; log in again"}, then choose the file again` };
      case 403: return { status, refused: true, text: `refused (403): ${msg || "this login may not upload"}` };
      case 413: return { status, refused: true, text: `refused (413), too big: ${msg || "over the node's limit"}${UP.max ? ` (${bytes(UP.max)})` : ""}` };
      case 429: return { status, refused: true, text: `refused (429): ${msg || "too many unfinished uploads"}; finish or cancel some first` };
      case 460: return { status, refused: false, text: `the bytes arrived damaged (460): ${msg}` };
      default: return { status, refused: status >= 400 && status < 500, text: `${status >= 500 ? "failed" : "refused"} (${status}): ${msg || err.message}` };
    }
  }

  function jobRow(j) {
    const bar = el("i");
    j.ui = {
      bar, barBox: el("div", { class: "bar" }, bar),
      figs: el("span", { class: "figs" }), state: el("span", { class: "state" }),
      result: el("div", { class: "result" }), acts: el("span", { class: "acts" }),
    };
    j.ui.root = el("div", { class: "up", "data-n": String(j.n) },
      el("div", { class: "head" }, el("span", { class: "name", text: j.rel }), j.ui.figs, j.ui.state, j.ui.acts),
      j.ui.barBox, j.ui.result);
    return j.ui.root;
  }

  function jobRate(j) {
    const s = j.samples;
    if (!s || s.length < 2) return null;
    const [t0, b0] = s[0], [t1, b1] = s[s.length - 1];
    return t1 > t0 ? (b1 - b0) / ((t1 - t0) / 1000) : null;
  }

  const STATE_TEXT = {
    queued: "queued", sending: "sending", processing: "on the node", done: "done",
    failed: "failed", refused: "refused", cancelled: "cancelled",
  };

  function renderJob(j) {
    if (!j.ui) return;
    const u = j.ui, frac = j.size ? j.sent / j.size : 1;
    u.root.dataset.state = j.state;
    if (j.id) u.root.dataset.id = j.id;
    if (j.resumedAt !== null) u.root.dataset.resumed = String(j.resumedAt);
    u.bar.style.width = `${(frac * 100).toFixed(1)}%`;
    u.barBox.className = `bar${j.state === "done" ? " done" : j.state === "failed" || j.state === "refused" ? " failed" : ""}`;
    u.barBox.dataset.pct = String(Math.floor(frac * 100));
    let figs = `${bytes(j.sent)} of ${bytes(j.size)} · ${Math.floor(frac * 100)} %`;
    if (j.state === "sending") {
      const r = jobRate(j);
      if (r !== null) figs += ` · ${bytes(r)}/s`;
    } else if (j.sentMs) {
      figs += ` · ${bytes(j.sentBytes / (j.sentMs / 1000))}/s`;
    }
    u.figs.textContent = figs;
    let st = STATE_TEXT[j.state];
    if (j.state === "processing" && j.status) st = `on the node: ${j.status.state}`;
    if (j.state === "sending" && j.resumedAt) st = `sending, resumed at ${bytes(j.resumedAt)}`;
    u.state.className = `state ${j.state}`;
    u.state.textContent = st;
    const acts = [];
    if (j.state === "queued" || j.state === "sending") {
      acts.push(el("button", { type: "button", class: "small quiet", text: "Cancel", onclick: () => cancelJob(j) }));
    } else if (j.state === "failed" || j.state === "refused") {
      // Sending again helps after a lost connection, a busy node or too
      // many unfinished uploads; not for a file the node refused or could
      // not ingest.
      if ((!j.status || j.status.state !== "failed") && (j.state === "failed" || j.errStatus === 429)) {
        acts.push(el("button", { type: "button", class: "small quiet", text: "Retry", onclick: () => retryJob(j) }));
      }
    }
    u.acts.replaceChildren(...acts);
  }

  function renderResult(j, nodes) {
    j.ui.result.replaceChildren(...nodes.filter((x) => x !== null && x !== undefined));
  }

  // The Upload tab says how many are still going, from any view.
  function renderTab() {
    const a = [...$("tabs").children].find((x) => x.dataset.view === "upload");
    if (!a) return;
    const n = UP.jobs.filter((j) => ["queued", "sending", "processing"].includes(j.state)).length;
    a.textContent = n ? `Upload (${n})` : "Upload";
  }

  function renderTotal() {
    renderTab();
    // A refused file sent nothing, and will not: not in the figures.
    const jobs = UP.jobs.filter((j) => j.state !== "cancelled" && j.state !== "refused");
    const refused = UP.jobs.filter((j) => j.state === "refused").length;
    const box = $("up-total");
    box.hidden = !UP.jobs.length;
    $("up-actions").hidden = !UP.jobs.some((j) => ["done", "failed", "refused", "cancelled"].includes(j.state));
    if (!jobs.length) {
      $("up-total-text").textContent = refused ? `${refused} file${refused === 1 ? "" : "s"} refused, nothing to send.` : "Nothing to send.";
      $("up-total-rate").textContent = "";
      $("up-total-bar").style.width = "0";
      return;
    }
    const size = jobs.reduce((a, j) => a + j.size, 0), sent = jobs.reduce((a, j) => a + j.sent, 0);
    const by = (s) => jobs.filter((j) => j.state === s).length;
    const frac = size ? sent / size : 1;
    const parts = [];
    if (by("sending")) parts.push(`${by("sending")} sending`);
    if (by("queued")) parts.push(`${by("queued")} queued`);
    if (by("processing")) parts.push(`${by("processing")} on the node`);
    if (by("done")) parts.push(`${by("done")} done`);
    if (by("failed")) parts.push(`${by("failed")} failed`);
    if (refused) parts.push(`${refused} refused`);
    $("up-total-text").textContent = `${jobs.length} file${jobs.length === 1 ? "" : "s"}: ${parts.join(", ")} · ${bytes(sent)} of ${bytes(size)} (${Math.floor(frac * 100)} %)`;
    const rate = jobs.filter((j) => j.state === "sending").reduce((a, j) => a + (jobRate(j) || 0), 0);
    $("up-total-rate").textContent = rate ? `${bytes(rate)}/s` : "";
    $("up-total-bar").style.width = `${(frac * 100).toFixed(1)}%`;
    $("up-total-bar").parentElement.dataset.pct = String(Math.floor(frac * 100));
    // Green once all are in, red once nothing is going and one failed.
    const going = by("queued") + by("sending") + by("processing");
    $("up-total-bar").parentElement.className =
      `bar${by("done") === jobs.length ? " done" : !going && by("failed") ? " failed" : ""}`;
  }

  function addFiles(list) {
    if (!tusOK()) {
      note("This browser cannot upload files (no tus support).", true);
      return;
    }
    if (!UP.jobs.some((j) => j.state === "queued" || j.state === "sending")) UP.batchStart = performance.now();
    for (const { file, rel } of list) {
      const j = { n: ++UP.n, file, rel: rel || file.name, size: file.size, state: "queued", sent: 0,
        upload: null, id: null, status: null, samples: null, resumedAt: null, sentMs: 0, sentBytes: 0 };
      UP.jobs.push(j);
      $("up-list").append(jobRow(j));
      renderJob(j);
    }
    pump();
  }

  function pump() {
    while (UP.running < UP_PARALLEL) {
      const j = UP.jobs.find((x) => x.state === "queued");
      if (!j) break;
      startJob(j);
    }
    renderTotal();
  }

  async function startJob(j) {
    UP.running++;
    j.state = "sending";
    j.samples = [[performance.now(), j.sent]];
    j.t0 = performance.now();
    const base = S.base; // a failover moves later uploads, not this one
    const up = new tus.Upload(j.file, {
      endpoint: base + "/api/v1/uploads",
      retryDelays: [0, 1000, 3000, 5000, 10000, 20000],
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: true,
      metadata: { filename: j.file.name, filetype: j.file.type || "application/octet-stream" },
      onBeforeRequest: (req) => {
        // As every request of the console: the cookie with the CSRF token
        // on the page's own node, the session as a header on another.
        if (base) req.setHeader("Authorization", "Session " + S.me.token);
        else if (S.me && S.me.csrf_token) req.setHeader("X-CSRF-Token", S.me.csrf_token);
      },
      onAfterResponse: (req, res) => {
        if (req.getMethod() === "HEAD" && res.getStatus() === 200) {
          const off = Number(res.getHeader("Upload-Offset"));
          if (Number.isFinite(off)) {
            j.resumedAt = off;
            j.sent = off;
            j.samples = [[performance.now(), off]];
            renderJob(j);
          }
        }
      },
      onUploadUrlAvailable: () => {
        j.id = uploadId(up.url);
        renderJob(j);
      },
      onProgress: (sent) => {
        if (j.state !== "sending") return;
        j.sent = sent;
        const now = performance.now();
        j.samples.push([now, sent]);
        while (j.samples.length > 2 && j.samples[0][0] < now - 3000) j.samples.shift();
        renderJob(j);
        renderTotal();
      },
      onSuccess: () => {
        UP.running--;
        j.sent = j.size;
        j.sentMs = performance.now() - j.t0;
        j.sentBytes = j.size - (j.resumedAt || 0);
        j.id = j.id || uploadId(up.url);
        j.state = "processing";
        renderJob(j);
        pump();
        followUpload(j);
      },
      onError: (err) => {
        UP.running--;
        if (j.state === "cancelled") { pump(); return; }
        const why = uploadError(err);
        j.state = why.refused ? "refused" : "failed";
        j.errStatus = why.status;
        renderJob(j);
        renderResult(j, [el("span", { class: "err", text: why.text })]);
        pump();
      },
    });
    j.upload = up;
    try {
      const prev = await up.findPreviousUploads();
      if (prev.length) {
        prev.sort((a, b) => (Date.parse(b.creationTime) || 0) - (Date.parse(a.creationTime) || 0));
        up.resumeFromPreviousUpload(prev[0]);
        j.resuming = true;
      }
    } catch (e) { /* none kept: a new upload */ }
    if (j.state !== "sending") { UP.running--; pump(); return; } // cancelled meanwhile
    up.start();
    renderJob(j);
    renderResumable();
  }

  function cancelJob(j) {
    const was = j.state;
    j.state = "cancelled";
    if (was === "sending" && j.upload) {
      UP.running--;
      // Ends it on the node too (DELETE), and forgets its address.
      j.upload.abort(true).catch(() => {});
    }
    renderJob(j);
    renderResult(j, [el("span", { class: "muted", text: "Cancelled." })]);
    pump();
  }

  function retryJob(j) {
    j.state = "queued";
    j.sent = 0;
    j.resumedAt = null;
    j.status = null;
    renderResult(j, []);
    renderJob(j);
    pump();
  }

  // After the last byte: the node's status until the ingest is done.
  async function followUpload(j) {
    const t0 = Date.now();
    for (;;) {
      let s = null;
      try {
        s = await api("GET", `/api/v1/uploads/${j.id}/status`);
      } catch (e) {
        renderResult(j, [el("span", { class: "muted", text: `status not read: ${e.message}; asking again` })]);
      }
      if (s) {
        j.status = s;
        if (s.state === "done" || s.state === "failed") break;
        renderJob(j);
      }
      if (Date.now() - t0 > UP_WAIT_MS) {
        renderResult(j, [el("span", { class: "err", text: `still ${s ? s.state : "unknown"} after ${duration(UP_WAIT_MS / 1000)}; see Recent uploads below` })]);
        return;
      }
      await new Promise((r) => setTimeout(r, UP_POLL_MS));
    }
    const s = j.status;
    if (s.state === "failed") {
      j.state = "failed";
      renderJob(j);
      renderResult(j, [el("span", { class: "err", text: `not added: ${s.error || "the node could not ingest it"}` })]);
    } else {
      // The titles first: a row says done once it can say what was added.
      const ids = s.track_ids || [];
      const shown = ids.slice(0, 8);
      const links = await Promise.all(shown.map(async (id) => {
        let t = null;
        try { t = await api("GET", `/api/v1/tracks/${id}`); } catch (e) { t = null; }
        const label = t ? `${t.title ?? "(untitled)"}${t.artist ? " — " + t.artist : ""}` : id;
        return el("a", { href: `#library/track/${id}`, class: "track", "data-track": id, text: label });
      }));
      renderResult(j, ids.length
        ? [el("span", { class: "muted", text: ids.length === 1 ? "Added: " : `Added ${ids.length} tracks: ` }),
          ...links.flatMap((a, i) => i ? [el("span", { class: "muted", text: " · " }), a] : [a]),
          ids.length > shown.length ? el("span", { class: "muted", text: `and ${ids.length - shown.length} more` }) : null]
        : [el("span", { class: "muted", text: "Done: nothing new (already in the library)." })]);
      j.state = "done";
      renderJob(j);
    }
    renderTotal();
    if (S.view === "upload") loadRecent();
  }

  // Addresses kept from before a reload: what the node holds of each.
  async function renderResumable() {
    const box = $("up-resume");
    if (!box || !tusOK()) return;
    let kept = [];
    try { kept = await tus.defaultOptions.urlStorage.findAllUploads(); } catch (e) { kept = []; }
    const busy = new Set(UP.jobs.filter((j) => j.upload && j.state === "sending").map((j) => j.upload.url || "").filter(Boolean));
    const items = [];
    for (const k of kept) {
      const id = uploadId(k.uploadUrl);
      if (!id || busy.has(k.uploadUrl) || UP.jobs.some((j) => j.id === id && j.state !== "cancelled")) continue;
      let s = null;
      try {
        s = await api("GET", `/api/v1/uploads/${id}/status`);
      } catch (e) {
        if (e.status === 404) { tus.defaultOptions.urlStorage.removeUpload(k.urlStorageKey); continue; }
      }
      if (s && s.state !== "receiving") { tus.defaultOptions.urlStorage.removeUpload(k.urlStorageKey); continue; }
      const name = (k.metadata && k.metadata.filename) || id;
      items.push(el("li", { "data-id": id }, el("b", { text: name }), " ",
        el("span", { class: "muted", text: s ? `${bytes(s.offset)} of ${bytes(s.length)} on the node` : `${bytes(k.size)}` }), " ",
        el("button", { type: "button", class: "small quiet", text: "Forget", onclick: async () => {
          tus.defaultOptions.urlStorage.removeUpload(k.urlStorageKey);
          try { await api("DELETE", `/api/v1/uploads/${id}`); } catch (e) { /* it expires anyway */ }
          renderResumable();
        } })));
    }
    box.hidden = !items.length;
    box.replaceChildren(el("b", { text: `Unfinished upload${items.length === 1 ? "" : "s"} from before:` }),
      el("span", { class: "muted small", text: " choose or drop the same file again and it goes on from there." }),
      el("ul", {}, ...items));
  }

  // Every file under the dropped entries (folders walked), with its path.
  async function entryFiles(entry, out, skipped) {
    if (entry.isFile) {
      const file = await new Promise((res, rej) => entry.file(res, rej));
      const rel = entry.fullPath.replace(/^\//, "");
      if (file.name.startsWith(".")) return;
      if (!AUDIO_EXT.test(file.name)) { skipped.push(rel); return; }
      out.push({ file, rel });
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((res, rej) => reader.readEntries(res, rej));
        if (!batch.length) break;
        for (const e of batch) await entryFiles(e, out, skipped);
      }
    }
  }

  function saySkipped(skipped) {
    if (!skipped.length) return;
    note(`${skipped.length} file${skipped.length === 1 ? "" : "s"} of the folder left out, not audio by ${skipped.length === 1 ? "its name" : "their names"}: ${skipped.slice(0, 5).join(", ")}${skipped.length > 5 ? "…" : ""}`);
  }

  async function onDrop(ev) {
    ev.preventDefault();
    $("up-drop").classList.remove("over");
    const dt = ev.dataTransfer;
    // The entries must be taken during the event; they are read afterwards.
    const entries = [...(dt.items || [])].filter((i) => i.kind === "file")
      .map((i) => (i.webkitGetAsEntry ? i.webkitGetAsEntry() : null));
    const files = [...dt.files];
    const out = [], skipped = [];
    if (entries.length && entries.every(Boolean)) {
      for (const e of entries) {
        if (e.isFile) {
          // A file dropped by itself goes up whatever its name.
          out.push({ file: await new Promise((res, rej) => e.file(res, rej)), rel: e.name });
        } else {
          await entryFiles(e, out, skipped);
        }
      }
    } else {
      for (const f of files) out.push({ file: f, rel: f.name });
    }
    saySkipped(skipped);
    if (out.length) addFiles(out);
  }

  let uploadWired = false;
  function uploadForms() {
    if (uploadWired || !$("up-drop")) return;
    uploadWired = true;
    // Leaving while files are being sent: the browser asks first. (What
    // was sent is kept; the same files chosen again go on from there.)
    window.addEventListener("beforeunload", (ev) => {
      if (!UP.jobs.some((j) => j.state === "sending" || j.state === "queued")) return;
      ev.preventDefault();
      ev.returnValue = "";
    });
    const view = $("view-upload"), drop = $("up-drop");
    view.addEventListener("dragover", (ev) => {
      ev.preventDefault();
      ev.dataTransfer.dropEffect = "copy";
      drop.classList.add("over");
    });
    view.addEventListener("dragleave", (ev) => {
      if (!view.contains(ev.relatedTarget)) drop.classList.remove("over");
    });
    view.addEventListener("drop", onDrop);
    $("up-files").addEventListener("change", () => {
      addFiles([...$("up-files").files].map((f) => ({ file: f, rel: f.name })));
      $("up-files").value = "";
    });
    $("up-folder").addEventListener("change", () => {
      const out = [], skipped = [];
      for (const f of $("up-folder").files) {
        const rel = f.webkitRelativePath || f.name;
        if (f.name.startsWith(".")) continue;
        if (AUDIO_EXT.test(f.name)) out.push({ file: f, rel }); else skipped.push(rel);
      }
      $("up-folder").value = "";
      saySkipped(skipped);
      if (out.length) addFiles(out);
    });
    $("up-clear").addEventListener("click", () => {
      UP.jobs = UP.jobs.filter((j) => {
        const keep = !["done", "failed", "refused", "cancelled"].includes(j.state);
        if (!keep && j.ui) j.ui.root.remove();
        return keep;
      });
      renderTotal();
    });
  }

  async function uploadLimit() {
    if (UP.max !== null) return;
    try {
      const r = await fetch(S.base + "/api/v1/uploads", { method: "OPTIONS", cache: "no-store" });
      const max = Number(r.headers.get("Tus-Max-Size"));
      if (max > 0) {
        UP.max = max;
        $("up-limit").textContent = `At most ${bytes(max)} a file on this node.`;
      }
    } catch (e) { /* said when a file is refused */ }
  }

  async function loadRecent() {
    const box = $("up-recent");
    if (!box) return;
    try {
      const r = await api("GET", "/api/v1/uploads?limit=20");
      table(box, [
        { label: "Started", value: (u) => when(u.created_at / 1000) },
        { label: "File", value: (u) => u.filename },
        { label: "By", value: (u) => u.owner },
        { label: "State", value: (u) => el("span", { class: `state ${u.state}`, text: u.state }), sig: (u) => u.state },
        { label: "Size", cls: "n", value: (u) => u.state === "receiving" ? `${bytes(u.offset)} of ${bytes(u.length)}` : bytes(u.length) },
        { label: "Result", value: (u) => u.state === "failed" ? el("span", { class: "err", text: u.error || "failed" })
            : u.track_ids && u.track_ids.length
              ? el("a", { href: `#library/track/${u.track_ids[0]}`,
                  title: u.track_ids.length > 1 ? "the first of them in the Library" : null,
                  text: u.track_ids.length === 1 ? "1 track" : `${u.track_ids.length} tracks` })
              : dash, sig: (u) => `${u.state}|${u.error}|${(u.track_ids || []).join(",")}` },
      ], r.uploads || [], (u) => u.id);
    } catch (e) {
      errorBox(box, "Recent uploads could not be read", e);
    }
  }

  function showUpload() {
    uploadLimit();
    renderResumable();
    loadRecent();
  }

  /* ---------------------------------------------------------------- stores */

  // The store model (docs/api.md, "In the store"): locations and their
  // zones, playlists, each zone's week, and the devices that play them.
  // Its times are Unix milliseconds; a week's times are the location's
  // local "HH:MM".
  const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
  const DAY_LABEL = { mon: "Mon", tue: "Tue", wed: "Wed", thu: "Thu", fri: "Fri", sat: "Sat", sun: "Sun" };
  const PALETTE = ["#2f6fb5", "#2f8f5b", "#a8742a", "#8a4fc0", "#b5484a", "#23868f",
    "#7d7a22", "#b04f8c", "#56698f", "#5f8f2f", "#a05a2c", "#3d5cc0"];
  const HOUR_PX = 22;
  const ST = {
    locations: [], zones: [], allZones: [], playlists: [],
    loc: null, zone: null, zoneObj: null,
    week: null, saved: "", version: null, sel: null,
    denied: null, // why the store API is not there for this login (403, or an older node)
    seq: 0,
  };
  const whenMs = (t) => t === null || t === undefined ? dash : when(t / 1000);

  // A refusal of the whole store API, in words; null for other errors.
  function storeDenied(e) {
    if (!(e instanceof ApiError)) return null;
    if (e.status === 403) return `This login may not manage the stores (403: ${e.message}).`;
    if (e.status === 404 || e.status === 405) return `This node has no store API yet (${e.status}: ${e.message}).`;
    return null;
  }
  function showDenied(msg) {
    ST.denied = msg;
    const box = $("stores-denied");
    if (!box) return;
    box.hidden = !msg;
    $("stores-denied-text").textContent = msg || "";
    for (const id of ["loc-card", "pl-card"]) $(id).hidden = !!msg;
    if (msg) for (const id of ["zones-card", "week-card", "queue-card"]) $(id).hidden = true;
  }

  function minutes(hhmm) {
    const m = /^(\d{1,2}):(\d{2})$/.exec(String(hhmm || "").trim());
    if (!m) return null;
    const h = Number(m[1]), mi = Number(m[2]);
    if (mi > 59 || h > 24 || (h === 24 && mi)) return null;
    return h * 60 + mi;
  }
  const hhmm = (min) => `${String(Math.floor(min / 60)).padStart(2, "0")}:${String(min % 60).padStart(2, "0")}`;
  const normTime = (s) => { const m = minutes(s); return m === null ? String(s || "").trim() : hhmm(m); };

  function plColor(id) {
    const i = ST.playlists.findIndex((p) => p.id === id);
    return i < 0 ? "#4b5563" : PALETTE[i % PALETTE.length];
  }
  function plName(id) {
    const p = ST.playlists.find((x) => x.id === id);
    return p ? p.name : `unknown playlist ${id}`;
  }
  function swatch(id) {
    return el("span", { class: "swatch", style: `background:${plColor(id)}` });
  }
  function dayChecks(box, name, checked) {
    box.replaceChildren(...DAYS.map((d) => el("label", { class: "day" },
      el("input", { type: "checkbox", name, value: d, checked: checked.includes(d) }), DAY_LABEL[d])));
  }
  const checkedDays = (box) => [...box.querySelectorAll("input:checked")].map((i) => i.value);

  // Tracks or artists chosen by search: {root, get(), set(ids)}; an
  // ordered one can be reordered (a playlist of chosen tracks plays in it).
  const artistNames = new Map();
  async function artistName(id) {
    if (!artistNames.has(id)) {
      artistNames.set(id, api("GET", `/api/v1/artists/${id}`).then((a) => a.name ?? id)
        .catch(() => { artistNames.delete(id); return id; }));
    }
    return artistNames.get(id);
  }
  function picker(kind, title, prefix, ordered) {
    let ids = [];
    const q = el("input", { type: "search", id: `${prefix}-q`, placeholder: kind === "tracks" ? "search tracks: artist, album or title" : "search artists", autocomplete: "off" });
    const found = el("ul", { class: "list picks", id: `${prefix}-found` });
    const chosen = el(ordered ? "ol" : "ul", { class: `list chosen${ordered ? " ordered" : ""}`, id: `${prefix}-chosen` });
    const count = el("span", { class: "muted small" });
    const root = el("div", { class: "picker" }, el("div", { class: "row spread" }, el("b", { class: "small", text: title }), count), q, found, chosen);
    let seq = 0, t = null;
    const label = (id) => kind === "tracks" ? trackTitle(id) : artistName(id);
    async function render() {
      count.textContent = ids.length ? `${ids.length} chosen` : "none chosen";
      const names = await Promise.all(ids.map(label));
      chosen.replaceChildren(...ids.map((id, i) => el("li", { "data-id": id },
        el("span", { class: "pname", text: names[i] }),
        el("span", { class: "row" },
          ordered ? el("button", { type: "button", class: "small quiet", text: "↑", title: "earlier", disabled: i === 0,
            onclick: () => { [ids[i - 1], ids[i]] = [ids[i], ids[i - 1]]; render(); } }) : null,
          ordered ? el("button", { type: "button", class: "small quiet", text: "↓", title: "later", disabled: i === ids.length - 1,
            onclick: () => { [ids[i + 1], ids[i]] = [ids[i], ids[i + 1]]; render(); } }) : null,
          el("button", { type: "button", class: "small quiet", text: "Remove", onclick: () => { ids.splice(i, 1); render(); } })))));
    }
    async function search() {
      const s = ++seq, text = q.value.trim();
      if (!text) { found.replaceChildren(); return; }
      let r;
      try {
        r = await api("GET", `/api/v1/search?q=${encodeURIComponent(text)}&limit=8`);
      } catch (e) {
        if (s === seq) found.replaceChildren(el("li", { class: "err", text: `Search failed: ${e.message}` }));
        return;
      }
      if (s !== seq) return;
      const items = kind === "tracks" ? r.tracks : r.artists;
      found.replaceChildren(...(items.length ? items.map((x) => {
        const text_ = kind === "tracks" ? `${x.title ?? "(untitled)"} — ${x.artist ?? "unknown artist"}` : x.name;
        if (kind === "tracks") titles.set(x.id, Promise.resolve(text_));
        else artistNames.set(x.id, Promise.resolve(x.name));
        return el("li", { "data-id": x.id },
          el("span", { class: "pname" }, text_, " ", el("span", { class: "muted small", text: kind === "tracks"
            ? `${x.album ?? ""}${x.genre ? " · " + x.genre : ""} · ${duration((x.duration_ms || 0) / 1000)}` : `${x.track_count} tracks` })),
          el("button", { type: "button", class: "small", text: ids.includes(x.id) ? "Added" : "Add", disabled: ids.includes(x.id),
            onclick: (ev) => { if (!ids.includes(x.id)) ids.push(x.id); ev.target.textContent = "Added"; ev.target.disabled = true; render(); } }));
      }) : [el("li", { class: "muted", text: "Nothing matches." })]));
    }
    q.addEventListener("input", () => { clearTimeout(t); t = setTimeout(search, 200); });
    q.addEventListener("keydown", (ev) => { if (ev.key === "Enter") ev.preventDefault(); });
    render();
    return { root, get: () => ids.slice(), set: (v) => { ids = (v || []).slice(); q.value = ""; found.replaceChildren(); render(); } };
  }

  /* locations */

  async function loadLocations() {
    let r;
    try {
      r = await api("GET", "/api/v1/locations");
    } catch (e) {
      const d = storeDenied(e);
      if (d) showDenied(d);
      else errorBox($("locations"), "The locations could not be read", e);
      return false;
    }
    showDenied(null);
    ST.locations = r.items || [];
    table($("locations"), [
      { label: "Name", value: (l) => el("a", { href: `#stores/${l.id}`, class: "loc-open", text: l.name }), sig: (l) => `${l.id}|${l.name}` },
      { label: "Time zone", value: (l) => l.timezone },
      { label: "Country", value: (l) => l.country },
      { label: "Address", value: (l) => l.address || dash },
      { label: "Licence", value: (l) => l.licence },
      { label: "Zones", cls: "n", value: (l) => num((l.zones || []).length) },
      { label: "", cls: "actions", sig: (l) => JSON.stringify(l), value: (l) => el("span", { class: "row" },
          el("button", { type: "button", class: "small quiet", text: "Zones", onclick: () => { location.hash = `#stores/${l.id}`; } }),
          el("button", { type: "button", class: "small quiet", text: "Edit", "data-action": "edit", onclick: () => openLocation(l) }),
          confirmButton("Delete", "Confirm delete", "quiet", () => deleteLocation(l))) },
    ], ST.locations, (l) => l.id, (l) => l.id === ST.loc ? "focus" : "");
    return true;
  }

  let locEditing = null;
  function openLocation(l) {
    locEditing = l || null;
    const f = $("loc-form");
    $("loc-title").textContent = l ? `Edit the location “${l.name}”` : "New location";
    for (const name of ["name", "timezone", "country", "address", "licence"]) {
      f.elements[name].value = l ? l[name] ?? "" : name === "licence" ? "interactive" : name === "timezone"
        ? (Intl.DateTimeFormat().resolvedOptions().timeZone || "") : "";
    }
    clearFieldErrors(f);
    $("loc-err").textContent = "";
    $("loc-save").disabled = false;
    if (!$("tz-list").children.length && Intl.supportedValuesOf) {
      $("tz-list").replaceChildren(...Intl.supportedValuesOf("timeZone").map((z) => el("option", { value: z })));
    }
    $("loc-dialog").showModal();
    f.elements.name.focus();
  }
  function clearFieldErrors(f) {
    for (const l of f.querySelectorAll("label[data-field]")) {
      l.classList.remove("bad");
      const fe = l.querySelector(".ferr");
      if (fe) fe.textContent = "";
    }
  }
  // A 422's problems under their fields: its "fields", or a message that
  // names one ("country: must be ...").
  function fieldErrors(f, e) {
    let fields = e.fields;
    const m = /^([a-z_]+): (.+)$/.exec(e.message || "");
    if (!fields && m) fields = { [m[1]]: m[2] };
    for (const [k, msg] of Object.entries(fields || {})) {
      const l = f.querySelector(`label[data-field="${CSS.escape(k)}"]`);
      if (l) { l.classList.add("bad"); l.querySelector(".ferr").textContent = msg; }
    }
  }
  async function saveLocation(ev) {
    ev.preventDefault();
    const f = $("loc-form"), l = locEditing;
    const body = {};
    for (const name of ["name", "timezone", "country", "address", "licence"]) {
      let v = f.elements[name].value.trim();
      if (name === "country") v = v.toUpperCase();
      if (name === "address" && v === "") v = null;
      if (!l || v !== (l[name] ?? null)) body[name] = v;
    }
    if (!l && body.address === null) delete body.address;
    clearFieldErrors(f);
    $("loc-err").textContent = "";
    if (l && !Object.keys(body).length) { $("loc-dialog").close(); return; }
    $("loc-save").disabled = true;
    try {
      const r = l ? await api("PATCH", `/api/v1/locations/${l.id}`, body) : await api("POST", "/api/v1/locations", body);
      $("loc-dialog").close();
      note(l ? `The location “${r.name}” was saved.` : `The location “${r.name}” was made (${r.timezone}, ${r.licence}).`);
      await loadLocations();
      if (!l) location.hash = `#stores/${r.id}`;
      else if (ST.loc === l.id) showZones();
    } catch (e) {
      $("loc-save").disabled = false;
      fieldErrors(f, e);
      $("loc-err").textContent = `Not saved: ${e.message}`;
    }
  }
  async function deleteLocation(l) {
    try {
      await api("DELETE", `/api/v1/locations/${l.id}`);
      note(`The location “${l.name}” was deleted.`);
      if (ST.loc === l.id) location.hash = "#stores";
      loadLocations();
    } catch (e) {
      note(`The location “${l.name}” was not deleted: ${e.message}${e.status === 409 ? " (delete its zones first)" : ""}`, true);
    }
  }

  /* zones */

  const curLoc = () => ST.locations.find((l) => l.id === ST.loc) || null;
  async function showZones() {
    const l = curLoc();
    $("zones-card").hidden = !l;
    if (!l) return;
    $("zones-title").textContent = `Zones of ${l.name}`;
    let r;
    try {
      r = await api("GET", `/api/v1/zones?location_id=${encodeURIComponent(l.id)}`);
    } catch (e) {
      errorBox($("zones"), "The zones could not be read", e);
      return;
    }
    ST.zones = r.items || [];
    table($("zones"), [
      { label: "Zone", value: (z) => el("a", { href: `#stores/${z.location_id}/${z.id}`, class: "zone-open", text: z.name }), sig: (z) => `${z.id}|${z.name}` },
      { label: "Volume", cls: "n", value: (z) => String(z.volume) },
      { label: "Week", value: (z) => z.schedule_version ? el("span", { class: "mono small", text: String(z.schedule_version) })
          : z.scheduled ? "saved" : "none yet", sig: (z) => `${z.schedule_version}|${z.scheduled}` },
      { label: "", cls: "actions", sig: (z) => JSON.stringify(z), value: (z) => el("span", { class: "row" },
          el("button", { type: "button", class: "small", text: "Week", "data-action": "week", onclick: () => { location.hash = `#stores/${z.location_id}/${z.id}`; } }),
          el("button", { type: "button", class: "small quiet", text: "Rename", "data-action": "rename", onclick: () => openZone(z) }),
          confirmButton("Delete", "Confirm delete", "quiet", () => deleteZone(z))) },
    ], ST.zones, (z) => z.id, (z) => z.id === ST.zone ? "focus" : "");
  }
  async function addZone(ev) {
    ev.preventDefault();
    const name = $("zone-name").value.trim();
    if (!name || !ST.loc) return;
    try {
      const z = await api("POST", "/api/v1/zones", { location_id: ST.loc, name });
      note(`The zone “${z.name}” was added.`);
      $("zone-name").value = "";
      await loadLocations();
      location.hash = `#stores/${ST.loc}/${z.id}`;
    } catch (e) {
      note(`The zone “${name}” was not added: ${e.message}`, true);
    }
  }
  let zoneEditing = null;
  function openZone(z) {
    zoneEditing = z;
    const f = $("zone-edit-form");
    $("zone-edit-title").textContent = `The zone “${z.name}”`;
    f.elements.name.value = z.name;
    f.elements.volume.value = String(z.volume);
    clearFieldErrors(f);
    $("zone-edit-err").textContent = "";
    $("zone-edit-save").disabled = false;
    $("zone-dialog").showModal();
    f.elements.name.select();
  }
  async function saveZone(ev) {
    ev.preventDefault();
    const z = zoneEditing, f = $("zone-edit-form");
    if (!z) return;
    const body = {};
    const name = f.elements.name.value.trim(), vol = f.elements.volume.value.trim();
    if (name !== z.name) body.name = name;
    if (vol !== String(z.volume)) body.volume = /^\d+$/.test(vol) ? Number(vol) : vol;
    clearFieldErrors(f);
    if (!Object.keys(body).length) { $("zone-dialog").close(); return; }
    $("zone-edit-save").disabled = true;
    try {
      const r = await api("PATCH", `/api/v1/zones/${z.id}`, body);
      $("zone-dialog").close();
      note(`The zone “${r.name}” was saved.`);
      showZones();
      if (ST.zone === z.id) { ST.zoneObj = { ...ST.zoneObj, ...r }; weekTitle(); }
    } catch (e) {
      $("zone-edit-save").disabled = false;
      fieldErrors(f, e);
      $("zone-edit-err").textContent = `Not saved: ${e.message}`;
    }
  }
  async function deleteZone(z) {
    try {
      await api("DELETE", `/api/v1/zones/${z.id}`);
      note(`The zone “${z.name}” was deleted; its devices were told (gone).`);
      if (ST.zone === z.id) location.hash = `#stores/${z.location_id}`;
      loadLocations();
      showZones();
    } catch (e) {
      note(`The zone “${z.name}” was not deleted: ${e.message}`, true);
    }
  }

  /* a zone's week */

  const emptyWeek = () => ({ dayparts: [], overrides: [], announcements: [], separation_minutes: 60 });
  // The week as PUT takes it: only the keys the API knows (the answer
  // adds its version).
  function cleanWeek(w) {
    const dp = (d, withDays) => ({ ...(withDays ? { days: d.days.slice() } : {}), from: d.from, to: d.to, playlist_id: d.playlist_id });
    return {
      dayparts: (w.dayparts || []).map((d) => dp(d, true)),
      overrides: (w.overrides || []).map((o) => ({ date: o.date, ...(o.to_date && o.to_date !== o.date ? { to_date: o.to_date } : {}),
        ...(o.closed ? { closed: true } : { dayparts: (o.dayparts || []).map((d) => dp(d, false)) }) })),
      announcements: (w.announcements || []).map((a) => ({
        ...(a.at ? { at: a.at.slice() } : { every_minutes: a.every_minutes, from: a.from, to: a.to }),
        ...(a.days && a.days.length ? { days: a.days.slice() } : {}), tracks: (a.tracks || []).slice() })),
      separation_minutes: w.separation_minutes ?? 60,
    };
  }
  function weekTitle() {
    const z = ST.zoneObj;
    if (!z) return;
    $("week-title").textContent = `Week of ${z.name}${z.location_name ? " at " + z.location_name : ""}` +
      `${z.timezone ? " · times in " + z.timezone : ""}${z.licence ? " · " + z.licence : ""}`;
    $("zone-vol").value = String(z.volume ?? 100);
    $("zone-vol-v").textContent = String(z.volume ?? 100);
  }
  async function showZone(id) {
    const seq = ++ST.seq;
    $("week-card").hidden = $("queue-card").hidden = !id;
    if (!id) { ST.zone = null; ST.zoneObj = null; ST.week = null; return; }
    // Back to the zone being edited (from another view): its changes stay.
    const keep = ST.zone === id && dirty();
    if (ST.zone !== id || !ST.week) {
      ST.zone = id;
      ST.week = null;
      ST.sel = null;
      $("week").replaceChildren(el("p", { class: "muted", text: "Reading…" }));
    }
    let z, w;
    try {
      z = await api("GET", `/api/v1/zones/${id}`);
      try {
        w = await api("GET", `/api/v1/zones/${id}/schedule`);
      } catch (e) {
        if (e.status !== 404) throw e;
        w = null;
      }
    } catch (e) {
      if (seq === ST.seq) errorBox($("week"), "The zone could not be read", e);
      return;
    }
    if (seq !== ST.seq) return;
    ST.zoneObj = { ...z, location_name: z.location_name ?? (curLoc() || {}).name };
    weekTitle();
    ST.version = (w && w.version) || z.schedule_version || null;
    // A zone never given a week answers an empty one (and its schedule null).
    ST.stored = z.schedule !== null && z.schedule !== undefined;
    const stored = cleanWeek(w || z.schedule || emptyWeek());
    ST.saved = JSON.stringify(stored);
    if (!keep) {
      ST.week = stored;
      hideSchedErr();
    }
    renderSchedule();
    loadQueue();
  }

  function hideSchedErr() {
    $("sched-err").hidden = true;
    $("sched-err").textContent = "";
  }
  function dirty() { return ST.week && JSON.stringify(ST.week) !== ST.saved; }
  function renderStatus() {
    $("sched-status").textContent = !ST.week ? "" : dirty() ? "Unsaved changes: Save sends the week to the node."
      : !ST.stored ? "No week saved yet: nothing plays." : ST.version ? `Saved, version ${ST.version}.` : "Saved.";
    $("sched-status").className = dirty() ? "small warn-text" : "muted small";
    $("sched-revert").disabled = !dirty();
  }

  // The dayparts that overlap another on a day: "index|day".
  function clashes(dps) {
    const bad = new Set();
    for (const d of DAYS) {
      const iv = dps.map((p, i) => [minutes(p.from), minutes(p.to), i]).filter(([f, t, i]) => dps[i].days.includes(d) && f !== null && t !== null)
        .sort((a, b) => a[0] - b[0]);
      let end = -1, endI = -1;
      for (const [f, t, i] of iv) {
        if (f < end) { bad.add(`${i}|${d}`); bad.add(`${endI}|${d}`); }
        if (t > end) { end = t; endI = i; }
      }
    }
    return bad;
  }

  function renderWeek() {
    const w = ST.week, box = $("week");
    const bad = clashes(w.dayparts);
    const hours = el("div", { class: "hours" }, ...Array.from({ length: 24 }, (_, h) =>
      el("div", { class: "hour", style: `height:${HOUR_PX}px`, text: `${String(h).padStart(2, "0")}:00` })));
    const cols = DAYS.map((d) => {
      const col = el("div", { class: "daycol", "data-day": d, style: `height:${24 * HOUR_PX}px` });
      col.addEventListener("click", (ev) => {
        if (ev.target !== col) return;
        const h = Math.min(23, Math.floor(ev.offsetY / HOUR_PX));
        ST.sel = null;
        fillDaypartForm({ days: [d], from: hhmm(h * 60), to: hhmm(Math.min(24, h + 1) * 60), playlist_id: $("dp-playlist").value });
      });
      w.dayparts.forEach((p, i) => {
        if (!p.days.includes(d)) return;
        const f = minutes(p.from), t = minutes(p.to);
        if (f === null || t === null || t <= f) return;
        const clash = bad.has(`${i}|${d}`);
        const b = el("div", {
          class: `dp${clash ? " clash" : ""}${ST.sel === i ? " sel" : ""}`, "data-index": String(i), "data-day": d,
          "data-playlist": p.playlist_id, title: `${plName(p.playlist_id)}, ${p.from}–${p.to}${clash ? " (overlaps another daypart)" : ""}`,
          style: `top:${f / 60 * HOUR_PX}px;height:${(t - f) / 60 * HOUR_PX}px;background:${plColor(p.playlist_id)}`,
          onclick: () => { ST.sel = i; fillDaypartForm(p); renderWeek(); },
        }, el("b", { text: plName(p.playlist_id) }), el("span", { text: `${p.from}–${p.to}` }));
        col.append(b);
      });
      return col;
    });
    box.replaceChildren(
      el("div", { class: "whead" }), ...DAYS.map((d) => el("div", { class: "whead", text: DAY_LABEL[d] })),
      hours, ...cols);
    box.dataset.dayparts = String(w.dayparts.length);
    // The legend: each playlist the week plays, its colour, how long a week.
    const used = new Map();
    for (const p of w.dayparts) {
      const len = Math.max(0, (minutes(p.to) ?? 0) - (minutes(p.from) ?? 0)) * p.days.length;
      used.set(p.playlist_id, (used.get(p.playlist_id) || 0) + len);
    }
    $("week-legend").replaceChildren(...(used.size ? [...used].map(([id, m]) => el("div", { class: "leg" }, swatch(id),
      el("span", { text: plName(id) }), el("span", { class: "muted small", text: ` ${num(m / 60, 1)} h a week` })))
      : [el("p", { class: "muted small", text: "No dayparts: click an hour of a day, or fill the form below." })]));
  }

  function fillDaypartForm(p) {
    dayChecks($("dp-days"), "dp-day", p ? p.days : ["mon", "tue", "wed", "thu", "fri"]);
    $("dp-from").value = p ? p.from : "";
    $("dp-to").value = p ? p.to : "";
    renderPlaylistChoices();
    if (p && p.playlist_id) $("dp-playlist").value = p.playlist_id;
    const editing = ST.sel !== null;
    $("dp-title").textContent = editing ? "Edit the daypart" : "Add a daypart";
    $("dp-add").textContent = editing ? "Update daypart" : "Add daypart";
    $("dp-delete").hidden = $("dp-cancel").hidden = !editing;
    $("dp-err").textContent = "";
  }
  function renderPlaylistChoices() {
    for (const sel of document.querySelectorAll("select.pl-choice, #dp-playlist")) {
      const cur = sel.value;
      const want = ST.playlists.map((p) => [p.id, `${p.name} (${num(p.track_count)} tracks)`]);
      const have = [...sel.options].map((o) => [o.value, o.textContent]);
      if (JSON.stringify(want) !== JSON.stringify(have)) {
        sel.replaceChildren(...want.map(([v, t]) => el("option", { value: v, text: t })));
      }
      if (want.some(([v]) => v === cur)) sel.value = cur;
    }
  }
  function daypartFromForm(withDays) {
    const days = checkedDays($("dp-days")), from = normTime($("dp-from").value), to = normTime($("dp-to").value);
    const playlist_id = $("dp-playlist").value;
    if (withDays && !days.length) return "Choose at least one day.";
    if (minutes(from) === null || minutes(to) === null) return "Times are HH:MM (24:00 ends the day).";
    if (minutes(to) <= minutes(from)) return "A daypart ends after it starts.";
    if (!playlist_id) return "Make a playlist first (Playlists, below).";
    return { days, from, to, playlist_id };
  }
  function submitDaypart(ev) {
    ev.preventDefault();
    const p = daypartFromForm(true);
    if (typeof p === "string") { $("dp-err").textContent = p; return; }
    if (ST.sel !== null) ST.week.dayparts[ST.sel] = p;
    else ST.week.dayparts.push(p);
    ST.sel = null;
    fillDaypartForm(null);
    renderSchedule();
  }
  function deleteDaypart() {
    if (ST.sel === null) return;
    ST.week.dayparts.splice(ST.sel, 1);
    ST.sel = null;
    fillDaypartForm(null);
    renderSchedule();
  }

  function renderOverrides() {
    const w = ST.week;
    $("ov-list").replaceChildren(...(w.overrides.length ? [el("ul", { class: "list" }, ...w.overrides.map((o, i) => el("li", { class: "row spread" },
      el("span", {}, el("b", { text: o.to_date && o.to_date !== o.date ? `${o.date} to ${o.to_date}` : o.date }), " ",
        o.closed ? el("span", { class: "badge dead", text: "closed" })
          : el("span", {}, ...o.dayparts.flatMap((d) => [swatch(d.playlist_id), `${d.from}–${d.to} ${plName(d.playlist_id)}  `]))),
      el("button", { type: "button", class: "small quiet", text: "Remove", onclick: () => { w.overrides.splice(i, 1); renderSchedule(); } }))))]
      : [el("p", { class: "muted small", text: "None: every date follows the week." })]));
  }
  function ovDaypartRow() {
    const sel = el("select", { class: "pl-choice" });
    const row = el("div", { class: "row ov-dp" },
      el("label", { class: "inline" }, "From ", el("input", { class: "time ov-from", placeholder: "08:00" })),
      el("label", { class: "inline" }, "to ", el("input", { class: "time ov-to", placeholder: "22:00" })), sel,
      el("button", { type: "button", class: "small quiet", text: "Remove", onclick: () => row.remove() }));
    $("ov-dp-rows").append(row);
    renderPlaylistChoices();
  }
  function submitOverride(ev) {
    ev.preventDefault();
    const date = $("ov-date").value, to = $("ov-to").value;
    const err = (m) => { $("ov-err").textContent = m; };
    if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) return err("Choose the date.");
    if (to && to < date) return err("The last date is before the first.");
    const o = { date };
    if (to && to !== date) o.to_date = to;
    if ($("ov-closed").checked) o.closed = true;
    else {
      o.dayparts = [];
      for (const r of $("ov-dp-rows").querySelectorAll(".ov-dp")) {
        const from = normTime(r.querySelector(".ov-from").value), t = normTime(r.querySelector(".ov-to").value);
        if (minutes(from) === null || minutes(t) === null || minutes(t) <= minutes(from)) return err("Each daypart: HH:MM to a later HH:MM.");
        o.dayparts.push({ from, to: t, playlist_id: r.querySelector("select").value });
      }
      if (!o.dayparts.length) return err("Closed, or at least one daypart.");
    }
    err("");
    ST.week.overrides.push(o);
    $("ov-date").value = $("ov-to").value = "";
    renderSchedule();
  }

  let spotPicker = null;
  function renderAnnouncements() {
    const w = ST.week;
    $("an-list").replaceChildren(...(w.announcements.length ? [el("ul", { class: "list" }, ...w.announcements.map((a, i) => el("li", { class: "row spread" },
      el("span", {}, el("b", { text: a.at ? `at ${a.at.join(", ")}` : `every ${a.every_minutes} min, ${a.from}–${a.to}` }),
        el("span", { class: "muted", text: ` · ${a.days && a.days.length && a.days.length < 7 ? a.days.map((d) => DAY_LABEL[d]).join(" ") : "every day"} · ${a.tracks.length} spot${a.tracks.length === 1 ? "" : "s"}` })),
      el("button", { type: "button", class: "small quiet", text: "Remove", onclick: () => { w.announcements.splice(i, 1); renderSchedule(); } }))))]
      : [el("p", { class: "muted small", text: "None." })]));
  }
  function submitAnnouncement(ev) {
    ev.preventDefault();
    const err = (m) => { $("an-err").textContent = m; };
    const a = {};
    if ($("an-kind").value === "at") {
      const at = $("an-at").value.split(/[,\s]+/).filter(Boolean).map(normTime);
      if (!at.length || at.some((t) => minutes(t) === null)) return err("Times are HH:MM, commas between.");
      a.at = at;
    } else {
      const n = Number($("an-every").value), from = normTime($("an-from").value), to = normTime($("an-to").value);
      if (!(n >= 1)) return err("Every how many minutes?");
      if (minutes(from) === null || minutes(to) === null || minutes(to) <= minutes(from)) return err("A window: HH:MM to a later HH:MM.");
      Object.assign(a, { every_minutes: n, from, to });
    }
    const days = checkedDays($("an-days"));
    if (days.length) a.days = days;
    a.tracks = spotPicker.get();
    if (!a.tracks.length) return err("Choose the spot tracks to play.");
    err("");
    ST.week.announcements.push(a);
    spotPicker.set([]);
    renderSchedule();
  }

  function renderSchedule() {
    if (!ST.week) return;
    renderPlaylistChoices();
    renderWeek();
    renderOverrides();
    renderAnnouncements();
    $("sched-sep").value = String(ST.week.separation_minutes ?? 60);
    renderStatus();
  }

  async function saveWeek() {
    if (!ST.zone || !ST.week) return;
    const zone = ST.zone, body = cleanWeek(ST.week);
    $("sched-save").disabled = true;
    hideSchedErr();
    $("sched-status").textContent = "Saving…";
    try {
      const r = await api("PUT", `/api/v1/zones/${zone}/schedule`, body);
      if (zone !== ST.zone) return;
      hideSchedErr();
      ST.stored = true;
      ST.week = cleanWeek(r || body);
      ST.saved = JSON.stringify(ST.week);
      ST.version = (r && r.version) || ST.version;
      renderSchedule();
      note(`The week of ${ST.zoneObj ? ST.zoneObj.name : zone} was saved${ST.version ? " (version " + ST.version + ")" : ""}; its devices are told.`);
      loadQueue();
      showZones();
    } catch (e) {
      const box = $("sched-err");
      box.hidden = false;
      box.replaceChildren(el("b", { text: e.status === 422 ? "The node refused this week (422): " : `Not saved (${e.status || "no answer"}): ` }),
        el("span", { class: "reason", text: e.message }),
        el("div", { class: "muted small", text: "Nothing was changed on the node; correct the week and Save again." }));
      renderStatus();
    } finally {
      $("sched-save").disabled = false;
    }
  }

  /* a zone's devices: commands, and what they will play */

  async function command(body, what) {
    if (!ST.zone) return;
    try {
      await api("POST", `/api/v1/zones/${ST.zone}/commands`, body);
      note(`${what}: sent to the devices of ${ST.zoneObj ? ST.zoneObj.name : ST.zone}.`);
    } catch (e) {
      note(`${what} not sent: ${e.message}`, true);
    }
  }

  async function loadQueue() {
    const zone = ST.zone, box = $("queue");
    if (!zone) return;
    let q;
    try {
      q = await api("GET", `/api/v1/zones/${zone}/queue?hours=1`);
    } catch (e) {
      if (zone === ST.zone) errorBox(box, "The queue could not be read", e);
      return;
    }
    if (zone !== ST.zone) return;
    const tz = q.timezone || undefined;
    let fmt;
    try { fmt = new Intl.DateTimeFormat("en-GB", { timeZone: tz, weekday: "short", hour: "2-digit", minute: "2-digit", second: "2-digit" }); }
    catch (e) { fmt = new Intl.DateTimeFormat("en-GB", { weekday: "short", hour: "2-digit", minute: "2-digit", second: "2-digit" }); }
    $("queue-title").textContent = `The next hour of ${ST.zoneObj ? ST.zoneObj.name : "the zone"}` +
      `${tz ? " (" + tz + ")" : ""}: ${q.items.length} item${q.items.length === 1 ? "" : "s"}`;
    box.dataset.version = q.version || "";
    table(box, [
      { label: "At", cls: "n", value: (it) => fmt.format(new Date(it.starts_at)) },
      { label: "Track", value: (it) => el("span", {}, it.title ?? "(untitled)",
          it.announcement ? el("span", { class: "badge suspect", text: "announcement" }) : null), sig: (it) => `${it.title}|${it.announcement}` },
      { label: "Artist", value: (it) => it.artist ?? dash },
      { label: "Playlist", value: (it) => it.playlist_id ? el("span", { class: "qpl", "data-playlist": it.playlist_id }, swatch(it.playlist_id), plName(it.playlist_id)) : dash,
        sig: (it) => `${it.playlist_id}|${plName(it.playlist_id)}` },
      { label: "Length", cls: "n", value: (it) => duration(it.duration_ms / 1000) },
    ], q.items, (it) => `${it.starts_at}|${it.track_id}`);
    if (!q.items.length) box.replaceChildren(el("p", { class: "muted", text: "Nothing planned in the next hour (closed, or no daypart)." }));
  }

  /* playlists */

  async function loadPlaylists() {
    let r;
    try {
      r = await api("GET", "/api/v1/playlists");
    } catch (e) {
      const d = storeDenied(e);
      if (d) showDenied(d);
      else errorBox($("playlists"), "The playlists could not be read", e);
      return;
    }
    ST.playlists = r.items || [];
    table($("playlists"), [
      { label: "", value: (p) => swatch(p.id), sig: (p) => plColor(p.id) },
      { label: "Name", value: (p) => p.name },
      { label: "Made of", value: (p) => p.kind === "rules" ? "rules (shuffled)" : p.shuffle ? "tracks, shuffled" : "tracks, in order" },
      { label: "Tracks", cls: "n", value: (p) => num(p.track_count) },
      { label: "Length", cls: "n", value: (p) => duration((p.duration_ms || 0) / 1000) },
      { label: "Changed", value: (p) => whenMs(p.updated_at) },
      { label: "", cls: "actions", sig: (p) => `${p.id}|${p.updated_at}`, value: (p) => el("span", { class: "row" },
          el("button", { type: "button", class: "small quiet", text: "Edit", "data-action": "edit", onclick: () => openPlaylist(p) }),
          confirmButton("Delete", "Confirm delete", "quiet", () => deletePlaylist(p))) },
    ], ST.playlists, (p) => p.id);
    if (ST.week) renderSchedule();
  }

  const PL = { editing: null, kind: "tracks", tracks: null, artists: null, exclude: null };
  function plKind(kind) {
    PL.kind = kind;
    for (const k of ["tracks", "rules"]) {
      $(`pl-kind-${k}`).classList.toggle("on", k === kind);
      $(`pl-kind-${k}`).setAttribute("aria-pressed", String(k === kind));
    }
    $("pl-tracks-box").hidden = kind !== "tracks";
    $("pl-rules-box").hidden = kind !== "rules";
    $("pl-shuffle-l").hidden = kind !== "tracks";
  }
  const words = (s) => s.split(",").map((x) => x.trim()).filter(Boolean);
  async function openPlaylist(p) {
    let full = null;
    if (p) {
      try {
        full = await api("GET", `/api/v1/playlists/${p.id}`);
      } catch (e) {
        note(`The playlist could not be read: ${e.message}`, true);
        return;
      }
    }
    PL.editing = full;
    $("pl-title").textContent = full ? `Edit the playlist “${full.name}”` : "New playlist";
    $("pl-name").value = full ? full.name : "";
    const rules = (full && full.rules) || {};
    plKind(full && full.kind === "rules" ? "rules" : "tracks");
    $("pl-shuffle").checked = !!(full && full.shuffle);
    PL.tracks.set(full && full.kind !== "rules" ? (full.tracks || full.track_ids || []) : []);
    $("pl-genres").value = (rules.genres || []).join(", ");
    $("pl-tags").value = (rules.tags || []).join(", ");
    $("pl-year-from").value = rules.years && rules.years.from ? String(rules.years.from) : "";
    $("pl-year-to").value = rules.years && rules.years.to ? String(rules.years.to) : "";
    $("pl-noexplicit").checked = !!rules.exclude_explicit;
    PL.artists.set(rules.artists || []);
    PL.exclude.set(rules.exclude || []);
    clearFieldErrors($("pl-form"));
    $("pl-err").textContent = "";
    $("pl-save").disabled = false;
    $("pl-dialog").showModal();
    $("pl-name").focus();
  }
  function playlistBody() {
    const body = { name: $("pl-name").value.trim() };
    if (PL.kind === "tracks") {
      body.tracks = PL.tracks.get();
      body.shuffle = $("pl-shuffle").checked;
      return body;
    }
    const rules = {};
    const g = words($("pl-genres").value), t = words($("pl-tags").value);
    if (g.length) rules.genres = g;
    if (t.length) rules.tags = t;
    const a = PL.artists.get(), x = PL.exclude.get();
    if (a.length) rules.artists = a;
    const yf = $("pl-year-from").value.trim(), yt = $("pl-year-to").value.trim();
    if (yf || yt) {
      rules.years = {};
      if (yf) rules.years.from = /^\d+$/.test(yf) ? Number(yf) : yf;
      if (yt) rules.years.to = /^\d+$/.test(yt) ? Number(yt) : yt;
    }
    if ($("pl-noexplicit").checked) rules.exclude_explicit = true;
    if (x.length) rules.exclude = x;
    body.rules = rules;
    return body;
  }
  async function savePlaylist(ev) {
    ev.preventDefault();
    const body = playlistBody(), p = PL.editing;
    clearFieldErrors($("pl-form"));
    if (!body.name) { $("pl-err").textContent = "A playlist needs a name."; return; }
    if (body.tracks && !body.tracks.length) { $("pl-err").textContent = "Choose its tracks: search above, then Add."; return; }
    $("pl-save").disabled = true;
    try {
      const r = p ? await api("PUT", `/api/v1/playlists/${p.id}`, body) : await api("POST", "/api/v1/playlists", body);
      $("pl-dialog").close();
      note(`The playlist “${r.name}” was ${p ? "saved" : "made"}: ${num(r.track_count)} tracks, ${duration((r.duration_ms || 0) / 1000)}.`);
      await loadPlaylists();
      if (ST.zone) loadQueue();
    } catch (e) {
      $("pl-save").disabled = false;
      fieldErrors($("pl-form"), e);
      $("pl-err").textContent = `Not saved: ${e.message}`;
    }
  }
  async function deletePlaylist(p) {
    try {
      await api("DELETE", `/api/v1/playlists/${p.id}`);
      note(`The playlist “${p.name}” was deleted.`);
      loadPlaylists();
    } catch (e) {
      note(`The playlist “${p.name}” was not deleted: ${e.message}${e.status === 409 ? " (a zone's week plays it)" : ""}`, true);
    }
  }

  let storesWired = false;
  function storesForms() {
    if (storesWired || !$("view-stores")) return;
    storesWired = true;
    $("loc-new").addEventListener("click", () => openLocation(null));
    $("loc-form").addEventListener("submit", saveLocation);
    $("loc-cancel").addEventListener("click", () => $("loc-dialog").close());
    $("zone-form").addEventListener("submit", addZone);
    $("zone-edit-form").addEventListener("submit", saveZone);
    $("zone-edit-cancel").addEventListener("click", () => $("zone-dialog").close());
    $("dp-form").addEventListener("submit", submitDaypart);
    $("dp-delete").addEventListener("click", deleteDaypart);
    $("dp-cancel").addEventListener("click", () => { ST.sel = null; fillDaypartForm(null); renderWeek(); });
    $("sched-sep").addEventListener("change", () => {
      const v = $("sched-sep").value.trim();
      ST.week.separation_minutes = /^\d+$/.test(v) ? Number(v) : v;
      renderStatus();
    });
    $("sched-save").addEventListener("click", saveWeek);
    $("sched-revert").addEventListener("click", () => {
      ST.week = JSON.parse(ST.saved);
      ST.sel = null;
      fillDaypartForm(null);
      hideSchedErr();
      renderSchedule();
    });
    $("ov-closed").addEventListener("change", () => {
      $("ov-dps").hidden = $("ov-closed").checked;
      if (!$("ov-closed").checked && !$("ov-dp-rows").children.length) ovDaypartRow();
    });
    $("ov-dp-more").addEventListener("click", ovDaypartRow);
    $("ov-form").addEventListener("submit", submitOverride);
    $("an-kind").addEventListener("change", () => {
      $("an-at-f").hidden = $("an-kind").value !== "at";
      $("an-every-f").hidden = $("an-kind").value === "at";
    });
    dayChecks($("an-days"), "an-day", []);
    spotPicker = picker("tracks", "Spot tracks (played in turn)", "an-spots", true);
    $("an-tracks").replaceChildren(spotPicker.root);
    $("an-form").addEventListener("submit", submitAnnouncement);
    $("zone-skip").addEventListener("click", () => command({ type: "skip" }, "Skip"));
    $("zone-vol").addEventListener("input", () => { $("zone-vol-v").textContent = $("zone-vol").value; });
    $("zone-vol-send").addEventListener("click", () => command({ type: "volume", volume: Number($("zone-vol").value) }, `Volume ${$("zone-vol").value}`));
    $("queue-refresh").addEventListener("click", loadQueue);
    PL.tracks = picker("tracks", "Tracks, in the order they play (unless shuffled)", "pl-tracks", true);
    $("pl-tracks-box").replaceChildren(PL.tracks.root);
    PL.artists = picker("artists", "Artists (any of them)", "pl-artists");
    $("pl-artists-box").replaceChildren(PL.artists.root);
    PL.exclude = picker("tracks", "Never these tracks", "pl-exclude");
    $("pl-exclude-box").replaceChildren(PL.exclude.root);
    $("pl-kind-tracks").addEventListener("click", () => plKind("tracks"));
    $("pl-kind-rules").addEventListener("click", () => plKind("rules"));
    $("pl-form").addEventListener("submit", savePlaylist);
    $("pl-cancel").addEventListener("click", () => $("pl-dialog").close());
    $("pl-new").addEventListener("click", () => openPlaylist(null));
    fillDaypartForm(null);
    window.addEventListener("beforeunload", (ev) => {
      if (S.view === "stores" && dirty()) { ev.preventDefault(); ev.returnValue = ""; }
    });
  }

  // #stores, #stores/LOCATION, #stores/LOCATION/ZONE.
  async function showStores(args) {
    const [loc, zone] = args;
    ST.loc = /^[0-9a-f]{16}$/.test(loc || "") ? loc : null;
    const zoneId = ST.loc && /^[0-9a-f]{16}$/.test(zone || "") ? zone : null;
    if (ST.zone && ST.zone !== zoneId && dirty()) note("The week you changed was left without saving.", true);
    const [ok] = await Promise.all([loadLocations(), loadPlaylists()]);
    if (!ok) return;
    if (ST.loc && !curLoc()) { note("That location does not exist (any more).", true); ST.loc = null; }
    await showZones();
    await showZone(ST.loc ? zoneId : null);
  }

  /* devices */

  // Locations' and zones' names by id, for what names a store by its ids
  // (a device, a store key's stream): read again every 30 s, or at once
  // for an id not known yet (at most every 5 s). An id stays an id for a
  // role that may not read the stores.
  async function storeNames(ids) {
    const known = (id) => !id || ST.locations.some((l) => l.id === id) || ST.allZones.some((z) => z.id === id);
    const age = Date.now() - (ST.namesAt || 0);
    if (age < 30000 && (ids.every(known) || age < 5000)) return;
    ST.namesAt = Date.now();
    try {
      const [l, z] = await Promise.all([api("GET", "/api/v1/locations"), api("GET", "/api/v1/zones")]);
      ST.locations = l.items || ST.locations;
      ST.allZones = z.items || [];
    } catch (e) { /* ids instead of names */ }
  }
  function placeName(id) {
    if (!id) return id;
    const x = ST.locations.find((l) => l.id === id) || ST.allZones.find((z) => z.id === id);
    return x ? x.name : id;
  }

  let devicesDenied = null;
  async function pollDevices() {
    const box = $("devices");
    if (devicesDenied) return;
    let r, items;
    try {
      r = await api("GET", "/api/v1/devices");
      items = r.items || r.devices || [];
    } catch (e) {
      if (e instanceof ApiError && (e.status === 403 || e.status === 404 || e.status === 405)) {
        devicesDenied = storeDenied(e);
        box.replaceChildren(el("p", { class: "err", text: devicesDenied }));
      } else {
        errorBox(box, "The devices could not be read", e);
      }
      return;
    }
    await storeNames(items.flatMap((d) => [d.location_id, d.zone_id]));
    const locName = (id) => placeName(id) || dash;
    const zoneName = (id) => id ? placeName(id) : "any zone";
    table(box, [
      { label: "Device", value: (d) => el("span", {}, d.name || "(no name)", el("div", { class: "mono small muted", text: `key ${d.key}` })),
        sig: (d) => `${d.name}|${d.key}` },
      { label: "Where", value: (d) => `${d.location_name || locName(d.location_id)} / ${d.zone_name || zoneName(d.zone_id)}` },
      { label: "State", cls: "state", value: (d) => d.revoked ? el("span", { class: "badge dead",
            text: `key revoked${d.offline_since ? ", offline since " + whenMs(d.offline_since) : ""}` })
          : d.online ? el("span", { class: "badge alive", text: "online" })
          : el("span", { class: d.last_seen_at ? "badge dead" : "badge drained", text: d.offline_since ? `offline since ${whenMs(d.offline_since)}` : d.last_seen_at ? "offline" : "never seen" }),
        sig: (d) => `${d.revoked}|${d.online}|${d.offline_since}|${!!d.last_seen_at}` },
      { label: "Playing", value: (d) => d.playing ? `${d.playing.title ?? "(untitled)"} — ${d.playing.artist ?? "unknown artist"}` : dash },
      { label: "Buffered", cls: "n", value: (d) => d.buffered_s === null || d.buffered_s === undefined ? dash : `${num(d.buffered_s / 3600, 1)} h` },
      { label: "Last error", value: (d) => d.last_error ? el("span", { class: "err", text: d.last_error }) : dash, sig: (d) => d.last_error || "" },
      { label: "Node", value: (d) => d.node ? nodeLabel(d.node) : dash },
      { label: "Last seen", value: (d) => whenMs(d.last_seen_at) },
    ], items, (d) => d.key, (d) => d.online ? "" : "dead");
    const on = items.filter((d) => d.online).length;
    $("devices-age").textContent = `${on} of ${items.length} online · updated ${new Date().toLocaleTimeString("en-GB")}, every 3 s`;
  }
  function nodeLabel(id) {
    const n = nodeById(id);
    if (n) return nodeName(n);
    const a = S.memberNames && S.memberNames.get(id);
    return a ? a.replace(/^https?:\/\//, "") : id;
  }

  /* ---------------------------------------------------------------- search */

  let searchSeq = 0;
  async function search() {
    const q = $("search-q").value.trim();
    const box = $("search-results");
    const seq = ++searchSeq;
    if (!q) { box.replaceChildren(); return; }
    let r;
    try {
      r = await api("GET", `/api/v1/search?q=${encodeURIComponent(q)}&limit=10`);
    } catch (e) {
      if (seq === searchSeq) errorBox(box, "Search failed", e);
      return;
    }
    if (seq !== searchSeq) return; // an answer to an older query
    const group = (title, items, line) => items.length
      ? el("div", { class: "group" }, el("h3", { text: title }), el("ul", { class: "list" }, ...items.map((x) => el("li", {}, ...line(x)))))
      : null;
    const sub = (s) => el("span", { class: "muted", text: s });
    const out = [
      group("Artists", r.artists, (a) => [a.name, " ", sub(`${a.album_count} albums, ${a.track_count} tracks`)]),
      group("Albums", r.albums, (a) => [a.title, " ", sub(`${a.artist ?? ""}${a.year ? " · " + a.year : ""} · ${a.track_count} tracks`)]),
      group("Tracks", r.tracks, (t) => [t.title ?? "(untitled)", " ", sub(`${t.artist ?? ""} · ${t.album ?? ""} · ${duration((t.duration_ms || 0) / 1000)}`)]),
    ].filter(Boolean);
    box.replaceChildren(...(out.length ? out : [el("p", { class: "muted", text: "Nothing matches." })]));
  }

  /* ---------------------------------------------------------------- log */

  const logState = { node: null, next: 0, entries: [] };
  function showLog(id) {
    location.hash = "#log";
    $("log-node").value = id;
    if (logState.node !== id) resetLog();
    logLoop.kick();
  }
  function resetLog() {
    logState.node = $("log-node").value || null;
    logState.next = 0;
    logState.entries = [];
    $("log").replaceChildren(el("p", { class: "muted", text: "Reading…" }));
  }
  async function pollLog() {
    if (!logState.node) {
      if (!$("log-node").value) return;
      resetLog();
    }
    const id = logState.node;
    let r;
    try {
      r = await api("GET", `/api/v1/nodes/${id}/log${logState.next ? "?since=" + logState.next : ""}`);
    } catch (e) {
      if (id === logState.node) errorBox($("log"), `The log of ${nodeName(nodeById(id))} could not be read`, e);
      return;
    }
    if (id !== logState.node) return;
    logState.next = r.next;
    logState.entries = r.entries.slice().reverse().concat(logState.entries).slice(0, 1000);
    const box = $("log");
    if (!logState.entries.length) {
      box.replaceChildren(el("p", { class: "muted", text: "No warnings or errors since the node started." }));
      return;
    }
    box.replaceChildren(...logState.entries.map((x) => el("div", { class: `lvl-${x.level}` },
      el("span", { class: "muted", text: when(x.time) + " " }), el("b", { text: x.level + " " }), x.message)));
  }

  /* ---------------------------------------------------------------- admin */

  async function loadUsers() {
    const box = $("users");
    try {
      const r = await api("GET", "/api/v1/users");
      table(box, [
        { label: "Name", value: (u) => u.name },
        { label: "Role", value: (u) => u.role },
        { label: "Created", value: (u) => when(u.created_at) },
        { label: "Changed", value: (u) => when(u.updated_at) },
        { label: "", cls: "actions", sig: (u) => u.name, value: (u) => el("span", { class: "row" },
            el("button", { type: "button", class: "small quiet", text: "New password", onclick: () => passwordForm(u.name) }),
            confirmButton("Remove", `Remove ${u.name}?`, "quiet", () => removeUser(u.name))) },
      ], r.users, (u) => u.name);
    } catch (e) {
      errorBox(box, "Users could not be read", e);
    }
  }

  function passwordForm(name) {
    const out = $("user-out") || el("div", { id: "user-out" });
    $("users").before(out);
    const input = el("input", { type: "password", placeholder: "new password (empty: make one)", autocomplete: "new-password" });
    const form = el("form", { class: "row secret" }, el("span", { text: `New password for ${name}:` }), input,
      el("button", { type: "submit", text: "Set password" }),
      el("button", { type: "button", class: "quiet", text: "Cancel", onclick: () => out.replaceChildren() }));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const body = input.value ? { password: input.value } : {};
      try {
        const r = await api("PUT", `/api/v1/users/${encodeURIComponent(name)}/password`, body);
        note(`The password of ${name} changed; every session of ${name} ended.`);
        if (r.password) secret(out, `New password for ${name}`, [["password", r.password]]);
        else out.replaceChildren();
        loadUsers(); loadAudit(true);
      } catch (e) {
        note(`The password of ${name} was not changed: ${e.message}`, true);
      }
    });
    out.replaceChildren(form);
    input.focus();
  }

  async function removeUser(name) {
    try {
      await api("DELETE", `/api/v1/users/${encodeURIComponent(name)}`);
      note(`User ${name} removed.`);
      loadUsers(); loadAudit(true);
    } catch (e) {
      note(`User ${name} was not removed: ${e.message}`, true);
    }
  }

  async function loadKeys() {
    const box = $("keys");
    try {
      const r = await api("GET", "/api/v1/keys");
      table(box, [
        { label: "Id", value: (k) => el("span", { class: "mono", text: k.id }), sig: (k) => k.id },
        { label: "Name", value: (k) => k.name ?? dash },
        { label: "Role", value: (k) => k.role },
        { label: "Location", value: (k) => [k.location, k.zone].filter(Boolean).join(" / ") || dash },
        { label: "Created", value: (k) => `${when(k.created_at)}${k.created_by ? " by " + k.created_by : ""}` },
        { label: "State", value: (k) => k.revoked_at ? `revoked ${when(k.revoked_at)}` : "active" },
        { label: "", cls: "actions", sig: (k) => `${k.id}|${!!k.revoked_at}`,
          value: (k) => k.revoked_at ? "" : confirmButton("Revoke", "Confirm revoke", "quiet", () => revokeKey(k)) },
      ], r.keys, (k) => k.id, (k) => k.revoked_at ? "dead" : "");
    } catch (e) {
      errorBox(box, "Keys could not be read", e);
    }
  }

  async function revokeKey(k) {
    try {
      await api("DELETE", `/api/v1/keys/${encodeURIComponent(k.id)}`);
      note(`Key ${k.id}${k.name ? " (" + k.name + ")" : ""} revoked.`);
      loadKeys(); loadAudit(true);
    } catch (e) {
      note(`Key ${k.id} was not revoked: ${e.message}`, true);
    }
  }

  const audit = { before: null, rows: [] };
  async function loadAudit(fresh) {
    const box = $("audit");
    if (fresh) { audit.before = null; audit.rows = []; }
    try {
      const r = await api("GET", `/api/v1/audit?limit=50${audit.before ? "&before=" + audit.before : ""}`);
      audit.rows = audit.rows.concat(r.audit);
      audit.before = r.next_before;
      $("audit-more").hidden = !r.next_before;
      table(box, [
        { label: "When", value: (a) => when(a.at > 1e11 ? a.at / 1000 : a.at) },
        { label: "Who", value: (a) => a.actor },
        { label: "Did", value: (a) => a.action },
        { label: "To", value: (a) => {
            const n = nodeById(a.object);
            return n ? `${a.object} (${nodeName(n)})` : a.object || dash;
          } },
        { label: "Detail", value: (a) => a.detail === null ? dash : el("span", { class: "mono small", text: JSON.stringify(a.detail) }),
          sig: (a) => JSON.stringify(a.detail) },
      ], audit.rows, (a) => a.id);
    } catch (e) {
      errorBox(box, "The audit trail could not be read", e);
    }
  }

  function adminForms() {
    $("token-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const ttl = Number($("token-ttl").value) || 24;
      try {
        const r = await api("POST", "/api/v1/cluster/tokens", { ttl_hours: ttl });
        secret($("token-out"), `Join token, valid until ${when(r.expires)}`,
          [["Run this on the new server:", r.command], ["token", r.token]]);
        note(`Join token made, valid for ${ttl} h.`);
        loadAudit(true);
      } catch (e) {
        note(`No join token: ${e.message}`, true);
      }
    });
    $("user-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const name = $("user-name").value.trim();
      const body = { name, role: $("user-role").value };
      if ($("user-password").value) body.password = $("user-password").value;
      try {
        const r = await api("POST", "/api/v1/users", body);
        note(`User ${r.user} added (${r.role}).`);
        const out = $("user-out") || el("div", { id: "user-out" });
        $("users").before(out);
        if (r.password) secret(out, `Password for ${r.user}`, [["password", r.password]]);
        else out.replaceChildren();
        $("user-name").value = "";
        $("user-password").value = "";
        loadUsers(); loadAudit(true);
      } catch (e) {
        note(`User ${name} was not added: ${e.message}`, true);
      }
    });
    $("key-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const body = { role: $("key-role").value };
      for (const f of ["location", "zone", "name"]) {
        const v = $(`key-${f}`).value.trim();
        if (v) body[f] = v;
      }
      try {
        const r = await api("POST", "/api/v1/keys", body);
        note(`Key ${r.id} created (${r.role}${r.location ? ", " + r.location : ""}).`);
        secret($("key-out"), `API key ${r.id}`, [["Authorization: Bearer", r.key]]);
        for (const f of ["location", "zone", "name"]) $(`key-${f}`).value = "";
        loadKeys(); loadAudit(true);
      } catch (e) {
        note(`No key made: ${e.message}`, true);
      }
    });
    $("audit-more").addEventListener("click", () => loadAudit(false));
  }

  /* ---------------------------------------------------------------- views */

  const VIEWS = {
    overview: () => { pollSeries(); },
    live: () => liveLoop.kick(),
    plays: () => loadPlays(),
    library: (args) => showLibrary(args),
    upload: () => showUpload(),
    stores: (args) => showStores(args),
    devices: () => devicesLoop.kick(),
    search: () => $("search-q").focus(),
    log: () => logLoop.kick(),
    admin: () => { loadUsers(); loadKeys(); loadAudit(true); },
  };

  // hash: "view" or "view/arg/..." (#library/track/ID).
  function show(hash) {
    const [view0, ...args] = hash.split("/");
    let view = view0;
    const sec = $(`view-${view}`);
    if (!sec) {
      const first = document.querySelector("#app .view");
      if (!first) return;
      view = first.id.slice(5);
    }
    S.view = view;
    for (const v of document.querySelectorAll("#app .view")) v.classList.toggle("on", v.id === `view-${view}`);
    for (const a of $("tabs").children) a.classList.toggle("on", a.dataset.view === view);
    VIEWS[view](args);
  }

  const overviewLoop = loop(1000, pollOverview, () => S.me && S.me.role === "admin");
  const seriesLoop = loop(5000, pollSeries, () => S.view === "overview");
  const liveLoop = loop(2000, pollLive, () => S.view === "live");
  const logLoop = loop(3000, pollLog, () => S.view === "log");
  loop(60000, loadPlays, () => S.view === "plays");
  loop(30000, loadLibrary, () => S.view === "library");
  loop(5000, loadRecent, () => S.view === "upload");
  const devicesLoop = loop(3000, pollDevices, () => S.view === "devices");
  loop(30000, loadQueue, () => S.view === "stores" && !!ST.zone);
  loop(10000, pollMembers);

  function start(me) {
    S.me = me;
    $("login").hidden = true;
    $("app").hidden = false;
    $("tabs").hidden = false;
    $("logout").hidden = false;
    $("who").textContent = `${me.user} (${me.role})`;
    // Views this role may not use are taken out of the page, not hidden.
    for (const v of [...document.querySelectorAll("#app .view")]) {
      if (!v.dataset.role.split(" ").includes(me.role)) v.remove();
    }
    $("tabs").replaceChildren(...[...document.querySelectorAll("#app .view")].map((v) =>
      el("a", { href: "#" + v.id.slice(5), "data-view": v.id.slice(5), text: v.dataset.title })));
    if (me.role === "admin") adminForms();
    browseForms();
    uploadForms();
    storesForms();
    let t = null;
    if ($("search-q")) $("search-q").addEventListener("input", () => { clearTimeout(t); t = setTimeout(search, 150); });
    if ($("plays-period")) $("plays-period").addEventListener("change", loadPlays);
    if ($("chart-scope")) $("chart-scope").addEventListener("change", drawCharts);
    if ($("log-node")) $("log-node").addEventListener("change", () => { resetLog(); logLoop.kick(); });
    window.addEventListener("hashchange", () => show(location.hash.slice(1)));
    show(location.hash.slice(1));
    for (const l of loops) l.kick();
  }

  function loggedOut(msg) {
    // The whole page starts over: what it showed was the old session's.
    sessionStorage.setItem("chorus-login-message", msg);
    location.reload();
  }

  function showLogin(msg) {
    $("login").hidden = false;
    $("login-err").textContent = msg || "";
    $("login-user").focus();
  }

  $("login").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("login-submit").disabled = true;
    try {
      const me = await once("", "POST", "/api/v1/session",
        { user: $("login-user").value, password: $("login-password").value });
      $("login-password").value = "";
      start(me);
    } catch (e) {
      showLogin(e.status === 401 ? "Wrong user name or password." : e.message);
    } finally {
      $("login-submit").disabled = false;
    }
  });

  $("logout").addEventListener("click", async () => {
    try { await api("DELETE", "/api/v1/session"); } catch (e) { /* the cookie goes with the reload anyway */ }
    S.me = null;
    location.hash = "";
    location.reload();
  });

  // A page reloaded while its cookie is good needs no new login.
  (async () => {
    const msg = sessionStorage.getItem("chorus-login-message");
    sessionStorage.removeItem("chorus-login-message");
    try {
      const me = await once("", "GET", "/api/v1/session");
      if (me && me.user) { start(me); return; }
      showLogin("This console is for people: log in with a user name and password.");
    } catch (e) {
      showLogin(e.status === 401 ? msg : `The node did not answer: ${e.message}`);
    }
  })();
})();
