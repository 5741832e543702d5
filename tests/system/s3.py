#!/usr/bin/python3
"""An S3 endpoint for chorus tests that checks every signature.

    from s3 import S3Server
    s3 = S3Server.shared()          # started once per test process, ended at exit
    spec = s3.spec("prefix")        # s3://BUCKET/prefix?endpoint=http://127.0.0.1:PORT&region=...
    env = s3.env()                  # AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY for chorus
    s3.list("prefix/")              # [{"Key", "Size", "ETag", "LastModified"}], through awscli

Two processes, both detached (their own session, output to files) and
ended by pid:

- s3rver (npm, pinned in scripts/package.json; scripts/deps.sh installs it)
  stores the objects on disk. It does not check SigV4 signatures, so
- in front of it runs a proxy (this file, run as a script): it recomputes
  the AWS Signature Version 4 of each request from its Authorization
  header and the known secret, refuses a mismatch with S3's own XML error
  (403 SignatureDoesNotMatch, InvalidAccessKeyId...), checks the body
  against x-amz-content-sha256, and forwards what passes to s3rver.

Tests talk to the proxy only. Its behaviour can be switched while it runs
(set_mode: "pass", "refuse" answers every request 403, "stall" reads the
request and never answers), it can be killed and started again on the same
port (kill_proxy / start_proxy), and it logs every request (requests()).

Always 127.0.0.1, never "localhost". awscli is Debian's /usr/bin/aws.
"""

import atexit
import datetime
import hashlib
import hmac
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

REPO = pathlib.Path(__file__).resolve().parents[2]
S3RVER = REPO / "build" / "npm" / "node_modules" / ".bin" / "s3rver"
AWS = "/usr/bin/aws"
PYTHON = "/usr/bin/python3"


# ------------------------------------------------------------------ SigV4

def _uri_encode(s, keep_slash):
    return urllib.parse.quote(s, safe="-_.~" + ("/" if keep_slash else ""))


def canonical_uri(raw_path):
    """S3's canonical URI: the path as sent, each segment decoded and
    encoded again (S3 does not normalise '.' or '//')."""
    path = raw_path.split("?", 1)[0] or "/"
    return "/".join(_uri_encode(urllib.parse.unquote(seg), False) for seg in path.split("/"))


def canonical_query(raw_path):
    if "?" not in raw_path:
        return ""
    pairs = []
    for part in raw_path.split("?", 1)[1].split("&"):
        if not part:
            continue
        k, _, v = part.partition("=")
        pairs.append((_uri_encode(urllib.parse.unquote_plus(k), False),
                      _uri_encode(urllib.parse.unquote_plus(v), False)))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def _hmac(key, msg):
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def signing_key(secret, date, region, service="s3"):
    k = _hmac(("AWS4" + secret).encode("utf-8"), date)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, "aws4_request")


_AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/,\s]+)/(\d{8})/([^/,\s]+)/([^/,\s]+)/"
                   r"aws4_request,\s*SignedHeaders=([a-z0-9;\-]+),\s*Signature=([0-9a-f]{64})$")


class Refusal(Exception):
    def __init__(self, status, code, message):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


