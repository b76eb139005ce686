#!/usr/bin/env bash
# Installs what the build and the tests need, only when it is missing or the wrong version.
# Usage: .ci/tools.sh <tool>...   (rust-wasm cargo-leptos wasm-bindgen wasm-opt chromium ffmpeg node-deps network)
#        .ci/tools.sh postgres    prints a PostgreSQL URL the tests may create databases with
#        .ci/tools.sh api-fuzz    installs schemathesis and openapi-spec-validator, prints their bin directory
#        .ci/tools.sh garage      starts a local Garage and prints the variables that point tests at it
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_LEPTOS_VERSION=0.3.10
GARAGE_VERSION=2.5.0
WASM_BINDGEN_VERSION=0.2.130   # must equal the wasm-bindgen crate pinned in Cargo.toml
SCHEMATHESIS_VERSION=4.32.5
OPENAPI_SPEC_VALIDATOR_VERSION=0.9.0

say() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  say "installing $* from Debian's packages"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >&2 \
    || { as_root apt-get update >&2 && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >&2; }
}

rust_wasm() {
  rustup target list --installed | grep -qx wasm32-unknown-unknown \
    || { say "adding the wasm32 target"; rustup target add wasm32-unknown-unknown >&2; }
}

cargo_leptos() {
  if ! cargo leptos --version 2>/dev/null | grep -q "$CARGO_LEPTOS_VERSION"; then
    # no_downloads: a missing external tool is an error, never a download attempt.
    say "installing cargo-leptos $CARGO_LEPTOS_VERSION (about 20 minutes on 2 cores)"
    cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked --features no_downloads >&2
  fi
}

wasm_bindgen() {
  if ! wasm-bindgen --version 2>/dev/null | grep -q "$WASM_BINDGEN_VERSION"; then
    # Not --locked: the locked build wants a webpki-roots version the index lacks.
    say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION"
    cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force >&2
  fi
}

wasm_opt() {
  # Release builds always run wasm-opt; Debian's binaryen provides it (no download).
  command -v wasm-opt >/dev/null || apt_install binaryen
}

# Videos' poster frames (and the tests that check them) decode with Debian's ffmpeg.
ffmpeg_tool() {
  command -v ffmpeg >/dev/null || apt_install --no-install-recommends ffmpeg
}

chromium() {
  [ -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ] || apt_install chromium
}

