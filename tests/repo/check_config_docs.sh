#!/bin/sh
# docs/config.md is generated from the programs' settings tables (scripts/gen-config-docs.sh);
# this fails when a table changed and the page was not regenerated.
bin=${1:?usage: check_config_docs.sh BIN_DIR DOC}
doc=${2:?usage: check_config_docs.sh BIN_DIR DOC}
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
"$(dirname "$0")/../../scripts/gen-config-docs.sh" "$bin" > "$tmp" || exit 1
if ! diff -u "$doc" "$tmp"; then
    echo "docs/config.md is stale: run scripts/gen-config-docs.sh build/bin > docs/config.md"
    exit 1
fi
echo "docs/config.md matches the settings tables"
