#!/usr/bin/env bash
# scripts/test.sh: THE test command of ferrolb (`sudo scripts/test.sh`), also run by CI.
# Installs the system dependencies, then checks the shell scripts, formatting and lints, checks
# that bgpd's pure cores build without tokio, and runs every test of the workspace, lab tests
# included (they create network namespaces, hence root). Fails at the first failing step.
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
cargo fmt --version >/dev/null 2>&1 || die "rustfmt missing: rustup component add rustfmt"
cargo clippy --version >/dev/null 2>&1 || die "clippy missing: rustup component add clippy"

step "scripts/install-deps.sh"
scripts/install-deps.sh

echo
echo "test.sh: $(cargo --version); target dir: ${CARGO_TARGET_DIR:-target (default)}"

step "shellcheck (every shell script of the repository)"
mapfile -t scripts < <(git ls-files '*.sh' .ci/run)
shellcheck -x "${scripts[@]}"

step "cargo fmt --all --check"
cargo fmt --all --check

step "cargo build -p ferrolb-bgpd --no-default-features (the BGP cores build without tokio)"
cargo build -p ferrolb-bgpd --no-default-features

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test --workspace"
cargo test --workspace

printf '\n==> test.sh: all steps passed\n'
