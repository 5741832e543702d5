// The store player's Service Worker (docs/player.md), served as
// /player-sw.js and registered by the page for the scope /player.
//
// - /player/audio/TRACK_ID: the page's audio elements ask for this. The
//   answer comes from the Cache API ("chorus-audio-v1", keyed by the
//   track id alone, so that a stream URL of any node finds it), sliced
//   into a 206 for a Range request (audio elements send "Range:
//   bytes=N-"); the page fills and evicts that cache (interactive
//   licence only). A track not in the cache is fetched from the node the
//   page names (?src=, a signed stream URL), its Range passed on.
// - /player itself: from the network while it answers, else the copy
//   kept at the last load, so a reload in an outage still plays.
"use strict";

const AUDIO = "chorus-audio-v1";
const PAGE = "chorus-page-v1";
const AUDIO_PATH = "/player/audio/";

self.addEventListener("install", (e) => {
  e.waitUntil((async () => {
    try {
      const c = await caches.open(PAGE);
      await c.add(new Request("/player", { cache: "no-cache" }));
    } catch (err) { /* kept at the next load */ }
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (e) => {
  e.waitUntil(self.clients.claim());
});

self.addEventListener("fetch", (e) => {
  const u = new URL(e.request.url);
  if (u.origin !== self.location.origin) return; // the nodes' API: the network's
  if (u.pathname.startsWith(AUDIO_PATH) && e.request.method === "GET") {
    e.respondWith(audio(e.request, u));
  } else if (u.pathname === "/player" && e.request.mode === "navigate") {
    e.respondWith(page(e.request));
  }
});

async function page(req) {
  try {
    const r = await fetch(req);
    if (r.ok) {
      const copy = r.clone();
      caches.open(PAGE).then((c) => c.put("/player", copy)).catch(() => {});
    }
    return r;
  } catch (err) {
    const hit = await caches.match("/player", { cacheName: PAGE });
    if (hit) return hit;
    throw err;
  }
}

function audioKey(id) {
  return self.location.origin + AUDIO_PATH + id;
}

async function audio(req, u) {
  const id = decodeURIComponent(u.pathname.slice(AUDIO_PATH.length));
  const range = req.headers.get("Range");
  let hit = null;
  try {
    const c = await caches.open(AUDIO);
    hit = await c.match(audioKey(id));
  } catch (err) { /* no cache: the network */ }
  if (hit) return sliced(hit, range);
  const src = u.searchParams.get("src");
  if (!src) return new Response("not in the cache", { status: 404 });
  try {
    return await fetch(src, { headers: range ? { Range: range } : {}, mode: "cors" });
  } catch (err) {
    return new Response("no node answered", { status: 503, headers: { "Retry-After": "5" } });
  }
}

// A cached full body as a Range request wants it: the whole (200), one
// range (206 with Content-Range), or 416 for a range outside it.
async function sliced(hit, range) {
  const blob = await hit.blob();
  const size = blob.size;
  const type = hit.headers.get("Content-Type") || blob.type || "application/octet-stream";
  const base = { "Content-Type": type, "Accept-Ranges": "bytes", "Cache-Control": "no-store" };
  const m = range ? /^bytes=(\d*)-(\d*)$/.exec(range.trim()) : null;
  if (!m || (m[1] === "" && m[2] === "")) {
    return new Response(blob, { status: 200, headers: { ...base, "Content-Length": String(size) } });
  }
  let a, b;
  if (m[1] === "") {
    a = Math.max(0, size - Number(m[2]));
    b = size - 1;
  } else {
    a = Number(m[1]);
    b = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (a >= size || a > b) {
    return new Response("", { status: 416, headers: { ...base, "Content-Range": `bytes */${size}` } });
  }
  return new Response(blob.slice(a, b + 1, type), {
    status: 206,
    headers: { ...base, "Content-Range": `bytes ${a}-${b}/${size}`, "Content-Length": String(b - a + 1) },
  });
}
