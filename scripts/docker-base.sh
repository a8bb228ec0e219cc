#!/usr/bin/env bash
# Make a Debian bookworm base image without an image registry: debootstrap from the mirror apt uses
# here, then docker import. Prints the image's name (BASE_IMAGE for the compose file); does nothing
# when the image exists already.
set -euo pipefail
name=${1:-pulumi-state-base:bookworm}
docker=${DOCKER:-docker}
if "$docker" image inspect "$name" >/dev/null 2>&1; then
    echo "$name"; exit 0
fi
command -v debootstrap >/dev/null || { echo "docker-base: debootstrap is required" >&2; exit 1; }
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list)
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase bookworm "$root" "$mirror" >&2
# apt inside the image uses the same mirror.
echo "deb $mirror bookworm main" > "$root/etc/apt/sources.list"
tar -C "$root" -c . | "$docker" import - "$name" >&2
echo "$name"
