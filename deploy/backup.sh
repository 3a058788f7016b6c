#!/usr/bin/env bash
# Back up the promo database while the service runs: pg_dump (PostgreSQL) or SQLite's
# online .backup (a consistent copy even mid-write; never copy the .db file with cp).
# Usage: backup.sh DIR   (PROMO_DATABASE_URL from the environment); keeps 14 days.
set -euo pipefail
dir=${1:?usage: backup.sh DIR}
url=${PROMO_DATABASE_URL:?PROMO_DATABASE_URL is not set}
stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$dir"
case "$url" in
  sqlite:///*)
    db=${url#sqlite:///}
    sqlite3 "$db" ".backup '$dir/promo-$stamp.db'"
    gzip "$dir/promo-$stamp.db" ;;
  postgresql*)
    # libpq does not know SQLAlchemy's driver suffix (postgresql+psycopg://)
    pg_dump --format=custom --file="$dir/promo-$stamp.dump" "postgresql://${url#*://}" ;;
  *) echo "backup.sh: unsupported PROMO_DATABASE_URL scheme" >&2; exit 2 ;;
esac
find "$dir" -name 'promo-*' -mtime +14 -delete
