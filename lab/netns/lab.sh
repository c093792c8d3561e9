#!/usr/bin/env bash
# lab/netns/lab.sh: the ferrolb network-namespace lab.
#
# One topology, used by the demo and by the lab tests (crates/labtest):
#
#   NAME-cl  eth0 198.51.100.10/24, 2001:db8:0:2::10/64
#      |
#   NAME-rtr eth1 198.51.100.1/24,  2001:db8:0:2::1/64   (FRR, BIRD 2 or GoBGP; AS 64500)
#            eth0 192.0.2.1/24,     2001:db8:0:1::1/64
#      |
#   NAME-sw  br0 (the fabric bridge; ports rtr, n1..nN)
#      |
#   NAME-n<i> eth0 192.0.2.(10+i)/24, 2001:db8:0:1::(10+i)/64
#
# With --l2, a second segment for layer-2 mode (no router on it): a LAN bridge br1 in NAME-sw
# with every node and the client:
#
#   NAME-cl   eth1 198.18.0.100/24, fd00:18::100/64
#   NAME-n<i> eth1 198.18.0.(10+i)/24, fd00:18::(10+i)/64
#
# Every link is created directly inside the namespaces, so nothing appears in the
# root namespace and several labs (different NAMEs) can run at once. The router
# daemons run inside NAME-rtr with their config, pid files, sockets and logs in
# /run/ferrolb-lab/NAME/; the system services are never touched.
#
# Usage: see `lab.sh help`.
set -euo pipefail

readonly STATE_ROOT="/run/ferrolb-lab"
readonly ASN="64500"
readonly ROUTER_ID="192.0.2.1"
readonly GOBGP_API_PORT="50051"
readonly WAIT_SECS="20"
readonly MAX_NODES="40"

# The lab's addresses, in one place: topology_up uses them, `lab.sh env` prints them, and the
# Rust harness (crates/labtest) and the containerlab topology (lab/containerlab) are checked
# against that output.
readonly ROUTER_FABRIC_V4="192.0.2.1/24" ROUTER_FABRIC_V6="2001:db8:0:1::1/64"
readonly ROUTER_CLIENT_V4="198.51.100.1/24" ROUTER_CLIENT_V6="2001:db8:0:2::1/64"
readonly CLIENT_V4="198.51.100.10/24" CLIENT_V6="2001:db8:0:2::10/64"
node_v4() { echo "192.0.2.$((10 + $1))/24"; }
node_v6() { echo "2001:db8:0:1::$((10 + $1))/64"; }
readonly L2_CLIENT_V4="198.18.0.100/24" L2_CLIENT_V6="fd00:18::100/64"
l2_node_v4() { echo "198.18.0.$((10 + $1))/24"; }
l2_node_v6() { echo "fd00:18::$((10 + $1))/64"; }

LAB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly LAB_DIR
readonly TEMPLATE_DIR="${LAB_DIR}/routers"

# Binaries (overridable, e.g. to test the "binary missing" error).
readonly FRR_DIR="${FERROLB_LAB_FRR_DIR:-/usr/lib/frr}"
readonly VTYSH="${FERROLB_LAB_VTYSH:-vtysh}"
readonly BIRD="${FERROLB_LAB_BIRD:-bird}"
readonly BIRDC="${FERROLB_LAB_BIRDC:-birdc}"
readonly GOBGPD="${FERROLB_LAB_GOBGPD:-gobgpd}"
readonly GOBGP="${FERROLB_LAB_GOBGP:-gobgp}"

usage() {
  cat <<'EOF'
lab/netns/lab.sh: the ferrolb network-namespace lab (needs root)

  lab.sh up      [--name NAME] [--router frr|bird|gobgp] [--router-config FILE]
                 [--nodes N] [--router-port PORT] [--l2]
  lab.sh down    [--name NAME]
  lab.sh status  [--name NAME]
  lab.sh router-stop | router-start | router-restart [--name NAME]
  lab.sh router-cli [--name NAME] [ARGS...]   vtysh / birdc / gobgp for this lab's router
  lab.sh list                                 names of the labs that have state
  lab.sh env [--nodes N] [--l2]               the lab's numbers, nodes, links and addresses

NAME: 1-6 letters or digits (default fl). Namespaces: NAME-sw, NAME-rtr, NAME-n1..NAME-nN,
NAME-cl. State (configs, pid files, sockets, logs): /run/ferrolb-lab/NAME/.
--router-config replaces the router's default config (for FRR: the bgpd config); the
placeholders @NAME@ @STATE_DIR@ @ROUTER_PORT@ @ASN@ @ROUTER_ID@ are substituted in it.
--l2 adds the layer-2 LAN: bridge br1 with every node's and the client's eth1.
EOF
}

