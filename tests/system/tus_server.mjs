#!/usr/bin/env node
// An independent tus 1.0.0 server for `chorus upload`'s tests: @tus/server
// with @tus/file-store (from build/npm), behind a small TCP proxy of our
// own that can cut a connection or slow it down, with a few failures to
// inject. It prints "port N" on stdout once it listens on 127.0.0.1, and
// writes one JSON line per request to --log: {"method", "url", "status",
// "offset_in" (the request's Upload-Offset), "offset_after" (what the
// store holds once the request is over, for PATCH and HEAD), "auth"
// (whether an Authorization header came), "checksum" (an Upload-Checksum
// header came)}; a cut connection logs {"event": "drop", "after": N}.
//
//   node tus_server.mjs --dir DIR --log FILE [--path /api/v1/uploads]
//        [--key KEY]          every request must carry "Authorization: Bearer KEY" (else 401)
//        [--drop-after N]     once, cut the connection N bytes into the first PATCH request
//        [--fail-patch N]     the Nth PATCH (from 1) answers 500, once (its body read and dropped)
//        [--rate BYTES]       at most BYTES per second from the client, per connection
//        [--max-size N]       uploads of more than N bytes are refused (413)
//        [--no-options]       answer OPTIONS with 405 (a server that says nothing of itself)
//        [--relative]         relative Location headers
//        [--checksum]         offer the checksum extension (sha256) in OPTIONS and log, per
//                             PATCH, whether the stored bytes match its Upload-Checksum
//                             ("checksum_ok"); @tus/server itself ignores the header
//        [--fail-checksum N]  the Nth PATCH answers 460 (checksum mismatch), once
//        [--status]           GET PATH/ID/status answers as a chorus node does: "ingesting"
//                             first, then "done" with a track id ("failed" for a name with "bad")
//
// The proxy sees raw bytes, so what it cuts is a real TCP connection in
// the middle of a body, as a network would.
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const npm = path.join(here, "..", "..", "build", "npm", "node_modules");
const { Server } = await import(pathToFileURL(path.join(npm, "@tus/server/dist/index.js")));
const { FileStore } = await import(pathToFileURL(path.join(npm, "@tus/file-store/dist/index.js")));

const opts = {
  dir: null, log: null, path: "/api/v1/uploads", key: null, dropAfter: -1, failPatch: 0,
  rate: 0, maxSize: 0, noOptions: false, relative: false, status: false, checksum: false,
  failChecksum: 0,
};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  const next = () => argv[++i];
  if (a === "--dir") opts.dir = next();
  else if (a === "--log") opts.log = next();
  else if (a === "--path") opts.path = next();
  else if (a === "--key") opts.key = next();
  else if (a === "--drop-after") opts.dropAfter = Number(next());
  else if (a === "--fail-patch") opts.failPatch = Number(next());
  else if (a === "--rate") opts.rate = Number(next());
  else if (a === "--max-size") opts.maxSize = Number(next());
  else if (a === "--no-options") opts.noOptions = true;
  else if (a === "--relative") opts.relative = true;
  else if (a === "--status") opts.status = true;
  else if (a === "--checksum") opts.checksum = true;
  else if (a === "--fail-checksum") opts.failChecksum = Number(next());
  else {
    console.error(`tus_server: unknown option ${a}`);
    process.exit(2);
  }
}
if (!opts.dir || !opts.log) {
  console.error("tus_server: --dir and --log are required");
  process.exit(2);
}

const logFd = fs.openSync(opts.log, "a");
const log = (o) => fs.writeSync(logFd, JSON.stringify(o) + "\n");

const datastore = new FileStore({ directory: opts.dir });
const tus = new Server({
  path: opts.path,
  datastore,
  relativeLocation: opts.relative,
  ...(opts.maxSize ? { maxSize: opts.maxSize } : {}),
});

const idOf = (url) => {
  const p = url.split("?")[0];
  if (!p.startsWith(opts.path + "/")) return null;
  return p.slice(opts.path.length + 1).split("/")[0] || null;
};
const offsetOf = async (id) => {
  try {
    return (await datastore.getUpload(id)).offset;
  } catch {
    return null;
  }
};

let patches = 0;
let failed = false;
const polls = new Map();

