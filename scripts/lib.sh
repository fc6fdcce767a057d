# Shared by scripts/demo and scripts/test: install what tessera needs.
# Debian/Ubuntu packages through apt-get when run as root (or with
# passwordless sudo); otherwise a clear message naming what is missing.

say() { printf 'tessera: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo "$@"
  else return 1
  fi
}

APT_UPDATED=
apt_install() {
  local missing=("$@")
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    say "missing packages: ${missing[*]}; install them with your package manager and re-run"; exit 1
  fi
  say "installing ${missing[*]}"
  if [ -z "$APT_UPDATED" ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || {
      say "cannot run apt-get as root; install: ${missing[*]}"; exit 1; }
    APT_UPDATED=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || {
    say "apt-get install failed; install: ${missing[*]}"; exit 1; }
}

# Build dependencies: a Rust toolchain, a C compiler, libnetcdf.
ensure_build_deps() {
  if ! command -v cargo >/dev/null 2>&1; then
    say "cargo not found: install a Rust toolchain (https://rustup.rs) and re-run"; exit 1
  fi
  local need=()
  command -v cc >/dev/null 2>&1 || need+=(gcc)
  command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
  command -v nc-config >/dev/null 2>&1 || need+=(libnetcdf-dev)
  command -v ncdump >/dev/null 2>&1 || need+=(netcdf-bin)
  apt_install "${need[@]}"
}

# Test dependencies: PostgreSQL server binaries, the DAP clients.
ensure_test_deps() {
  local need=()
  pg_bindir >/dev/null || need+=(postgresql)
  command -v getdap >/dev/null 2>&1 || need+=(libdap-bin)
  command -v curl >/dev/null 2>&1 || need+=(curl)
  command -v runuser >/dev/null 2>&1 || need+=(util-linux)
  command -v script >/dev/null 2>&1 || need+=(bsdutils)
  command -v python3 >/dev/null 2>&1 || need+=(python3 python3-pip)
  # The web pages are tested in headless Chromium through chromedriver.
  [ -x /usr/bin/chromium ] || need+=(chromium)
  [ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
  apt_install "${need[@]}"
  if ! python3 -c 'import netCDF4, xarray, pydap, prometheus_client, owslib, PIL, pystac_client, selenium' >/dev/null 2>&1; then
    say "installing the Python clients (netCDF4, xarray, pydap, OWSLib, pystac-client, Pillow, selenium)"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore netCDF4 xarray pydap prometheus-client OWSLib pystac-client Pillow selenium >/dev/null 2>&1 \
      || python3 -m pip install --quiet --break-system-packages netCDF4 xarray pydap prometheus-client OWSLib pystac-client Pillow selenium >/dev/null \
      || { say "pip install netCDF4 xarray pydap OWSLib pystac-client Pillow selenium failed"; exit 1; }
  fi
}

# The directory holding initdb and pg_ctl, newest version first.
pg_bindir() {
  local d
  if command -v pg_config >/dev/null 2>&1; then
    d=$(pg_config --bindir 2>/dev/null)
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  fi
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  d=$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")
  [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
  return 1
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Starts a throwaway PostgreSQL in a temporary directory on a free port and
# exports TESSERA_TEST_POSTGRES. stop_postgres removes it again.
PG_DIR=
PG_RUN=()
start_postgres() {
  local bin port
  bin=$(pg_bindir) || { say "PostgreSQL server binaries not found"; exit 1; }
  PG_DIR=$(mktemp -d /tmp/tessera-pg.XXXXXX)
  port=$(free_port)
  if [ "$(id -u)" = 0 ]; then
    # initdb refuses to run as root.
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown postgres "$PG_DIR"
    PG_RUN=(runuser -u postgres --)
  fi
  "${PG_RUN[@]}" "$bin/initdb" -D "$PG_DIR/data" -U postgres -A trust --no-sync >"$PG_DIR/initdb.log" 2>&1 \
    || { cat "$PG_DIR/initdb.log" >&2; say "initdb failed"; exit 1; }
  "${PG_RUN[@]}" "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >/dev/null || { cat "$PG_DIR/server.log" >&2; say "PostgreSQL did not start"; exit 1; }
  export TESSERA_TEST_POSTGRES="postgres://postgres@127.0.0.1:$port/postgres"
  export TESSERA_TEST_PG_BINDIR="$bin" TESSERA_TEST_PG_DATA="$PG_DIR/data"
  say "throwaway PostgreSQL on 127.0.0.1:$port ($PG_DIR)"
}

stop_postgres() {
  [ -n "$PG_DIR" ] || return 0
  "${PG_RUN[@]}" "$(pg_bindir)/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
  PG_DIR=
}