die() {
  echo "lab.sh: error: $*" >&2
  exit 1
}

say() {
  echo "lab.sh: $*"
}

# ---------------------------------------------------------------- arguments

CMD="${1:-help}"
if [[ $# -gt 0 ]]; then shift; fi

NAME="fl"
ROUTER="frr"
ROUTER_SET=""
ROUTER_CONFIG=""
NODES="3"
NODES_SET=""
ROUTER_PORT="179"
ROUTER_PORT_SET=""
L2=""
CLI_ARGS=()

parse_options() {
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --name) [[ $# -ge 2 ]] || die "--name needs a value"; NAME="$2"; shift 2 ;;
      --router) [[ $# -ge 2 ]] || die "--router needs a value"; ROUTER="$2"; ROUTER_SET=1; shift 2 ;;
      --router-config)
        [[ $# -ge 2 ]] || die "--router-config needs a value"
        ROUTER_CONFIG="$2"; shift 2 ;;
      --nodes) [[ $# -ge 2 ]] || die "--nodes needs a value"; NODES="$2"; NODES_SET=1; shift 2 ;;
      --router-port)
        [[ $# -ge 2 ]] || die "--router-port needs a value"
        ROUTER_PORT="$2"; ROUTER_PORT_SET=1; shift 2 ;;
      --l2) L2=1; shift ;;
      --) shift; CLI_ARGS+=("$@"); break ;;
      -h | --help) usage; exit 0 ;;
      *)
        if [[ "$CMD" == "router-cli" ]]; then
          CLI_ARGS+=("$1"); shift
        else
          die "unknown option '$1' (see: lab.sh help)"
        fi
        ;;
    esac
  done
  [[ "$NAME" =~ ^[A-Za-z0-9]{1,6}$ ]] || die "--name must be 1-6 letters or digits, got '$NAME'"
  case "$ROUTER" in frr | bird | gobgp) ;; *) die "--router must be frr, bird or gobgp, got '$ROUTER'" ;; esac
  if ! [[ "$NODES" =~ ^[1-9][0-9]*$ ]] || ((NODES > MAX_NODES)); then
    die "--nodes must be 1..${MAX_NODES}, got '$NODES'"
  fi
  if ! [[ "$ROUTER_PORT" =~ ^[1-9][0-9]*$ ]] || ((ROUTER_PORT > 65535)); then
    die "--router-port must be 1..65535, got '$ROUTER_PORT'"
  fi
  if [[ -n "$ROUTER_CONFIG" ]]; then
    [[ -r "$ROUTER_CONFIG" ]] || die "--router-config file '$ROUTER_CONFIG' is not readable"
    ROUTER_CONFIG="$(realpath -- "$ROUTER_CONFIG")"
  fi
  STATE="${STATE_ROOT}/${NAME}"
  NS_SW="${NAME}-sw"
  NS_RTR="${NAME}-rtr"
  NS_CL="${NAME}-cl"
}

# ---------------------------------------------------------------- preflight

require_root() {
  [[ "$(id -u)" == "0" ]] ||
    die "the lab needs root (network namespaces); run: sudo lab/netns/lab.sh ${CMD} (or sudo scripts/test.sh)"
}

require_tool() { # tool package
  command -v "$1" >/dev/null 2>&1 ||
    die "'$1' not found (Debian package $2); run scripts/install-deps.sh as root"
}

require_base_tools() {
  require_tool ip iproute2
  require_tool sysctl procps
  require_tool flock util-linux
}

require_router_tools() { # kind
  case "$1" in
    frr)
      local d
      for d in zebra bgpd; do
        [[ -x "${FRR_DIR}/${d}" ]] ||
          die "FRR daemon ${FRR_DIR}/${d} not found (Debian package frr); run scripts/install-deps.sh as root"
      done
      require_tool "$VTYSH" frr
      id -u frr >/dev/null 2>&1 ||
        die "user 'frr' does not exist (created by the Debian package frr); run scripts/install-deps.sh as root"
      ;;
    bird)
      require_tool "$BIRD" bird2
      require_tool "$BIRDC" bird2
      ;;
    gobgp)
      require_tool "$GOBGPD" gobgpd
      require_tool "$GOBGP" gobgpd
      ;;
  esac
}

