#!/usr/bin/env bash
# scripts/install-deps.sh: installs the system packages the ferrolb tests and the lab need
# (Debian/Ubuntu, as root). Idempotent: runs `apt-get update` and `apt-get install` only when
# something is missing, and says what it did.
set -euo pipefail

readonly PACKAGES=(
  frr           # the lab's default router (zebra + bgpd, vtysh)
  bird2         # BIRD 2 router (bird, birdc)
  gobgpd        # GoBGP router and client (gobgpd, gobgp)
  iproute2      # ip netns, ip link, ss
  iputils-ping  # ping from inside the namespaces
  util-linux    # flock, setpriv
  procps        # sysctl
  curl
  shellcheck    # scripts/test.sh checks every shell script
  tcpdump
  arping        # layer-2 lab tests: ARP requests from the client
  ndisc6        # layer-2 lab tests: neighbour solicitations from the client
  nftables      # BFD lab tests blackhole a link with the carrier up
  yamllint      # scripts/test.sh lints the install manifests and the rendered chart
  gcc-aarch64-linux-gnu   # links the linux/arm64 build that scripts/test.sh checks
  libc6-dev-arm64-cross
  python3
  python3-pip
  protobuf-compiler  # protoc, for crates/api-grpc's build script
  python3-grpcio     # the reflection-only client of crates/ferrolb/tests/lab_status.rs
  python3-protobuf
)

die() {
  echo "install-deps.sh: error: $*" >&2
  exit 1
}

[[ "$(id -u)" == "0" ]] || die "must run as root (it installs Debian packages): sudo scripts/install-deps.sh"
if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  die "needs a Debian-based system with apt-get; install by hand: ${PACKAGES[*]}"
fi

installed() {
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! installed "$pkg"; then missing+=("$pkg"); fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps.sh: all present: ${PACKAGES[*]}"
else
  echo "install-deps.sh: installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
  for pkg in "${missing[@]}"; do
    installed "$pkg" || die "package $pkg is still not installed after apt-get install"
  done
  echo "install-deps.sh: installed: ${missing[*]}"
fi

# The binaries the lab starts, where lab/netns/lab.sh looks for them.
for bin in /usr/lib/frr/zebra /usr/lib/frr/bgpd /usr/lib/frr/bfdd; do
  [[ -x "$bin" ]] || die "$bin is missing although frr is installed"
done
for tool in vtysh bird birdc gobgpd gobgp ip ping sysctl flock setpriv shellcheck arping ndisc6 nft yamllint aarch64-linux-gnu-gcc; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' is not on PATH although its package is installed"
done
echo "install-deps.sh: lab binaries present: frr $(dpkg-query -W -f='${Version}' frr), bird2 $(dpkg-query -W -f='${Version}' bird2), gobgpd $(dpkg-query -W -f='${Version}' gobgpd)"
