#!/usr/bin/env bash
# lab/netns/demo.sh: README command 1. ferrolb doing its job in the lab: three nodes run
# `ferrolb speaker` on the configuration in examples/lab (a pool, a BGP peer, an advertisement
# and a dual-stack Service), an FRR router balances a client's requests across them (ECMP),
# a node is drained without a failed request, an advertisement is edited live without a session
# reset, and a killed speaker is withdrawn while traffic goes on. Then layer 2 on a LAN with no
# router (examples/l2-homelab): one node answers ARP for the service address, and when it is
# killed another takes over in well under a second while a client keeps sending requests.
#
#   sudo lab/netns/demo.sh [--keep]     (--keep leaves the lab and speakers running)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
readonly LAB=demo
readonly PORT=8080
readonly STATE="/run/ferrolb-lab/${LAB}"
readonly CONFIG="${STATE}/config"
KEEP=0
case "${1:-}" in
  "") ;;
  --keep) KEEP=1 ;;
  *) echo "usage: $0 [--keep]" >&2; exit 2 ;;
esac

[[ "$(id -u)" == "0" ]] || { echo "demo.sh: needs root (network namespaces): sudo $0" >&2; exit 1; }

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
vtysh_rtr() { ip netns exec "${LAB}-rtr" vtysh --vty_socket "${STATE}/frr" "$@"; }
declare -A SPEAKER_PID=() HTTP_PID=()

cleanup() {
  if [[ "$KEEP" == 1 ]]; then
    echo
    echo "Lab '${LAB}' left running (--keep). Configuration: ${CONFIG}; logs: ${STATE}/demo/"
    echo "Router CLI: lab/netns/lab.sh router-cli --name ${LAB} -c 'show bgp summary'"
    echo "Stop everything with: lab/netns/lab.sh down --name ${LAB}"
    return
  fi
  say "Tearing down"
  for pid in "${SPEAKER_PID[@]}" "${HTTP_PID[@]}"; do kill "$pid" 2>/dev/null || true; done
  lab/netns/lab.sh down --name "$LAB"
}
trap cleanup EXIT

