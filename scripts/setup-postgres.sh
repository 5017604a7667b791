#!/usr/bin/env bash
# Installs what walflow's embedded Postgres needs on Debian/Ubuntu:
#   - PostgreSQL server binaries from the distribution archive
#   - pgvector, built from its Debian source package against the server headers
#     (Debian 12 does not package pgvector; its source comes from a trixie deb-src entry).
# Idempotent: does nothing that is already done. Needs root (or sudo).
set -euo pipefail

PG_MAJOR="${PG_MAJOR:-15}"
log() { echo "setup-postgres: $*"; }

# Nothing to do (the common case after the first run): no root needed.
if [ -x "/usr/lib/postgresql/${PG_MAJOR}/bin/initdb" ] && \
   [ -f "$(/usr/lib/postgresql/${PG_MAJOR}/bin/pg_config --sharedir 2>/dev/null)/extension/vector.control" ]; then
  log "PostgreSQL ${PG_MAJOR} and pgvector are installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup-postgres: installing packages needs root: run as root or install sudo" >&2; exit 1; }
  SUDO="sudo"
fi

apt_updated=0
apt_update_once() {
  if [ "$apt_updated" -eq 0 ]; then $SUDO apt-get update -qq; apt_updated=1; fi
}

# 1. Server binaries and headers.
need=()
[ -x "/usr/lib/postgresql/${PG_MAJOR}/bin/initdb" ] || need+=("postgresql-${PG_MAJOR}")
[ -f "/usr/include/postgresql/${PG_MAJOR}/server/postgres.h" ] || need+=("postgresql-server-dev-${PG_MAJOR}")
command -v make >/dev/null && command -v gcc >/dev/null || need+=(build-essential)
command -v dpkg-source >/dev/null || need+=(dpkg-dev)
if [ "${#need[@]}" -gt 0 ]; then
  log "installing ${need[*]}"
  apt_update_once
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The Debian package starts a default cluster on 5432; walflow runs its own, so keep that one off.
if command -v pg_lsclusters >/dev/null && pg_lsclusters -h 2>/dev/null | grep -q online; then
  log "note: a system cluster is running (pg_lsclusters); walflow does not use it"
fi

# 2. pgvector.
extdir="$(/usr/lib/postgresql/${PG_MAJOR}/bin/pg_config --sharedir)/extension"
if [ -f "${extdir}/vector.control" ]; then
  log "pgvector already installed in ${extdir}"
  exit 0
fi

if ! apt-cache showsrc pgvector 2>/dev/null | grep -q '^Package: pgvector'; then
  srcfile=/etc/apt/sources.list.d/walflow-trixie-src.sources
  log "adding a deb-src entry for Debian trixie (${srcfile}) to fetch the pgvector source"
  $SUDO tee "$srcfile" >/dev/null <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  apt_updated=0
  apt_update_once
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
log "fetching pgvector source into ${work}"
(cd "$work" && apt-get source -qq --download-only pgvector >/dev/null && dpkg-source -x --no-check ./*.dsc src >/dev/null)
log "building pgvector against PostgreSQL ${PG_MAJOR}"
make -s -C "$work/src" PG_CONFIG="/usr/lib/postgresql/${PG_MAJOR}/bin/pg_config" OPTFLAGS="" >/dev/null
$SUDO make -s -C "$work/src" PG_CONFIG="/usr/lib/postgresql/${PG_MAJOR}/bin/pg_config" install >/dev/null
[ -f "${extdir}/vector.control" ] || { echo "setup-postgres: pgvector build finished but ${extdir}/vector.control is missing" >&2; exit 1; }
log "pgvector installed"
