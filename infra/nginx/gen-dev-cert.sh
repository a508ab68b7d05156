#!/bin/sh
# Makes a self-signed certificate for development: gen-dev-cert.sh [dir] [hostname] (defaults: the certs/ folder
# beside this script, localhost). Writes fullchain.pem and privkey.pem; private keys never go into git.
set -eu
dir="${1:-$(dirname "$0")/certs}"
host="${2:-localhost}"
mkdir -p "$dir"
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 365 \
  -keyout "$dir/privkey.pem" -out "$dir/fullchain.pem" \
  -subj "/CN=$host" -addext "subjectAltName=DNS:$host,DNS:localhost,IP:127.0.0.1" 2>/dev/null
chmod 600 "$dir/privkey.pem"
echo "gen-dev-cert: wrote $dir/fullchain.pem and $dir/privkey.pem for $host"
