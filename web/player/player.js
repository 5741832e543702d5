// The store player (docs/player.md): plays a zone's queue (docs/api.md,
// "In the store") gaplessly on two <audio> elements, keeps the hours
// ahead in the Cache API through its Service Worker (interactive licence)
// or only the current and next track in memory (non-interactive), follows
// the cluster's member list from node to node, and records every play in
// localStorage until a node has acknowledged it. Plain JavaScript; it
// asks nothing of anyone but the cluster's nodes.
"use strict";
(() => {
  const VERSION = "chorus-player/1";
  const LS = {
    key: "chorus.player.key",
    settings: "chorus.player.settings",
    nodes: "chorus.player.nodes",
    plays: "chorus.player.plays",
    log: "chorus.player.log",
    queue: "chorus.player.queue",
  };
  const AUDIO_CACHE = "chorus-audio-v1";
  const AUDIO_PATH = "/player/audio/";
  const API_TIMEOUT_MS = 4000;
  const STALL_MS = 20000; // a download that receives nothing this long is cut
  const CLUSTER_EVERY_MS = 60000;
  const STATUS_EVERY_MS = 30000;
  const PLAYS_EVERY_MS = 5000;
  const QUEUE_EVERY_MS = 10 * 60000;
  const QUEUE_EVERY_NI_MS = 5 * 60000; // non-interactive: 15 minutes ahead at most
  const EVENTS_SILENT_MS = 40000; // the events stream has a comment every 15 s
  const PLAYS_BATCH = 500;
  const PING_AFTER_MS = 6000;

  const $ = (id) => document.getElementById(id);
  const now = () => Date.now();
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  function loadJSON(k, dflt) {
    try {
      const v = localStorage.getItem(k);
      return v ? JSON.parse(v) : dflt;
    } catch (e) {
      return dflt;
    }
  }
  function saveJSON(k, v) {
    try {
      localStorage.setItem(k, JSON.stringify(v));
      return true;
    } catch (e) {
      return false;
    }
  }

  const settings = Object.assign({ bufferHours: 8 }, loadJSON(LS.settings, {}));

  // ---- the key: from the address once, then from localStorage ----
  (function takeKey() {
    const h = new URLSearchParams(location.hash.replace(/^#/, ""));
    const k = h.get("key");
    if (k) localStorage.setItem(LS.key, k);
    const b = Number(h.get("buffer"));
    if (b >= 1 && b <= 24) {
      settings.bufferHours = b;
      saveJSON(LS.settings, settings);
    }
    if (location.hash) history.replaceState(null, "", location.pathname);
  })();
  const KEY = localStorage.getItem(LS.key) || "";
  const AUTH = { Authorization: "Bearer " + KEY };

  const S = {
    session: null,
    zone: null, // id
    location: null, // id
    device: null, // the key's id
    licence: "interactive",
    version: null,
    volume: 100,
    nodes: [], // base URLs, the preferred first
    node: null, // the base URL that answered last
    online: false,
    lastOk: 0,
    error: null,
    fatal: null,
    upcoming: [], // queue items after the current one
    cur: null, // {item, el, tok, startedAt, startPos, offline}
    nxt: null, // {item, el, ready}
    swReady: false,
    blocked: false,
    played: 0, // seconds of audio played by finished items (the page's clock)
    blobs: new Map(), // non-interactive (or no worker): track id -> {url, size}
    cached: new Set(), // interactive: track ids in the Cache API
    fetching: new Map(), // track id -> Promise
    queueAt: 0,
    queueBusy: null,
  };
  const els = [$("audio-a"), $("audio-b")];

  // ---- nodes: the member list and fail-over (docs/api.md, "Players in a cluster") ----
  function setNodes(list) {
    const seen = new Set();
    const out = [];
    for (const n of list) {
      if (!n) continue;
      const b = String(n).replace(/\/+$/, "");
      if (!seen.has(b)) {
        seen.add(b);
        out.push(b);
      }
    }
    S.nodes = out.slice(0, 64);
    saveJSON(LS.nodes, S.nodes);
  }
  setNodes([...loadJSON(LS.nodes, []), location.origin]);

  // The order to try: the node that answered last, then the others.
  function order() {
    const n = S.nodes.slice();
    const i = S.node ? n.indexOf(S.node) : -1;
    if (i > 0) n.unshift(...n.splice(i, 1));
    return n;
  }

  function markOk(base) {
    S.node = base;
    S.lastOk = now();
    if (!S.online) {
      S.online = true;
      flushPlays();
    }
  }
  let lastAllDown = 0;
  function markAllDown(err) {
    S.online = false;
    lastAllDown = now();
    noteError(err);
    if (S.cur) S.cur.offline = true;
  }

  function noteError(msg) {
    if (!msg) return;
    S.error = { message: String(msg).slice(0, 300), at: now() };
  }

  function timeoutSignal(ms) {
    const c = new AbortController();
    setTimeout(() => c.abort(), ms);
    return c.signal;
  }

  // One API request to the first node that answers with less than 500.
  // Throws when none does (the last error in its message).
  async function api(path, opts = {}) {
    let last = "no node to ask";
    for (const base of order()) {
      try {
        const r = await fetch(base + path, {
          method: opts.method || "GET",
          headers: Object.assign({}, AUTH, opts.body ? { "Content-Type": "application/json" } : {}),
          body: opts.body,
          cache: "no-store",
          signal: timeoutSignal(opts.timeout || API_TIMEOUT_MS),
        });
        if (r.status >= 500) {
          last = `${base}: ${r.status}`;
          continue;
        }
        markOk(base);
        return r;
      } catch (e) {
        last = `${base}: ${e.name === "AbortError" ? "timed out" : e.message}`;
      }
    }
    markAllDown(`no node answered (${last})`);
    refreshSoon();
    throw new Error(`no node answered (${last})`);
  }

  async function apiJSON(path, opts) {
    const r = await api(path, opts);
    if (!r.ok) {
      let msg = `${r.status}`;
      try {
        msg = (await r.json()).error.message || msg;
      } catch (e) { /* not JSON */ }
      const err = new Error(`${path.split("?")[0]}: ${msg}`);
      err.status = r.status;
      throw err;
    }
    return r.status === 204 ? null : r.json();
  }

  let refreshTimer = null;
  function refreshSoon() {
    if (!refreshTimer) refreshTimer = setTimeout(() => { refreshTimer = null; refreshCluster(); }, 2000);
  }
  async function refreshCluster() {
    try {
      const c = await apiJSON("/api/v1/cluster");
      const alive = (c.nodes || []).filter((n) => n.state === "alive").map((n) => n.address);
      // The alive first, in the list's order; the rest kept behind them
      // (a node that comes back is found again).
      setNodes([...alive, ...S.nodes]);
    } catch (e) { /* the list we have */ }
  }

  // ---- audio: downloads with fail-over and resumed ranges ----
  function itemsAhead(hours) {
    const out = S.cur ? [S.cur.item] : [];
    let t = 0;
    for (const it of S.upcoming) {
      if (t > hours * 3600e3) break;
      out.push(it);
      t += it.duration_ms;
    }
    return out;
  }

  async function download(item) {
    const parts = [];
    let got = 0;
    let total = null;
    let etag = null;
    let rounds = 0;
    for (;;) {
      const tried = order();
      for (const base of tried) {
        const ctl = new AbortController();
        let watchdog = setTimeout(() => ctl.abort(), STALL_MS);
        try {
          const h = {};
          if (got > 0) {
            h.Range = `bytes=${got}-`;
            if (etag) h["If-Range"] = etag; // readable on the page's own node only
          }
          const r = await fetch(base + item.stream_url, { headers: h, signal: ctl.signal, cache: "no-store" });
          if (r.status === 403 || r.status === 410 || r.status === 404) {
            clearTimeout(watchdog);
            const e = new Error(`${item.title || item.track_id}: ${r.status}`);
            e.status = r.status;
            throw e;
          }
          if (r.status !== 200 && r.status !== 206) throw new Error(`${base}: ${r.status}`);
          markOk(base);
          if (got > 0 && r.status === 200) {
            parts.length = 0; // the file changed: start over
            got = 0;
          }
          const len = Number(r.headers.get("Content-Length"));
          if (total === null && r.status === 200 && len > 0) total = len;
          if (total === null && r.status === 206 && len > 0) total = got + len;
          if (!etag && r.status === 200) etag = r.headers.get("ETag");
          const reader = r.body.getReader();
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            parts.push(value);
            got += value.length;
            clearTimeout(watchdog);
            watchdog = setTimeout(() => ctl.abort(), STALL_MS);
          }
          clearTimeout(watchdog);
          if (total !== null && got < total) throw new Error(`${base}: the stream ended at ${got} of ${total} bytes`);
          return new Blob(parts, { type: item.mime_type || "application/octet-stream" });
        } catch (e) {
          clearTimeout(watchdog);
          if (e.status) throw e;
          noteError(`${item.title || item.track_id}: ${e.name === "AbortError" ? "timed out" : e.message}`);
        }
      }
      markAllDown("no node answered a stream");
      refreshSoon();
      if (got > 0) {
        // A round of resumed ranges failed: the next from the start (a
        // browser that would not send the Range to another origin).
        parts.length = 0;
        got = 0;
        total = null;
      }
      rounds++;
      if (rounds >= 3) throw new Error("no node answered a stream");
      await sleep(Math.min(5000, 1000 * rounds));
    }
  }

  function interactive() {
    return S.licence !== "non-interactive" && S.swReady;
  }

  function audioKey(id) {
    return location.origin + AUDIO_PATH + encodeURIComponent(id);
  }

  // Whether the track's audio is on the device now.
  function have(id) {
    return interactive() ? S.cached.has(id) : S.blobs.has(id);
  }

  // Makes sure the item's audio is on the device: the Cache API
  // (interactive) or a blob in memory. Resolves true when it is.
  function ensure(item) {
    const id = item.track_id;
    if (have(id)) return Promise.resolve(true);
    if (S.fetching.has(id)) return S.fetching.get(id);
    const p = (async () => {
      try {
        const blob = await download(item);
        if (interactive()) {
          const c = await caches.open(AUDIO_CACHE);
          await c.put(audioKey(id), new Response(blob, {
            headers: { "Content-Type": blob.type, "Content-Length": String(blob.size),
              "X-Chorus-Stored": String(now()) },
          }));
          S.cached.add(id);
        } else {
          S.blobs.set(id, { url: URL.createObjectURL(blob), size: blob.size });
        }
        return true;
      } catch (e) {
        noteError(e.message);
        if (e.status === 403 || e.status === 410) queueSoon(); // the links are stale
        return false;
      } finally {
        S.fetching.delete(id);
      }
    })();
    S.fetching.set(id, p);
    return p;
  }

  function srcOf(item) {
    const id = item.track_id;
    if (!interactive()) return S.blobs.has(id) ? S.blobs.get(id).url : null;
    const base = S.node || S.nodes[0] || location.origin;
    return `${AUDIO_PATH}${encodeURIComponent(id)}?src=${encodeURIComponent(base + item.stream_url)}`;
  }

  // The buffer: the hours ahead into the Cache API (interactive), or the
  // current and the next track in memory (non-interactive); everything
  // else evicted.
  let filling = false;
  async function fill() {
    if (filling) return;
    filling = true;
    try {
      for (;;) {
        const keep = interactive() ? itemsAhead(settings.bufferHours) : itemsAhead(0).concat(S.upcoming.slice(0, 1));
        const want = new Set(keep.map((it) => it.track_id));
        await evict(want);
        const missing = keep.find((it) => !have(it.track_id));
        if (!missing) break;
        if (!(await ensure(missing))) break; // no node: try again later
        render();
      }
    } finally {
      filling = false;
    }
  }

  async function evict(want) {
    const playing = new Set([S.cur && S.cur.item.track_id, S.nxt && S.nxt.item.track_id]);
    for (const [id, b] of S.blobs) {
      if (!want.has(id) && !playing.has(id)) {
        URL.revokeObjectURL(b.url);
        S.blobs.delete(id);
      }
    }
    if (!S.swReady) return;
    try {
      const c = await caches.open(AUDIO_CACHE);
      for (const req of await c.keys()) {
        const id = decodeURIComponent(new URL(req.url).pathname.slice(AUDIO_PATH.length));
        if (!interactive() || (!want.has(id) && !playing.has(id))) {
          await c.delete(req);
          S.cached.delete(id);
        }
      }
    } catch (e) { /* nothing to evict */ }
  }

  async function loadCached() {
    try {
      const c = await caches.open(AUDIO_CACHE);
      for (const req of await c.keys()) {
        S.cached.add(decodeURIComponent(new URL(req.url).pathname.slice(AUDIO_PATH.length)));
      }
    } catch (e) { /* none */ }
  }

  // Seconds of the plan ahead that the device holds: the rest of the
  // current item, then each next one while its audio is here.
  function bufferedSeconds() {
    let s = 0;
    if (S.cur) {
      if (!have(S.cur.item.track_id) && interactive()) return 0;
      const el = S.cur.el;
      const d = isFinite(el.duration) && el.duration > 0 ? el.duration : S.cur.item.duration_ms / 1000;
      s += Math.max(0, d - el.currentTime);
    }
    for (const it of S.upcoming) {
      if (!have(it.track_id)) break;
      s += it.duration_ms / 1000;
    }
    return Math.round(s);
  }

  // ---- the queue ----
  let queueTimer = null;
  function queueSoon(ms = 500) {
    clearTimeout(queueTimer);
    queueTimer = setTimeout(loadQueue, ms);
  }

  function takeQueue(q) {
    S.version = q.version;
    S.licence = q.licence || S.licence;
    if (typeof q.volume === "number") setVolume(q.volume);
    const items = (q.items || []).slice().sort((a, b) => a.starts_at - b.starts_at);
    // What comes after the current item is replaced; the current plays on.
    const cut = S.cur ? S.cur.item.starts_at + S.cur.item.duration_ms - 1000 : now() - 24 * 3600e3;
    S.upcoming = items.filter((it) => it.starts_at >= cut);
    if (S.licence !== "non-interactive") saveJSON(LS.queue, { at: now(), q });
    else localStorage.removeItem(LS.queue);
    S.queueAt = now();
    if (S.nxt && (!S.upcoming[0] || !same(S.nxt.item, S.upcoming[0]))) {
      S.nxt = null; // prepared for another item
    }
    prepareNext();
    fill();
    render();
  }

  function same(a, b) {
    return a.track_id === b.track_id && a.starts_at === b.starts_at;
  }

  async function loadQueue() {
    if (S.queueBusy) return S.queueBusy;
    S.queueBusy = (async () => {
      try {
        const hours = Math.max(1, Math.min(24, Math.ceil(settings.bufferHours)));
        // From the current item's start (or a little before now: the
        // item playing now is in the answer whichever way "from" cuts).
        const from = S.cur ? S.cur.item.starts_at : now() - 10 * 60000;
        const q = await apiJSON(`/api/v1/zones/${S.zone}/queue?from=${from}&hours=${hours}`);
        takeQueue(q);
        return true;
      } catch (e) {
        noteError(e.message);
        return false;
      } finally {
        S.queueBusy = null;
      }
    })();
    return S.queueBusy;
  }

  // ---- playback ----
  let tokens = 0;

  function setVolume(v) {
    S.volume = Math.max(0, Math.min(100, Number(v)));
    for (const el of els) el.volume = S.volume / 100;
  }

  function otherEl(el) {
    return el === els[0] ? els[1] : els[0];
  }

  // The next item, loaded in the other element so that it starts at once.
  async function prepareNext() {
    const it = S.upcoming[0];
    if (!it || (S.nxt && same(S.nxt.item, it))) return;
    const el = S.cur ? otherEl(S.cur.el) : els[1];
    const nxt = { item: it, el, ready: false };
    S.nxt = nxt;
    if (!(await ensure(it)) || S.nxt !== nxt) return;
    const src = srcOf(it);
    if (!src) return;
    el.src = src;
    el.preload = "auto";
    el.load();
    nxt.ready = true;
  }

  function playedSoFar(c) {
    return Math.max(0, c.el.currentTime - c.startPos);
  }

  // The page's clock: seconds of audio played since it loaded.
  function clock() {
    return S.played + (S.cur ? playedSoFar(S.cur) : 0);
  }

  function recordPlay(c) {
    const ms = Math.round(playedSoFar(c) * 1000);
    if (ms <= 0) return;
    const play = {
      event_id: crypto.randomUUID(),
      track_id: c.item.track_id,
      started_at: new Date(c.startedAt).toISOString(),
      ms_played: Math.min(ms, 86400000),
      location: S.location,
      zone: S.zone,
      device: S.device,
      offline: !!c.offline,
    };
    const plays = loadJSON(LS.plays, []);
    plays.push(play);
    saveJSON(LS.plays, plays);
    const log = loadJSON(LS.log, []);
    log.push({ event_id: play.event_id, track_id: play.track_id, ms_played: play.ms_played, offline: play.offline });
    saveJSON(LS.log, log.slice(-1000));
    flushPlays();
  }

  // Resolves true once el has its metadata, false on an error or after ms.
  function metadata(el, ms = 8000) {
    if (el.readyState >= 1) return Promise.resolve(true);
    return new Promise((res) => {
      const done = (v) => {
        el.removeEventListener("loadedmetadata", ok);
        el.removeEventListener("error", bad);
        clearTimeout(t);
        res(v);
      };
      const ok = () => done(true);
      const bad = () => done(false);
      const t = setTimeout(() => done(false), ms);
      el.addEventListener("loadedmetadata", ok);
      el.addEventListener("error", bad);
    });
  }

  // Starts item on el at offset seconds.
  async function start(item, el, offset) {
    const tok = ++tokens;
    const src = srcOf(item);
    if (!src) return false;
    if (!el.src.endsWith(src) || el.error) {
      el.src = src;
      el.load();
    }
    el.volume = S.volume / 100;
    try {
      if (offset > 0.05) {
        if (await metadata(el)) el.currentTime = offset;
      }
    } catch (e) { /* from the start */ }
    if (tok !== tokens) return false;
    S.cur = { item, el, tok, startedAt: now(), startPos: el.currentTime || 0, offline: !S.online };
    const other = otherEl(el);
    if (!other.paused) other.pause();
    try {
      await el.play();
      S.blocked = false;
    } catch (e) {
      if (e.name === "NotAllowedError") {
        S.blocked = true;
      } else {
        noteError(`play: ${e.message}`);
      }
    }
    render();
    return true;
  }

  let advancing = false;
  // The current item is over (ended, skipped or unplayable): the next.
  async function advance() {
    if (advancing) return;
    advancing = true;
    try {
      const prev = S.cur;
      if (prev) {
        recordPlay(prev);
        S.played += playedSoFar(prev);
        S.cur = null;
        if (!prev.el.paused) prev.el.pause();
      }
      for (;;) {
        const it = S.upcoming.shift();
        if (!it) {
          render();
          await loadQueue();
          if (!S.upcoming.length) {
            setTimeout(advance, 10000);
            return;
          }
          continue;
        }
        // A gap in the plan itself (closed hours): silence until it starts.
        if (prev && it.starts_at > prev.item.starts_at + prev.item.duration_ms + 1000) {
          const wait = it.starts_at - now();
          if (wait > 0) {
            S.upcoming.unshift(it);
            S.nxt = null;
            render();
            setTimeout(advance, Math.min(wait, 60000));
            return;
          }
        }
        let el;
        if (S.nxt && same(S.nxt.item, it) && S.nxt.ready) {
          el = S.nxt.el;
        } else {
          el = prev ? otherEl(prev.el) : els[0];
          if (!(await ensure(it))) {
            noteError(`${it.title || it.track_id}: not on this device and no node answered; skipped`);
            continue;
          }
        }
        S.nxt = null;
        if (await start(it, el, 0)) {
          setTimeout(postStatus, 1000); // what plays now, at once
          break;
        }
      }
    } finally {
      advancing = false;
    }
    prepareNext();
    fill();
  }

  // The first item: the one the plan has playing now, joined at its offset.
  async function join() {
    const t = now();
    while (S.upcoming.length && S.upcoming[0].starts_at + S.upcoming[0].duration_ms <= t) S.upcoming.shift();
    const it = S.upcoming[0];
    if (!it) {
      setTimeout(async () => { await loadQueue(); join(); }, 30000);
      render();
      return;
    }
    if (it.starts_at > t) {
      setTimeout(join, Math.min(it.starts_at - t, 60000));
      render();
      return;
    }
    S.upcoming.shift();
    if (!(await ensure(it))) {
      setTimeout(() => { S.upcoming.unshift(it); join(); }, 5000);
      return;
    }
    await start(it, els[0], Math.max(0, (now() - it.starts_at) / 1000));
    prepareNext();
    fill();
  }

  for (const el of els) {
    el.addEventListener("ended", () => {
      if (S.cur && S.cur.el === el) advance();
    });
    el.addEventListener("error", () => {
      if (!S.cur || S.cur.el !== el) return;
      noteError(`audio: ${el.error ? el.error.message || el.error.code : "error"}`);
      recover(S.cur);
    });
  }

  function recoverLater(c) {
    setTimeout(() => { if (S.cur === c) recover(c); }, 0);
  }

  // The current element failed or stands still: once more from the same
  // place (from the cache, or another node), then the next item.
  function recover(c) {
    if (c.recovering) return;
    c.tries = (c.tries || 0) + 1;
    if (c.tries > 3) {
      advance();
      return;
    }
    c.recovering = true;
    const el = c.el;
    const pos = el.currentTime;
    const played = playedSoFar(c);
    setTimeout(async () => {
      try {
        if (S.cur !== c) return;
        const src = srcOf(c.item);
        if (!src) {
          advance();
          return;
        }
        el.src = src;
        el.load();
        const ok = await metadata(el);
        if (S.cur !== c) return;
        if (!ok) {
          recoverLater(c);
          return;
        }
        el.currentTime = pos;
        c.startPos = pos - played;
        await el.play().catch(() => {});
      } finally {
        c.recovering = false;
        c.moved = now();
      }
    }, 500 * c.tries);
  }

  // Near an item's end the next is started on time, without waiting for
  // "ended" to come through the event loop.
  setInterval(() => {
    const c = S.cur;
    if (!c || advancing || S.fatal) return;
    // Standing still while it should play (a stream that hangs, a source
    // that failed): taken up again from the same place.
    if (c.el.currentTime !== c.lastPos) {
      c.lastPos = c.el.currentTime;
      c.moved = now();
    } else if (!S.blocked && !c.el.ended && now() - (c.moved || now()) > 3000) {
      c.moved = now();
      recover(c);
    }
    if (c.el.paused) return;
    const d = c.el.duration;
    if (isFinite(d) && d > 0 && d - c.el.currentTime < 0.06) {
      const tok = c.tok;
      setTimeout(() => { if (S.cur && S.cur.tok === tok) advance(); }, Math.max(0, (d - c.el.currentTime) * 1000));
    }
  }, 40);

  function skip() {
    if (S.cur) advance();
  }

  // ---- events: SSE over fetch (EventSource sends no Authorization) ----
  async function events() {
    let wait = 1000;
    for (;;) {
      if (S.fatal) return;
      const base = order()[0];
      const ctl = new AbortController();
      let watchdog = setTimeout(() => ctl.abort(), EVENTS_SILENT_MS);
      try {
        const r = await fetch(`${base}/api/v1/zones/${S.zone}/events`, {
          headers: Object.assign({ Accept: "text/event-stream" }, AUTH),
          signal: ctl.signal,
          cache: "no-store",
        });
        if (r.status === 401 || r.status === 403 || r.status === 404) {
          throw Object.assign(new Error(`events: ${r.status}`), { status: r.status });
        }
        if (!r.ok) throw new Error(`events: ${r.status}`);
        markOk(base);
        wait = 1000;
        S.eventsNode = base;
        const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = "";
        let ev = { type: "message", data: "" };
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          clearTimeout(watchdog);
          watchdog = setTimeout(() => ctl.abort(), EVENTS_SILENT_MS);
          buf += value;
          let i;
          while ((i = buf.search(/\r?\n/)) >= 0) {
            const line = buf.slice(0, i);
            buf = buf.slice(i + (buf[i] === "\r" ? 2 : 1));
            if (line === "") {
              if (ev.data || ev.type !== "message") onEvent(ev.type, ev.data);
              ev = { type: "message", data: "" };
            } else if (line[0] === ":") {
              // a keep-alive comment
            } else {
              const c = line.indexOf(":");
              const f = c < 0 ? line : line.slice(0, c);
              const v = c < 0 ? "" : line.slice(c + 1).replace(/^ /, "");
              if (f === "event") ev.type = v;
              else if (f === "data") ev.data = ev.data ? ev.data + "\n" + v : v;
            }
          }
        }
        throw new Error("events: the stream ended");
      } catch (e) {
        clearTimeout(watchdog);
        S.eventsNode = null;
        if (S.fatal) return;
        if (e.status === 401 || e.status === 403) {
          noteError(`events: ${e.status}: this key is no longer accepted`);
        } else {
          noteError(e.name === "AbortError" ? "events: silent, reconnecting" : e.message);
        }
        // The next node of the list, after a while.
        const n = S.nodes.indexOf(base);
        if (n >= 0 && S.nodes.length > 1) S.node = S.nodes[(n + 1) % S.nodes.length];
        refreshSoon();
        await sleep(wait);
        wait = Math.min(wait * 2, 15000);
      }
    }
  }

  function onEvent(type, data) {
    let d = {};
    try {
      d = data ? JSON.parse(data) : {};
    } catch (e) { /* no data */ }
    if (type === "hello" || type === "changed") {
      if (!d.version || d.version !== S.version) queueSoon(type === "hello" ? 100 : 200);
    } else if (type === "skip") {
      skip();
    } else if (type === "volume") {
      setVolume(d.volume);
    } else if (type === "gone") {
      S.fatal = "this zone was deleted or this key revoked: the player stopped";
      for (const el of els) el.pause();
      render();
    }
  }

  // ---- plays: kept until a node acknowledged them ----
  let flushing = false;
  async function flushPlays() {
    if (flushing) return;
    const plays = loadJSON(LS.plays, []);
    if (!plays.length) return;
    flushing = true;
    let again = false;
    try {
      const batch = plays.slice(0, PLAYS_BATCH);
      const r = await api("/api/v1/plays", { method: "POST", body: JSON.stringify(batch), timeout: 15000 });
      const sent = new Set(batch.map((p) => p.event_id));
      if (r.status === 200 || r.status === 201) {
        saveJSON(LS.plays, loadJSON(LS.plays, []).filter((p) => !sent.has(p.event_id)));
        again = true; // the rest, at once
      } else if (r.status === 422) {
        // Plays no node will ever take (an unknown track, a field out of
        // range): dropped with the reason, the others sent again.
        let items = [];
        try {
          items = (await r.json()).error.items || [];
        } catch (e) { /* none listed */ }
        const bad = new Set(items.map((x) => batch[x.index] && batch[x.index].event_id));
        noteError(`plays: ${bad.size} refused: ${items.map((x) => x.message).slice(0, 2).join("; ")}`);
        saveJSON(LS.plays, loadJSON(LS.plays, []).filter((p) => !bad.has(p.event_id)));
        again = bad.size > 0;
      } else {
        noteError(`plays: ${r.status}`);
      }
    } catch (e) {
      /* kept for the next try */
    } finally {
      flushing = false;
    }
    // Otherwise the next try is the timer's (PLAYS_EVERY_MS), or a node's
    // coming back.
    if (again && loadJSON(LS.plays, []).length) setTimeout(flushPlays, 200);
  }

  // ---- status ----
  async function postStatus() {
    if (!S.zone) return;
    const c = S.cur;
    const body = {
      playing: c ? c.item.track_id : null,
      position_ms: c ? Math.round(c.el.currentTime * 1000) : 0,
      buffered_s: bufferedSeconds(),
      // The last error of the last ten minutes, as the node takes it: at
      // most 255 bytes of text without control characters.
      error: S.error && now() - S.error.at < 600000
        ? S.error.message.replace(/[\u0000-\u001f\u007f]/g, " ").slice(0, 120) : null,
      version: S.version ? String(S.version).slice(0, 32) : null,
    };
    try {
      await api(`/api/v1/zones/${S.zone}/status`, { method: "POST", body: JSON.stringify(body) });
    } catch (e) { /* next time */ }
  }

  // ---- the page ----
  function fmt(s) {
    s = Math.max(0, Math.floor(s));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const ss = String(s % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
  }

  function render() {
    const c = S.cur;
    const err = S.fatal || (S.session === null && S.error ? S.error.message : null);
    $("error").hidden = !err;
    $("error").textContent = err || "";
    $("start").hidden = !S.blocked;
    const badge = $("online");
    const state = S.fatal ? "stopped" : S.online ? "online" : S.lastOk || lastAllDown ? "offline" : "starting";
    badge.textContent = state === "offline" ? "offline: playing from the buffer" : state;
    badge.className = "badge " + state;
    if (c) {
      $("now-title").textContent = c.item.title || c.item.track_id;
      $("now-artist").textContent = (c.item.artist || "") + (c.item.announcement ? " · announcement" : "");
      const d = isFinite(c.el.duration) && c.el.duration > 0 ? c.el.duration : c.item.duration_ms / 1000;
      $("now-bar").style.width = `${Math.min(100, (100 * c.el.currentTime) / d)}%`;
      $("now-time").textContent = `${fmt(c.el.currentTime)} / ${fmt(d)}`;
    } else {
      $("now-title").textContent = S.upcoming.length && S.upcoming[0].starts_at > now()
        ? `silence until ${new Date(S.upcoming[0].starts_at).toLocaleTimeString()}` : "—";
      $("now-artist").textContent = "";
      $("now-bar").style.width = "0";
      $("now-time").textContent = "";
    }
    const n = S.upcoming[0];
    $("next-title").textContent = n ? n.title || n.track_id : "—";
    $("next-artist").textContent = n ? n.artist || "" : "";
    const b = bufferedSeconds();
    $("buffered").textContent = `${(b / 3600).toFixed(1)} h (${fmt(b)})` +
      (S.licence === "non-interactive" ? " · non-interactive: current and next track only" : "");
    $("node").textContent = S.node || "—";
    $("zone").textContent = S.zone ? `${S.zone} · location ${S.location || "?"}` : "—";
    $("licence").textContent = S.licence;
    $("pending").textContent = String(loadJSON(LS.plays, []).length);
    $("last-error").textContent = S.error ? `${new Date(S.error.at).toLocaleTimeString()}: ${S.error.message}` : "none";
  }

  $("start").addEventListener("click", () => {
    if (S.cur) {
      S.cur.el.play().then(() => { S.blocked = false; render(); }).catch((e) => noteError(e.message));
    }
  });
  $("set-buffer").value = settings.bufferHours;
  $("settings").addEventListener("submit", (e) => {
    e.preventDefault();
    const v = Number($("set-buffer").value);
    if (v >= 1 && v <= 24) {
      settings.bufferHours = v;
      saveJSON(LS.settings, settings);
      loadQueue();
    }
  });
  $("forget").addEventListener("click", () => {
    localStorage.removeItem(LS.key);
    location.reload();
  });

  async function registerWorker() {
    if (!("serviceWorker" in navigator) || !window.caches) return false;
    try {
      await navigator.serviceWorker.register("/player-sw.js", { scope: "/player" });
      if (!navigator.serviceWorker.controller) {
        await Promise.race([
          new Promise((res) => navigator.serviceWorker.addEventListener("controllerchange", res, { once: true })),
          sleep(5000),
        ]);
      }
      return !!navigator.serviceWorker.controller;
    } catch (e) {
      noteError(`service worker: ${e.message}`);
      return false;
    }
  }

  async function main() {
    render();
    if (!KEY) {
      S.fatal = "no device key: open this page as /player#key=chorus_... (docs/player.md)";
      render();
      return;
    }
    S.swReady = await registerWorker();
    if (navigator.storage && navigator.storage.persist) navigator.storage.persist().catch(() => {});
    await loadCached();
    // Who we are; with no node answering, who we were (an outage at start).
    for (let wait = 1000; !S.session; wait = Math.min(wait * 2, 30000)) {
      try {
        S.session = await apiJSON("/api/v1/session");
        saveJSON("chorus.player.session", S.session);
      } catch (e) {
        if (e.status === 401 || e.status === 403) {
          S.fatal = `the device key was refused (${e.message}): ask for a new one`;
          render();
          return;
        }
        const old = loadJSON("chorus.player.session", null);
        if (old) {
          S.session = old;
          break;
        }
        noteError(e.message);
        render();
        await sleep(wait);
      }
    }
    if (!S.session.zone) {
      S.fatal = "this key is not bound to a zone: make the store's key with " +
        "`chorus key create --role store --location ID --zone ID`";
      render();
      return;
    }
    S.zone = S.session.zone;
    S.location = S.session.location || null;
    S.device = S.session.key || null;
    await refreshCluster();
    if (!(await loadQueue())) {
      const kept = loadJSON(LS.queue, null);
      if (kept && kept.q && kept.q.zone_id === S.zone) takeQueue(kept.q);
    }
    render();
    join();
    events();
    setInterval(refreshCluster, CLUSTER_EVERY_MS);
    setInterval(postStatus, STATUS_EVERY_MS);
    setTimeout(postStatus, 3000);
    setInterval(flushPlays, PLAYS_EVERY_MS);
    // Silent for a while: is any node there? (online or offline, and a
    // node that came back gets the plays kept meanwhile).
    setInterval(() => {
      // (/api/: the nodes answer other origins there, /health they do not)
      if (now() - S.lastOk > PING_AFTER_MS) api("/api/v1/session").catch(() => {});
    }, PING_AFTER_MS / 2);
    setInterval(() => {
      const every = S.licence === "non-interactive" ? QUEUE_EVERY_NI_MS : QUEUE_EVERY_MS;
      const left = S.upcoming.reduce((t, it) => t + it.duration_ms, 0);
      if (now() - S.queueAt > every || left < (settings.bufferHours * 3600e3) / 2) loadQueue();
      fill();
    }, 15000);
    flushPlays();
  }

  setInterval(render, 500);

  // For the tests and the curious: the state, the page's clock.
  window.chorusPlayer = {
    version: VERSION,
    clock,
    state: () => ({
      zone: S.zone, location: S.location, device: S.device, licence: S.licence, version: S.version,
      node: S.node, eventsNode: S.eventsNode || null, nodes: S.nodes.slice(), online: S.online,
      sw: S.swReady, blocked: S.blocked, fatal: S.fatal, error: S.error,
      playing: S.cur ? { track_id: S.cur.item.track_id, starts_at: S.cur.item.starts_at,
        position: S.cur.el.currentTime, paused: S.cur.el.paused, offline: !!S.cur.offline } : null,
      next: S.upcoming[0] ? S.upcoming[0].track_id : null, upcoming: S.upcoming.length,
      buffered_s: bufferedSeconds(), cached: [...S.cached], blobs: [...S.blobs.keys()],
      pending: loadJSON(LS.plays, []).length, played: clock(), volume: S.volume,
    }),
    plays: () => loadJSON(LS.log, []),
    skip,
  };

  main();
})();
