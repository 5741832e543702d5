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
    constructor(status, message) {
      super(message);
      this.status = status;
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

  async function once(base, method, path, body) {
    const headers = {};
    if (body !== undefined) headers["Content-Type"] = "application/json";
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
        body: body === undefined ? undefined : JSON.stringify(body),
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
      throw new ApiError(r.status, msg);
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
    library: () => loadLibrary(),
    search: () => $("search-q").focus(),
    log: () => logLoop.kick(),
    admin: () => { loadUsers(); loadKeys(); loadAudit(true); },
  };

  function show(view) {
    const sec = $(`view-${view}`);
    if (!sec) {
      const first = document.querySelector("#app .view");
      if (!first) return;
      view = first.id.slice(5);
    }
    S.view = view;
    for (const v of document.querySelectorAll("#app .view")) v.classList.toggle("on", v.id === `view-${view}`);
    for (const a of $("tabs").children) a.classList.toggle("on", a.dataset.view === view);
    VIEWS[view]();
  }

  const overviewLoop = loop(1000, pollOverview, () => S.me && S.me.role === "admin");
  const seriesLoop = loop(5000, pollSeries, () => S.view === "overview");
  const liveLoop = loop(2000, pollLive, () => S.view === "live");
  const logLoop = loop(3000, pollLog, () => S.view === "log");
  loop(60000, loadPlays, () => S.view === "plays");
  loop(30000, loadLibrary, () => S.view === "library");
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