# The network test's tools: iproute2 (network namespaces), nginx (the proxy), openssl (its
# certificate), curl (readiness checks). Only as root: without it the test is skipped anyway.
network_tools() {
  [ "$(id -u)" = 0 ] || return 0
  local missing=()
  command -v ip >/dev/null || missing+=(iproute2)
  command -v nginx >/dev/null || missing+=(nginx-light)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v curl >/dev/null || missing+=(curl)
  [ ${#missing[@]} = 0 ] || apt_install "${missing[@]}"
}

node_deps() {
  local stamp=end2end/node_modules/.package-lock.json
  if [ ! -f "$stamp" ] || [ end2end/package-lock.json -nt "$stamp" ]; then
    say "installing the browser-test packages (npm ci)"
    (cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund >&2)
  fi
}

# The API fuzzer and the OpenAPI validator, from PyPI, in a virtualenv of their own. Prints the
# directory holding their commands.
api_fuzz() {
  local venv="$HOME/.cache/darkroom/venv"
  # Read whole before matching: grep -q closing the pipe early would fail it under pipefail.
  local have; have=$("$venv/bin/pip" freeze 2>/dev/null || true)
  if ! grep -qx "schemathesis==$SCHEMATHESIS_VERSION" <<<"$have" \
     || ! grep -qx "openapi-spec-validator==$OPENAPI_SPEC_VALIDATOR_VERSION" <<<"$have"; then
    say "installing schemathesis $SCHEMATHESIS_VERSION and openapi-spec-validator from PyPI"
    # Debian and Ubuntu ship python3 without venv's ensurepip.
    python3 -c 'import ensurepip' 2>/dev/null || apt_install python3-venv
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION" \
      "openapi-spec-validator==$OPENAPI_SPEC_VALIDATOR_VERSION" >&2
  fi
  echo "$venv/bin"
}

# A PostgreSQL the tests can use: $DARKROOM_TEST_PG_URL, else the machine's server on
# 127.0.0.1:5432 (started if installed but stopped), else a private trust-auth cluster in
# ~/.cache/darkroom/postgres (installing PostgreSQL from Debian if needed).
postgres() {
  local url="${DARKROOM_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
  if psql "$url" -qtAc 'select 1' >/dev/null 2>&1; then echo "$url"; return; fi
  if command -v pg_lsclusters >/dev/null && pg_lsclusters -h 2>/dev/null | grep -q .; then
    say "starting the machine's PostgreSQL"
    as_root pg_ctlcluster --skip-systemctl-redirect "$(pg_lsclusters -h | awk 'NR==1{print $1}')" main start >&2 || true
    for _ in $(seq 30); do psql "$url" -qtAc 'select 1' >/dev/null 2>&1 && { echo "$url"; return; }; sleep 1; done
  fi
  local bin; bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  if [ -z "$bin" ]; then apt_install postgresql; bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1); fi
  local dir="$HOME/.cache/darkroom/postgres" port=55432
  local private="postgres://postgres@127.0.0.1:$port/postgres"
  if ! psql "$private" -qtAc 'select 1' >/dev/null 2>&1; then
    say "starting a private PostgreSQL cluster on 127.0.0.1:$port"
    mkdir -p "$dir"
    local run=()
    if [ "$(id -u)" = 0 ]; then chown -R postgres: "$dir"; run=(runuser -u postgres --); fi
    [ -f "$dir/data/PG_VERSION" ] || "${run[@]}" "$bin/initdb" -D "$dir/data" -U postgres -A trust >&2
    "${run[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir" start >&2
  fi
  echo "$private"
}

# A local Garage node (installed with cargo when missing) configured from .ci/garage.toml.
# Prints `export …` lines that point the storage tests at it.
garage_server() {
  if ! garage --version 2>/dev/null | grep -q "$GARAGE_VERSION"; then
    say "installing Garage $GARAGE_VERSION (about 20 minutes on 2 cores)"
    cargo install garage --version "$GARAGE_VERSION" --locked >&2
  fi
  local dir="$HOME/.cache/darkroom/garage"
  mkdir -p "$dir"
  sed "s|@DIR@|$dir|g" .ci/garage.toml > "$dir/garage.toml"
  local g=(garage -c "$dir/garage.toml")
  if ! "${g[@]}" status >/dev/null 2>&1; then
    say "starting Garage on 127.0.0.1:3910"
    nohup "${g[@]}" server >"$dir/server.log" 2>&1 &
    for _ in $(seq 60); do "${g[@]}" status >/dev/null 2>&1 && break; sleep 0.5; done
  fi
  if "${g[@]}" status 2>/dev/null | grep -q "NO ROLE ASSIGNED"; then
    local node; node=$("${g[@]}" node id -q 2>/dev/null | cut -d@ -f1)
    "${g[@]}" layout assign -z dc1 -c 1G "$node" >&2
    "${g[@]}" layout apply --version "$(( $("${g[@]}" layout show 2>/dev/null | awk '/Current cluster layout version:/ {print $NF}') + 1 ))" >&2
  fi
  "${g[@]}" key info darkroom-test >/dev/null 2>&1 || "${g[@]}" key create darkroom-test >&2
  "${g[@]}" key allow --create-bucket darkroom-test >&2
  local info; info=$("${g[@]}" key info darkroom-test --show-secret)
  echo "export DARKROOM_TEST_S3_ENDPOINT=http://127.0.0.1:3910"
  echo "export DARKROOM_TEST_S3_REGION=garage"
  echo "export DARKROOM_TEST_S3_KEY_ID=$(awk '/Key ID:/ {print $NF}' <<<"$info")"
  echo "export DARKROOM_TEST_S3_SECRET=$(awk '/Secret key:/ {print $NF}' <<<"$info")"
  echo "export DARKROOM_TEST_GARAGE_ADMIN=http://127.0.0.1:3913"
  echo "export DARKROOM_TEST_GARAGE_ADMIN_TOKEN=$(awk -F'"' '/^admin_token/ {print $2}' "$dir/garage.toml")"
}

for tool in "$@"; do
  case "$tool" in
    rust-wasm) rust_wasm ;;
    cargo-leptos) cargo_leptos ;;
    wasm-bindgen) wasm_bindgen ;;
    wasm-opt) wasm_opt ;;
    chromium) chromium ;;
    ffmpeg) ffmpeg_tool ;;
    node-deps) node_deps ;;
    network) network_tools ;;
    postgres) postgres ;;
    api-fuzz) api_fuzz ;;
    garage) garage_server ;;
    *) echo "unknown tool: $tool" >&2; exit 2 ;;
  esac
done