# ---------------------------------------------------------------- helpers

nsx() { # ns cmd... : run a command inside a namespace
  local ns="$1"
  shift
  ip netns exec "$ns" "$@"
}

ns_exists() {
  [[ -e "/run/netns/$1" ]]
}

lab_namespaces() { # every namespace of this lab that exists
  local ns
  ip netns list 2>/dev/null | while read -r ns _; do
    if [[ "$ns" =~ ^${NAME}-(sw|rtr|cl|n[0-9]+)$ ]]; then
      echo "$ns"
    fi
  done
}

wait_until() { # seconds cmd... : poll until cmd succeeds
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

pid_is_ours() { # pid : alive, and started with a path inside our state dir
  local pid="$1" cmdline
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ -r "/proc/${pid}/cmdline" ]] || return 1
  cmdline="$(tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null)" || return 1
  [[ "$cmdline" == *"${STATE}/"* ]]
}

pid_alive() {
  [[ -d "/proc/$1" ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

stop_pids() { # pid... : TERM, wait up to 5 s, then KILL
  local pid waited=0 left
  [[ $# -gt 0 ]] || return 0
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  while ((waited < 50)); do
    left=0
    for pid in "$@"; do
      if pid_alive "$pid"; then left=1; fi
    done
    ((left)) || return 0
    sleep 0.1
    waited=$((waited + 1))
  done
  for pid in "$@"; do
    if pid_alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  done
}

render() { # src dst : substitute the placeholders
  sed -e "s|@NAME@|${NAME}|g" \
    -e "s|@STATE_DIR@|${STATE}|g" \
    -e "s|@ROUTER_PORT@|${ROUTER_PORT}|g" \
    -e "s|@ASN@|${ASN}|g" \
    -e "s|@ROUTER_ID@|${ROUTER_ID}|g" \
    "$1" >"$2"
}

load_env() { # read the lab's saved settings; false when the lab has no state
  [[ -r "${STATE}/lab.env" ]] || return 1
  local key value
  while IFS='=' read -r key value; do
    case "$key" in
      ROUTER) ROUTER="$value" ;;
      NODES) NODES="$value" ;;
      ROUTER_PORT) ROUTER_PORT="$value" ;;
      L2) [[ -n "$L2" ]] || L2="$value" ;;
    esac
  done <"${STATE}/lab.env"
}

save_env() {
  printf 'ROUTER=%s\nNODES=%s\nROUTER_PORT=%s\nL2=%s\n' "$ROUTER" "$NODES" "$ROUTER_PORT" "$L2" >"${STATE}/lab.env"
}

# ---------------------------------------------------------------- topology

ns_sysctl() { # ns key=value...
  local ns="$1"
  shift
  nsx "$ns" sysctl -q -w "$@" >/dev/null
}

ensure_ns() { # ns
  local ns="$1" err
  if ! ns_exists "$ns"; then
    if ! err="$(flock "${STATE_ROOT}/.netns.lock" ip netns add "$ns" 2>&1)"; then
      die "cannot create network namespace '$ns' (ip netns add: ${err}); the lab needs root with CAP_SYS_ADMIN and a kernel with network namespaces (in a container: --privileged)"
    fi
  fi
  nsx "$ns" ip link set lo up
  if [[ "$ns" == "$NS_SW" ]]; then
    # The switch is layer 2 only: no addresses, no IPv6 link-locals.
    ns_sysctl "$ns" net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  else
    ns_sysctl "$ns" net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
      net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
  fi
}

ensure_veth() { # ns_a if_a ns_b if_b : a veth pair made inside the namespaces
  local ns_a="$1" if_a="$2" ns_b="$3" if_b="$4"
  if ip -n "$ns_a" link show dev "$if_a" >/dev/null 2>&1 &&
    ip -n "$ns_b" link show dev "$if_b" >/dev/null 2>&1; then
    return 0
  fi
  ip -n "$ns_a" link del dev "$if_a" >/dev/null 2>&1 || true
  ip -n "$ns_b" link del dev "$if_b" >/dev/null 2>&1 || true
  ip -n "$ns_a" link add "$if_a" type veth peer name "$if_b" netns "$ns_b"
}

ensure_bridge_port() { # port_ifname (in NAME-sw)
  ip -n "$NS_SW" link set dev "$1" master br0
  ip -n "$NS_SW" link set dev "$1" up
}

set_host_if() { # ns ifname v4/len v6/len
  local ns="$1" dev="$2"
  ns_sysctl "$ns" "net.ipv6.conf.${dev}.accept_dad=0"
  ip -n "$ns" addr replace "$3" dev "$dev"
  ip -n "$ns" -6 addr replace "$4" dev "$dev" nodad
  ip -n "$ns" link set dev "$dev" up
}

set_default_routes() { # ns v4gw v6gw
  ip -n "$1" route replace default via "$2"
  ip -n "$1" -6 route replace default via "$3"
}

delete_ns() { # ns : stop whatever runs inside, then delete it
  local ns="$1" pids=()
  ns_exists "$ns" || return 0
  mapfile -t pids < <(ip netns pids "$ns" 2>/dev/null | grep -vx -e "$$" -e "${PPID}" || true)
  stop_pids "${pids[@]}"
  flock "${STATE_ROOT}/.netns.lock" ip netns del "$ns" 2>/dev/null || true
}

topology_up() {
  local i ns
  ensure_ns "$NS_SW"
  ensure_ns "$NS_RTR"
  ensure_ns "$NS_CL"
  for ((i = 1; i <= NODES; i++)); do ensure_ns "${NAME}-n${i}"; done
  # Nodes beyond N from an earlier, bigger `up`.
  for ns in $(lab_namespaces); do
    if [[ "$ns" =~ ^${NAME}-n([0-9]+)$ ]] && ((BASH_REMATCH[1] > NODES)); then
      delete_ns "$ns"
    fi
  done

  # The fabric bridge.
  if ! ip -n "$NS_SW" link show dev br0 >/dev/null 2>&1; then
    ip -n "$NS_SW" link add br0 type bridge stp_state 0 mcast_snooping 0
  fi
  ip -n "$NS_SW" link set dev br0 up

  # Router.
  ns_sysctl "$NS_RTR" net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
    net.ipv4.fib_multipath_hash_policy=1 net.ipv6.fib_multipath_hash_policy=1
  ensure_veth "$NS_SW" rtr "$NS_RTR" eth0
  ensure_bridge_port rtr
  set_host_if "$NS_RTR" eth0 "$ROUTER_FABRIC_V4" "$ROUTER_FABRIC_V6"

  # Client.
  ensure_veth "$NS_RTR" eth1 "$NS_CL" eth0
  set_host_if "$NS_RTR" eth1 "$ROUTER_CLIENT_V4" "$ROUTER_CLIENT_V6"
  set_host_if "$NS_CL" eth0 "$CLIENT_V4" "$CLIENT_V6"
  set_default_routes "$NS_CL" "${ROUTER_CLIENT_V4%/*}" "${ROUTER_CLIENT_V6%/*}"

  # Nodes.
  for ((i = 1; i <= NODES; i++)); do
    ns="${NAME}-n${i}"
    ensure_veth "$NS_SW" "n${i}" "$ns" eth0
    ensure_bridge_port "n${i}"
    set_host_if "$ns" eth0 "$(node_v4 "$i")" "$(node_v6 "$i")"
    set_default_routes "$ns" "${ROUTER_FABRIC_V4%/*}" "${ROUTER_FABRIC_V6%/*}"
  done
  if [[ -n "$L2" ]]; then l2_segment_up; fi
}

l2_segment_up() { # the layer-2 LAN: br1 with the client's and every node's eth1, no router
  local i ns
  if ! ip -n "$NS_SW" link show dev br1 >/dev/null 2>&1; then
    ip -n "$NS_SW" link add br1 type bridge stp_state 0 mcast_snooping 0
  fi
  ip -n "$NS_SW" link set dev br1 up
  ensure_veth "$NS_SW" l2cl "$NS_CL" eth1
  ensure_l2_bridge_port l2cl
  set_host_if "$NS_CL" eth1 "$L2_CLIENT_V4" "$L2_CLIENT_V6"
  for ((i = 1; i <= NODES; i++)); do
    ns="${NAME}-n${i}"
    ensure_veth "$NS_SW" "l2n${i}" "$ns" eth1
    ensure_l2_bridge_port "l2n${i}"
    set_host_if "$ns" eth1 "$(l2_node_v4 "$i")" "$(l2_node_v6 "$i")"
  done
}

ensure_l2_bridge_port() { # port_ifname (in NAME-sw)
  ip -n "$NS_SW" link set dev "$1" master br1
  ip -n "$NS_SW" link set dev "$1" up
}

# ---------------------------------------------------------------- routers

router_dir() { # kind
  echo "${STATE}/${1}"
}

router_conf() { # kind
  case "$1" in
    frr) echo "${STATE}/frr/bgpd.conf" ;;
    bird) echo "${STATE}/bird/bird.conf" ;;
    gobgp) echo "${STATE}/gobgp/gobgpd.toml" ;;
  esac
}

