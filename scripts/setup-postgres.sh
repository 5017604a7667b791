#!/usr/bin/env bash
# Installs what walflow's embedded Postgres needs on Debian/Ubuntu:
#   - PostgreSQL server binaries and headers from the distribution archive
#   - pgvector, built from its Debian source package against the server headers
#     (Debian 12 does not package pgvector; its source comes from a Debian 13 "trixie" deb-src
#     entry that this script adds only for that download and removes right after).
# Idempotent: does nothing that is already done. Needs root (or sudo) only when it installs.
#
# It says what it will install or upgrade before it does, installs only missing packages
# (`apt-get install --no-upgrade`: installed ones are not upgraded; a newer dependency that a
# missing package requires is listed as an upgrade first), and leaves no trixie entry behind: the
# deb-src file is removed and `apt-get update` run again, also when the build fails.
#
#   --dry-run   print the plan (packages to install or upgrade, source entry) and change nothing
#
# Test hooks (defaults in brackets): PG_BINDIR [/usr/lib/postgresql/$PG_MAJOR/bin],
# PG_INCLUDEDIR [/usr/include/postgresql/$PG_MAJOR/server], APT_SOURCES_DIR [/etc/apt/sources.list.d].
set -euo pipefail

PG_MAJOR="${PG_MAJOR:-15}"
PG_BINDIR="${PG_BINDIR:-/usr/lib/postgresql/${PG_MAJOR}/bin}"
PG_INCLUDEDIR="${PG_INCLUDEDIR:-/usr/include/postgresql/${PG_MAJOR}/server}"
APT_SOURCES_DIR="${APT_SOURCES_DIR:-/etc/apt/sources.list.d}"
SRC_ENTRY="${APT_SOURCES_DIR}/walflow-trixie-src.sources"
DRY_RUN=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY_RUN=1 ;;
    *) echo "setup-postgres: unknown argument: $arg (usage: setup-postgres.sh [--dry-run])" >&2; exit 2 ;;
  esac
done
log() { echo "setup-postgres: $*"; }

SUDO=""
can_be_root() {
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; return 0; fi
  command -v sudo >/dev/null && SUDO="sudo"
}

apt_updated=0
apt_update_once() {
  if [ "$apt_updated" -eq 0 ]; then $SUDO apt-get update -qq; apt_updated=1; fi
}

# Removes the trixie deb-src entry and refreshes the package lists, so that apt no longer carries
# trixie sources. Only this script's own file (by its name) is ever removed.
remove_src_entry() {
  [ -f "$SRC_ENTRY" ] || return 0
  log "removing the Debian trixie deb-src entry ${SRC_ENTRY} (it was only needed to fetch the pgvector source) and running apt-get update"
  $SUDO rm -f "$SRC_ENTRY"
  $SUDO apt-get update -qq || log "warning: apt-get update failed; run it again to drop the trixie source lists"
}

pgvector_installed() {
  [ -x "${PG_BINDIR}/pg_config" ] && [ -f "$("${PG_BINDIR}/pg_config" --sharedir 2>/dev/null)/extension/vector.control" ]
}

# Nothing to do (the common case after the first run): no root needed.
if [ -x "${PG_BINDIR}/initdb" ] && pgvector_installed; then
  log "PostgreSQL ${PG_MAJOR} and pgvector are installed"
  if [ -f "$SRC_ENTRY" ]; then
    # Left behind by an earlier version of this script.
    if [ "$DRY_RUN" -eq 0 ] && can_be_root && { [ -z "$SUDO" ] || sudo -n true 2>/dev/null; }; then
      remove_src_entry
    else
      log "note: ${SRC_ENTRY} (Debian trixie sources, left by an earlier version of this script) is no longer needed: sudo rm ${SRC_ENTRY} && sudo apt-get update"
    fi
  fi
  exit 0
fi

if [ "$DRY_RUN" -eq 0 ] && ! can_be_root; then
  echo "setup-postgres: installing packages needs root: run as root or install sudo" >&2
  exit 1
fi