const inner = http.createServer(async (req, res) => {
  const entry = {
    method: req.method, url: req.url, auth: "authorization" in req.headers,
    checksum: "upload-checksum" in req.headers,
    offset_in: req.headers["upload-offset"] === undefined ? null
      : Number(req.headers["upload-offset"]),
  };
  const done = async () => {
    entry.status = res.statusCode;
    const id = idOf(req.url);
    if (id && (req.method === "PATCH" || req.method === "HEAD"))
      entry.offset_after = await offsetOf(id);
    const sum = req.headers["upload-checksum"];
    if (sum && entry.offset_after > entry.offset_in) {
      const fd = fs.openSync(path.join(opts.dir, id), "r");
      const buf = Buffer.alloc(entry.offset_after - entry.offset_in);
      fs.readSync(fd, buf, 0, buf.length, entry.offset_in);
      fs.closeSync(fd);
      entry.checksum_ok =
        sum === "sha256 " + crypto.createHash("sha256").update(buf).digest("base64");
    }
    log(entry);
  };
  res.on("close", done);
  if (opts.key && req.headers.authorization !== `Bearer ${opts.key}`) {
    req.resume();
    res.writeHead(401, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ error: { status: 401, message: "a valid API key is needed" } }));
    return;
  }
  if (req.method === "OPTIONS" && opts.noOptions) {
    res.writeHead(405);
    res.end();
    return;
  }
  if (req.method === "OPTIONS" && opts.checksum) {
    res.writeHead(204, {
      "Tus-Resumable": "1.0.0", "Tus-Version": "1.0.0",
      "Tus-Extension": "creation,creation-with-upload,termination,checksum",
      "Tus-Checksum-Algorithm": "md5, sha1,sha256",
    });
    res.end();
    return;
  }
  if (req.method === "PATCH" && ++patches === opts.failChecksum) {
    req.resume();
    req.on("end", () => {
      res.writeHead(460, { "Content-Type": "text/plain" });
      res.end("checksum mismatch\n");
    });
    return;
  }
  if (req.method === "PATCH" && patches === opts.failPatch && !failed) {
    failed = true;
    req.resume();
    req.on("end", () => {
      res.writeHead(500, { "Content-Type": "text/plain" });
      res.end("injected failure\n");
    });
    return;
  }
  const m = req.method === "GET" && req.url.match(/\/([^/]+)\/status$/);
  if (m) {
    if (!opts.status) {
      res.writeHead(404);
      res.end();
      return;
    }
    let up;
    try {
      up = await datastore.getUpload(m[1]);
    } catch {
      res.writeHead(404);
      res.end();
      return;
    }
    const n = (polls.get(m[1]) || 0) + 1;
    polls.set(m[1], n);
    const filename = up.metadata?.filename ?? "";
    const complete = up.offset === up.size;
    const body = { id: m[1], offset: up.offset, length: up.size, filename, track_ids: [] };
    if (!complete) body.state = "receiving";
    else if (n === 1) body.state = "ingesting";
    else if (filename.includes("bad")) {
      body.state = "failed";
      body.error = "not audio\u001b[31m";
    } else {
      body.state = "done";
      body.track_ids = [1000 + n];
    }
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify(body));
    return;
  }
  tus.handle(req, res);
});

inner.listen(0, "127.0.0.1", () => {
  let dropped = false;
  const proxy = net.createServer((client) => {
    const upstream = net.connect(inner.address().port, "127.0.0.1");
    let inPatch = false;
    let count = 0;
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", end);
    upstream.on("error", end);
    client.on("close", end);
    upstream.on("close", end);
    upstream.on("data", (d) => client.write(d));
    client.on("data", (d) => {
      if (opts.dropAfter >= 0 && !dropped) {
        if (!inPatch && d.includes("PATCH ")) inPatch = true;
        if (inPatch) {
          count += d.length;
          if (count > opts.dropAfter) {
            dropped = true;
            log({ event: "drop", after: count });
            end();
            return;
          }
        }
      }
      if (!upstream.write(d)) {
        client.pause();
        upstream.once("drain", () => client.resume());
      }
      if (opts.rate > 0) {
        client.pause();
        setTimeout(() => client.resume(), (1000 * d.length) / opts.rate);
      }
    });
  });
  proxy.listen(0, "127.0.0.1", () => {
    process.stdout.write(`port ${proxy.address().port}\n`);
  });
});

for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