router_log() { # kind : the log to show when the router fails
  case "$1" in
    frr) echo "${STATE}/frr/bgpd.log" ;;
    bird) if [[ -s "${STATE}/bird/bird.log" ]]; then echo "${STATE}/bird/bird.log"; else echo "${STATE}/bird/bird.out"; fi ;;
    gobgp) echo "${STATE}/gobgp/gobgpd.log" ;;
  esac
}

router_pidfiles() { # kind : main daemon first
  case "$1" in
    frr) echo "${STATE}/frr/bgpd.pid" "${STATE}/frr/zebra.pid" ;;
    bird) echo "${STATE}/bird/bird.pid" ;;
    gobgp) echo "${STATE}/gobgp/gobgpd.pid" ;;
  esac
}

read_pid() { # pidfile : prints the pid when the process is alive and ours
  local pid
  [[ -r "$1" ]] || return 1
  pid="$(tr -dc '0-9' <"$1")"
  if pid_is_ours "$pid" && pid_alive "$pid"; then echo "$pid"; else return 1; fi
}

router_main_pid() { # kind
  local files
  read -r -a files <<<"$(router_pidfiles "$1")"
  read_pid "${files[0]}"
}

router_running() { # kind : every daemon of the kind is alive
  local f files
  read -r -a files <<<"$(router_pidfiles "$1")"
  for f in "${files[@]}"; do read_pid "$f" >/dev/null || return 1; done
}

