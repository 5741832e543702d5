"""haproxy for the system tests: deploy/haproxy/haproxy.cfg.in rendered with
loopback addresses (the README's sed, placeholders checked both ways),
checked with `haproxy -c`, run in the foreground (-db, as systemd's -Ws
does), its state read from its admin socket.

    hap = Haproxy(directory, [node1_port, node2_port, node3_port])
    hap.port                          # where clients connect
    hap.servers()                     # {"node1": "UP", ...}
    hap.wait_states({"node3": "DOWN"}, 5)   # seconds it took
    hap.streams_served()              # {"node1": requests sent to it, ...}
    hap.close()
"""

import os
import pathlib
import shutil
import signal
import socket
import subprocess

from chorus_test import REPO, check, render, wait_for

HAPROXY = shutil.which("haproxy", path="/usr/sbin:/usr/bin:/sbin:/bin")
HAPROXY_IN = REPO / "deploy" / "haproxy" / "haproxy.cfg.in"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Haproxy:
    def __init__(self, directory, node_ports):
        self.dir = pathlib.Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port, self.stats_port = free_port(), free_port()
        self.sock = self.dir / "admin.sock"
        vals = {"BIND": f"127.0.0.1:{self.port}", "STATS_SOCKET": str(self.sock),
                "STATS_BIND": f"127.0.0.1:{self.stats_port}"}
        for i, p in enumerate(node_ports, 1):
            vals[f"NODE{i}"] = f"127.0.0.1:{p}"
        self.cfg = self.dir / "haproxy.cfg"
        self.cfg.write_text(render(HAPROXY_IN, vals))
        r = subprocess.run([HAPROXY, "-c", "-f", self.cfg], capture_output=True, text=True,
                           stdin=subprocess.DEVNULL)
        check(r.returncode == 0, f"haproxy -c: {r.stdout} {r.stderr}")
        self.logpath = self.dir / "haproxy.log"
        self.log = open(self.logpath, "wb")
        self.proc = subprocess.Popen([HAPROXY, "-db", "-f", str(self.cfg)],
                                     stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def command(self, cmd):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.connect(str(self.sock))
            s.sendall(cmd.encode() + b"\n")
            out = b""
            while True:
                d = s.recv(65536)
                if not d:
                    return out.decode()
                out += d
        finally:
            s.close()

    def servers(self):
        """{name: "UP"/"DOWN"/...} from `show servers state`: srv_op_state 2
        is running (UP), 0 stopped (DOWN)."""
        try:
            out = self.command("show servers state chorus_nodes")
        except OSError:
            return {}
        lines = out.splitlines()
        hdr = next((ln for ln in lines if ln.startswith("# be_id")), None)
        if not hdr:
            return {}
        cols = hdr[2:].split()
        res = {}
        for ln in lines:
            if ln and not ln.startswith("#") and len(ln.split()) == len(cols):
                f = dict(zip(cols, ln.split()))
                res[f["srv_name"]] = {"2": "UP", "0": "DOWN", "1": "STARTING",
                                      "3": "STOPPING"}.get(f["srv_op_state"], f["srv_op_state"])
        return res

    def stat(self):
        """{svname: {column: value}} of backend chorus_nodes (`show stat`);
        {} while the socket does not answer."""
        try:
            lines = [ln for ln in self.command("show stat").splitlines() if ln]
        except OSError:
            return {}
        cols = lines[0].lstrip("# ").split(",")
        res = {}
        for ln in lines[1:]:
            f = dict(zip(cols, ln.split(",")))
            if f.get("pxname") == "chorus_nodes":
                res[f["svname"]] = f
        return res

    def status(self):
        """{server: its check status word} ("UP", "DOWN", "MAINT"...)."""
        return {k: v["status"].split()[0] for k, v in self.stat().items() if k.startswith("node")}

    def streams_served(self):
        """{server: requests it was sent} (stot)."""
        return {k: int(v["stot"]) for k, v in self.stat().items() if k.startswith("node")}

    def wait_states(self, want, timeout):
        """Seconds until haproxy's servers are in the states of want."""
        return wait_for(f"haproxy: servers {want}",
                        lambda: all(self.servers().get(k) == v for k, v in want.items()),
                        timeout, step=0.05,
                        context=lambda: f"servers {self.servers()}\n" +
                        self.logpath.read_text(errors="replace")[-3000:])[1]

    def close(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
