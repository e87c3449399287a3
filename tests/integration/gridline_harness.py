"""Test harness for gridlined: start the real daemon, talk to it over MDP.

Written only from shared/docs/protocol.md (the wire contract), as an independent
client would be:

- requests go to a ZeroMQ ROUTER; a DEALER sends ["", "MDPC01", service, body],
  replies come back as ["", "MDPC01", service, body];
- a body is one MessagePack map; a pipelining client sets `rid` and gets it back;
- `mmi.service`: the body is a service name as a plain string frame, the reply
  body is "200" or "404".

The daemon runs on a fresh temporary data folder, on a free TCP port on
127.0.0.1; its stderr goes to a file in the temporary folder and is shown when a
test fails (see conftest.py).
"""

import itertools
import os
import signal
import socket
import subprocess
import tempfile
import time
import shutil

import msgpack
import zmq

MDPC = b"MDPC01"
READY_TIMEOUT = 10.0
STOP_TIMEOUT = 15.0
DEFAULT_TIMEOUT = 5.0


def build_dir():
    b = os.environ.get("GRIDLINE_BUILD")
    if not b:
        here = os.path.dirname(os.path.abspath(__file__))
        b = os.path.normpath(os.path.join(here, "..", "..", "build"))
    return b


def daemon_binary():
    return os.path.join(build_dir(), "gridlined")


