#!/usr/bin/env bash
# make lint: go vet (with and without the e2e tag) in every module, and gofmt.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v go >/dev/null 2>&1 || export PATH=/usr/local/go/bin:$PATH
MODULES="."
[ -f adapters/go.mod ] && MODULES="$MODULES adapters"
for m in $MODULES; do
  (cd "$m" && go vet ./... && go vet -tags e2e ./...)
done
bad=$(git ls-files -co --exclude-standard '*.go' | xargs -r gofmt -l)
if [ -n "$bad" ]; then
  echo "gofmt would change (run gofmt -w):" >&2
  echo "$bad" >&2
  exit 1
fi
echo "lint: ok"
