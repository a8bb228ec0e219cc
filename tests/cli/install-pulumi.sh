#!/usr/bin/env bash
# Build a real Pulumi CLI release and the YAML language host from their Go modules, cached by version
# (the host is built once per its own version and shared by every CLI release).
# Prints the directory holding `pulumi` and `pulumi-language-yaml`.
#   PULUMI_VERSION (default: the pinned release), PULUMI_YAML_VERSION
set -euo pipefail
PULUMI_VERSION=${PULUMI_VERSION:-v3.259.0}
PULUMI_YAML_VERSION=${PULUMI_YAML_VERSION:-v1.32.0}
root=${XDG_CACHE_HOME:-$HOME/.cache}/pulumi-state/cli
cache=$root/$PULUMI_VERSION-yaml$PULUMI_YAML_VERSION
if [ -x "$cache/pulumi" ] && [ -x "$cache/pulumi-language-yaml" ]; then
    echo "$cache"; exit 0
fi
command -v go >/dev/null || { echo "install-pulumi: go is required" >&2; exit 1; }
mkdir -p "$cache"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ ! -x "$cache/pulumi" ]; then
    (
        cd "$work"
        mkdir cli && cd cli
        go mod init clibuild >/dev/null 2>&1
        go get "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi@$PULUMI_VERSION" "github.com/pulumi/pulumi/sdk/v3@$PULUMI_VERSION" >&2
        go build -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" \
            -o "$cache/pulumi.tmp" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi >&2
        mv "$cache/pulumi.tmp" "$cache/pulumi"
    )
fi
# The language host: another CLI's build of the same host version, or a build of its own.
shared=$(ls -d "$root"/*-yaml"$PULUMI_YAML_VERSION" 2>/dev/null | while read -r d; do
    [ -x "$d/pulumi-language-yaml" ] && echo "$d/pulumi-language-yaml" && break; done || true)
if [ -n "$shared" ]; then
    cp "$shared" "$cache/pulumi-language-yaml.tmp"
else
    (
        cd "$work"
        mkdir yaml && cd yaml
        go mod init yamlbuild >/dev/null 2>&1
        go get "github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml@$PULUMI_YAML_VERSION" >&2
        go build -o "$cache/pulumi-language-yaml.tmp" github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml >&2
    )
fi
mv "$cache/pulumi-language-yaml.tmp" "$cache/pulumi-language-yaml"
echo "$cache"
