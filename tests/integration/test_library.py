"""libgridline as an outside program uses it: `cmake --install` of the build into a
temporary prefix (headers, the shared library, gridline.pc), a small C program built
with `cc $(pkg-config --cflags --libs gridline)` and run against a test daemon."""

import os
import shutil
import subprocess

import pytest

from gridline_harness import build_dir, unique_request_id

PROGRAM = r"""
#include <gridline/gl_client.h>
#include <gridline/gl_feed.h>
#include <gridline/mp_util.h>

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    char           err[256];
    gl_error       e;
    char          *reply = NULL;
    gl_feed_batch  b;
    gl_client     *c = gl_client_new(argv[1], err, sizeof(err));

    if (argc != 2 || c == NULL) {
        fprintf(stderr, "connect: %s\n", argc != 2 ? "usage" : err);
        return 1;
    }
    if (gl_client_call(c, "catalog.get", NULL, 0, 5000, &reply, NULL, &e) != 0) {
        fprintf(stderr, "catalog.get: %s\n", e.message);
        return 1;
    }
    printf("ok\n");
    gl_feed *f = gl_feed_new(c, NULL, NULL, err, sizeof(err));
    if (f == NULL || gl_feed_next(f, 1000, &b) != 0) {
        fprintf(stderr, "feed: %s\n", f == NULL ? err : gl_feed_error(f)->message);
        return 1;
    }
    printf("events %u next %llu\n", b.n_events, (unsigned long long)b.next);
    gl_feed_batch_free(&b);
    gl_feed_destroy(&f);
    free(reply);
    gl_client_destroy(&c);
    return 0;
}
"""


def test_installed_library_builds_and_runs_a_program(daemon, tmp_path):
    for tool in ("cmake", "cc", "pkg-config"):
        if shutil.which(tool) is None:
            pytest.skip(f"no {tool}")
    prefix = tmp_path / "prefix"
    subprocess.run(["cmake", "--install", build_dir(), "--prefix", str(prefix)], check=True,
                   capture_output=True, timeout=120)
    for rel in ("include/gridline/gl_client.h", "include/gridline/gl_feed.h",
                "include/gridline/gl_error.h", "include/gridline/mp_util.h",
                "lib/libgridline.so", "lib/pkgconfig/gridline.pc"):
        assert (prefix / rel).exists(), rel
    so = os.path.realpath(prefix / "lib" / "libgridline.so")
    assert os.path.basename(so).startswith("libgridline.so.")   # versioned, with a SONAME

    env = dict(os.environ)
    env["PKG_CONFIG_PATH"] = str(prefix / "lib" / "pkgconfig")
    env["LD_LIBRARY_PATH"] = str(prefix / "lib")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "gridline"], env=env,
                           check=True, capture_output=True, text=True).stdout.split()
    src = tmp_path / "hello.c"
    src.write_text(PROGRAM)
    exe = tmp_path / "hello"
    # A library built with the sanitizers (CI's second run) needs their runtime in the
    # program too, as any program linking an instrumented library would.
    cache = os.path.join(build_dir(), "CMakeCache.txt")
    sanitized = os.path.exists(cache) and "GRIDLINE_SANITIZE:BOOL=ON" in open(cache).read()
    extra = ["-fsanitize=address,undefined"] if sanitized else []
    cc = subprocess.run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-o", str(exe),
                         str(src)] + flags + extra, env=env, capture_output=True, text=True)
    assert cc.returncode == 0, cc.stderr

    c = daemon.client()
    c.ok("case.create", {"request_id": unique_request_id(), "channel": "web",
                         "category": "roads", "description": "library test",
                         "location": {"district": "D02"}})
    p = subprocess.run([str(exe), daemon.endpoint], env=env, capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["ok", "events 1 next 1"]
