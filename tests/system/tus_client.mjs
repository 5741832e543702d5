// An independent tus client for test_uploads.py: tus-js-client (npm, in
// build/npm) uploading files to a chorus node, as a script or a page would.
//
//   node tus_client.mjs ENDPOINT FILE...
//
// The key comes from $CHORUS_KEY (never the command line: ps shows that).
// Options from the environment: TUS_CHUNK (bytes per PATCH; default: the
// whole rest in one), TUS_CHECKSUM=1 (nothing: tus-js-client has no
// checksum support; kept for symmetry), TUS_PARALLEL (files at once,
// default 1), TUS_RETRIES (how many retry delays of 0.25-2 s, default 40).
// One JSON line per event on stdout:
//   {"event":"progress","file":F,"sent":N,"total":T}   (at most every 1 %)
//   {"event":"done","file":F,"url":URL}
//   {"event":"error","file":F,"message":M,"status":S}
// Exit status 0 when every file was uploaded, 1 otherwise.
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "..", "..", "build", "npm", "package.json"));
const tus = require("tus-js-client");

const [endpoint, ...files] = process.argv.slice(2);
if (!endpoint || files.length === 0) {
	console.error("usage: node tus_client.mjs ENDPOINT FILE...");
	process.exit(2);
}
const key = process.env.CHORUS_KEY || "";
const chunk = Number(process.env.TUS_CHUNK || 0);
const parallel = Number(process.env.TUS_PARALLEL || 1);
const retries = Number(process.env.TUS_RETRIES || 40);
const delays = Array.from({ length: retries }, (_, i) => Math.min(250 * 2 ** i, 2000));

function emit(o) {
	process.stdout.write(JSON.stringify(o) + "\n");
}

function upload(file) {
	return new Promise((resolve) => {
		const data = fs.readFileSync(file);
		let shown = -1;
		const opts = {
			endpoint,
			headers: key ? { Authorization: `Bearer ${key}` } : {},
			metadata: { filename: path.basename(file) },
			uploadSize: data.length,
			retryDelays: delays,
			removeFingerprintOnSuccess: true,
			onProgress(sent, total) {
				const pct = Math.floor((100 * sent) / total);
				if (pct !== shown) {
					shown = pct;
					emit({ event: "progress", file, sent, total });
				}
			},
			onSuccess() {
				emit({ event: "done", file, url: up.url });
				resolve(true);
			},
			onError(err) {
				const res = err.originalResponse;
				emit({
					event: "error",
					file,
					message: String(err.message || err),
					status: res ? res.getStatus() : 0,
				});
				resolve(false);
			},
		};
		if (chunk > 0) opts.chunkSize = chunk;
		if (process.env.TUS_WITH_CREATION) opts.uploadDataDuringCreation = true;
		const up = new tus.Upload(data, opts);
		up.start();
	});
}

let ok = true;
const queue = [...files];
async function worker() {
	while (queue.length) {
		const f = queue.shift();
		if (!(await upload(f))) ok = false;
	}
}
await Promise.all(Array.from({ length: Math.max(1, parallel) }, worker));
process.exit(ok ? 0 : 1);
