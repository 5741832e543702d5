// A headless Chromium (Debian's /usr/bin/chromium) that test_console.py
// drives step by step, through playwright-core (scripts/package.json;
// scripts/deps.sh installs it into build/npm, and no browser of its own).
//
//   node tests/system/console_browser.mjs PROFILE_DIR
//
// One JSON request a line on stdin, one JSON answer a line on stdout:
//   {"id": N, "cmd": "...", ...}  ->  {"id": N, "ok": true, "value": ...}
//                                     {"id": N, "ok": false, "error": "..."}
// Commands (each on the page named `page`, made by "page"):
//   page {page, width, height}        a new page in a browser of its own (its own
//                                     profile, PROFILE_DIR/PAGE, so its own cookies)
//   close {page}
//   viewport {page, width, height}
//   goto {page, url}
//   fill {page, selector, value}      click {page, selector}
//   select {page, selector, value}    chooses the option of that value in a <select>
//   wait {page, selector, state?, timeout?}
//   until {page, expr, timeout?}      waits for the expression to be truthy: its value
//   eval {page, expr}                 the expression's value
//   shot {page, path, full?}          a PNG screenshot
//   files {page, selector, paths}     sets a file input's files (a directory's path for
//                                     a webkitdirectory input: its files, with their
//                                     relative paths)
//   drop {page, selector, paths}      drops files or folders from the disk on the element,
//                                     as a user dragging them from a file manager
//                                     (CDP's Input.dispatchDragEvent: real entries,
//                                     folders walkable with webkitGetAsEntry)
//   reload {page}                     reloads the page (waits for its load event)
//   throttle {page, upload?, offline?} the page's upload bandwidth in bytes/s (CDP's
//                                     network emulation); none or 0: unthrottled;
//                                     offline: every connection fails (a lost network)
//   events {page}                     the page's JavaScript errors and console errors so
//                                     far, the origins it sent requests to, and how many
//                                     dialogs it opened (beforeunload: accepted)
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
  process.stderr.write("usage: console_browser.mjs PROFILE_DIR\n");
  process.exit(2);
}

// Chromium takes its profile directory from playwright only through a
// persistent context, and a persistent context is one browser's only
// context: each page is a browser of its own, with a fresh profile.
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

const pages = new Map(); // name -> {page, errors, origins}

async function closeAll() {
  for (const [name, p] of pages) {
    pages.delete(name);
    await p.ctx.close().catch(() => {});
  }
}

async function run(m) {
  const p = m.page !== undefined ? pages.get(m.page) : null;
  if (m.cmd !== "page" && m.cmd !== "quit" && !p) throw new Error(`no page ${m.page}`);
  const timeout = m.timeout ?? 10000;
  switch (m.cmd) {
    case "page": {
      const ctx = await chromium.launchPersistentContext(path.join(profile, m.page), {
        executablePath: "/usr/bin/chromium", headless: true, args: ARGS,
        viewport: { width: m.width, height: m.height },
      });
      const page = ctx.pages()[0] || await ctx.newPage();
      const rec = { ctx, page, errors: [], origins: new Set(), cdp: null };
      page.on("pageerror", (e) => rec.errors.push(`pageerror: ${e.message}`));
      page.on("console", (msg) => {
        if (msg.type() === "error") rec.errors.push(`console: ${msg.text()}`);
      });
      page.on("request", (r) => rec.origins.add(new URL(r.url()).origin));
      // "Leave the page?" is answered yes (a reload in the middle of an
      // upload); any other dialog no.
      page.on("dialog", (d) => {
        rec.dialogs = (rec.dialogs || 0) + 1;
        (d.type() === "beforeunload" ? d.accept() : d.dismiss()).catch(() => {});
      });
      pages.set(m.page, rec);
      return true;
    }
    case "close":
      await p.ctx.close();
      pages.delete(m.page);
      return true;
    case "viewport":
      await p.page.setViewportSize({ width: m.width, height: m.height });
      return true;
    case "goto":
      await p.page.goto(m.url, { waitUntil: "load", timeout });
      return true;
    case "fill":
      await p.page.fill(m.selector, m.value, { timeout });
      return true;
    case "click":
      await p.page.click(m.selector, { timeout });
      return true;
    case "select":
      await p.page.selectOption(m.selector, m.value, { timeout });
      return true;
    case "wait":
      await p.page.waitForSelector(m.selector, { state: m.state ?? "visible", timeout });
      return true;
    case "until": {
      const h = await p.page.waitForFunction(m.expr, null, { timeout, polling: 50 });
      return await h.jsonValue();
    }
    case "eval":
      return await p.page.evaluate(m.expr);
    case "shot": {
      // A loaded machine can take long to capture a tall page: a second
      // try with the viewport only rather than a lost screenshot.
      const opts = { path: m.path, fullPage: !!m.full, animations: "disabled", timeout: 60000 };
      try {
        await p.page.screenshot(opts);
      } catch (e) {
        if (!m.full) throw e;
        await p.page.screenshot({ ...opts, fullPage: false });
      }
      return m.path;
    }
    case "files":
      await p.page.setInputFiles(m.selector, m.paths, { timeout });
      return true;
    case "drop": {
      if (!p.cdp) p.cdp = await p.ctx.newCDPSession(p.page);
      const box = await p.page.locator(m.selector).boundingBox({ timeout });
      if (!box) throw new Error(`${m.selector} is not displayed`);
      const at = { x: box.x + box.width / 2, y: box.y + box.height / 2 };
      const data = { items: [], files: m.paths, dragOperationsMask: 1 };
      for (const type of ["dragEnter", "dragOver", "drop"]) {
        await p.cdp.send("Input.dispatchDragEvent", { type, ...at, data });
      }
      return true;
    }
    case "reload":
      await p.page.reload({ waitUntil: "load", timeout });
      return true;
    case "throttle": {
      if (!p.cdp) p.cdp = await p.ctx.newCDPSession(p.page);
      const up = m.upload || 0;
      await p.cdp.send("Network.enable");
      await p.cdp.send("Network.emulateNetworkConditions", {
        offline: !!m.offline, latency: 0, downloadThroughput: -1, uploadThroughput: up > 0 ? up : -1,
      });
      return true;
    }
    case "events":
      return { errors: p.errors, origins: [...p.origins].sort(), dialogs: p.dialogs || 0 };
    case "quit":
      await closeAll();
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
await closeAll();
process.exit(0);
