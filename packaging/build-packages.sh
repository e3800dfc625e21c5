#!/usr/bin/env bash
# Builds the node's Debian and RPM packages from one release build of the workspace and prints
# their paths, the .deb first:
#   target/debian/vaulthalla_VERSION-1_ARCH.deb
#   target/generate-rpm/vaulthalla-VERSION-1.ARCH.rpm
# Needs cargo-deb, cargo-generate-rpm and binutils' strip (.ci/run installs the pinned versions).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --workspace --bins --locked >&2

# cargo-deb strips its own copies of the binaries.
deb=$(cargo deb --no-build --strip --output target/debian/ | tail -n 1)

# cargo-generate-rpm packages target/release as it is, debug line tables and all: it gets
# stripped copies in a staging target directory instead (its `target/release/` asset paths then
# resolve there).
stage=target/rpm-stage
rm -rf "$stage"
mkdir -p "$stage/release"
for bin in vaulthalla vh; do
    strip --strip-all -o "$stage/release/$bin" "target/release/$bin"
done
mkdir -p target/generate-rpm
version=$(cargo metadata --no-deps --format-version 1 --locked |
    python3 -c 'import json, sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "vaulthalla"))')
release=$(sed -n 's/^release = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
rpm="target/generate-rpm/vaulthalla-$version-$release.$(uname -m).rpm"
cargo generate-rpm --target-dir "$stage" --output "$rpm" >&2

printf '%s\n' "$deb" "$rpm"
