#!/usr/bin/env bash
# Prepare docker/ for `docker compose build`: the secrets (made once, kept: docker/secrets/ is not
# committed) and the Pulumi CLI + YAML language host for the agent image, built from their Go modules
# (tests/cli/install-pulumi.sh; PULUMI_VERSION picks the release).
set -euo pipefail
cd "$(dirname "$0")/.."
secrets=docker/secrets
mkdir -p "$secrets"
chmod 0700 "$secrets"
umask 077
[ -s "$secrets/db_password" ] || openssl rand -hex 24 > "$secrets/db_password"
[ -s "$secrets/master_key" ] || openssl rand -hex 32 > "$secrets/master_key"
[ -s "$secrets/operator_token" ] || echo "pso_$(openssl rand -hex 32)" > "$secrets/operator_token"
cli=$(bash tests/cli/install-pulumi.sh)
mkdir -p docker/pulumi-cli
cp "$cli/pulumi" "$cli/pulumi-language-yaml" docker/pulumi-cli/
chmod 0755 docker/pulumi-cli docker/pulumi-cli/*
echo "docker/ is ready: secrets in $secrets, the CLI $("$cli/pulumi" version) in docker/pulumi-cli" >&2