router_stop_kind() { # kind
  local f pid files pids=()
  read -r -a files <<<"$(router_pidfiles "$1")"
  for f in "${files[@]}"; do
    if pid="$(read_pid "$f")"; then pids+=("$pid"); fi
  done
  stop_pids "${pids[@]}"
  for f in "${files[@]}"; do rm -f -- "$f"; done
}

router_stop_all() {
  local kind
  for kind in frr bird gobgp; do router_stop_kind "$kind"; done
}

router_cli() { # kind args... : the router's own CLI, pointed at this lab
  case "$1" in
    frr) shift; "$VTYSH" --vty_socket "${STATE}/frr" "$@" ;;
    bird) shift; "$BIRDC" -s "${STATE}/bird/bird.ctl" "$@" ;;
    gobgp) shift; nsx "$NS_RTR" "$GOBGP" --host 127.0.0.1 --port "$GOBGP_API_PORT" "$@" ;;
  esac
}

router_ready() { # kind
  case "$1" in
    frr) router_cli frr -c "show bgp summary json" ;;
    bird) router_cli bird show status ;;
    gobgp) router_cli gobgp -j global | grep -q '"asn"' ;;
  esac
}

start_failed() { # what logfile
  echo "lab.sh: error: $1; last lines of $2:" >&2
  tail -n 15 "$2" >&2 2>/dev/null || true
  exit 1
}

write_router_config() { # kind : renders the config into the state dir; false when unchanged
  local kind="$1" dir conf src
  dir="$(router_dir "$kind")"
  conf="$(router_conf "$kind")"
  mkdir -p "$dir"
  # The source is kept beside the rendered config so that a later `up` without
  # --router-config (or router-start) keeps a custom config.
  if [[ -n "$ROUTER_CONFIG" ]]; then
    cp -f -- "$ROUTER_CONFIG" "${conf}.src.new"
    mv -f -- "${conf}.src.new" "${conf}.src"
  elif [[ ! -f "${conf}.src" ]]; then
    case "$kind" in
      frr) src="${TEMPLATE_DIR}/frr.conf.tmpl" ;;
      bird) src="${TEMPLATE_DIR}/bird.conf.tmpl" ;;
      gobgp) src="${TEMPLATE_DIR}/gobgpd.toml.tmpl" ;;
    esac
    cp -f -- "$src" "${conf}.src"
  fi
  render "${conf}.src" "${conf}.new"
  if [[ "$kind" == "frr" ]]; then
    printf 'frr defaults traditional\nhostname %s-rtr\nip forwarding\nipv6 forwarding\n' \
      "$NAME" >"${dir}/zebra.conf"
  fi
  if [[ -f "$conf" ]] && cmp -s "$conf" "${conf}.new"; then
    rm -f -- "${conf}.new"
    return 1
  fi
  mv -f -- "${conf}.new" "$conf"
  return 0
}

