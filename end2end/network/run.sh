#!/usr/bin/env bash
# Darkroom across a real network. Four network namespaces of this test's own: a switch (a Linux
# bridge) and three hosts on it, each with its own address and nothing else:
#
#   app      10.77.0.1  nginx on :443 (TLS, a certificate this script makes) in front of
#                       `darkroom serve` on the host's loopback (the proxy passes Host and the
#                       client address), SQLite and the embedded storage under a temporary dir
#   fal      10.77.0.2  the fake fal on :3999: it fetches input URLs and posts webhooks to
#                       https://darkroom.test, through the proxy, trusting the test's CA
#   browser  10.77.0.3  Chromium (Playwright), which also knows darkroom.test only as 10.77.0.1
#
# Nothing crosses hosts over a loopback address. Needs root (network namespaces); without it the
# test says it is skipped. Everything it creates is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)

if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null || ! ip netns add "drk-probe-$$" 2>/dev/null; then
  echo "SKIPPED: the network test needs root and Linux network namespaces (ip netns); nothing was run"
  exit 0
fi
ip netns del "drk-probe-$$"
# What an earlier run killed before its cleanup left behind (names carry that run's PID).
for ns in $(ip netns list | grep -oE '^drk[0-9]+-[a-z]+' || true); do
  owner=${ns#drk}; owner=${owner%%-*}
  kill -0 "$owner" 2>/dev/null && continue
  ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "/etc/netns/$ns"
done

bin="${CARGO_TARGET_DIR:-$repo/target}/debug/darkroom"
site="$repo/target/site"  # cargo-leptos writes the site here, whatever the target dir
[ -x "$bin" ] && [ -d "$site" ] || { echo "build first: make site" >&2; exit 2; }
id=$$
work=$(mktemp -d /tmp/darkroom-network-XXXXXX)
net="drk$id-net"
declare -A addr=([app]=10.77.0.1 [fal]=10.77.0.2 [web]=10.77.0.3)
pids=()

cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for ns in app fal web net; do ip netns del "drk$id-$ns" 2>/dev/null || true; rm -rf "/etc/netns/drk$id-$ns"; done
  if [ "${KEEP_NETWORK_LOGS:-}" = "" ]; then rm -rf "$work"; else echo "logs kept in $work"; fi
}
trap cleanup EXIT

echo "==> network: a bridge and three hosts (app ${addr[app]}, fal ${addr[fal]}, browser ${addr[web]})"
ip netns add "$net"
ip -n "$net" link add br0 type bridge
ip -n "$net" link set br0 up
for host in app fal web; do
  ns="drk$id-$host"
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip link add "d$id${host:0:1}" type veth peer name "s$id${host:0:1}"
  ip link set "d$id${host:0:1}" netns "$ns"
  ip link set "s$id${host:0:1}" netns "$net"
  ip -n "$ns" link set "d$id${host:0:1}" name eth0
  ip -n "$ns" addr add "${addr[$host]}/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$net" link set "s$id${host:0:1}" master br0 up
  # `ip netns exec` mounts /etc/netns/<ns>/hosts over /etc/hosts for what runs inside.
  mkdir -p "/etc/netns/$ns"
  printf '127.0.0.1 localhost\n%s darkroom.test\n' "${addr[app]}" > "/etc/netns/$ns/hosts"
done
on() { local host=$1; shift; ip netns exec "drk$id-$host" "$@"; }
# A service, started in the background (`serve … &`): `exec` makes `$!` the service itself, so the
# cleanup's SIGTERM reaches it (nginx then stops its workers too), and it gets SIGTERM as well when
# this script dies before its cleanup runs.
serve() { local host=$1; shift; exec ip netns exec "drk$id-$host" setpriv --pdeathsig TERM "$@"; }

echo "==> TLS: a CA and a certificate for darkroom.test"
openssl req -x509 -new -nodes -newkey rsa:2048 -keyout "$work/ca.key" -out "$work/ca.pem" -days 2 \
  -subj "/CN=Darkroom network test CA" -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -new -nodes -newkey rsa:2048 -keyout "$work/site.key" -out "$work/site.csr" -subj "/CN=darkroom.test" 2>/dev/null
printf 'subjectAltName=DNS:darkroom.test\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > "$work/site.ext"
openssl x509 -req -in "$work/site.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
  -out "$work/site.pem" -days 2 -extfile "$work/site.ext" 2>/dev/null
spki=$(openssl x509 -in "$work/site.pem" -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)

echo "==> the fake fal on ${addr[fal]}:3999"
serve fal "$bin" fake-fal --addr "${addr[fal]}:3999" --trust-ca "$work/ca.pem" > "$work/fake-fal.log" 2>&1 &
pids+=($!)

echo "==> darkroom behind nginx on ${addr[app]}:443"
mkdir -p "$work/data" "$work/nginx"
serve app env -i PATH="$PATH" RUST_LOG=info NO_COLOR=1 \
  LEPTOS_SITE_ADDR=127.0.0.1:3000 LEPTOS_SITE_ROOT="$site" LEPTOS_OUTPUT_NAME=darkroom \
  PUBLIC_URL=https://darkroom.test DARKROOM_TRUST_FORWARDED_FOR=1 DARKROOM_DATA_DIR="$work/data" \
  FAL_QUEUE_URL="http://${addr[fal]}:3999/queue" FAL_API_URL="http://${addr[fal]}:3999/v1" \
  FAL_REST_URL="http://${addr[fal]}:3999/rest" FAL_JWKS_URL="http://${addr[fal]}:3999/rest/.well-known/jwks.json" \
  FAL_MEDIA_HOSTS="${addr[fal]}" DARKROOM_JOB_POLL_MAX_MS=2000 DARKROOM_FACE_CHECK=off \
  "$bin" serve > "$work/darkroom.log" 2>&1 &
pids+=($!)
sed -e "s|@WORK@|$work|g" -e "s|@LISTEN@|${addr[app]}|g" end2end/network/nginx.conf > "$work/nginx/nginx.conf"
serve app nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" -g 'daemon off;' > "$work/nginx/stdout.log" 2>&1 &
pids+=($!)

wait_for() {
  local what=$1; shift
  for _ in $(seq 120); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
  echo "gave up waiting for $what" >&2
  tail -n 40 "$work"/*.log "$work"/nginx/*.log >&2 || true
  exit 1
}
wait_for "the fake fal" on fal curl -sf "http://${addr[fal]}:3999/healthz"
wait_for "darkroom through the proxy" on web curl -sf --cacert "$work/ca.pem" https://darkroom.test/healthz

echo "==> the browser on ${addr[web]}"
status=0
on web env PATH="$PATH" HOME="$HOME" DARKROOM_NETWORK_SPKI="$spki" DARKROOM_NETWORK_FAL="http://${addr[fal]}:3999" \
  CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}" \
  bash -c 'cd end2end && npx playwright test --config network/playwright.config.js' || status=$?
if [ $status != 0 ]; then
  echo "--- darkroom.log"; tail -n 60 "$work/darkroom.log"
  echo "--- fake-fal.log"; tail -n 30 "$work/fake-fal.log"
  echo "--- nginx"; tail -n 30 "$work/nginx/error.log" 2>/dev/null || true
fi
if grep -q "panicked" "$work/darkroom.log"; then
  echo "the server panicked:"; grep -A3 panicked "$work/darkroom.log"; status=1
fi
exit $status
