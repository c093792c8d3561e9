# shellcheck shell=bash
# scripts/cargo-env.sh: sourced by the scripts that build ferrolb as root (test.sh, the lab demo).
# Under sudo, PATH usually lacks the invoking user's ~/.cargo/bin: use their toolchain.
if ! command -v cargo >/dev/null 2>&1 && [[ -n "${SUDO_USER:-}" ]]; then
  user_home="$(getent passwd "$SUDO_USER" | cut -d: -f6)"
  if [[ -n "$user_home" && -x "${user_home}/.cargo/bin/cargo" ]]; then
    export PATH="${user_home}/.cargo/bin:${PATH}"
    export CARGO_HOME="${CARGO_HOME:-${user_home}/.cargo}"
    export RUSTUP_HOME="${RUSTUP_HOME:-${user_home}/.rustup}"
  fi
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found: install Rust 1.95 or newer (https://rustup.rs) or put cargo on root's PATH" >&2
  exit 1
fi