check_router_config() { # kind : parse the config without starting anything
  local kind="$1" conf out
  conf="$(router_conf "$kind")"
  case "$kind" in
    frr) out="$("${FRR_DIR}/bgpd" -C -f "$conf" -u frr -g frr 2>&1)" || true ;;
    bird) out="$("$BIRD" -p -c "$conf" 2>&1)" || die "BIRD rejects ${conf}: ${out//$'\n'/ }" ;;
    gobgp) out="$("$GOBGPD" -d -f "$conf" -t toml 2>&1)" || die "GoBGP rejects ${conf}: ${out//$'\n'/ }" ;;
  esac
  if [[ "$kind" == "frr" ]] && grep -qiE 'unknown command|error occurred|line [0-9]+:' <<<"$out"; then
    die "FRR bgpd rejects ${conf}: ${out//$'\n'/ }"
  fi
}

router_start_kind() { # kind
  local kind="$1" dir conf pid
  dir="$(router_dir "$kind")"
  conf="$(router_conf "$kind")"
  [[ -r "$conf" ]] || die "no router config at ${conf} (run: lab.sh up --name ${NAME})"
  if router_running "$kind"; then return 0; fi
  router_stop_kind "$kind"
  case "$kind" in
    frr)
      # FRR drops privileges to user frr (group frrvty for the vty sockets):
      # root is not in frrvty, so `-u root` is refused. Give frr the directory.
      chown -R frr:frr "$dir"
      rm -f -- "${dir}/zserv.api" "${dir}/zebra.vty" "${dir}/bgpd.vty"
      nsx "$NS_RTR" "${FRR_DIR}/zebra" -d -f "${dir}/zebra.conf" -i "${dir}/zebra.pid" \
        -z "${dir}/zserv.api" --vty_socket "$dir" -P 0 -s 90000000 \
        --log "file:${dir}/zebra.log" </dev/null >>"${dir}/zebra.log" 2>&1 ||
        start_failed "FRR zebra did not start" "${dir}/zebra.log"
      wait_until "$WAIT_SECS" test -S "${dir}/zserv.api" ||
        start_failed "FRR zebra did not open ${dir}/zserv.api" "${dir}/zebra.log"
      local port_args=()
      if [[ "$ROUTER_PORT" != "179" ]]; then port_args=(-p "$ROUTER_PORT"); fi
      nsx "$NS_RTR" "${FRR_DIR}/bgpd" -d -f "$conf" -i "${dir}/bgpd.pid" \
        -z "${dir}/zserv.api" --vty_socket "$dir" -P 0 "${port_args[@]}" \
        --log "file:${dir}/bgpd.log" </dev/null >>"${dir}/bgpd.log" 2>&1 ||
        start_failed "FRR bgpd did not start" "${dir}/bgpd.log"
      wait_until "$WAIT_SECS" test -S "${dir}/bgpd.vty" ||
        start_failed "FRR bgpd did not open ${dir}/bgpd.vty" "${dir}/bgpd.log"
      ;;
    bird)
      rm -f -- "${dir}/bird.ctl"
      nsx "$NS_RTR" "$BIRD" -c "$conf" -s "${dir}/bird.ctl" -P "${dir}/bird.pid" \
        </dev/null >>"${dir}/bird.out" 2>&1 ||
        start_failed "BIRD did not start" "${dir}/bird.out"
      ;;
    gobgp)
      # Not a shell function in the background: `ip netns exec` execs gobgpd, so $! is its pid.
      ip netns exec "$NS_RTR" "$GOBGPD" -f "$conf" -t toml -p --pprof-disable \
        --api-hosts "127.0.0.1:${GOBGP_API_PORT}" </dev/null >>"${dir}/gobgpd.log" 2>&1 &
      pid=$!
      echo "$pid" >"${dir}/gobgpd.pid"
      ;;
  esac
  wait_until "$WAIT_SECS" router_ready "$kind" ||
    start_failed "the ${kind} router did not become ready within ${WAIT_SECS}s" "$(router_log "$kind")"
  wait_until "$WAIT_SECS" router_running "$kind" ||
    die "the ${kind} router has no live pid file in ${dir}"
}