def verify(method, raw_path, headers, body, secrets, region, now=None):
    """Checks one request's SigV4 header signature as S3 does; raises
    Refusal. headers: an email.message.Message (http.server's)."""
    auth = headers.get("Authorization")
    if not auth:
        raise Refusal(403, "AccessDenied", "Anonymous access is refused")
    m = _AUTH.match(auth.strip())
    if not m:
        raise Refusal(400, "AuthorizationHeaderMalformed", "The authorization header is malformed")
    key_id, date, cred_region, service, signed, signature = m.groups()
    if key_id not in secrets:
        raise Refusal(403, "InvalidAccessKeyId",
                      "The AWS Access Key Id you provided does not exist in our records.")
    if service != "s3" or cred_region != region:
        raise Refusal(400, "AuthorizationHeaderMalformed",
                      f"the credential scope is {cred_region}/{service}, expected {region}/s3")
    payload = headers.get("x-amz-content-sha256")
    if payload is None:
        raise Refusal(400, "InvalidRequest",
                      "Missing required header for this request: x-amz-content-sha256")
    amz_date = headers.get("x-amz-date", "")
    try:
        t = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
            tzinfo=datetime.timezone.utc)
    except ValueError:
        raise Refusal(403, "AccessDenied", "x-amz-date is missing or malformed")
    now = now or datetime.datetime.now(datetime.timezone.utc)
    if abs((now - t).total_seconds()) > 900 or not amz_date.startswith(date):
        raise Refusal(403, "RequestTimeTooSkewed", "The difference between the request time"
                      " and the current time is too large.")
    names = signed.split(";")
    if names != sorted(names) or "host" not in names:
        raise Refusal(403, "SignatureDoesNotMatch", "SignedHeaders are not sorted or lack host")
    # S3 wants every x-amz-* header signed.
    for h in headers.keys():
        if h.lower().startswith("x-amz-") and h.lower() not in names:
            raise Refusal(403, "AccessDenied", f"There were headers present in the request"
                          f" which were not signed: {h.lower()}")
    lines = []
    for n in names:
        vals = headers.get_all(n)
        if vals is None:
            raise Refusal(403, "SignatureDoesNotMatch", f"signed header {n} is missing")
        lines.append(n + ":" + ",".join(" ".join(v.split()) for v in vals) + "\n")
    creq = "\n".join([method, canonical_uri(raw_path), canonical_query(raw_path),
                      "".join(lines), signed, payload])
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, f"{date}/{region}/s3/aws4_request",
                     hashlib.sha256(creq.encode("utf-8")).hexdigest()])
    want = hmac.new(signing_key(secrets[key_id], date, region), sts.encode("utf-8"),
                    hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, signature):
        raise Refusal(403, "SignatureDoesNotMatch", "The request signature we calculated does"
                      " not match the signature you provided. Check your key and signing method.")
    if re.fullmatch(r"[0-9a-f]{64}", payload):
        if hashlib.sha256(body).hexdigest() != payload:
            raise Refusal(400, "XAmzContentSHA256Mismatch", "The provided"
                          " 'x-amz-content-sha256' header does not match what was computed.")
    elif payload != "UNSIGNED-PAYLOAD" and not payload.startswith("STREAMING-"):
        raise Refusal(400, "InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD,"
                      " STREAMING-... or a SHA-256 hex digest")


def error_xml(code, message, resource=""):
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{message}</Message><Resource>{resource}</Resource>"
            f"<RequestId>chorus-test-proxy</RequestId></Error>").encode("utf-8")


# ------------------------------------------------------------------ the proxy (a process)

_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "trailer",
        "upgrade", "expect", "content-length", "date", "server"}


def proxy_main(argv):
    import argparse
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    import http.client

    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--upstream", type=int, required=True)
    ap.add_argument("--state", required=True)
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--key", action="append", default=[], help="ID:SECRET")
    a = ap.parse_args(argv)
    secrets = dict(k.split(":", 1) for k in a.key)
    state = pathlib.Path(a.state)
    log_lock = threading.Lock()
    inflight = [0]

    def mode():
        try:
            return (state / "mode").read_text().strip() or "pass"
        except OSError:
            return "pass"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, and 100-continue for PUTs

        def log_message(self, fmt, *args):
            pass

        def _record(self, status, code, n):
            with log_lock:
                with open(state / "requests.log", "a") as f:
                    f.write(json.dumps({"method": self.command, "path": self.path,
                                        "status": status, "code": code, "inflight": n,
                                        "peer": self.client_address[1],
                                        "token": self.headers.get("x-amz-security-token")})
                            + "\n")

        def _body(self):
            n = int(self.headers.get("Content-Length") or 0)
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                out = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0], 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return out
                    out += self.rfile.read(size)
                    self.rfile.readline()
            return self.rfile.read(n) if n else b""

        def _send(self, status, headers, body):
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _refuse(self, r, n):
            body = error_xml(r.code, r.message, self.path.split("?")[0])
            self._send(r.status, [("Content-Type", "application/xml"),
                                  ("x-amz-request-id", "chorus-test-proxy")], body)
            self._record(r.status, r.code, n)

        def _handle(self):
            with log_lock:
                inflight[0] += 1
                n = inflight[0]
            try:
                body = self._body()
                m = mode()
                if m == "stall":
                    # Never answer: hold the connection until the mode changes.
                    self._record(0, "stalled", n)
                    deadline = time.monotonic() + 120
                    while mode() == "stall" and time.monotonic() < deadline:
                        time.sleep(0.05)
                    self.close_connection = True
                    return
                if m == "refuse":
                    return self._refuse(Refusal(403, "InvalidAccessKeyId", "refused by the"
                                                " test proxy"), n)
                try:
                    verify(self.command, self.path, self.headers, body, secrets, a.region)
                except Refusal as r:
                    return self._refuse(r, n)
                self._forward(body, n)
            finally:
                with log_lock:
                    inflight[0] -= 1

        def _forward(self, body, n):
            up = http.client.HTTPConnection("127.0.0.1", a.upstream, timeout=60)
            try:
                hdrs = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                hdrs["Content-Length"] = str(len(body))
                up.request(self.command, self.path, body=body if body else None, headers=hdrs)
                r = up.getresponse()
                data = r.read()
                out = [(k, v) for k, v in r.getheaders() if k.lower() not in _HOP]
                if self.command == "HEAD":
                    # No body to count: relay the length s3rver announced.
                    cl = r.getheader("Content-Length", "0")
                    self.send_response(r.status)
                    for k, v in out:
                        self.send_header(k, v)
                    self.send_header("Content-Length", cl)
                    self.end_headers()
                else:
                    self._send(r.status, out, data)
                code = ""
                mm = re.search(rb"<Code>([A-Za-z0-9.]+)</Code>", data[:4096]) if r.status >= 300 \
                    else None
                if mm:
                    code = mm.group(1).decode()
                self._record(r.status, code, n)
            finally:
                up.close()

        do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = _handle

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True
        request_queue_size = 128

    srv = Server(("127.0.0.1", a.port), Handler)
    (state / "proxy.ready").write_text(str(os.getpid()))
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    srv.serve_forever()


