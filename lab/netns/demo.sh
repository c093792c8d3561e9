#!/usr/bin/env bash
# lab/netns/demo.sh: README command 1. Shows ferrolb's BGP speaker doing its job in the lab:
# three nodes announce one service address (IPv4 and IPv6) to an FRR router, the router
# balances a client's requests across them (ECMP), and when a speaker is stopped or killed the
# router withdraws that node as next hop while requests keep being answered.
#
#   sudo lab/netns/demo.sh [--keep]     (--keep leaves the lab and speakers running)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
readonly LAB=demo
readonly VIP=203.0.113.10
readonly VIP6=2001:db8:ff::10
readonly NODE_AS=4200000000
readonly PORT=8080
readonly STATE="/run/ferrolb-lab/${LAB}"
KEEP=0
[[ "${1:-}" == "--keep" ]] && KEEP=1
[[ $# -le 1 && ( $# -eq 0 || "${1}" == "--keep" ) ]] || { echo "usage: $0 [--keep]" >&2; exit 2; }

[[ "$(id -u)" == "0" ]] || { echo "demo.sh: needs root (network namespaces): sudo $0" >&2; exit 1; }

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
vtysh_rtr() { ip netns exec "${LAB}-rtr" vtysh --vty_socket "${STATE}/frr" "$@"; }
declare -A SPEAKER_PID=() HTTP_PID=()

cleanup() {
  if [[ "$KEEP" == 1 ]]; then
    echo
    echo "Lab '${LAB}' left running (--keep). Router CLI: lab/netns/lab.sh router-cli --name ${LAB}"
    echo "Stop everything with: lab/netns/lab.sh down --name ${LAB}"
    return
  fi
  say "Tearing down"
  for pid in "${SPEAKER_PID[@]}" "${HTTP_PID[@]}"; do kill "$pid" 2>/dev/null || true; done
  lab/netns/lab.sh down --name "$LAB"
}
trap cleanup EXIT

say "Installing dependencies and building the speaker"
scripts/install-deps.sh
# shellcheck source=scripts/cargo-env.sh
source scripts/cargo-env.sh
cargo build --release --quiet -p ferrolb-bgpd --example announce
ANNOUNCE="${CARGO_TARGET_DIR:-target}/release/examples/announce"
[[ "$ANNOUNCE" == /* ]] || ANNOUNCE="$PWD/$ANNOUNCE"

say "Bringing up the lab: FRR router (AS 64500, ECMP), nodes n1-n3, a client"
lab/netns/lab.sh up --name "$LAB" --router frr --nodes 3
mkdir -p "${STATE}/demo"

start_speaker() { # node index
  local i="$1" ns="${LAB}-n$1"
  ip netns exec "$ns" "$ANNOUNCE" --local-as "$NODE_AS" --peer 192.0.2.1 --peer-as 64500 \
    --hold-time 9 --prefix "${VIP}/32" --prefix "${VIP6}/128" \
    --community 64500:100 --large-community "${NODE_AS}:1:${i}" \
    >"${STATE}/demo/speaker-n${i}.log" 2>&1 &
  SPEAKER_PID[$i]=$!
}

for i in 1 2 3; do
  ns="${LAB}-n${i}"
  # The node accepts the traffic it attracts: the service address lives on its loopback.
  ip -n "$ns" addr add "${VIP}/32" dev lo
  ip -n "$ns" addr add "${VIP6}/128" dev lo
  ip netns exec "$ns" python3 -c '
import http.server, sys
class Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("hello from " + sys.argv[1] + "\n").encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args): pass
class V6(http.server.ThreadingHTTPServer): address_family = __import__("socket").AF_INET6
V6(("::", int(sys.argv[2])), Answer).serve_forever()' "n${i}" "$PORT" >"${STATE}/demo/http-n${i}.log" 2>&1 &
  HTTP_PID[$i]=$!
  start_speaker "$i"
done

wait_paths() { # count
  local want="$1" n=0
  for _ in $(seq 1 100); do
    n="$(vtysh_rtr -c "show bgp ipv4 unicast ${VIP}/32 json" |
      python3 -c 'import json,sys; print(len(json.load(sys.stdin).get("paths", [])))')"
    [[ "$n" == "$want" ]] && return 0
    sleep 0.2
  done
  echo "demo.sh: the router has ${n} paths for ${VIP}, expected ${want}" >&2
  exit 1
}

say "Each node's speaker peers with the router and announces ${VIP}/32 and ${VIP6}/128"
wait_paths 3
vtysh_rtr -c "show bgp summary"

say "The router's BGP table: three paths per service address, with our communities"
vtysh_rtr -c "show bgp ipv4 unicast ${VIP}/32" -c "show bgp ipv6 unicast ${VIP6}/128"
say "...installed as one ECMP route"
vtysh_rtr -c "show ip route ${VIP}/32" -c "show ipv6 route ${VIP6}/128"

requests() { # count, address
  local n="$1" addr="$2" url
  if [[ "$addr" == *:* ]]; then url="http://[${addr}]:${PORT}/"; else url="http://${addr}:${PORT}/"; fi
  for _ in $(seq 1 "$n"); do
    ip netns exec "${LAB}-cl" curl -s --max-time 2 "$url" || echo "FAILED"
  done
}

say "The client sends 30 requests to ${VIP} and 30 to [${VIP6}]: answered by different nodes"
requests 30 "$VIP" | sort | uniq -c
requests 30 "$VIP6" | sort | uniq -c

# A client loop that runs through each failover; it counts what fails.
loop_start() {
  ip netns exec "${LAB}-cl" bash -c '
    ok=0; fail=0
    while [[ ! -e "$2" ]]; do
      if curl -s --max-time 2 "http://$1:'"$PORT"'/" >/dev/null; then ok=$((ok+1)); else fail=$((fail+1)); fi
      sleep 0.02
    done
    echo "$ok $fail"' _ "$VIP" "${STATE}/demo/stop-loop" >"${STATE}/demo/loop.out" &
  LOOP_PID=$!
}
loop_stop() {
  touch "${STATE}/demo/stop-loop"
  wait "$LOOP_PID"
  rm -f "${STATE}/demo/stop-loop"
  read -r ok fail <"${STATE}/demo/loop.out"
  echo "client loop: ${ok} requests answered, ${fail} failed"
  [[ "$fail" == 0 ]] || { echo "demo.sh: requests failed during the failover" >&2; exit 1; }
}

say "Stopping n1's speaker (SIGTERM): it sends a Cease NOTIFICATION, the router withdraws n1"
loop_start
sleep 1
kill -TERM "${SPEAKER_PID[1]}"
wait "${SPEAKER_PID[1]}" || true
wait_paths 2
echo "n1's speaker says:"
grep -E "stopping|NOTIFICATION" "${STATE}/demo/speaker-n1.log" | sed -e 's/\x1b\[[0-9;]*m//g' -e 's/^/    /'
vtysh_rtr -c "show ip route ${VIP}/32"
sleep 1
loop_stop

say "Killing n2's speaker (SIGKILL): its TCP session dies, the router withdraws n2 at once"
loop_start
sleep 1
kill -KILL "${SPEAKER_PID[2]}"
wait "${SPEAKER_PID[2]}" 2>/dev/null || true
wait_paths 1
vtysh_rtr -c "show ip route ${VIP}/32"
sleep 1
loop_stop

say "Restarting both speakers: the router has three next hops again"
start_speaker 1
start_speaker 2
wait_paths 3
vtysh_rtr -c "show ip route ${VIP}/32"
requests 30 "$VIP" | sort | uniq -c

say "Done: routes at a real router, traffic to the service address, failover without a failed request"
