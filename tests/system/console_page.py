"""The console in a browser, for test_console.py and test_console_upload.py:
console_browser.mjs (playwright-core driving Debian's Chromium) behind one
JSON line per request, and a page of it with the steps an operator takes
(log in, open a view, take a screenshot into the test's artifacts)."""

import json
import os
import pathlib
import shutil
import signal
import subprocess
import time

import chorus_test
from chorus_test import REPO, fail

CHROMIUM = "/usr/bin/chromium"
NODE_JS = shutil.which("node")
PLAYWRIGHT = REPO / "build" / "npm" / "node_modules" / "playwright-core"
DRIVER = pathlib.Path(__file__).with_name("console_browser.mjs")
DESKTOP, PHONE = (1280, 800), (390, 844)


def output_dir(test_name):
    """Where a test's screenshots go: $CHORUS_TEST_OUTPUT, else
    build/test-output/TEST_NAME."""
    return pathlib.Path(os.environ.get("CHORUS_TEST_OUTPUT") or
                        REPO / "build" / "test-output" / test_name)


def browser_missing():
    """What of the browser's parts is not installed, or None."""
    for path, what in ((CHROMIUM, "Chromium"), (NODE_JS, "Node.js"),
                       (PLAYWRIGHT, "playwright-core")):
        if not path or not os.path.exists(path):
            return what
    return None


class Browser:
    """console_browser.mjs: one JSON request a line, one answer a line."""

    def __init__(self, profile, out):
        self.out = pathlib.Path(out)
        self.log = open(self.out / "browser.log", "wb")
        self.proc = subprocess.Popen([NODE_JS, str(DRIVER), str(profile)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log, text=True,
                                     start_new_session=True)
        self.n = 0

    def __call__(self, cmd, **kw):
        self.n += 1
        self.proc.stdin.write(json.dumps({"id": self.n, "cmd": cmd, **kw}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            fail(f"the browser driver exited during {cmd} {kw}: "
                 f"{(self.out / 'browser.log').read_text(errors='replace')[-2000:]}")
        a = json.loads(line)
        if not a["ok"]:
            fail(f"browser: {cmd} {json.dumps(kw)[:300]}: {a['error']}")
        return a["value"]

    def close(self):
        if self.proc.poll() is None:
            try:
                self("quit")
                self.proc.wait(15)
            except Exception:  # noqa: BLE001 (then by force, by its id)
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


class Page:
    """One page of the browser (a browser process of its own: its own cookies)."""

    def __init__(self, b, name, size):
        self.b, self.name = b, name
        b("page", page=name, width=size[0], height=size[1])

    def __getattr__(self, cmd):
        return lambda **kw: self.b(cmd, page=self.name, **kw)

    def js(self, expr):
        return self.b("eval", page=self.name, expr=expr)

    def until(self, what, expr, timeout=10):
        """The expression's value once truthy, and the seconds it took."""
        t0 = time.monotonic()
        try:
            v = self.b("until", page=self.name, expr=expr, timeout=int(timeout * 1000))
        except chorus_test.TestFailure as e:
            self.screenshot(f"failed-{self.name}")
            fail(f"{what}: not within {timeout:g} s on the page ({e})",
                 self.js("document.querySelector('main') ? document.body.innerText.slice(0, 3000) : ''"))
        return v, time.monotonic() - t0

    def screenshot(self, name, full=True):
        p = self.b.out / f"{name}.png"
        self.b("shot", page=self.name, path=str(p), full=full)
        print(f"# screenshot {p.relative_to(REPO) if p.is_relative_to(REPO) else p}")
        return p

    def login(self, url, user, password):
        self.goto(url=url)
        self.wait(selector="#login-user")
        self.fill(selector="#login-user", value=user)
        self.fill(selector="#login-password", value=password)
        self.click(selector="#login-submit")
        self.wait(selector="#app", timeout=15000)

    def view(self, name):
        self.js(f"location.hash = '#{name}'")
        self.wait(selector=f"#view-{name}.on")


def overflow_and_controls(p, controls):
    """(page width - viewport width, [controls not wholly visible in the
    viewport's width, or not displayed])."""
    return p.js("""(() => {
      const over = document.documentElement.scrollWidth - document.documentElement.clientWidth;
      const bad = [];
      for (const sel of %s) {
        const els = [...document.querySelectorAll(sel)];
        if (!els.length) { bad.push(sel + ": none"); continue; }
        for (const e of els) {
          const r = e.getBoundingClientRect();
          if (!r.width || !r.height || r.left < 0 || r.right > innerWidth + 0.5 ||
              getComputedStyle(e).visibility === "hidden")
            bad.push(`${sel}: ${Math.round(r.left)}..${Math.round(r.right)} of ${innerWidth}`);
        }
      }
      return [over, bad];
    })()""" % json.dumps(controls))
