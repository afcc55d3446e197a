#!/usr/bin/env bash
# Toolchains for the six-language benchmark (evals/polyglot): Go, the Java test jars, jest, Rust crates the
# exercises use, Boost.Date_Time (two C++ exercises), on top of what the machine has (Python, JDK 17, Node 20,
# Rust, g++, cmake). Idempotent: a second run checks and returns in about a second. A language whose toolchain
# cannot be installed is skipped by the evaluator with a one-line message (evals/polyglot_toolchains.py), so a
# failure here never fails the script.
#
#   scripts/install_toolchains.sh            # apt packages (as root) + jest into $HRM_JAX_TOOLCHAINS
#   HRM_JAX_TOOLCHAINS=/opt/hrm-toolchains   # where jest goes (default /opt/hrm-jax-toolchains); the
#                                            # sandbox binds it read-only, so keep it outside /root and /tmp
set -uo pipefail

TOOLCHAINS="${HRM_JAX_TOOLCHAINS:-/opt/hrm-jax-toolchains}"
JEST_VERSION=29.7.0
BABEL_VERSION=7.25.2

APT_PACKAGES=(golang-go junit5 libassertj-core-java libandroid-json-java libboost-date-time-dev
              librust-time-dev librust-anyhow-dev librust-rand-dev librust-thiserror-dev librust-permutohedron-dev
              librust-itertools-dev librust-num-bigint-dev librust-num-traits-dev librust-regex-dev
              librust-aho-corasick-dev librust-memchr-dev librust-regex-syntax-dev)

missing=()
for package in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]] && ! command -v sudo >/dev/null; then
    echo "install_toolchains: not root and no sudo; cannot install ${missing[*]}" >&2
  else
    SUDO=$([[ $(id -u) -eq 0 ]] || echo sudo)
    echo "install_toolchains: apt-get install ${missing[*]}"
    $SUDO apt-get update -qq || echo "install_toolchains: apt-get update failed" >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" \
      >/dev/null || echo "install_toolchains: apt-get install failed for some of: ${missing[*]}" >&2
  fi
fi

JEST_DIR="$TOOLCHAINS/jest"
if [[ -x "$JEST_DIR/node_modules/.bin/jest" && -f "$JEST_DIR/.complete-$JEST_VERSION" ]]; then
  :
elif command -v npm >/dev/null; then
  echo "install_toolchains: npm install jest@$JEST_VERSION into $JEST_DIR"
  mkdir -p "$JEST_DIR"
  (cd "$JEST_DIR" && printf '{"name":"hrm-jax-jest","private":true}\n' >package.json &&
   npm install --silent --no-audit --no-fund "jest@$JEST_VERSION" "babel-jest@$JEST_VERSION" \
     "@babel/core@$BABEL_VERSION" "@babel/preset-env@$BABEL_VERSION" >/dev/null &&
   touch ".complete-$JEST_VERSION") || echo "install_toolchains: npm install of jest failed" >&2
  chmod -R a+rX "$TOOLCHAINS" 2>/dev/null || true
else
  echo "install_toolchains: npm not found; JavaScript will be skipped" >&2
fi

# Rust lives under /root on the CI image: the sandbox binds the toolchain read-only at its own path, and its
# files must be readable by the sandbox's uid (once; a stamp file says it was done).
if [[ ! -f "$TOOLCHAINS/.rust-readable" ]]; then
  for dir in "${RUSTUP_HOME:-$HOME/.rustup}" "${CARGO_HOME:-$HOME/.cargo}"; do
    [[ -d "$dir" ]] && chmod -R a+rX "$dir" 2>/dev/null
  done
  mkdir -p "$TOOLCHAINS" && touch "$TOOLCHAINS/.rust-readable"
fi

cd "$(dirname "$0")/.." && python3 - <<'PY' 2>/dev/null || true
import os, sys
sys.path.insert(0, os.getcwd())
try:
    from evals.polyglot_toolchains import describe
except ImportError:
    raise SystemExit
print(describe())
PY
exit 0