# ------------------------------------------------------------------ the harness

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _wait_port(port, proc, what, logfile, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: "
                               f"{pathlib.Path(logfile).read_text(errors='replace')[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} not listening on 127.0.0.1:{port} after {timeout}s")


def _stop(proc):
    if proc is None or proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


class S3Server:
    """s3rver with a verifying proxy in front; see the module's doc."""

    _shared = None

    @classmethod
    def shared(cls):
        """One server for the whole test process, ended at exit."""
        if cls._shared is None:
            cls._shared = cls()
            atexit.register(cls._shared.close)
        return cls._shared

    def __init__(self, bucket="chorus-test", key="S3RVER", secret="S3RVER",
                 region="us-east-1"):
        self.bucket, self.key, self.secret, self.region = bucket, key, secret, region
        self.root = pathlib.Path(tempfile.mkdtemp(prefix="chorus-s3-"))
        self.s3rver = self.proxy = None
        if not os.access(S3RVER, os.X_OK):
            subprocess.run(["sh", str(REPO / "scripts" / "deps.sh"), "test"], check=True,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        try:
            self._start_s3rver()
            self.port = free_port()
            self.start_proxy()
        except BaseException:
            self.close()
            raise

    def _detached(self, args, log, env=None):
        with open(log, "ab") as out:
            return subprocess.Popen([str(a) for a in args], stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True)

    def _start_s3rver(self):
        (self.root / "data").mkdir()
        self.upstream = free_port()
        env = dict(os.environ)
        node_dirs = [os.path.dirname(p) for p in (shutil.which("node"),) if p]
        env["PATH"] = ":".join(node_dirs + [env.get("PATH", "/usr/bin:/bin")])
        self.s3rver = self._detached(
            [S3RVER, "-d", self.root / "data", "-a", "127.0.0.1", "-p", self.upstream,
             "--configure-bucket", self.bucket], self.root / "s3rver.log", env)
        _wait_port(self.upstream, self.s3rver, "s3rver", self.root / "s3rver.log")

    def start_proxy(self):
        """Starts the verifying proxy (again) on self.port."""
        if self.proxy is not None and self.proxy.poll() is None:
            return
        state = self.root / "proxy"
        state.mkdir(exist_ok=True)
        self.proxy = self._detached(
            [PYTHON, "-u", __file__, "proxy", "--port", self.port, "--upstream", self.upstream,
             "--state", state, "--region", self.region, "--key", f"{self.key}:{self.secret}"],
            self.root / "proxy.log")
        _wait_port(self.port, self.proxy, "the S3 proxy", self.root / "proxy.log")

    def kill_proxy(self):
        """SIGKILL to the proxy: the endpoint refuses connections."""
        if self.proxy is not None and self.proxy.poll() is None:
            os.kill(self.proxy.pid, signal.SIGKILL)
            self.proxy.wait()

    def set_mode(self, mode):
        """"pass" (verify and forward), "refuse" (403 to everything) or
        "stall" (read requests, never answer)."""
        assert mode in ("pass", "refuse", "stall")
        p = self.root / "proxy" / "mode"
        tmp = p.with_suffix(".tmp")
        tmp.write_text(mode)
        os.replace(tmp, p)

    def close(self):
        _stop(self.proxy)
        _stop(self.s3rver)
        shutil.rmtree(self.root, ignore_errors=True)

    # -------------------------------------------------- addresses and credentials

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def spec(self, prefix="", **params):
        q = {"endpoint": self.endpoint, "region": self.region}
        q.update({k: str(v) for k, v in params.items()})
        path = f"/{prefix}" if prefix else ""
        return f"s3://{self.bucket}{path}?" + "&".join(f"{k}={v}" for k, v in q.items())

    def env(self, secret=None, key=None, token=None):
        """The AWS_* variables for chorus (other AWS_* settings removed)."""
        e = {k: None for k in os.environ if k.startswith("AWS_")}
        e.update({"AWS_ACCESS_KEY_ID": key or self.key,
                  "AWS_SECRET_ACCESS_KEY": secret or self.secret})
        if token:
            e["AWS_SESSION_TOKEN"] = token
        return e

    # -------------------------------------------------- what the proxy saw

    def requests(self):
        """Every request the proxy answered (or stalled), oldest first:
        dicts with method, path, status, code, inflight (requests being
        handled then, this one included) and peer (the client's port: one
        per connection), token (x-amz-security-token, or None)."""
        p = self.root / "proxy" / "requests.log"
        if not p.exists():
            return []
        return [json.loads(ln) for ln in p.read_text().splitlines() if ln.strip()]

    # -------------------------------------------------- awscli, as an independent client

    def aws(self, *args, secret=None, timeout=60):
        home = self.root / "awshome"
        home.mkdir(exist_ok=True)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("AWS_") and "proxy" not in k.lower()}
        env.update({"HOME": str(home), "AWS_ACCESS_KEY_ID": self.key,
                    "AWS_SECRET_ACCESS_KEY": secret or self.secret,
                    "AWS_DEFAULT_REGION": self.region, "AWS_CONFIG_FILE": str(home / "none"),
                    "AWS_SHARED_CREDENTIALS_FILE": str(home / "none"),
                    "AWS_EC2_METADATA_DISABLED": "true", "NO_PROXY": "127.0.0.1",
                    "no_proxy": "127.0.0.1"})
        return subprocess.run([AWS, "--endpoint-url", self.endpoint] + [str(a) for a in args],
                              env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout)

    def list(self, prefix=""):
        """Objects under prefix, through awscli: [{Key, Size, ETag, LastModified}]."""
        r = self.aws("s3api", "list-objects-v2", "--bucket", self.bucket, "--prefix", prefix,
                     "--output", "json")
        if r.returncode != 0:
            raise RuntimeError(f"aws s3api list-objects-v2 failed: {r.stderr.decode()}")
        out = r.stdout.decode().strip()
        return json.loads(out).get("Contents", []) if out else []

    def ls_recursive(self, prefix=""):
        """`aws s3 ls --recursive s3://BUCKET/PREFIX`: {key: size}."""
        r = self.aws("s3", "ls", "--recursive", f"s3://{self.bucket}/{prefix}")
        if r.returncode not in (0, 1):  # 1: nothing listed
            raise RuntimeError(f"aws s3 ls failed: {r.stderr.decode()}")
        out = {}
        for ln in r.stdout.decode().splitlines():
            parts = ln.split(None, 3)
            if len(parts) == 4:
                out[parts[3]] = int(parts[2])
        return out

    def get(self, key, dest):
        r = self.aws("s3", "cp", f"s3://{self.bucket}/{key}", dest)
        if r.returncode != 0:
            raise RuntimeError(f"aws s3 cp failed: {r.stderr.decode()}")
        return pathlib.Path(dest)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "proxy":
        proxy_main(sys.argv[2:])
    else:
        sys.exit("usage: s3.py proxy --port P --upstream P --state DIR --key ID:SECRET")