say "Installing dependencies and building ferrolb"
scripts/install-deps.sh
# shellcheck source=scripts/cargo-env.sh
source scripts/cargo-env.sh
cargo build --release --quiet -p ferrolb
FERROLB="${CARGO_TARGET_DIR:-target}/release/ferrolb"
[[ "$FERROLB" == /* ]] || FERROLB="$PWD/$FERROLB"

say "Bringing up the lab: FRR router (AS 64500, ECMP), nodes n1-n3, a client, and a LAN for layer 2"
lab/netns/lab.sh up --name "$LAB" --router frr --nodes 3 --l2
mkdir -p "${STATE}/demo"
rm -rf "$CONFIG"
cp -r examples/lab "$CONFIG"
echo "configuration (a copy of examples/lab, edited live below):"
"$FERROLB" check "$CONFIG" | sed 's/^/    /'

start_speaker() { # node index
  local i="$1"
  ip netns exec "${LAB}-n${i}" "$FERROLB" speaker --config-dir "$CONFIG" --node-name "n${i}" \
    --bind-vips lo --drain-time 3s >"${STATE}/demo/speaker-n${i}.log" 2>&1 &
  SPEAKER_PID[$i]=$!
}

for i in 1 2 3; do
  ip netns exec "${LAB}-n${i}" python3 -c '
import http.server, socket, sys
class Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("hello from " + sys.argv[1] + "\n").encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args): pass
class DualStack(http.server.ThreadingHTTPServer): address_family = socket.AF_INET6
DualStack(("::", int(sys.argv[2])), Answer).serve_forever()' "n${i}" "$PORT" >"${STATE}/demo/http-n${i}.log" 2>&1 &
  HTTP_PID[$i]=$!
  start_speaker "$i"
done

paths() { # prefix -> "count nexthop:localpref:communities ..."
  local afi=ipv4
  [[ "$1" == *:* ]] && afi=ipv6
  vtysh_rtr -c "show bgp ${afi} unicast $1 json" | python3 -c '
import json, sys
paths = json.load(sys.stdin).get("paths", [])
print(len(paths), " ".join("%s:%s:%s" % (p["nexthops"][0]["ip"], p.get("locPrf", "-"),
      p.get("community", {}).get("string", "").replace(" ", ",")) for p in paths))'
}
wait_paths() { # prefix count
  local n=""
  for _ in $(seq 1 150); do
    n="$(paths "$1" | cut -d" " -f1)"
    [[ "$n" == "$2" ]] && return 0
    sleep 0.2
  done
  echo "demo.sh: the router has ${n} paths for $1, expected $2" >&2
  exit 1
}

say "Each node's speaker reads the folder, gets the same addresses, and announces them"
wait_paths 203.0.113.10/32 3
wait_paths 2001:db8:ff::10/128 3
grep -h "service addresses changed" "${STATE}"/demo/speaker-n*.log | sed 's/\x1b\[[0-9;]*m//g; s/^/    /'
vtysh_rtr -c "show bgp summary"

say "The router's BGP table: three paths per service address, with our communities"
vtysh_rtr -c "show bgp ipv4 unicast 203.0.113.10/32" -c "show bgp ipv6 unicast 2001:db8:ff::10/128"
say "...installed as one ECMP route"
vtysh_rtr -c "show ip route 203.0.113.10/32" -c "show ipv6 route 2001:db8:ff::10/128"

requests() { # count, url
  for _ in $(seq 1 "$1"); do
    ip netns exec "${LAB}-cl" curl -s --max-time 2 "$2" || echo "FAILED"
  done
}

say "The client sends 30 requests to each address: answered by different nodes"
requests 30 "http://203.0.113.10:${PORT}/" | sort | uniq -c
requests 30 "http://[2001:db8:ff::10]:${PORT}/" | sort | uniq -c

# A client loop that runs through a change. A request is answered, reset in flight, or lost
# (refused, or no answer: traffic sent where nothing serves it). Resets come from the router:
# Linux ECMP re-hashes flows when its next-hop set changes, so a connection open at that instant
# can land on another node, which resets it; what the drain must prevent is loss.
loop_start() {
  rm -f "${STATE}/demo/stop-loop"
  # shellcheck disable=SC2016 # the loop's variables belong to the inner shell
  ip netns exec "${LAB}-cl" bash -c '
    ok=0; reset=0; lost=0
    for _ in $(seq 1 3000); do
      [[ -e "$2" ]] && break
      rc=0
      curl -s --max-time 2 "$1" >/dev/null || rc=$?
      case "$rc" in
        0) ok=$((ok+1)) ;;
        52|55|56) reset=$((reset+1)) ;;
        *) lost=$((lost+1)) ;;
      esac
      sleep 0.02
    done
    echo "$ok $reset $lost"' _ "http://203.0.113.10:${PORT}/" "${STATE}/demo/stop-loop" >"${STATE}/demo/loop.out" &
  LOOP_PID=$!
}
loop_stop() {
  touch "${STATE}/demo/stop-loop"
  wait "$LOOP_PID"
  read -r ok reset lost <"${STATE}/demo/loop.out"
  echo "client loop: ${ok} requests answered, ${lost} lost, ${reset} reset in flight by the router's ECMP re-hash"
  [[ "$lost" == 0 ]] || { echo "demo.sh: requests were lost" >&2; exit 1; }
}

say "Draining n1 (SIGTERM): its routes get GRACEFUL_SHUTDOWN, then go, then a Cease"
loop_start
sleep 1
kill -TERM "${SPEAKER_PID[1]}"
for _ in $(seq 1 50); do
  p="$(paths 203.0.113.10/32)"
  [[ "$p" == *"192.0.2.11:0:"*graceful-shutdown* ]] && break
  sleep 0.1
done
echo "router's paths (next hop:local-pref:communities): ${p#* }"
wait_paths 203.0.113.10/32 2
wait "${SPEAKER_PID[1]}" || true
grep -E "draining|NOTIFICATION|stopped" "${STATE}/demo/speaker-n1.log" | sed 's/\x1b\[[0-9;]*m//g; s/^/    /'
vtysh_rtr -c "show ip route 203.0.113.10/32"
sleep 1
loop_stop
start_speaker 1
wait_paths 203.0.113.10/32 3

say "Editing the BGPAdvertisement live: a new community, no session reset"
vtysh_rtr -c "show bgp summary" | grep -E "^\*?192"
sed -i 's/communities: \["64500:100"/communities: ["64500:100", "64500:200"/' "${CONFIG}/ferrolb.yaml"
grep -n communities "${CONFIG}/ferrolb.yaml" | sed 's/^/    ferrolb.yaml:/'
for _ in $(seq 1 50); do
  [[ "$(paths 203.0.113.10/32)" == *"64500:200"*"64500:200"*"64500:200"* ]] && break
  sleep 0.1
done
echo "router's paths now: $(paths 203.0.113.10/32 | cut -d' ' -f2-)"
vtysh_rtr -c "show bgp summary" | grep -E "^\*?192"
echo "(the Up/Down column keeps counting: the sessions were not reset)"

say "Killing n2's speaker (SIGKILL): its session dies, the router withdraws n2, traffic goes on"
loop_start
sleep 1
kill -KILL "${SPEAKER_PID[2]}"
wait "${SPEAKER_PID[2]}" 2>/dev/null || true
wait_paths 203.0.113.10/32 2
vtysh_rtr -c "show ip route 203.0.113.10/32"
sleep 1
loop_stop

say "Layer 2: the BGP speakers stop; the nodes answer ARP on the LAN (198.18.0.0/24) instead"
for i in 1 2 3; do kill -TERM "${SPEAKER_PID[$i]}" 2>/dev/null || true; done
for i in 1 2 3; do wait "${SPEAKER_PID[$i]}" 2>/dev/null || true; done
L2_CONFIG=examples/l2-homelab
L2_VIP=198.18.0.200
head -c 32 /dev/urandom >"${STATE}/demo/l2.key"
echo "configuration: ${L2_CONFIG} (one pool on the LAN, one L2Advertisement, two Services sharing ${L2_VIP})"

start_l2_speaker() { # node index
  local i="$1"
  # The address goes on lo so the node's HTTP server accepts it; arp_ignore=1 keeps the kernel
  # from answering ARP for it, so only the owner's responder does.
  ip netns exec "${LAB}-n${i}" sysctl -qw net.ipv4.conf.all.arp_ignore=1
  ip netns exec "${LAB}-n${i}" "$FERROLB" speaker --config-dir "$L2_CONFIG" --node-name "n${i}" \
    --l2-key-file "${STATE}/demo/l2.key" --bind-vips lo --listen-port 0 --drain-time 1s \
    >>"${STATE}/demo/speaker-l2-n${i}.log" 2>&1 &
  SPEAKER_PID[$i]=$!
}
l2_owner() { # node index to ask -> the owner it sees, or nothing
  ip netns exec "${LAB}-n$1" "$FERROLB" status l2 -o json 2>/dev/null | python3 -c '
import json, sys
groups = json.load(sys.stdin).get("groups", [])
print(next((g.get("owner", "") for g in groups if g.get("key") == sys.argv[1]), ""))' "$L2_VIP" || true
}
wait_l2_owner() { # node index to ask, owner to avoid -> the owner
  local owner=""
  for _ in $(seq 1 200); do
    owner="$(l2_owner "$1")"
    [[ -n "$owner" && "$owner" != "$2" ]] && { echo "$owner"; return 0; }
    sleep 0.1
  done
  echo "demo.sh: node n$1 sees no new owner for ${L2_VIP}" >&2
  exit 1
}

for i in 1 2 3; do start_l2_speaker "$i"; done
OWNER="$(wait_l2_owner 1 "")"
ip netns exec "${LAB}-n1" "$FERROLB" status l2
OWNER_MAC="$(ip netns exec "${LAB}-${OWNER}" cat /sys/class/net/eth1/address)"
say "ARP from the client: exactly one answer per request, from ${OWNER} (${OWNER_MAC})"
ip netns exec "${LAB}-cl" arping -c 3 -w 5 -I eth1 "$L2_VIP" || true
requests 6 "http://${L2_VIP}:${PORT}/" | sort | uniq -c

say "${OWNER} dies (speaker SIGKILLed, LAN link cut) while the client sends a request every 20 ms"
# Killing only the speaker would leave ${OWNER} serving the address it still has on lo to every
# client that cached its MAC: nothing would fail and nothing would be measured. A dead node is
# gone from the LAN too, so the client's requests fail until the new owner's announcement.
rm -f "${STATE}/demo/stop-loop"
# shellcheck disable=SC2016 # the loop's variables belong to the inner program
ip netns exec "${LAB}-cl" python3 -c '
import os, sys, time, urllib.request
url, stop = sys.argv[1], sys.argv[2]
answers, failures, last_ok, longest, first_after = 0, 0, None, 0.0, None
start = time.monotonic()
while not os.path.exists(stop) and time.monotonic() - start < 60:
    t = time.monotonic()
    try:
        body = urllib.request.urlopen(url, timeout=0.25).read().decode().strip()
        answers += 1
        if last_ok is not None and t - last_ok > longest:
            longest, first_after = t - last_ok, body
        last_ok = t
    except Exception:
        failures += 1
    time.sleep(0.02)
print(answers, failures, round(longest * 1000), first_after or "-")' \
  "http://${L2_VIP}:${PORT}/" "${STATE}/demo/stop-loop" >"${STATE}/demo/l2-loop.out" &
LOOP_PID=$!
sleep 1
KILLED_INDEX="${OWNER#n}"
kill -KILL "${SPEAKER_PID[$KILLED_INDEX]}"
ip -n "${LAB}-${OWNER}" link set eth1 down
wait "${SPEAKER_PID[$KILLED_INDEX]}" 2>/dev/null || true
SURVIVOR=1
[[ "$KILLED_INDEX" == 1 ]] && SURVIVOR=2
NEW_OWNER="$(wait_l2_owner "$SURVIVOR" "$OWNER")"
sleep 1.5
touch "${STATE}/demo/stop-loop"
wait "$LOOP_PID"
read -r answers failures gap_ms first_after <"${STATE}/demo/l2-loop.out"
echo "client loop: ${answers} requests answered, ${failures} unanswered during the takeover;"
echo "the longest gap between two answers was ${gap_ms} ms, then '${first_after}'"
(( gap_ms < 1000 )) || { echo "demo.sh: the layer-2 failover took ${gap_ms} ms" >&2; exit 1; }
ip netns exec "${LAB}-n${SURVIVOR}" "$FERROLB" status l2
echo "the client's neighbour entry now points at ${NEW_OWNER}'s MAC (the announcement overrides it):"
ip netns exec "${LAB}-cl" ip neigh show "$L2_VIP"

say "${OWNER} comes back: it does not take the address back (no second move)"
ip -n "${LAB}-${OWNER}" link set eth1 up
start_l2_speaker "$KILLED_INDEX"
sleep 2
AFTER="$(l2_owner "$SURVIVOR")"
echo "owner of ${L2_VIP}: ${AFTER}"
[[ "$AFTER" == "$NEW_OWNER" ]] || { echo "demo.sh: the address moved back to ${AFTER}" >&2; exit 1; }

say "Done: routes at a real router, traffic to the service address, drain and failover without a lost request, and a layer-2 takeover in ${gap_ms} ms"
