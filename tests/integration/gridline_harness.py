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

import contextlib
import itertools
import os
import signal
import socket
import subprocess
import tempfile
import threading
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


def sanitized_build():
    """Whether GRIDLINE_BUILD was configured with -DGRIDLINE_SANITIZE=ON (CI's second
    run, several times slower): load tests scale down there."""
    cache = os.path.join(build_dir(), "CMakeCache.txt")
    try:
        with open(cache, encoding="utf-8", errors="replace") as f:
            return "GRIDLINE_SANITIZE:BOOL=ON" in f.read()
    except OSError:
        return False


def wait_until(pred, timeout, interval=0.05, what="condition"):
    """Polls pred() until it returns something true, which it returns; fails after
    `timeout` seconds naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def wait_dispatched(client, case_id, timeout=10.0):
    """Polls case.get until the case is `dispatched`; returns it."""
    def dispatched():
        case = client.ok("case.get", {"id": case_id})["case"]
        return case if case["state"] == "dispatched" else None
    return wait_until(dispatched, timeout, what=f"case {case_id} to be dispatched")


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

    def __init__(self, endpoint, timeout=DEFAULT_TIMEOUT, curve=None):
        """curve: (public, secret, server_public), Z85 bytes, for a daemon with keys."""
        self.endpoint = endpoint
        self.timeout = timeout
        self.sock = self.context().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        if curve is not None:
            self.sock.curve_publickey, self.sock.curve_secretkey, self.sock.curve_serverkey = curve
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
        # (public, secret, server_public) of an admin, when the daemon runs with --keys:
        # wait_ready and client() use it unless told otherwise
        self.curve = None
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
            c = Client(self.endpoint, timeout=0.25, curve=self.curve)
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
    def client(self, timeout=DEFAULT_TIMEOUT, curve=None):
        c = Client(self.endpoint, timeout=timeout, curve=curve or self.curve)
        self.clients.append(c)
        return c

    @property
    def pid(self):
        return self.proc.pid

    def rss_kb(self):
        return self.status_kb("VmRSS")

    def status_kb(self, field):
        """A kB field of /proc/PID/status: VmRSS, RssAnon (the heap and stacks, not the
        LMDB map, which is file-backed)."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
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
        # A daemon that died by a signal writes nothing about it: say so.
        rc = self.proc.poll() if self.proc is not None else None
        died = "" if rc is None or rc == 0 else f"\n----- gridlined has exited: {rc} -----"
        return "----- gridlined stderr (last %d lines of %s) -----\n%s%s" % (
            min(lines, len(t)), self.stderr_path, "\n".join(t[-lines:]), died)


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


def all_events(c):
    """Every event of the feed, in order, following `next`."""
    out, after = [], 0
    while True:
        b = c.ok("feed.pull", {"after": after, "limit": 1000})
        out += b["events"]
        if not b["events"] or b["next"] >= b["last"]:
            return out
        after = b["next"]


def phone_matches(sent, got):
    """The phone as sent, or masked ('the phone masked for callers without the
    right to see it'): same length, masked characters only where it differs."""
    if got == sent:
        return True
    if not isinstance(got, str) or len(got) != len(sent):
        return False
    return all(a == b or b in "*xX#" for a, b in zip(sent, got))


# -- processes: the daemon's workers -----------------------------------------

