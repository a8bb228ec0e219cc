#!/usr/bin/env bash
# Make a throwaway "EK certificate" for trying the demo: a self-signed P-384 certificate (the private
# key is discarded at once; a real EK certificate comes from the TPM's manufacturer).
#
#   ./make-test-ek.sh NAME [DIR]   writes DIR/NAME-ek.pem (DIR defaults to .) and prints its SHA-384
#                                  fingerprint (hex of the DER), which is what ek_fingerprint must be.
set -euo pipefail
name=${1:?usage: make-test-ek.sh NAME [DIR]}
dir=${2:-.}
command -v openssl >/dev/null || { echo "make-test-ek: openssl is required" >&2; exit 1; }
mkdir -p "$dir"
out=$dir/$name-ek.pem
key=$(mktemp)
trap 'rm -f "$key"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout "$key" -days 3650 \
    -subj "/O=Throwaway TPM Manufacturer/CN=EK $name" -out "$out" 2>/dev/null
openssl x509 -in "$out" -outform DER | openssl dgst -sha384 -r | cut -d' ' -f1