# ---------------------------------------------------------------- commands

cmd_up() {
  require_root
  require_base_tools
  require_router_tools "$ROUTER"
  mkdir -p "$STATE_ROOT"
  local want_router="$ROUTER" want_nodes="$NODES" want_port="$ROUTER_PORT"
  if load_env; then
    # Re-running `up` converges to what is asked; unspecified options keep their value.
    if [[ -z "$ROUTER_SET" ]]; then want_router="$ROUTER"; fi
    if [[ -z "$NODES_SET" ]]; then want_nodes="$NODES"; fi
    if [[ -z "$ROUTER_PORT_SET" ]]; then want_port="$ROUTER_PORT"; fi
  fi
  local port_changed=""
  [[ "$want_port" == "$ROUTER_PORT" ]] || port_changed=1
  ROUTER="$want_router" NODES="$want_nodes" ROUTER_PORT="$want_port"
  require_router_tools "$ROUTER"
  mkdir -p "$STATE"
  chmod 0755 "$STATE"

  topology_up

  # Only one router kind runs at a time.
  local kind
  for kind in frr bird gobgp; do
    if [[ "$kind" != "$ROUTER" ]]; then
      router_stop_kind "$kind"
      rm -rf -- "$(router_dir "$kind")"
    fi
  done
  if write_router_config "$ROUTER" || [[ -n "$port_changed" ]]; then
    check_router_config "$ROUTER"
    router_stop_kind "$ROUTER"
  fi
  save_env
  router_start_kind "$ROUTER"
  say "lab ${NAME} is up: router ${ROUTER} (pid $(router_main_pid "$ROUTER")) in ${NS_RTR}, nodes ${NAME}-n1..${NAME}-n${NODES}, client ${NS_CL}; state in ${STATE}"
}

cmd_down() {
  require_root
  require_base_tools
  mkdir -p "$STATE_ROOT"
  if [[ -d "$STATE" ]]; then router_stop_all; fi
  local ns
  for ns in $(lab_namespaces); do delete_ns "$ns"; done
  rm -rf -- "$STATE"
  say "lab ${NAME} is down"
}

cmd_status() {
  require_root
  require_base_tools
  local ok=1 ns pid i
  if ! load_env; then
    echo "lab ${NAME}: no state in ${STATE} (not up)"
    ok=0
  else
    echo "lab ${NAME}: router ${ROUTER}, ${NODES} nodes, router port ${ROUTER_PORT}, state ${STATE}"
  fi
  local want=("$NS_SW" "$NS_RTR" "$NS_CL")
  for ((i = 1; i <= NODES; i++)); do want+=("${NAME}-n${i}"); done
  for ns in "${want[@]}"; do
    if ns_exists "$ns"; then echo "  netns ${ns}: present"; else
      echo "  netns ${ns}: MISSING"
      ok=0
    fi
  done
  if ((ok)); then
    if pid="$(router_main_pid "$ROUTER")" && router_running "$ROUTER"; then
      echo "  router ${ROUTER}: running (pid ${pid})"
      case "$ROUTER" in
        frr) router_cli frr -c "show bgp summary" | sed 's/^/    /' || true ;;
        bird) router_cli bird show protocols | sed 's/^/    /' || true ;;
        gobgp) router_cli gobgp neighbor | sed 's/^/    /' || true ;;
      esac
    else
      echo "  router ${ROUTER}: NOT RUNNING"
      ok=0
    fi
  fi
  ((ok))
}

cmd_router() { # stop|start|restart
  require_root
  require_base_tools
  load_env || die "lab ${NAME} is not up (no ${STATE}/lab.env); run: lab.sh up --name ${NAME}"
  require_router_tools "$ROUTER"
  case "$1" in
    stop) router_stop_kind "$ROUTER"; say "lab ${NAME}: router ${ROUTER} stopped" ;;
    start)
      ns_exists "$NS_RTR" || die "namespace ${NS_RTR} is missing; run: lab.sh up --name ${NAME}"
      router_start_kind "$ROUTER"
      say "lab ${NAME}: router ${ROUTER} started (pid $(router_main_pid "$ROUTER"))"
      ;;
    restart)
      ns_exists "$NS_RTR" || die "namespace ${NS_RTR} is missing; run: lab.sh up --name ${NAME}"
      router_stop_kind "$ROUTER"
      router_start_kind "$ROUTER"
      say "lab ${NAME}: router ${ROUTER} restarted (pid $(router_main_pid "$ROUTER"))"
      ;;
  esac
}

