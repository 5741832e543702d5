// tus-js-client uploading one file to a tus endpoint: the reference for
// bench/upload_client.sh. node upload_tusjs.cjs NODE_MODULES ENDPOINT FILE CHUNK_BYTES
const path = require("node:path");
const fs = require("node:fs");
const tus = require(path.join(process.argv[2], "tus-js-client"));
const file = process.argv[4];
const size = fs.statSync(file).size;
const t0 = process.hrtime.bigint();
const up = new tus.Upload(fs.createReadStream(file), {
  endpoint: process.argv[3], chunkSize: Number(process.argv[5]), uploadSize: size,
  metadata: { filename: path.basename(file) },
  onError: (e) => { console.error("error", e); process.exit(1); },
  onSuccess: () => { console.log(`tus-js-client ${(Number(process.hrtime.bigint() - t0) / 1e9).toFixed(2)} s`); },
});
up.start();
