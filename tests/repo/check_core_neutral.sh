#!/bin/sh
# core/ holds what every program needs and nothing product-specific: code that names an asset,
# segment, edge, shield, viewer or rendition belongs in a product folder. Comments count too, since
# they describe what the code is for. Registered media type names (video/iso.segment) are data,
# not concepts, and are let through.
core=${1:?usage: check_core_neutral.sh CORE_DIR}
hits=$(grep -rniwE 'asset|assets|segment|segments|edge|edges|shield|shields|viewer|viewers|rendition|renditions' \
    "$core" --include='*.c' --include='*.h' --include='*.in' | grep -v '"video/iso\.segment"' || true)
if [ -n "$hits" ]; then
    echo "core/ names product concepts; move this code to a product folder:"
    echo "$hits"
    exit 1
fi
echo "core/ is product-neutral"
