#!/usr/bin/env bash
# npm run demo: installs PostgreSQL + pgvector if missing (Debian/Ubuntu), then runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${DATABASE_URL:-}" ]; then bash scripts/setup-postgres.sh; fi
exec node --import tsx scripts/demo.ts "$@"
