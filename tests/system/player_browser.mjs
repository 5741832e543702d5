// A headless Chromium (Debian's /usr/bin/chromium) that test_player.py
// drives, through playwright-core (as console_browser.mjs does), with
// autoplay allowed: a store's player starts its music with nobody there.
//
//   node tests/system/player_browser.mjs PROFILE_DIR
//
// One JSON request a line on stdin, one JSON answer a line on stdout:
//   {"id": N, "cmd": "...", ...}  ->  {"id": N, "ok": true, "value": ...}
//                                     {"id": N, "ok": false, "error": "..."}
// Commands (one page, in a browser of its own with the profile PROFILE_DIR):
//   page {width, height}      opens the browser and its page
//   goto {url}                eval {expr}          until {expr, timeout?}
//   shot {path}               a PNG screenshot
//   events                    the page's JavaScript errors and console errors so
//                             far, and the origins it sent requests to
//   quit
import { createRequire } from "node:module";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "..", "..", "build", "npm", "package.json"));
const { chromium } = require("playwright-core");

const profile = process.argv[2];
if (!profile) {
  process.stderr.write("usage: player_browser.mjs PROFILE_DIR\n");
  process.exit(2);
}

const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--autoplay-policy=no-user-gesture-required", "--disable-background-timer-throttling",
  "--disable-renderer-backgrounding", "--disable-backgrounding-occluded-windows"];

let rec = null; // {ctx, page, errors, origins}

async function run(m) {
  if (m.cmd !== "page" && m.cmd !== "quit" && !rec) throw new Error("no page");
  const timeout = m.timeout ?? 10000;
  switch (m.cmd) {
    case "page": {
      const ctx = await chromium.launchPersistentContext(profile, {
        executablePath: "/usr/bin/chromium", headless: true, args: ARGS,
        viewport: { width: m.width || 1024, height: m.height || 768 },
      });
      const page = ctx.pages()[0] || await ctx.newPage();
      rec = { ctx, page, errors: [], origins: new Set() };
      page.on("pageerror", (e) => rec.errors.push(`pageerror: ${e.message}`));
      page.on("console", (msg) => {
        if (msg.type() === "error") rec.errors.push(`console: ${msg.text()}`);
      });
      page.on("request", (r) => rec.origins.add(new URL(r.url()).origin));
      return true;
    }
    case "goto":
      await rec.page.goto(m.url, { waitUntil: "load", timeout });
      return true;
    case "until": {
      const h = await rec.page.waitForFunction(m.expr, null, { timeout, polling: 100 });
      return await h.jsonValue();
    }
    case "eval":
      return await rec.page.evaluate(m.expr);
    case "shot":
      await rec.page.screenshot({ path: m.path, fullPage: true, animations: "disabled", timeout: 60000 });
      return m.path;
    case "events":
      return { errors: rec.errors, origins: [...rec.origins].sort() };
    case "quit":
      if (rec) await rec.ctx.close().catch(() => {});
      rec = null;
      return true;
    default:
      throw new Error(`unknown command ${m.cmd}`);
  }
}

const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  if (!line.trim()) continue;
  let m;
  try {
    m = JSON.parse(line);
  } catch (e) {
    process.stdout.write(JSON.stringify({ id: null, ok: false, error: `bad request: ${e.message}` }) + "\n");
    continue;
  }
  let answer;
  try {
    answer = { id: m.id, ok: true, value: (await run(m)) ?? null };
  } catch (e) {
    answer = { id: m.id, ok: false, error: String(e && e.message ? e.message : e).split("\n")[0] };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
  if (m.cmd === "quit") break;
}
if (rec) await rec.ctx.close().catch(() => {});
process.exit(0);
