#!/usr/bin/env bash
# Make sure PostgreSQL (127.0.0.1:5432, trust auth for local TCP) and Redis (127.0.0.1:6379) answer, and that
# Debian's chromium + chromium-driver are installed (the UI browser test); tests that need them skip otherwise.
set -uo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

need_apt=()
port_open 5432 || command -v pg_ctlcluster >/dev/null || need_apt+=(postgresql)
port_open 6379 || command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v chromium >/dev/null || need_apt+=(chromium)
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
if [ ${#need_apt[@]} -gt 0 ] && command -v apt-get >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}") >/dev/null 2>&1 \
    || echo "services: could not install ${need_apt[*]}"
fi
if ! port_open 5432 && command -v pg_ctlcluster >/dev/null; then
  # A fresh Debian cluster asks for passwords over TCP (scram-sha-256); the tests connect as postgres
  # without one, so trust 127.0.0.1 and ::1 (local CI machine only).
  for hba in /etc/postgresql/*/main/pg_hba.conf; do
    [ -f "$hba" ] || continue
    sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
  done
  for version in $(ls /etc/postgresql 2>/dev/null); do pg_ctlcluster "$version" main start 2>/dev/null || true; done
fi
if ! port_open 6379 && command -v redis-server >/dev/null; then
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' >/dev/null 2>&1 || true
fi
for _ in $(seq 1 30); do port_open 5432 && port_open 6379 && break; sleep 1; done
# A cluster that was already running (started by its package) may still ask for passwords over TCP.
if port_open 5432 && command -v psql >/dev/null \
   && ! PGCONNECT_TIMEOUT=5 psql -h 127.0.0.1 -U postgres -w -c 'select 1' >/dev/null 2>&1; then
  for hba in /etc/postgresql/*/main/pg_hba.conf; do
    [ -f "$hba" ] || continue
    sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
  done
  for version in $(ls /etc/postgresql 2>/dev/null); do pg_ctlcluster "$version" main reload 2>/dev/null || true; done
fi
port_open 5432 && echo "services: PostgreSQL up" || echo "services: PostgreSQL not available"
port_open 6379 && echo "services: Redis up" || echo "services: Redis not available"
command -v chromedriver >/dev/null && echo "services: chromium-driver present" || echo "services: no chromium-driver"
exit 0
