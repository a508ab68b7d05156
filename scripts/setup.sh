#!/usr/bin/env bash
# Installs what a fresh machine lacks: yarn 1.22 (through npm) and the project's dependencies from yarn.lock.
# With --test, also the system packages the test suites start for real (redis-server, nginx, chromium, Debian's
# python3-websockets for the Python example client, openssl and envsubst for the Nginx certificate and template
# steps, curl for the server API's examples), with apt-get when absent.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--test" ]; then
  missing=()
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  command -v envsubst >/dev/null 2>&1 || missing+=(gettext-base)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  /usr/bin/python3 -c 'import websockets' >/dev/null 2>&1 || missing+=(python3-websockets)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]} with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

if ! command -v yarn >/dev/null 2>&1; then
  echo "setup: installing yarn 1.22.22 with npm"
  npm install --global --loglevel=error yarn@1.22.22
fi
yarn install --frozen-lockfile --non-interactive --silent
echo "setup: dependencies installed"