def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def _stat(pid):
    """(state, ppid) of a live process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    rest = s[s.rindex(")") + 2:].split()
    return rest[0], int(rest[1])


def pid_alive(pid):
    st = _stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def worker_children(pid, program="gridline-router"):
    """The pids of the `program` processes (gridline-router, gridline-escalator) whose
    parent is pid."""
    kids = set()
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{t}/children") as f:
                    kids.update(int(x) for x in f.read().split())
            except OSError:
                pass
    except OSError:
        return []
    return sorted(k for k in kids if program.encode() in _cmdline(k))


def workers_of_data_dir(data, program="gridline-router"):
    """Live `program` processes whose command line names this data folder: [(pid, ppid)]."""
    out = []
    needle = os.path.realpath(data).encode()
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        cl = _cmdline(int(e))
        if program.encode() in cl and needle in cl:
            st = _stat(int(e))
            if st is not None and st[0] not in ("Z", "X"):
                out.append((int(e), st[1]))
    return out


# -- floods --------------------------------------------------------------------

RETRYABLE = ("overloaded", "unavailable")


def flood(d, make_body, seconds, clients, window, at=None, drain=2.0):
    """case.create from `clients` DEALERs, `window` each in flight, for `seconds`.
    make_body(n) gives the n-th body. at: {second: fn} runs fn once when that much time
    has passed (in this thread). Fails on a refusal that is not retryable.
    Returns {request_id: case id} of the acknowledged creates."""
    ctx = zmq.Context.instance()
    socks = []
    for _ in range(clients):
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SNDHWM, 0)
        s.setsockopt(zmq.RCVHWM, 0)
        s.connect(d.endpoint)
        socks.append(s)
    poller = zmq.Poller()
    for s in socks:
        poller.register(s, zmq.POLLIN)
    pending = dict(at or {})
    acked, errors = {}, []
    inflight = [0] * clients
    counter = itertools.count()
    t0 = time.monotonic()
    try:
        while True:
            el = time.monotonic() - t0
            for when in sorted(pending):
                if el >= when:
                    pending.pop(when)()
            if el >= seconds:
                break
            for k, s in enumerate(socks):
                while inflight[k] < window:
                    n = next(counter)
                    b = make_body(n)
                    b["rid"] = b["request_id"]
                    s.send_multipart([b"", MDPC, b"case.create", pack(b)])
                    inflight[k] += 1
            for s, _ in poller.poll(50):
                k = socks.index(s)
                while True:
                    try:
                        fr = s.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    inflight[k] -= 1
                    body = unpack(fr[3])
                    if body.get("ok") is True:
                        acked[body["rid"]] = body["case"]["id"]
                    elif (body.get("error") or {}).get("code") not in RETRYABLE:
                        errors.append(body)
        # collect what is still on its way, briefly
        end = time.monotonic() + drain
        while sum(inflight) > 0 and time.monotonic() < end:
            for s, _ in poller.poll(100):
                k = socks.index(s)
                while True:
                    try:
                        fr = s.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    inflight[k] -= 1
                    body = unpack(fr[3])
                    if body.get("ok") is True:
                        acked[body["rid"]] = body["case"]["id"]
    finally:
        for s in socks:
            s.close(0)
    assert not errors, f"{len(errors)} create(s) refused, e.g. {errors[:3]!r}"
    return acked


# -- kill -9 mid-flood: nothing acknowledged lost, no request_id twice -----------
# (test_crash: the daemon alone; test_faults: with its workers)

CRASH_PREFIX = "crash test case "


def crash_body(cat, cycle, k, n, tag="crash"):
    """The n-th create of client k in kill cycle `cycle`. Its request_id is in its
    description (crash_rid_of reads it back from a stored case); its phone names the
    cycle (1370000CCCC), so that case.list by phone counts a cycle's cases."""
    rid = f"{tag}-c{cycle}-k{k}-{n:07d}"
    paths = cat.full_paths()
    d, s, c, g = paths[n % len(paths)]
    return {
        "request_id": rid,
        "rid": rid,
        "channel": ("grid", "hotline", "app", "web")[n % 4],
        "category": cat.categories[n % len(cat.categories)],
        "urgency": ("normal", "urgent", "emergency")[n % 3],
        "title": f"T {rid}",
        "description": CRASH_PREFIX + rid,
        "location": {"district": d, "street": s, "community": c, "grid": g},
        "reporter": {"name": f"Crash {k}", "phone": f"1370000{cycle:04d}"},
    }


def crash_rid_of(case):
    d = case.get("description") or ""
    return d[len(CRASH_PREFIX):] if d.startswith(CRASH_PREFIX) else None


def same_fields(body, case):
    """None when the stored case holds what body sent; else what differs."""
    for f in ("channel", "category", "urgency", "title", "description"):
        if case.get(f) != body[f]:
            return f"{f}: sent {body[f]!r}, stored {case.get(f)!r}"
    for f, v in body["location"].items():
        if case["location"].get(f) != v:
            return f"location.{f}: sent {v!r}, stored {case['location'].get(f)!r}"
    if not phone_matches(body["reporter"]["phone"], (case.get("reporter") or {}).get("phone")):
        return f"reporter: sent {body['reporter']!r}, stored {case.get('reporter')!r}"
    return None