# 1. Server binaries and headers, and the tools to build pgvector.
need=()
[ -x "${PG_BINDIR}/initdb" ] || need+=("postgresql-${PG_MAJOR}")
[ -f "${PG_INCLUDEDIR}/postgres.h" ] || need+=("postgresql-server-dev-${PG_MAJOR}")
{ command -v make >/dev/null && command -v gcc >/dev/null; } || need+=(build-essential)
command -v dpkg-source >/dev/null || need+=(dpkg-dev)
if [ "${#need[@]}" -gt 0 ]; then
  [ "$DRY_RUN" -eq 1 ] || apt_update_once
  # Ask apt what it would do, and say it, before doing it: "Inst pkg [old] (new ...)" is an
  # upgrade of an installed package, "Inst pkg (new ...)" a new one.
  if ! plan="$(apt-get install -s -qq --no-upgrade --no-install-recommends "${need[@]}")"; then
    echo "setup-postgres: apt cannot install ${need[*]} (see above): is PostgreSQL ${PG_MAJOR} in this distribution's archive? Set PG_MAJOR to one that is" >&2
    exit 1
  fi
  installs="$(awk '$1 == "Inst" && $3 !~ /^\[/ { v = $3; sub(/^\(/, "", v); printf "%s%s %s", sep, $2, v; sep = ", " }' <<<"$plan")"
  upgrades="$(awk '$1 == "Inst" && $3 ~ /^\[/ { o = $3; gsub(/[][]/, "", o); v = $4; sub(/^\(/, "", v); printf "%s%s %s -> %s", sep, $2, o, v; sep = ", " }' <<<"$plan")"
  log "needs ${need[*]}"
  log "will install: ${installs:-nothing new}"
  log "will upgrade: ${upgrades:-nothing (installed packages are left as they are)}"
  if [ "$DRY_RUN" -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-upgrade --no-install-recommends "${need[@]}" >/dev/null
  fi
fi

# The Debian package starts a default cluster on 5432; walflow runs its own, so keep that one off.
if command -v pg_lsclusters >/dev/null && pg_lsclusters -h 2>/dev/null | grep -q online; then
  log "note: a system cluster is running (pg_lsclusters); walflow does not use it"
fi

# 2. pgvector.
if [ "$DRY_RUN" -eq 1 ]; then
  log "will build pgvector from its Debian source package (adding ${SRC_ENTRY} for Debian trixie sources if apt has none, then removing it and running apt-get update)"
  exit 0
fi
if pgvector_installed; then
  log "pgvector already installed"
  exit 0
fi
extdir="$("${PG_BINDIR}/pg_config" --sharedir)/extension"

work="$(mktemp -d)"
added_entry=0
cleanup() {
  rm -rf "$work"
  if [ "$added_entry" -eq 1 ]; then remove_src_entry; fi
}
trap cleanup EXIT

if ! apt-cache showsrc pgvector 2>/dev/null | grep -q '^Package: pgvector'; then
  log "adding a deb-src entry for Debian trixie (${SRC_ENTRY}) to fetch the pgvector source; it is removed once fetched"
  added_entry=1
  $SUDO tee "$SRC_ENTRY" >/dev/null <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  apt_updated=0
  apt_update_once
fi

chmod 755 "$work"
log "fetching pgvector source into ${work}"
(cd "$work" && apt-get source -qq --download-only pgvector >/dev/null && dpkg-source -x --no-check ./*.dsc src >/dev/null)
# The source is here: the trixie entry has done its job.
if [ "$added_entry" -eq 1 ]; then
  remove_src_entry
  added_entry=0
fi
log "building pgvector against PostgreSQL ${PG_MAJOR}"
make -s -C "$work/src" PG_CONFIG="${PG_BINDIR}/pg_config" OPTFLAGS="" >/dev/null
$SUDO make -s -C "$work/src" PG_CONFIG="${PG_BINDIR}/pg_config" install >/dev/null
[ -f "${extdir}/vector.control" ] || { echo "setup-postgres: pgvector build finished but ${extdir}/vector.control is missing" >&2; exit 1; }
log "pgvector installed"
