#!/usr/bin/env python3
"""Load benchmark: tessera next to nginx serving the same bytes, in one run.

Writes a source shaped like the benchmark set (SLICES x SIZE x SIZE float32,
a smooth field with noise and a land mask of fill values), ingests it with
default settings (1024 x 1024 deflate tiles), serves it, fetches every
response once and puts the bytes in an nginx root, then drives both with
wrk over the same requests:

  full slice .dods      sst[0][0:SIZE-1][0:SIZE-1], one connection
  stride-8 .dods        sst[0][0:8:SIZE-1][0:8:SIZE-1], one connection
  point .dods           sst[0][100][100], 16 connections, then one
  .dds / .das           one connection
  GetMap 1024 x 512     the whole grid in EPSG:4326, one connection
  GetMap 256 x 256      a zoom-2 Web Mercator tile (EPSG:3857)

and prints the time per request of each and the ratio tessera / nginx
(nginx sending a static file of the same bytes is the physical limit on
this machine), then the strided read and the maps as a share of the full
slice's time (what overviews buy). Ingest is timed against `nccopy -d 4`
of the same file.

With --baseline BIN (another build of tessera, e.g. the previous commit
or release), the baseline ingests its own copy and is measured in the
same run; the last column is this build / baseline, and both builds'
responses are compared byte for byte (requests a baseline does not
answer, such as maps before it had them, are left out for it).

The machines this runs on are shared and noisy: read ratios measured in
one run, not absolute times.

  python3 benches/load.py                      # builds target/release/tessera
  python3 benches/load.py --baseline /tmp/old/tessera --seconds 5 --rounds 3
"""

import argparse
import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def need(cmd, package):
    if shutil.which(cmd) is None:
        sys.exit(f"load.py: {cmd} not found (Debian package {package})")


def write_source(path, size, slices):
    import netCDF4
    import numpy as np

    rng = np.random.default_rng(7)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as f:
        f.createDimension("time", None)
        f.createDimension("lat", size)
        f.createDimension("lon", size)
        t = f.createVariable("time", "f8", ("time",))
        t.units = "days since 2000-01-01 00:00:00"
        t.calendar = "standard"
        t.standard_name = "time"
        lat = f.createVariable("lat", "f8", ("lat",))
        lat.units = "degrees_north"
        lat.standard_name = "latitude"
        lat[:] = 80.0 - np.arange(size) * (160.0 / size)
        lon = f.createVariable("lon", "f8", ("lon",))
        lon.units = "degrees_east"
        lon.standard_name = "longitude"
        lon[:] = -180.0 + np.arange(size) * (360.0 / size)
        v = f.createVariable("sst", "f4", ("time", "lat", "lon"), fill_value=np.float32(-999.0))
        v.units = "K"
        v.standard_name = "sea_surface_temperature"
        y = np.linspace(-1.0, 1.0, size, dtype=np.float32)[:, None]
        x = np.linspace(-1.0, 1.0, size, dtype=np.float32)[None, :]
        land = (np.sin(3 * x) * np.cos(2 * y) > 0.6)
        for k in range(slices):
            t[k] = k
            field = 290.0 + 10.0 * np.cos(1.5 * y) + 2.0 * np.sin(4 * x + 0.3 * k)
            field = field + rng.normal(0.0, 0.05, (size, size)).astype(np.float32)
            field = np.where(land, np.float32(-999.0), field).astype(np.float32)
            v[k, :, :] = field


def timed(cmd, **kw):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, **kw)
    return time.perf_counter() - t