def flood_and_kill(daemon, make_body, seconds, clients=4, window=32):
    """Flood case.create from `clients` DEALERs (`window` each in flight; make_body(k, n)
    gives client k's n-th body, with "rid" = request_id), kill -9 the daemon from
    another thread after `seconds`, at a moment the flood loop does not choose, and reap
    it. Returns (sent, acked, errors, retry): sent: request_id -> body; acked:
    request_id -> case of the ok reply; errors: refusals that are not retryable; retry:
    request_ids refused with a retryable code."""
    ctx = zmq.Context.instance()
    socks = []
    for _ in range(clients):
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SNDHWM, 0)
        s.setsockopt(zmq.RCVHWM, 0)
        s.connect(daemon.endpoint)
        socks.append(s)
    poller = zmq.Poller()
    for s in socks:
        poller.register(s, zmq.POLLIN)
    sent, acked, errors, retry = {}, {}, [], set()
    inflight = [0] * clients
    counters = [0] * clients
    index = {s: k for k, s in enumerate(socks)}

    def handle(frames):
        assert len(frames) == 4 and frames[0] == b"" and frames[1] == MDPC, frames[:3]
        body = unpack(frames[3])
        rid = body.get("rid")
        assert rid in sent, f"reply with a rid never sent: {body!r}"
        if body.get("ok") is True:
            assert rid not in acked, f"two replies for {rid}"
            acked[rid] = body["case"]
        else:
            code = (body.get("error") or {}).get("code")
            if code in RETRYABLE:
                retry.add(rid)
            else:
                errors.append((rid, body))

    killed = {}

    def kill():
        killed["alive"] = daemon.alive()
        if killed["alive"]:
            os.kill(daemon.pid, signal.SIGKILL)
        killed["at"] = time.monotonic()

    killer = threading.Timer(seconds, kill)
    killer.start()
    try:
        while "at" not in killed or time.monotonic() < killed["at"] + 0.3:
            for k, s in enumerate(socks):
                while inflight[k] < window:
                    b = make_body(k, counters[k])
                    try:
                        s.send_multipart([b"", MDPC, b"case.create", pack(b)], zmq.NOBLOCK)
                    except zmq.Again:
                        break  # no peer (the daemon is gone)
                    counters[k] += 1
                    sent[b["request_id"]] = b
                    inflight[k] += 1
            for s, _ in poller.poll(5):
                k = index[s]
                while True:
                    try:
                        fr = s.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    inflight[k] -= 1
                    handle(fr)
        killer.join()
        assert killed["alive"], "gridlined died during the flood\n" + daemon.stderr_tail()
        daemon.kill9()  # reap it
        # replies the daemon sent before it died are acknowledgements too
        time.sleep(0.1)
        for s in socks:
            while True:
                try:
                    fr = s.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                handle(fr)
    finally:
        killer.cancel()
        for s in socks:
            s.close(0)
    return sent, acked, errors, retry


