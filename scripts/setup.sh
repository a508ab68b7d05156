#!/usr/bin/env bash
# Installs what a fresh machine lacks: yarn 1.22 (through npm) and the project's dependencies from yarn.lock.
# With --test, also the system packages the test suites start for real (none are needed yet beyond Node).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v yarn >/dev/null 2>&1; then
  echo "setup: installing yarn 1.22.22 with npm"
  npm install --global --loglevel=error yarn@1.22.22
fi
yarn install --frozen-lockfile --non-interactive --silent
echo "setup: dependencies installed"