def free_port():
    """A TCP port that was free a moment ago (bind port 0, read it, close)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def pack(obj):
    return msgpack.packb(obj, use_bin_type=True)


def unpack(data):
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


class ProtocolFailure(AssertionError):
    pass


class Reply:
    """One reply as it came off the wire."""

    def __init__(self, frames):
        self.frames = frames
        self.body = None
        self.decode_error = None
        self.well_formed = (len(frames) == 4 and frames[0] == b"" and frames[1] == MDPC)
        self.service = frames[2].decode("utf-8", "replace") if len(frames) >= 3 else None
        if len(frames) >= 4:
            try:
                self.body = unpack(frames[3])
            except Exception as e:  # noqa: BLE001 - we record any decode failure
                self.decode_error = repr(e)

    @property
    def raw_body(self):
        return self.frames[3] if len(self.frames) >= 4 else None

    def is_map(self):
        return isinstance(self.body, dict)

    @property
    def ok(self):
        return self.is_map() and self.body.get("ok") is True

    @property
    def error_code(self):
        if self.is_map() and isinstance(self.body.get("error"), dict):
            return self.body["error"].get("code")
        return None

    @property
    def error_field(self):
        if self.is_map() and isinstance(self.body.get("error"), dict):
            return self.body["error"].get("field")
        return None

    @property
    def rid(self):
        return self.body.get("rid") if self.is_map() else None

    def describe(self):
        fr = [f[:200] for f in self.frames]
        return f"frames={fr!r} body={self.body!r}" + (
            f" decode_error={self.decode_error}" if self.decode_error else "")

    def __repr__(self):
        return f"Reply({self.describe()})"


class Client:
    """One DEALER connected to the daemon's request endpoint."""

    _ctx = None

    @classmethod
    def context(cls):
        if cls._ctx is None:
            cls._ctx = zmq.Context.instance()
        return cls._ctx

    def __init__(self, endpoint, timeout=DEFAULT_TIMEOUT):
        self.endpoint = endpoint
        self.timeout = timeout
        self.sock = self.context().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVHWM, 0)
        self.sock.setsockopt(zmq.SNDHWM, 0)
        self.sock.connect(endpoint)
        self._rids = itertools.count(1)
        self.stash = []  # replies received while waiting for another rid

    def close(self):
        if self.sock is not None:
            self.sock.close(0)
            self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- raw frames -------------------------------------------------------
    def send_frames(self, frames):
        self.sock.send_multipart([f if isinstance(f, bytes) else f.encode() for f in frames])

    def recv_frames(self, timeout=None):
        """The next message's frames, or None after `timeout` seconds."""
        t = self.timeout if timeout is None else timeout
        if self.sock.poll(int(t * 1000), zmq.POLLIN):
            return self.sock.recv_multipart()
        return None

    def recv_reply(self, timeout=None):
        if self.stash:
            return self.stash.pop(0)
        fr = self.recv_frames(timeout)
        return Reply(fr) if fr is not None else None

    def expect_silence(self, timeout=0.15):
        """Fail if anything arrives within `timeout` seconds."""
        extra = self.recv_reply(timeout)
        if extra is not None:
            raise ProtocolFailure(f"unexpected extra reply: {extra.describe()}")

    # -- requests ---------------------------------------------------------
    def next_rid(self):
        return next(self._rids)

    def send(self, service, body):
        """Send one request; `body` is a dict/obj (packed) or bytes (sent as is)."""
        payload = body if isinstance(body, bytes) else pack(body)
        self.send_frames([b"", MDPC, service.encode(), payload])

    def call(self, service, body=None, timeout=None):
        """One request, one reply, nothing else in flight. Returns a Reply."""
        self.send(service, {} if body is None else body)
        r = self.recv_reply(timeout)
        if r is None:
            raise ProtocolFailure(
                f"no reply to {service} {str(body)[:300]} within "
                f"{self.timeout if timeout is None else timeout}s")
        return r

    def ok(self, service, body=None, timeout=None):
        """call() and assert the reply is a well-formed success; returns the body."""
        r = self.call(service, body, timeout)
        assert r.well_formed, f"{service}: badly framed reply {r.describe()}"
        assert r.ok, f"{service} {str(body)[:500]} -> {r.describe()}"
        return r.body

    def call_rid(self, service, body, rid=None, timeout=None):
        """Send with a rid and wait for the reply carrying that rid."""
        rid = self.next_rid() if rid is None else rid
        b = dict(body)
        b["rid"] = rid
        self.send(service, b)
        return self.wait_rid(rid, timeout)

    def wait_rid(self, rid, timeout=None):
        t = self.timeout if timeout is None else timeout
        for i, r in enumerate(self.stash):
            if r.rid == rid:
                return self.stash.pop(i)
        deadline = time.monotonic() + t
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProtocolFailure(f"no reply with rid {rid!r} within {t}s; "
                                      f"stashed: {self.stash[:5]!r}")
            fr = self.recv_frames(left)
            if fr is None:
                continue
            r = Reply(fr)
            if r.rid == rid:
                return r
            self.stash.append(r)

    def pipeline(self, requests, window=64, timeout=None):
        """Send (service, body) pairs with rids, at most `window` in flight;
        return the replies in request order. Fails on a missing or unmatched reply."""
        t = self.timeout if timeout is None else timeout
        replies = [None] * len(requests)
        base = self.next_rid() * 1_000_000
        inflight = {}
        nxt = 0
        deadline = time.monotonic() + t + len(requests) * 0.01
        while nxt < len(requests) or inflight:
            while nxt < len(requests) and len(inflight) < window:
                service, body = requests[nxt]
                rid = base + nxt
                b = dict(body)
                b["rid"] = rid
                self.send(service, b)
                inflight[rid] = nxt
                nxt += 1
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProtocolFailure(f"pipeline: {len(inflight)} replies missing "
                                      f"(rids {sorted(inflight)[:10]}...)")
            fr = self.recv_frames(min(left, 1.0))
            if fr is None:
                continue
            r = Reply(fr)
            if r.rid not in inflight:
                raise ProtocolFailure(f"pipeline: reply with unknown rid: {r.describe()}")
            replies[inflight.pop(r.rid)] = r
        return replies

    def mmi(self, name, timeout=None):
        """mmi.service: returns (Reply, body string)."""
        self.send_frames([b"", MDPC, b"mmi.service", name.encode()])
        r = self.recv_reply(timeout)
        if r is None:
            raise ProtocolFailure(f"no reply to mmi.service {name!r}")
        body = r.frames[3].decode("utf-8", "replace") if len(r.frames) >= 4 else None
        return r, body


_help_cache = {}


def _has_option(binary, option):
    """Whether `gridlined --help` lists `option`."""
    if binary not in _help_cache:
        try:
            out = subprocess.run([binary, "--help"], capture_output=True, timeout=5)
            _help_cache[binary] = (out.stdout + out.stderr).decode("utf-8", "replace")
        except (OSError, subprocess.TimeoutExpired):
            _help_cache[binary] = ""
    return option in _help_cache[binary]