class CrashLedger:
    """What a client knows across kill -9 cycles of one data folder, and the checks
    after each restart: every request_id ever sent, the case id acknowledged for each."""

    def __init__(self):
        self.bodies = {}     # request_id -> body, every one ever sent
        self.ids = {}        # request_id -> case id, every one acknowledged
        self.codes = {}      # case id -> code

    def check_cycle(self, c, cycle, sent, acked, rng):
        """After a restart (c: a client of the restarted daemon), for the cycle whose
        flood gave (sent, acked): the store holds every case once and nothing else,
        every acknowledged case with its id, code and fields; an acknowledged
        request_id replays to its case; an unacknowledged one gets the stored case
        (replayed) when the store has it, else a fresh one, and then replays. Returns
        (listed cases by id, how many unacknowledged were stored, how many fresh)."""
        self.bodies.update(sent)
        for rid, case in acked.items():
            assert case["id"] not in self.codes, \
                f"id {case['id']} acknowledged for {rid} and for another request_id"
            self.ids[rid] = case["id"]
            self.codes[case["id"]] = case["code"]
        unacked = [rid for rid in sent if rid not in acked]

        # 1. everything in the store, once: no request_id with two cases, no stranger
        listed = list_all(c, limit=500)
        by_id = {x["id"]: x for x in listed}
        per_rid = {}
        for x in listed:
            rid = crash_rid_of(x)
            assert rid in self.bodies, f"a case nobody sent: {x!r}"
            per_rid.setdefault(rid, []).append(x["id"])
        twice = {r: v for r, v in per_rid.items() if len(v) > 1}
        assert not twice, f"cycle {cycle}: request_ids with two cases: {list(twice.items())[:5]}"

        # 2. every acknowledged case is there, with its id and fields
        lost = [rid for rid, i in self.ids.items() if i not in by_id]
        assert not lost, (f"cycle {cycle}: {len(lost)} acknowledged cases lost after kill -9, "
                          f"e.g. {[(r, self.ids[r]) for r in lost[:5]]}")
        for rid, i in self.ids.items():
            assert crash_rid_of(by_id[i]) == rid, f"case {i} was acked for {rid}, holds {by_id[i]!r}"
            diff = same_fields(self.bodies[rid], by_id[i])
            assert diff is None, f"case {i} ({rid}): {diff}"
            assert by_id[i]["code"] == self.codes[i]
        committed_unacked = {rid for rid in unacked if rid in per_rid}

        # 3. case.get by id for this cycle's acknowledged cases
        got = c.pipeline([("case.get", {"id": acked[r]["id"]}) for r in acked],
                         window=128, timeout=60)
        for rid, r in zip(acked, got):
            assert r.ok, f"case.get {acked[rid]['id']} ({rid}) -> {r.describe()}"
            g = r.body["case"]
            a = acked[rid]
            assert (g["id"], g["code"], g["created_at"], g["description"]) == \
                (a["id"], a["code"], a["created_at"], a["description"]), (g, a)

        # 4. replaying acknowledged request_ids: replayed, same id (latest acks + a sample)
        order = list(acked)
        sample = order[-150:] + rng.sample(order, min(150, len(order)))
        reps = c.pipeline([("case.create", self.bodies[r]) for r in sample], window=64,
                          timeout=60)
        for rid, r in zip(sample, reps):
            assert r.ok and r.body.get("replayed") is True, f"replay of {rid} -> {r.describe()}"
            assert r.body["case"]["id"] == self.ids[rid], \
                f"replay of {rid}: id {r.body['case']['id']} != {self.ids[rid]}"

        # 5. the unacknowledged: a fresh case, or the stored one with replayed: true
        reps = c.pipeline([("case.create", self.bodies[r]) for r in unacked], window=64,
                          timeout=60)
        fresh = replayed = 0
        for rid, r in zip(unacked, reps):
            assert r.ok, f"re-send of unacknowledged {rid} -> {r.describe()}"
            cid = r.body["case"]["id"]
            if rid in committed_unacked:
                assert r.body.get("replayed") is True, \
                    f"{rid} was stored (case {per_rid[rid]}) but the re-send says {r.describe()}"
                assert cid == per_rid[rid][0], f"{rid}: stored as {per_rid[rid]}, replay gives {cid}"
                replayed += 1
            else:
                assert not r.body.get("replayed"), f"{rid} was not stored but got {r.describe()}"
                assert cid not in self.codes, f"fresh case for {rid} reuses id {cid}"
                fresh += 1
            diff = same_fields(self.bodies[rid], r.body["case"])
            assert diff is None, f"re-send of {rid}: {diff}"
            self.ids[rid] = cid
            self.codes[cid] = r.body["case"]["code"]
        # and once more: now every one of them replays to the same id
        reps = c.pipeline([("case.create", self.bodies[r]) for r in unacked], window=64,
                          timeout=60)
        for rid, r in zip(unacked, reps):
            assert r.ok and r.body.get("replayed") is True and r.body["case"]["id"] == self.ids[rid], \
                f"second re-send of {rid} -> {r.describe()}"

        # 6. counts: one case per distinct request_id acknowledged, ids unique
        assert len(set(self.ids.values())) == len(self.ids), "two request_ids share a case id"
        assert len(set(self.codes.values())) == len(self.codes), "two cases share a code"
        phone = f"1370000{cycle:04d}"
        this_cycle = list_all(c, {"reporter_phone": phone}, limit=500)
        assert len(this_cycle) == len(sent), (f"cycle {cycle}: {len(this_cycle)} cases with "
                                              f"phone {phone}, {len(sent)} request_ids sent")
        return by_id, replayed, fresh

    def check_all(self, c):
        """At the end: the store holds exactly one case per request_id sent."""
        everything = list_all(c, limit=500)
        assert len(everything) == len(self.ids) == len(self.bodies), \
            (f"{len(everything)} cases listed, {len(self.ids)} request_ids acknowledged, "
             f"{len(self.bodies)} sent")
        assert {x["id"] for x in everything} == set(self.ids.values())
        return everything


@contextlib.contextmanager
def running(d):
    """d started for the with block; stopped with SIGTERM (exit code 0 asserted) unless
    the block stopped or killed it, and its folder removed."""
    try:
        d.start()
        yield d
        if d.alive():
            d.stop()
    finally:
        d.cleanup()


def running_daemon(extra_args=(), **kwargs):
    """running() of a new Daemon with these arguments."""
    return running(Daemon(extra_args=extra_args, **kwargs))