def wait_ready(url, proc, what):
    for _ in range(300):
        if proc.poll() is not None:
            sys.exit(f"load.py: {what} exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except Exception:
            time.sleep(0.1)
    sys.exit(f"load.py: {what} did not answer {url}")


def fetch(url):
    with urllib.request.urlopen(url, timeout=600) as r:
        return r.read()


def wrk(url, connections, seconds):
    """Mean seconds per request (one connection) or requests per second."""
    threads = min(connections, 2)
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "60s", url],
        check=True, capture_output=True, text=True,
    ).stdout
    if "Non-2xx" in out:
        sys.exit(f"load.py: errors from {url}:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    if rps == 0:
        sys.exit(f"load.py: no request finished for {url} in {seconds} s; use more --seconds")
    return rps


class Tessera:
    def __init__(self, binary, work, name):
        self.binary, self.name = binary, name
        self.data = os.path.join(work, f"data-{name}")
        self.proc = None

    def ingest(self, source):
        return timed([self.binary, "--data-dir", self.data, "ingest", "--dataset", "bench", source], stderr=subprocess.DEVNULL)

    def start(self):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [self.binary, "--data-dir", self.data, "serve", "--listen", f"127.0.0.1:{self.port}", "--max-per-client", "0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_ready(self.base + "/healthz", self.proc, f"tessera ({self.name})")

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait()


class Nginx:
    def __init__(self, work):
        self.dir = os.path.join(work, "nginx")
        self.www = os.path.join(self.dir, "www")
        os.makedirs(self.www)
        for d in (work, self.dir, self.www):
            os.chmod(d, 0o755)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        user = "user root;\n" if os.geteuid() == 0 else ""
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(
                f"{user}worker_processes 2;\ndaemon off;\npid {self.dir}/nginx.pid;\nerror_log {self.dir}/error.log;\n"
                "events { worker_connections 1024; }\n"
                "http {\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  keepalive_requests 1000000;\n"
                f"  client_body_temp_path {self.dir};\n  proxy_temp_path {self.dir};\n  fastcgi_temp_path {self.dir};\n"
                f"  uwsgi_temp_path {self.dir};\n  scgi_temp_path {self.dir};\n"
                f"  server {{ listen 127.0.0.1:{self.port}; root {self.www}; default_type application/octet-stream; }}\n}}\n"
            )
        self.conf = conf

    def put(self, name, body):
        with open(os.path.join(self.www, name), "wb") as f:
            f.write(body)
        os.chmod(os.path.join(self.www, name), 0o644)

    def start(self):
        self.proc = subprocess.Popen(["nginx", "-c", self.conf, "-p", self.dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_ready(self.base + "/point.dods", self.proc, "nginx")

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", help="tessera binary (default: build target/release/tessera)")
    ap.add_argument("--baseline", help="another tessera binary to measure in the same run")
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--slices", type=int, default=8)
    ap.add_argument("--seconds", type=int, default=5, help="wrk duration per measurement")
    ap.add_argument("--rounds", type=int, default=1, help="measure each cell this many times, servers interleaved; report the median")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    for cmd, pkg in [("wrk", "wrk"), ("nginx", "nginx-light"), ("nccopy", "netcdf-bin")]:
        need(cmd, pkg)
    binary = a.bin
    if binary is None:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
        binary = os.path.join(ROOT, "target", "release", "tessera")
    work = tempfile.mkdtemp(prefix="tessera-load-")
    builds = [Tessera(binary, work, "this")]
    if a.baseline:
        builds.append(Tessera(a.baseline, work, "baseline"))
    nginx = Nginx(work)
    try:
        source = os.path.join(work, "bench.nc")
        print(f"writing a {a.slices} x {a.size} x {a.size} float32 source ...", file=sys.stderr)
        write_source(source, a.size, a.slices)
        mib = os.path.getsize(source) / 2**20
        ingest = {b.name: b.ingest(source) for b in builds}
        nccopy = timed(["nccopy", "-d", "4", source, os.path.join(work, "nccopy.nc")])
        n = a.size - 1
        requests = [
            ("full slice .dods", "full.dods", f"/dap/bench.dods?sst[0][0:{n}][0:{n}]", 1),
            ("stride-8 .dods", "stride8.dods", f"/dap/bench.dods?sst[0][0:8:{n}][0:8:{n}]", 1),
            ("point .dods, 16 connections", "point.dods", "/dap/bench.dods?sst[0][100][100]", 16),
            ("point .dods, sequential", "point.dods", "/dap/bench.dods?sst[0][100][100]", 1),
            (".dds", "bench.dds", "/dap/bench.dds", 1),
            (".das", "bench.das", "/dap/bench.das", 1),
            ("GetMap 1024x512 EPSG:4326", "world.png", "/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=bench/sst&STYLES=&CRS=EPSG:4326"
             "&BBOX=-90,-180,90,180&WIDTH=1024&HEIGHT=512&FORMAT=image/png&TRANSPARENT=TRUE", 1),
            ("GetMap 256x256 EPSG:3857", "tile.png", "/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=bench/sst&STYLES=&CRS=EPSG:3857"
             "&BBOX=-10018754.17,0,0,10018754.17&WIDTH=256&HEIGHT=256&FORMAT=image/png&TRANSPARENT=TRUE", 1),
        ]
        for b in builds:
            b.start()
        bodies = {}
        answers = {b.name: set() for b in builds}
        for label, file, path, _ in requests:
            body = fetch(builds[0].base + path)
            answers[builds[0].name].add(file)
            for b in builds[1:]:
                try:
                    other = fetch(b.base + path)
                except urllib.error.HTTPError as e:
                    print(f"note: {label}: the baseline answers {e.code}; left out for it", file=sys.stderr)
                    continue
                answers[b.name].add(file)
                if hashlib.sha256(other).digest() != hashlib.sha256(body).digest():
                    print(f"note: {label}: the baseline sends other bytes ({len(other)} vs {len(body)})", file=sys.stderr)
            bodies[file] = body
            nginx.put(file, body)
        nginx.start()
        rows = []
        median = lambda xs: sorted(xs)[len(xs) // 2]
        for label, file, path, conns in requests:
            runs = []
            for r in range(a.rounds):
                urls = [nginx.base + "/" + file] + [b.base + path if file in answers[b.name] else None for b in builds]
                # Alternate the order between rounds, so that drift in the
                # machine's load does not favour one server.
                order = list(range(len(urls))) if r % 2 == 0 else list(reversed(range(len(urls))))
                got = {i: wrk(urls[i], conns, a.seconds) if urls[i] else float("nan") for i in order}
                runs.append([got[i] for i in range(len(urls))])
            cells = [median([run[i] for run in runs]) for i in range(len(runs[0]))]
            rows.append((label, len(bodies[file]), conns, cells[1:], cells[0]))
        print()
        print(f"source {mib:.0f} MiB, {a.slices} x {a.size} x {a.size} float32, default tiles; wrk {a.seconds} s per cell, median of {a.rounds}")
        head = f"{'request':<30} {'bytes':>10} {'tessera':>14} {'nginx':>14} {'/ nginx':>8}"
        if len(builds) > 1:
            head += f" {'baseline':>14} {'/ baseline':>10}"
        print(head)
        for label, size, conns, got, ref in rows:
            if conns > 1:
                show = lambda rps: f"{rps:,.0f} req/s"
                line = f"{label:<30} {size:>10} {show(got[0]):>14} {show(ref):>14} {ref / got[0]:>7.2f}x"
                if len(builds) > 1:
                    line += f" {show(got[1]):>14} {got[1] / got[0]:>9.2f}x"
            else:
                show = lambda rps: f"{1000 / rps:.3f} ms"
                line = f"{label:<30} {size:>10} {show(got[0]):>14} {show(ref):>14} {ref / got[0]:>7.2f}x"
                if len(builds) > 1:
                    line += f" {show(got[1]):>14} {got[1] / got[0]:>9.2f}x"
            print(line)
        line = f"{'ingest':<30} {int(mib * 2**20):>10} {ingest['this']:>12.2f} s {'nccopy -d 4':>14} {ingest['this'] / nccopy:>7.2f}x"
        if len(builds) > 1:
            line += f" {ingest['baseline']:>12.2f} s {ingest['this'] / ingest['baseline']:>9.2f}x"
        print(line)
        print(f"{'':<30} {'':>10} {'':>14} {nccopy:>12.2f} s")
        full = next(got[0] for label, _, _, got, _ in rows if label == "full slice .dods")
        for label, _, conns, got, _ in rows:
            if label.startswith(("stride-8", "GetMap")):
                print(f"{label:<30} {full / got[0]:>7.3f}x the time of the full slice")
        print("ratios: time of this build / time of the reference (lower is better; 1.00x is the reference)")
    finally:
        for b in builds:
            b.stop()
        if getattr(nginx, "proc", None):
            nginx.stop()
        if a.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