class Daemon:
    """The real gridlined on a temporary data folder."""

    def __init__(self, workdir=None, extra_args=(), log_level="info"):
        self.binary = daemon_binary()
        self._own_tmp = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix="gridline-it-")
        self.data = os.path.join(self.workdir, "data")
        os.makedirs(self.data, exist_ok=True)
        self.port = free_port()
        self.endpoint = f"tcp://127.0.0.1:{self.port}"
        self.extra_args = list(extra_args)
        self.tap_endpoint = None
        self.log_level = log_level
        self.proc = None
        self.starts = 0
        self.stderr_path = os.path.join(self.workdir, "gridlined.stderr")
        self._stderr_file = None
        self.clients = []

    # -- life cycle -------------------------------------------------------
    def command(self):
        cmd = [self.binary, "--data", self.data, "--endpoint", self.endpoint,
               "--log-level", self.log_level]
        if _has_option(self.binary, "--tap"):
            # the live tap (PUB, default :7311) on a port of its own, so that
            # several daemons (tests run in parallel) do not collide
            if self.tap_endpoint is None:
                self.tap_endpoint = f"tcp://127.0.0.1:{free_port()}"
            cmd += ["--tap", self.tap_endpoint]
        return cmd + self.extra_args

    def start(self):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        if not os.access(self.binary, os.X_OK):
            raise ProtocolFailure(f"no daemon binary at {self.binary} (set GRIDLINE_BUILD)")
        self.starts += 1
        self._stderr_file = open(self.stderr_path, "ab")
        self._stderr_file.write(
            f"\n===== start #{self.starts}: {' '.join(self.command())}\n".encode())
        self._stderr_file.flush()
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                     stdout=self._stderr_file, stderr=self._stderr_file)
        self.wait_ready()
        return self

    def wait_ready(self, timeout=READY_TIMEOUT):
        """Poll mmi.service until the daemon answers 200 for case.create."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                raise ProtocolFailure(f"gridlined exited with {rc} while starting\n"
                                      f"{self.stderr_tail()}")
            c = Client(self.endpoint, timeout=0.25)
            try:
                c.send_frames([b"", MDPC, b"mmi.service", b"case.create"])
                fr = c.recv_frames(0.25)
                if fr is not None:
                    last = fr
                    if len(fr) >= 4 and fr[3] == b"200":
                        return
            finally:
                c.close()
        raise ProtocolFailure(f"gridlined not ready after {timeout}s "
                              f"(last mmi reply {last!r})\n{self.stderr_tail()}")

    def stop(self, timeout=STOP_TIMEOUT, expect_rc=0):
        """SIGTERM, wait, assert the exit code."""
        self._close_clients()
        if self.proc is None or self.proc.poll() is not None:
            rc = None if self.proc is None else self.proc.returncode
        else:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise ProtocolFailure(f"gridlined did not stop within {timeout}s of SIGTERM\n"
                                      f"{self.stderr_tail()}")
        self._close_stderr()
        if expect_rc is not None and rc is not None:
            assert rc == expect_rc, (f"gridlined exited with {rc} after SIGTERM "
                                     f"(expected {expect_rc})\n{self.stderr_tail()}")
        return rc

    def kill9(self):
        self._close_clients()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self._close_stderr()

    def restart(self):
        """Start again on the same data folder and the same endpoint."""
        if self.proc is not None and self.proc.poll() is None:
            self.stop()
        return self.start()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def cleanup(self):
        if self.alive():
            self.kill9()
        self._close_clients()
        self._close_stderr()
        if self._own_tmp and not os.environ.get("GRIDLINE_KEEP_TMP"):
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _close_stderr(self):
        if self._stderr_file is not None:
            self._stderr_file.close()
            self._stderr_file = None

    def _close_clients(self):
        for c in self.clients:
            c.close()
        self.clients = []

    # -- helpers ----------------------------------------------------------
    def client(self, timeout=DEFAULT_TIMEOUT):
        c = Client(self.endpoint, timeout=timeout)
        self.clients.append(c)
        return c

    @property
    def pid(self):
        return self.proc.pid

    def rss_kb(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stderr_tail(self, lines=60):
        t = self.stderr_text().splitlines()
        return "----- gridlined stderr (last %d lines of %s) -----\n%s" % (
            min(lines, len(t)), self.stderr_path, "\n".join(t[-lines:]))


# -- the contract's vocabulary ---------------------------------------------

CHANNELS = ["hotline", "window", "grid", "web", "app", "transfer"]
URGENCIES = ["emergency", "urgent", "normal"]
STATES = ["registered", "dispatched", "accepted", "resolved", "closed",
          "returned", "merged", "withdrawn"]
ERROR_CODES = ["bad_request", "invalid_argument", "unknown_service", "not_found",
               "conflict", "forbidden", "unauthenticated", "overloaded",
               "unavailable", "internal"]


class Catalog:
    """The parts of catalog.get the tests need, with consistent place paths."""

    def __init__(self, body):
        self.body = body
        self.categories = [c["code"] for c in body["categories"]]
        self.places = body["places"]
        self.districts = [d["code"] for d in self.places]
        # every (district, street, community, grid) path; None where a level is empty
        self.paths = []
        for d in self.places:
            for s in d.get("streets") or []:
                comms = s.get("communities") or []
                if not comms:
                    self.paths.append((d["code"], s["code"], None, None))
                for c in comms:
                    grids = c.get("grids") or []
                    if not grids:
                        self.paths.append((d["code"], s["code"], c["code"], None))
                    for g in grids:
                        self.paths.append((d["code"], s["code"], c["code"], g["code"]))

    def full_paths(self):
        return [p for p in self.paths if p[3] is not None]

    def streets_of(self, district):
        for d in self.places:
            if d["code"] == district:
                return [s["code"] for s in d.get("streets") or []]
        return []


def fetch_catalog(client):
    body = client.ok("catalog.get", {})
    return Catalog(body)


_req_counter = itertools.count(1)


def unique_request_id(prefix="req"):
    return f"{prefix}-{os.getpid()}-{time.time_ns()}-{next(_req_counter)}"


def case_body(cat, request_id=None, **over):
    """A valid case.create body on the default city."""
    d, s, c, g = cat.full_paths()[0]
    body = {
        "request_id": unique_request_id() if request_id is None else request_id,
        "channel": "hotline",
        "category": cat.categories[0],
        "urgency": "normal",
        "title": "Street light out",
        "description": "The street light in front of building 3 has been out for a week.",
        "location": {"district": d, "street": s, "community": c, "grid": g,
                     "address": "Building 3"},
        "reporter": {"name": "Li Wei", "phone": "13800138000"},
    }
    body.update(over)
    return body


def list_all(client, flt=None, limit=50, max_pages=100000):
    """Every case in case.list for `flt`, following `next`; asserts no duplicates."""
    out = []
    seen = set()
    after = None
    pages = 0
    while True:
        req = {"limit": limit}
        if flt:
            req["filter"] = flt
        if after is not None:
            req["after"] = after
        body = client.ok("case.list", req)
        pages += 1
        assert pages <= max_pages, "case.list: too many pages"
        cases = body["cases"]
        assert isinstance(cases, list), f"case.list: cases is not a list: {body!r}"
        assert len(cases) <= limit, f"case.list: {len(cases)} cases for limit {limit}"
        for c in cases:
            assert c["id"] not in seen, f"case.list: id {c['id']} on two pages (filter {flt})"
            seen.add(c["id"])
            out.append(c)
        nxt = body.get("next", "<missing>")
        assert nxt != "<missing>", f"case.list reply has no 'next' key: {body!r}"
        if nxt is None:
            return out
        assert cases, f"case.list: empty page with a non-nil next {nxt!r}"
        after = nxt


def phone_matches(sent, got):
    """The phone as sent, or masked ('the phone masked for callers without the
    right to see it'): same length, masked characters only where it differs."""
    if got == sent:
        return True
    if not isinstance(got, str) or len(got) != len(sent):
        return False
    return all(a == b or b in "*xX#" for a, b in zip(sent, got))
