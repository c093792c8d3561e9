#!/usr/bin/env bash
# scripts/test.sh: THE test command of ferrolb (`sudo scripts/test.sh`), also run by CI.
# Installs the system dependencies, then checks the shell scripts, renders and lints the install
# manifests and the Helm chart (helm and kubectl from scripts/kube-tools.sh), checks formatting
# and lints, that bgpd's pure cores build without tokio and that the arm64 binary links, and runs
# every test of the workspace, lab tests included (they create network namespaces, hence root). Fails at the first failing step.
# Honours CARGO_TARGET_DIR.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

die() {
  echo "test.sh: error: $*" >&2
  exit 1
}

step() {
  printf '\n==> %s\n' "$*"
}

[[ "$(id -u)" == "0" ]] ||
  die "the tests need root (the lab tests create network namespaces): run sudo scripts/test.sh"

# shellcheck source=scripts/cargo-env.sh
source scripts/cargo-env.sh
# One build of everything, not an edit loop: incremental artefacts would only cost time and disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
cargo fmt --version >/dev/null 2>&1 || die "rustfmt missing: rustup component add rustfmt"
cargo clippy --version >/dev/null 2>&1 || die "clippy missing: rustup component add clippy"

step "scripts/install-deps.sh"
scripts/install-deps.sh

echo
echo "test.sh: $(cargo --version); target dir: ${CARGO_TARGET_DIR:-target (default)}"

step "shellcheck (every shell script of the repository)"
mapfile -t scripts < <(git ls-files '*.sh' .ci/run)
shellcheck -x "${scripts[@]}"

step "install manifests and Helm chart: kubectl kustomize, helm lint, helm template, yamllint"
tools="$(scripts/kube-tools.sh)"
rendered="$(mktemp -d)"
trap 'rm -rf "$rendered"' EXIT
"$tools/kubectl" kustomize manifests >"$rendered/kustomize.yaml"
"$tools/helm" lint --strict charts/ferrolb
"$tools/helm" template ferrolb charts/ferrolb --namespace ferrolb-system --include-crds \
  --set prometheus.podMonitor.enabled=true --set prometheus.prometheusRule.enabled=true \
  --set loadBalancerClass=ferrolb.io/lb --set requireLoadBalancerClass=true \
  >"$rendered/helm.yaml"
yamllint --strict -c .yamllint manifests charts/ferrolb/Chart.yaml charts/ferrolb/values.yaml \
  charts/ferrolb/files charts/ferrolb/crds "$rendered/kustomize.yaml" "$rendered/helm.yaml"
echo "rendered: $(grep -c '^kind:' "$rendered/kustomize.yaml") objects (kustomize), $(grep -c '^kind:' "$rendered/helm.yaml") (helm)"

step "cargo fmt --all --check"
cargo fmt --all --check

step "cargo build -p ferrolb-bgpd --no-default-features (the BGP cores build without tokio)"
cargo build -p ferrolb-bgpd --no-default-features

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo build -p ferrolb --target aarch64-unknown-linux-gnu (the linux/arm64 binary links)"
rustup target add aarch64-unknown-linux-gnu
CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
  cargo build -p ferrolb --target aarch64-unknown-linux-gnu

step "cargo test --workspace"
cargo test --workspace

printf '\n==> test.sh: all steps passed\n'
