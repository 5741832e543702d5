#!/usr/bin/python3
"""System tests for `chorus serve --tls-cert FILE --tls-key FILE`: HTTPS with
OpenSSL, driving the real binary ($CHORUS_BIN) with python's ssl module,
curl and openssl s_client on 127.0.0.1.

    CHORUS_BIN=build/asan/chorus /usr/bin/python3 tests/system/test_tls.py [NAME...]

Certificates are made at test time (self-signed P-256, for IP 127.0.0.1).
Every request but /health carries an admin API key (`chorus key create`),
so the tests hold whether or not the other endpoints need one.
"""

import hashlib
import json
import http.client
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from chorus_test import (  # noqa: E402
    CHUNK_SIZE, Catalog, check, check_eq, fail, ingest_ok, main, make_wav, noproxy_env,
    run_chorus, shared_dir, skip, start_chorus, test, wait_for, _check_sanitizers)

OPENSSL = shutil.which("openssl", path="/usr/bin:/bin:/usr/local/bin")
CURL = shutil.which("curl", path="/usr/bin:/bin:/usr/local/bin")
_SERVING = re.compile(r"^chorus (\S+) serving (.*) on https://127\.0\.0\.1:(\d+)/$", re.M)
KEY_RE = re.compile(r"^chorus_[0-9a-z]+_[0-9A-Za-z_-]+$")
BIG = 4 * CHUNK_SIZE + 123_456 + 44  # a WAV just over 4 MiB, over five chunks

warnings_off = __import__("warnings")
warnings_off.filterwarnings("ignore", category=DeprecationWarning)  # ssl.TLSVersion.TLSv1_1


# ------------------------------------------------------------------ inputs

def make_cert(dirpath, name, cn="127.0.0.1"):
    """A self-signed P-256 certificate for IP 127.0.0.1 and its key:
    (cert path, key path, sha256 of the DER certificate)."""
    if not OPENSSL:
        skip("no openssl command")
    cert, key = dirpath / f"{name}.crt", dirpath / f"{name}.key"
    p = subprocess.run([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                        f"/CN={cn}", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout",
                        str(key), "-out", str(cert)], capture_output=True, timeout=60)
    if p.returncode != 0:
        fail(f"openssl req failed: {p.stderr.decode()}")
    return cert, key, fingerprint_pem(cert)


def fingerprint_pem(path):
    der = ssl.PEM_cert_to_DER_cert(path.read_text())
    return hashlib.sha256(der).hexdigest()


def certs():
    """Two certificates (a, b) made once per run: {name: (cert, key, fp)}."""
    d = shared_dir("tls-certs")
    if not (d / "done").exists():
        make_cert(d, "a", "chorus-a")
        make_cert(d, "b", "chorus-b")
        (d / "done").write_text("")
    return {n: (d / f"{n}.crt", d / f"{n}.key", fingerprint_pem(d / f"{n}.crt"))
            for n in ("a", "b")}


def library():
    """A WAV of BIG bytes ingested once: {'data', 'file', 'id'}."""
    root = shared_dir("tls-lib")
    f = root / "lib" / "big.wav"
    if not (root / "done").exists():
        make_wav(f, file_size=BIG, seed=11)
        ingest_ok(root / "data", root / "lib")
        (root / "done").write_text("")
    with Catalog(root / "data") as cat:
        tid = "%016x" % cat.value("SELECT id FROM tracks")
    return {"data": root / "data", "file": f, "id": tid}


def key_material(keyfile):
    """The base64 lines of a PEM key: none of them may reach a log."""
    return [ln for ln in keyfile.read_text().splitlines()
            if ln and not ln.startswith("-----") and len(ln) >= 16]


# ------------------------------------------------------------------ the node

