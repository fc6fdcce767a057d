#!/usr/bin/env python3
"""What a request costs in a catalogue of archive size.

    benches/scale.py --bin target/release/tessera --postgres URL [--tiles 50000000] [--small 100000]

URL is a PostgreSQL server tessera may create a database on (a throwaway
one: `. scripts/lib.sh; start_postgres; echo $TESSERA_TEST_POSTGRES`).
The script makes the database `tessera_scale` (with `--fresh`, anew) and
in it, with `tessera synth`, `world` (--tiles rows) and `small` (--small
rows), unless they are there; serves them; and sends .dds, point,
8-step time series and 4-tile window requests, interleaved between the two
datasets (the same cells and, scaled to each dataset's length, the same
place in time), one at a time on a kept-alive connection. It prints each
kind's p50 and p99 on both, the ratio of the p99s, and the server's
resident memory (now and at its peak).
"""

import argparse
import http.client
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

TILE = 256


def sh(*args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw).stdout


def database_url(base, name):
    u = urllib.parse.urlparse(base)
    return urllib.parse.urlunparse(u._replace(path="/" + name))


def psql(url, sql):
    return sh("psql", url, "-Atqc", sql).strip()


def synth(bin_, catalogue, pool, name, tiles):
    have = sh(bin_, "datasets", "list", "--catalogue", catalogue, "--pool", pool)
    if re.search(rf"^{name}\s", have, re.M):
        print(f"{name}: already there")
        return
    t = time.monotonic()
    out = subprocess.run([bin_, "synth", "--catalogue", catalogue, "--pool", pool, "--dataset", name, "--tiles", str(tiles)],
                         check=True, capture_output=True, text=True).stdout
    print(out.strip(), f"[{time.monotonic() - t:.0f} s wall]")


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/tessera")
    ap.add_argument("--postgres", required=True)
    ap.add_argument("--tiles", type=int, default=50_000_000)
    ap.add_argument("--small", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=500)
    ap.add_argument("--pool", default=os.path.join(tempfile.gettempdir(), "tessera-scale-pool"))
    ap.add_argument("--fresh", action="store_true", help="drop the database and pool first")
    a = ap.parse_args()
    bin_ = os.path.abspath(a.bin)

    if a.fresh:
        psql(a.postgres, "DROP DATABASE IF EXISTS tessera_scale")
        shutil.rmtree(a.pool, ignore_errors=True)
    if psql(a.postgres, "SELECT 1 FROM pg_database WHERE datname = 'tessera_scale'") != "1":
        psql(a.postgres, "CREATE DATABASE tessera_scale")
    cat = database_url(a.postgres, "tessera_scale")
    sh(bin_, "migrate", "--catalogue", cat, "--pool", a.pool)
    synth(bin_, cat, a.pool, "small", a.small)
    synth(bin_, cat, a.pool, "world", a.tiles)
    print("tiles table:", psql(cat, "SELECT count(*) || ' rows, ' || pg_size_pretty(pg_total_relation_size('tiles')) FROM tiles"))

    port = int(sh("python3", "-c", "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"))
    log = open(os.path.join(tempfile.gettempdir(), "tessera-scale-server.log"), "w")
    server = subprocess.Popen([bin_, "serve", "--catalogue", cat, "--pool", a.pool, "--listen", f"127.0.0.1:{port}"],
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz").status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        conn = http.client.HTTPConnection("127.0.0.1", port)

        def get(path):
            t = time.perf_counter()
            conn.request("GET", path)
            r = conn.getresponse()
            body = r.read()
            dt = time.perf_counter() - t
            if r.status != 200:
                raise SystemExit(f"{path}: {r.status} {body[:300]!r}")
            return dt, body

        steps = {}
        for ds in ("small", "world"):
            t = time.perf_counter()
            _, dds = get(f"/dap/{ds}.dds")
            steps[ds] = int(re.search(rb"time\[time = (\d+)\]", dds).group(1))
            print(f"{ds}: {steps[ds]} time steps; first .dds (the view built) {1000 * (time.perf_counter() - t):.0f} ms")
        ny, nx = 3600, 7200
        kinds = ["dds", "point", "series", "window"]
        lat = {(ds, k): [] for ds in steps for k in kinds}
        rng = random.Random(7)

        def path(ds, kind, f, j, i, tj, ti):
            t = int(f * max(steps[ds] - 8, 0))
            if kind == "dds":
                return f"/dap/{ds}.dds"
            if kind == "point":
                return f"/dap/{ds}.dods?tas%5B{t}%5D%5B{j}%5D%5B{i}%5D"
            if kind == "series":
                return f"/dap/{ds}.dods?tas%5B{t}:1:{min(t + 7, steps[ds] - 1)}%5D%5B{j}%5D%5B{i}%5D"
            j0, i0 = tj * TILE - TILE // 2, ti * TILE - TILE // 2
            return f"/dap/{ds}.dods?tas%5B{t}%5D%5B{j0}:1:{j0 + TILE - 1}%5D%5B{i0}:1:{i0 + TILE - 1}%5D"

        for _ in range(20):  # warm-up: connections, files, caches
            for ds in steps:
                for k in kinds:
                    get(path(ds, k, rng.random(), 0, 0, 1, 1))
        for r in range(a.rounds):
            f, j, i = rng.random(), rng.randrange(ny), rng.randrange(nx)
            tj, ti = rng.randrange(1, ny // TILE), rng.randrange(1, nx // TILE)
            for k in kinds:
                order = ("small", "world") if r % 2 == 0 else ("world", "small")
                for ds in order:
                    dt, _ = get(path(ds, k, f, j, i, tj, ti))
                    lat[(ds, k)].append(dt)
        now, peak = rss(server.pid)
        names = {"dds": ".dds", "point": "point", "series": "8-step series", "window": "4-tile window"}
        print(f"\n{a.rounds} requests of each kind on each dataset, interleaved; milliseconds")
        print(f"{'request':<15}{'small p50':>11}{'small p99':>11}{'world p50':>11}{'world p99':>11}{'p99 world/small':>17}")
        for k in kinds:
            s, w = lat[("small", k)], lat[("world", k)]
            print(f"{names[k]:<15}{1000 * pct(s, 50):>11.2f}{1000 * pct(s, 99):>11.2f}{1000 * pct(w, 50):>11.2f}{1000 * pct(w, 99):>11.2f}"
                  f"{pct(w, 99) / pct(s, 99):>16.2f}x")
        print(f"server resident memory: {now:.0f} MiB now, {peak:.0f} MiB at its peak")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    sys.exit(main())
