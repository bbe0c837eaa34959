#!/usr/bin/env bash
# Make sure what the test suite talks to is there: PostgreSQL, Redis and Debian's Chromium.
# Idempotent; starts only what is not answering. Needs root for apt-get (as on CI).
set -euo pipefail

if ! command -v chromium >/dev/null 2>&1; then
  echo "ensure-services: installing Debian chromium for the browser tests"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "ensure-services: run 'sudo apt-get install -y chromium'" >&2; exit 1
  fi
fi

if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  echo "ensure-services: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "ensure-services: starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done
fi
echo "ensure-services: PostgreSQL, Redis and chromium are ready"
