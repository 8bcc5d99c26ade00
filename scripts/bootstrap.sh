#!/usr/bin/env bash
# Install everything the tests and the demo need, on a fresh Debian 12 machine.
#
# Idempotent and fast on re-run: every step checks first whether its work is already
# done (tool on PATH, stamp file up to date) and skips if so. Output is one short
# "bootstrap: ..." line per step; tool output goes to a log that is shown only on failure.
set -euo pipefail

# Run from the repo root whatever the caller's cwd (make, .ci/run, a human).
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { echo "bootstrap: $*"; }
die() { echo "bootstrap: ERROR: $*" >&2; exit 1; }

# Run a noisy command quietly; on failure print its output so the cause is visible.
quiet() {
    local out
    out=$(mktemp)
    if ! "$@" >"$out" 2>&1; then
        cat "$out" >&2
        rm -f "$out"
        die "failed: $*"
    fi
    rm -f "$out"
}

# --- Debian packages --------------------------------------------------------------
# docker-registry (the reference Distribution registry) and skopeo are the test peers.
# nodejs/npm (for Azurite) and python3-venv (ensurepip) are missing from minimal images.
apt_pkgs=()
command -v docker-registry >/dev/null 2>&1 || apt_pkgs+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || apt_pkgs+=(skopeo)
# If either registry tool is missing, install both together, as one pinned pair from Debian.
if [ ${#apt_pkgs[@]} -gt 0 ]; then apt_pkgs=(docker-registry skopeo); fi
command -v npm >/dev/null 2>&1 || apt_pkgs+=(nodejs npm)
command -v python3 >/dev/null 2>&1 || apt_pkgs+=(python3)
python3 -c 'import ensurepip' >/dev/null 2>&1 || apt_pkgs+=(python3-venv)

if [ ${#apt_pkgs[@]} -gt 0 ]; then
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "need root or sudo to install: ${apt_pkgs[*]}"
        sudo=(sudo)
    fi
    log "apt-get install ${apt_pkgs[*]}"
    quiet "${sudo[@]}" apt-get update
    quiet "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${apt_pkgs[@]}"
else
    log "docker-registry, skopeo, node, python3 present"
fi

# --- Azurite (npm) ----------------------------------------------------------------
# Pinned in package.json/package-lock.json; `npm ci` installs exactly the lockfile.
# The stamp records when node_modules last matched the lockfile.
npm_stamp=node_modules/.ferry-bootstrap-stamp
if [ ! -x node_modules/.bin/azurite ] || [ ! -f "$npm_stamp" ] || [ package-lock.json -nt "$npm_stamp" ]; then
    log "npm ci (azurite)"
    quiet npm ci --no-audit --no-fund
    touch "$npm_stamp"
else
    log "azurite up to date"
fi

# --- Python venv ------------------------------------------------------------------
# Reinstall only when the inputs change: the stamp holds a hash of the requirement
# files and pyproject.toml (which defines the `ferry` console script).
py_stamp=.venv/.ferry-bootstrap-stamp
py_hash=$(cat requirements.txt requirements-dev.txt pyproject.toml | sha256sum | cut -d' ' -f1)

python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "python3 >= 3.11 required"

# A venv whose interpreter does not run (e.g. copied from another machine) is rebuilt.
if ! .venv/bin/python -c 'import sys' >/dev/null 2>&1; then
    log "creating .venv"
    rm -rf .venv
    quiet python3 -m venv .venv
fi

if [ ! -f "$py_stamp" ] || [ "$(cat "$py_stamp")" != "$py_hash" ]; then
    log "pip install -r requirements-dev.txt, -e ."
    # `python -m pip` rather than .venv/bin/pip: script shebangs break if the venv moved.
    pip=(.venv/bin/python -m pip --disable-pip-version-check -q)
    quiet "${pip[@]}" install -r requirements-dev.txt
    quiet "${pip[@]}" install -e . --no-deps
    echo "$py_hash" >"$py_stamp"
else
    log "python venv up to date"
fi

log "done"