class TlsNode:
    """`chorus serve --tls-cert CERT --tls-key KEY` on 127.0.0.1:0 in the
    background, with its own copies of the pair (cert.pem, key.pem in tmp,
    replaced by the tests before a SIGHUP) and an admin API key."""

    def __init__(self, tmp, data, pair, args=()):
        self.tmp = tmp
        self.cert, self.key = tmp / "cert.pem", tmp / "key.pem"
        self.install(pair)
        self.data = data
        self.bg = start_chorus(["serve", "--data", data, "--listen", "127.0.0.1:0",
                                "--tls-cert", self.cert, "--tls-key", self.key]
                               + [str(a) for a in args], tmp / "logs", tag="serve-tls")
        deadline = time.monotonic() + 60
        while True:
            m = _SERVING.search(self.bg.out_path.read_bytes().decode("utf-8", "replace"))
            if m:
                self.port = int(m.group(3))
                break
            if not self.bg.running():
                fail("chorus serve exited before listening", self.bg.result())
            if time.monotonic() > deadline:
                self.bg.kill()
                fail("chorus serve not listening after 60 s", self.bg.result())
            time.sleep(0.02)
        r = run_chorus(["key", "create", "--role", "admin", "--name", "tls-test", "--data", data])
        check_eq(r.rc, 0, "key create exit status", r)
        self.api_key = r.out.rstrip("\n").split("\n")[-1]
        check(KEY_RE.match(self.api_key), f"key create's last line is not a key: {r.out!r}")
        self.auth = {"Authorization": f"Bearer {self.api_key}"}

    def install(self, pair):
        """Copies pair (cert, key, fp) over this node's files (a rename:
        the node reads whole files)."""
        for src, dst in ((pair[0], self.cert), (pair[1], self.key)):
            tmp = dst.with_suffix(".new")
            shutil.copyfile(src, tmp)
            os.replace(tmp, dst)

    def ctx(self, cafile=None, **versions):
        c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if cafile:
            c.load_verify_locations(cafile)
        else:
            c.check_hostname = False
            c.verify_mode = ssl.CERT_NONE
        for k, v in versions.items():
            setattr(c, k, v)
        return c

    def conn(self, cafile=None, timeout=30, **versions):
        return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout,
                                           context=self.ctx(cafile, **versions))

    def get(self, path, cafile=None, headers=None, conn=None):
        """GET over HTTPS (the API key sent but for /health): (status,
        headers, body, the connection's peer certificate's sha256)."""
        own = conn is None
        conn = conn or self.conn(cafile)
        h = dict(headers or {})
        if path != "/health":
            h.update(self.auth)
        try:
            conn.request("GET", path, headers=h)
            r = conn.getresponse()
            body = r.read()
            fp = hashlib.sha256(conn.sock.getpeercert(binary_form=True)).hexdigest()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, body, fp
        finally:
            if own:
                conn.close()

    def peer_fingerprint(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            with self.ctx().wrap_socket(s) as t:
                return hashlib.sha256(t.getpeercert(binary_form=True)).hexdigest()

    def running(self):
        return self.bg.running()

    def log(self):
        r = self.bg.result()
        return r.out + r.err

    def wait_log(self, what, pattern, after=0, timeout=10):
        def seen():
            return re.search(pattern, self.log()[after:])
        return wait_for(what, seen, timeout, context=lambda: self.log()[after:])[0]

    def stop(self):
        if self.bg.running():
            os.kill(self.bg.pid, signal.SIGTERM)
        res = self.bg.wait(60)
        _check_sanitizers(res)
        check_eq(res.rc, 0, "chorus serve exit status after SIGTERM", res)
        return res


def check_no_secrets(node, *keyfiles):
    log = node.log()
    for kf in keyfiles:
        for ln in key_material(kf):
            check(ln not in log, f"key material of {kf} in the node's output", log[-2000:])


def curl(args, timeout=60):
    if not CURL:
        skip("no curl")
    return subprocess.run([CURL, "-sS", "--noproxy", "*"] + args, capture_output=True,
                          env=noproxy_env(), timeout=timeout)


# ------------------------------------------------------------------ tests

@test("https: /health and the API with python ssl (TLS 1.3 and 1.2) and curl --cacert;"
      " a plain request on the port gets a plain 400")
def _(tmp):
    C, L = certs(), library()
    node = TlsNode(tmp, L["data"], C["a"])
    cafile = C["a"][0]
    st, _, body, fp = node.get("/health", cafile)
    check_eq((st, body), (200, b'{"status":"ok"}\n'), "GET /health over HTTPS")
    check_eq(fp, C["a"][2], "the certificate served")
    st, hd, body, _ = node.get(f"/api/v1/tracks/{L['id']}", cafile)
    check_eq(st, 200, f"GET /api/v1/tracks/ID over HTTPS: {body[:300]!r}")
    check(hd.get("content-type", "").startswith("application/json"), f"content type {hd}")

    for maxv, want in ((ssl.TLSVersion.TLSv1_3, "TLSv1.3"), (ssl.TLSVersion.TLSv1_2, "TLSv1.2")):
        with socket.create_connection(("127.0.0.1", node.port), timeout=10) as s:
            with node.ctx(cafile, maximum_version=maxv).wrap_socket(
                    s, server_hostname="127.0.0.1") as t:
                check_eq(t.version(), want, "protocol negotiated")
                cipher = t.cipher()[0]
                if want == "TLSv1.2":
                    check(cipher.startswith("ECDHE-") and ("GCM" in cipher or "CHACHA" in cipher),
                          f"TLS 1.2 suite {cipher} is not ECDHE with an AEAD")

    r = curl(["--cacert", str(cafile), f"https://127.0.0.1:{node.port}/health"])
    check_eq((r.returncode, r.stdout), (0, b'{"status":"ok"}\n'),
             f"curl --cacert /health: {r.stderr!r}")
    r = curl(["--cacert", str(cafile), "-H", f"Authorization: Bearer {node.api_key}",
              "-o", "/dev/null", "-w", "%{http_code}",
              f"https://127.0.0.1:{node.port}/api/v1/tracks/{L['id']}"])
    check_eq((r.returncode, r.stdout), (0, b"200"), f"curl --cacert API: {r.stderr!r}")
    # Without the CA, curl must refuse the self-signed certificate.
    r = curl([f"https://127.0.0.1:{node.port}/health"])
    check(r.returncode != 0, "curl accepted a self-signed certificate without --cacert")

    # A login over HTTPS: the session cookie is Secure.
    pw = (node.data / "admin-password").read_text().strip()
    conn = node.conn(cafile)
    conn.request("POST", "/api/v1/session", body=json.dumps({"user": "admin", "password": pw}),
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    cookie = resp.getheader("Set-Cookie", "")
    check_eq(resp.status, 200, "a login over HTTPS")
    check("; Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie,
          f"the session cookie over HTTPS: {cookie!r}")

    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=10)
    conn.request("GET", "/health")
    resp = conn.getresponse()
    check_eq(resp.status, 400, "plain HTTP on the TLS port")
    check(b"HTTPS" in resp.read(), "the 400 says the port speaks HTTPS")
    conn.close()
    check_eq(node.get("/health", cafile)[0], 200, "/health after the plain request")
    node.stop()
    check_no_secrets(node, C["a"][1])


@test("tls: TLS 1.0 and 1.1 refused by the server (python ssl, openssl s_client), as are"
      " TLS 1.2 suites without ECDHE or an AEAD")
def _(tmp):
    C, L = certs(), library()
    node = TlsNode(tmp, L["data"], C["a"])
    for v in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
        c = node.ctx(minimum_version=ssl.TLSVersion.TLSv1, maximum_version=v)
        c.set_ciphers("DEFAULT:@SECLEVEL=0")  # our side would offer them; the server must not
        with socket.create_connection(("127.0.0.1", node.port), timeout=10) as s:
            try:
                with c.wrap_socket(s) as t:
                    fail(f"a {t.version()} handshake succeeded")
            except ssl.SSLError as e:
                check("PROTOCOL_VERSION" in str(e) or "UNSUPPORTED_PROTOCOL" in str(e)
                      or "alert" in str(e), f"{v.name}: unexpected error {e}")
    if OPENSSL:
        p = subprocess.run([OPENSSL, "s_client", "-connect", f"127.0.0.1:{node.port}", "-tls1_1",
                            "-cipher", "DEFAULT:@SECLEVEL=0"], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=30)
        out = (p.stdout + p.stderr).decode("utf-8", "replace")
        check(p.returncode != 0 and "Cipher is (NONE)" in out,
              f"openssl s_client -tls1_1 was not refused (status {p.returncode})", out[-1500:])
    for weak in ("AES128-SHA", "AES256-GCM-SHA384", "ECDHE-RSA-AES128-SHA", "DHE-RSA-AES128-GCM-SHA256"):
        c = node.ctx(maximum_version=ssl.TLSVersion.TLSv1_2)
        c.set_ciphers(weak + ":@SECLEVEL=0")
        with socket.create_connection(("127.0.0.1", node.port), timeout=10) as s:
            try:
                with c.wrap_socket(s) as t:
                    fail(f"TLS 1.2 with {weak} succeeded: {t.cipher()}")
            except ssl.SSLError:
                pass
    check_eq(node.get("/health")[0], 200, "/health after the refused handshakes")
    node.stop()


@test("stream: Range requests of a track over TLS are byte-exact (curl -r, python), and the"
      " whole track")
def _(tmp):
    C, L = certs(), library()
    node = TlsNode(tmp, L["data"], C["a"])
    src = L["file"].read_bytes()
    url = f"https://127.0.0.1:{node.port}/api/v1/tracks/{L['id']}/stream"
    ranges = [(0, 0), (0, 99), (1000, 2_000_000), (CHUNK_SIZE - 5, CHUNK_SIZE + 5),
              (3 * CHUNK_SIZE + 17, len(src) - 1), (len(src) - 10, len(src) - 1)]
    for a, b in ranges:
        out = tmp / "range.out"
        r = curl(["--cacert", str(C["a"][0]), "-H", f"Authorization: Bearer {node.api_key}",
                  "-r", f"{a}-{b}", "-o", str(out), "-w", "%{http_code}", url])
        check_eq((r.returncode, r.stdout), (0, b"206"), f"curl -r {a}-{b}: {r.stderr!r}")
        got = out.read_bytes()
        check(got == src[a:b + 1], f"curl -r {a}-{b}: {len(got)} bytes that differ from the file"
              f" ({b - a + 1} wanted)")
    conn = node.conn(C["a"][0])  # several ranges on one keep-alive connection
    for a, b in ranges + [(5, 5), (2 * CHUNK_SIZE, 2 * CHUNK_SIZE + 70_000)]:
        st, hd, body, _ = node.get(f"/api/v1/tracks/{L['id']}/stream", conn=conn,
                                   headers={"Range": f"bytes={a}-{b}"})
        check_eq(st, 206, f"python Range {a}-{b}")
        check_eq(hd.get("content-range"), f"bytes {a}-{b}/{len(src)}", "Content-Range")
        check(body == src[a:b + 1], f"python Range {a}-{b}: the bytes differ")
    st, hd, body, _ = node.get(f"/api/v1/tracks/{L['id']}/stream", conn=conn)
    check_eq(st, 200, "whole track")
    check_eq(hashlib.sha256(body).hexdigest(), hashlib.sha256(src).hexdigest(), "whole track")
    conn.close()
    node.stop()


def start_slow_download(node, path, cafile):
    """A GET of path on a TLS socket with a small receive buffer: the
    server is left blocked writing. Returns (socket, head, first bytes)."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 10)
    raw.settimeout(30)
    raw.connect(("127.0.0.1", node.port))
    t = node.ctx(cafile).wrap_socket(raw, server_hostname="127.0.0.1")
    t.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
              f"{node.api_key}\r\n\r\n".encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = t.recv(65536)
        if not d:
            fail("the download ended before its head")
        buf += d
    head, body = buf.split(b"\r\n\r\n", 1)
    while len(body) < 256 << 10:
        d = t.recv(65536)
        if not d:
            fail("the download ended early")
        body += d
    return t, head.decode("latin-1"), body


def finish_download(t, body, total):
    while len(body) < total:
        d = t.recv(1 << 16)
        if not d:
            break
        body += d
    return body


@test("sighup: a 4 MiB download in flight survives a SIGHUP with a new certificate, which new"
      " connections get; the key never reaches the log")
def _(tmp):
    C, L = certs(), library()
    node = TlsNode(tmp, L["data"], C["a"])
    src = L["file"].read_bytes()
    path = f"/api/v1/tracks/{L['id']}/stream"
    node.get(path, C["a"][0])  # the track in the cache: the download below is a hit
    t, head, body = start_slow_download(node, path, C["a"][0])
    check(head.startswith("HTTP/1.1 200"), f"download head: {head}")
    check_eq(hashlib.sha256(t.getpeercert(binary_form=True)).hexdigest(), C["a"][2],
             "the in-flight download's certificate")
    mark = len(node.log())
    node.install(C["b"])
    os.kill(node.bg.pid, signal.SIGHUP)
    node.wait_log("the reload's log line", r"certificate reloaded.*chorus-b", mark)
    check_eq(node.peer_fingerprint(), C["b"][2], "a new connection's certificate after SIGHUP")
    st, _, hb, fp = node.get("/health", C["b"][0])
    check_eq((st, fp), (200, C["b"][2]), "/health verified against the new CA")
    check(len(body) < len(src), f"the download was over ({len(body)} bytes) before the SIGHUP")
    body = finish_download(t, body, len(src))
    t.close()
    check_eq(len(body), len(src), "bytes of the download across the SIGHUP")
    check(body == src, "the download across the SIGHUP differs from the file")
    # And a second reload back to a, on the same running node.
    mark = len(node.log())
    node.install(C["a"])
    os.kill(node.bg.pid, signal.SIGHUP)
    node.wait_log("the second reload", r"certificate reloaded.*chorus-a", mark)
    check_eq(node.peer_fingerprint(), C["a"][2], "the certificate after a second SIGHUP")
    check(node.running(), "the node is running")
    node.stop()
    check_no_secrets(node, C["a"][1], C["b"][1])


@test("sighup: a broken certificate file or a mismatched key keeps the old pair serving, with"
      " an error in the log")
def _(tmp):
    C, L = certs(), library()
    node = TlsNode(tmp, L["data"], C["a"])
    keep = node.conn(C["a"][0])  # a keep-alive connection across the failed reloads
    check_eq(node.get("/health", conn=keep)[0], 200, "/health before")
    for what, files in (("garbage", ("-----BEGIN CERTIFICATE-----\nnot base64!\n", None)),
                        ("empty", ("", None)),
                        ("mismatched key", (C["b"][0].read_text(), C["a"][1].read_text())),
                        ("missing key", (C["a"][0].read_text(), False))):
        mark = len(node.log())
        if files[0] is not None:
            node.cert.write_text(files[0])
        if files[1] is False:
            node.key.unlink()
        elif files[1] is not None:
            node.key.write_text(files[1])
        os.kill(node.bg.pid, signal.SIGHUP)
        line = node.wait_log(f"{what}: the refused reload's log line",
                             r"error: .*SIGHUP: keeping the certificate in use: [^\n]+", mark)
        print(f"# {what}: {line.group(0)}", flush=True)
        check(node.running(), f"{what}: the node exited")
        check_eq(node.peer_fingerprint(), C["a"][2], f"{what}: the certificate kept")
        check_eq(node.get("/health", C["a"][0])[0], 200, f"{what}: a new connection")
        check_eq(node.get("/health", conn=keep)[0], 200, f"{what}: the kept-alive connection")
        node.install(C["a"])
    keep.close()
    node.stop()
    check_no_secrets(node, C["a"][1], C["b"][1])


@test("tls: a client that never finishes its handshake is closed after the header timeout")
def _(tmp):
    C, L = certs(), library()
    node = TlsNode(tmp, L["data"], C["a"])
    with socket.create_connection(("127.0.0.1", node.port), timeout=30) as s:
        s.sendall(b"\x16\x03\x01\x00\x50")  # a record header, and no record
        t0 = time.monotonic()
        try:
            d = s.recv(4096)
            while d:
                d = s.recv(4096)
        except ConnectionResetError:
            pass
        el = time.monotonic() - t0
    check(8 <= el <= 14, f"closed after {el:.1f} s, want the 10 s header timeout")
    check_eq(node.get("/health")[0], 200, "/health after")
    node.stop()


@test("options: --tls-cert without --tls-key (or the reverse) exits 2")
def _(tmp):
    C = certs()
    for args in (["--tls-cert", C["a"][0]], ["--tls-key", C["a"][1]]):
        r = run_chorus(["serve", "--data", tmp / "d", "--listen", "127.0.0.1:0"] + args)
        check_eq(r.rc, 2, f"{args[0]} alone: exit status", r)
        check("--tls-cert and --tls-key" in r.err, "the message names both options", r)
        check(not (tmp / "d").exists(), f"{args[0]} alone left a data directory")


@test("options: a missing, unreadable, garbage or mismatched pair exits 1 with a clear message"
      " before the data directory is made")
def _(tmp):
    C = certs()
    junk = tmp / "junk.pem"
    junk.write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    cases = [
        ("missing cert", tmp / "nope.crt", C["a"][1], r"certificate .*nope\.crt: No such file"),
        ("missing key", C["a"][0], tmp / "nope.key", r"key .*nope\.key: No such file"),
        ("a directory", tmp, C["a"][1], r"certificate .* does not load"),
        ("garbage cert", junk, C["a"][1], r"certificate .*junk\.pem does not load"),
        ("garbage key", C["a"][0], junk, r"key .*junk\.pem does not load"),
        ("key and cert swapped", C["a"][1], C["a"][0], r"certificate .*a\.key does not load"),
        ("mismatched", C["a"][0], C["b"][1], r"key .*b\.key does not match certificate .*a\.crt"),
    ]
    if os.geteuid() != 0:  # root reads a mode 000 file anyway
        unreadable = tmp / "unreadable.key"
        shutil.copyfile(C["a"][1], unreadable)
        unreadable.chmod(0)
        cases.append(("unreadable key", C["a"][0], unreadable, r"Permission denied"))
    for what, cert, key, want in cases:
        data = tmp / "data"
        r = run_chorus(["serve", "--data", data, "--listen", "127.0.0.1:0", "--tls-cert", cert,
                        "--tls-key", key, "--access-log", tmp / "access.log"])
        check_eq(r.rc, 1, f"{what}: exit status", r)
        check(re.search(r"chorus: serve: TLS: " + want, r.err), f"{what}: the message", r)
        check_eq(r.err.count("\n"), 1, f"{what}: one line", r)
        check(not data.exists(), f"{what}: the data directory was made", r)
        check(not (tmp / "access.log").exists(), f"{what}: the access log was made", r)
        for kf in (C["a"][1], C["b"][1]):
            for ln in key_material(kf):
                check(ln not in r.err + r.out, f"{what}: key material in the message", r)


if __name__ == "__main__":
    main()