cmd_router_cli() {
  require_root
  load_env || die "lab ${NAME} is not up (no ${STATE}/lab.env); run: lab.sh up --name ${NAME}"
  router_cli "$ROUTER" "${CLI_ARGS[@]}"
}

cmd_env() {
  # KEY=value lines, then the topology: `node NAME`, `link A:IF B:IF` (the switch's ports are
  # bridge ports of br0), `addr NODE IF ADDRESS/LEN`, `gateway NODE ADDRESS`. Node names are
  # without the lab's NAME- prefix.
  local i
  printf 'STATE_ROOT=%s\nASN=%s\nROUTER_ID=%s\nMAX_NODES=%s\nGOBGP_API_PORT=%s\nNODES=%s\n' \
    "$STATE_ROOT" "$ASN" "$ROUTER_ID" "$MAX_NODES" "$GOBGP_API_PORT" "$NODES"
  if [[ -n "$L2" ]]; then printf 'L2=1\n'; fi
  printf 'node %s\n' sw rtr cl
  for ((i = 1; i <= NODES; i++)); do printf 'node n%s\n' "$i"; done
  printf 'link sw:rtr rtr:eth0\nlink rtr:eth1 cl:eth0\n'
  for ((i = 1; i <= NODES; i++)); do printf 'link sw:n%s n%s:eth0\n' "$i" "$i"; done
  printf 'addr rtr eth0 %s\naddr rtr eth0 %s\n' "$ROUTER_FABRIC_V4" "$ROUTER_FABRIC_V6"
  printf 'addr rtr eth1 %s\naddr rtr eth1 %s\n' "$ROUTER_CLIENT_V4" "$ROUTER_CLIENT_V6"
  printf 'addr cl eth0 %s\naddr cl eth0 %s\n' "$CLIENT_V4" "$CLIENT_V6"
  printf 'gateway cl %s\ngateway cl %s\n' "${ROUTER_CLIENT_V4%/*}" "${ROUTER_CLIENT_V6%/*}"
  for ((i = 1; i <= NODES; i++)); do
    printf 'addr n%s eth0 %s\naddr n%s eth0 %s\n' "$i" "$(node_v4 "$i")" "$i" "$(node_v6 "$i")"
    printf 'gateway n%s %s\ngateway n%s %s\n' "$i" "${ROUTER_FABRIC_V4%/*}" "$i" "${ROUTER_FABRIC_V6%/*}"
  done
  if [[ -n "$L2" ]]; then
    printf 'link sw:l2cl cl:eth1\naddr cl eth1 %s\naddr cl eth1 %s\n' "$L2_CLIENT_V4" "$L2_CLIENT_V6"
    for ((i = 1; i <= NODES; i++)); do
      printf 'link sw:l2n%s n%s:eth1\n' "$i" "$i"
      printf 'addr n%s eth1 %s\naddr n%s eth1 %s\n' "$i" "$(l2_node_v4 "$i")" "$i" "$(l2_node_v6 "$i")"
    done
  fi
}

cmd_list() {
  local d
  [[ -d "$STATE_ROOT" ]] || return 0
  for d in "$STATE_ROOT"/*/; do
    [[ -d "$d" ]] && basename "$d"
  done
  return 0
}

case "$CMD" in
  up) parse_options "$@"; cmd_up ;;
  down) parse_options "$@"; cmd_down ;;
  status) parse_options "$@"; cmd_status ;;
  router-stop) parse_options "$@"; cmd_router stop ;;
  router-start) parse_options "$@"; cmd_router start ;;
  router-restart) parse_options "$@"; cmd_router restart ;;
  router-cli) parse_options "$@"; cmd_router_cli ;;
  list) cmd_list ;;
  env) parse_options "$@"; cmd_env ;;
  help | -h | --help) usage ;;
  *)
    usage >&2
    die "unknown command '$CMD'"
    ;;
esac
