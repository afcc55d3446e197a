#!/usr/bin/env bash
# Sources of the embedded six-language corpus (python -m input_pipeline.build_code_corpus), from package
# registries only: Debian packages (Go's GOROOT/src, the JDK's src.zip, Rust crates packaged by Debian, C/C++
# headers) and a pinned set of npm packages installed into a cache folder. Idempotent; a source that cannot be
# installed only leaves its language smaller or empty (the builder says so), so a failure never fails the script.
#
#   scripts/install_corpus_sources.sh                  # apt (as root) + npm packages into $HRM_JAX_CORPUS_SOURCES
#   HRM_JAX_CORPUS_SOURCES=/opt/hrm-corpus-sources     # default: ~/.cache/hrm-jax/corpus_sources
set -uo pipefail

SOURCES="${HRM_JAX_CORPUS_SOURCES:-$HOME/.cache/hrm-jax/corpus_sources}"
# golang-go: GOROOT/src; openjdk-17-source: the JDK's lib/src.zip;
# librust-*-dev: crate sources under /usr/share/cargo/registry; libstdc++-12-dev: the C++ standard headers.
APT_PACKAGES=(golang-go openjdk-17-source librust-anyhow-dev librust-rand-dev librust-time-dev
              librust-serde-dev librust-regex-dev librust-itertools-dev libstdc++-12-dev)
# MIT / BSD / ISC / Apache-2.0 packages with readable (not minified) sources.
NPM_PACKAGES=(lodash@4.17.21 express@4.19.2 commander@12.1.0 acorn@8.12.1 async@3.2.5 moment@2.30.1
              underscore@1.13.6 semver@7.6.3 ws@8.18.0 yargs@17.7.2 esprima@4.0.1 minimist@1.2.8)
NPM_STAMP=".complete-2"

have_package() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

install_apt() {
  local missing=() package
  for package in "${APT_PACKAGES[@]}"; do have_package "$package" || missing+=("$package"); done
  ((${#missing[@]})) || return 0
  if [[ $(id -u) -ne 0 ]] && ! command -v sudo >/dev/null; then
    echo "install_corpus_sources: not root and no sudo; cannot install ${missing[*]}" >&2
    return 0
  fi
  local SUDO
  SUDO=$([[ $(id -u) -eq 0 ]] || echo sudo)
  echo "install_corpus_sources: apt-get install ${missing[*]}"
  $SUDO apt-get update -qq || echo "install_corpus_sources: apt-get update failed" >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >/dev/null || echo "install_corpus_sources: apt-get install failed for some of: ${missing[*]}" >&2
}

install_npm() {
  local dir="$SOURCES/npm"
  [[ -f "$dir/$NPM_STAMP" ]] && return 0
  if ! command -v npm >/dev/null; then
    echo "install_corpus_sources: npm not found; the JavaScript corpus will be empty" >&2
    return 0
  fi
  echo "install_corpus_sources: npm install ${NPM_PACKAGES[*]} into $dir"
  mkdir -p "$dir"
  (cd "$dir" && printf '{"name":"hrm-jax-corpus-sources","private":true}\n' >package.json &&
   npm install --silent --no-audit --no-fund --ignore-scripts "${NPM_PACKAGES[@]}" >/dev/null &&
   touch "$NPM_STAMP") || echo "install_corpus_sources: npm install failed" >&2
}

install_apt
install_npm
echo "install_corpus_sources: sources in $SOURCES and the system folders; build with" \
     "python -m input_pipeline.build_code_corpus --out DIR"
exit 0
