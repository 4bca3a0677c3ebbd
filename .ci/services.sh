#!/usr/bin/env bash
# Make sure PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) answer; tests that need them skip otherwise.
set -uo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

need_apt=()
port_open 5432 || command -v pg_ctlcluster >/dev/null || need_apt+=(postgresql)
port_open 6379 || command -v redis-server >/dev/null || need_apt+=(redis-server)
if [ ${#need_apt[@]} -gt 0 ] && command -v apt-get >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}") >/dev/null 2>&1 \
    || echo "services: could not install ${need_apt[*]}"
fi
if ! port_open 5432 && command -v pg_ctlcluster >/dev/null; then
  for version in $(ls /etc/postgresql 2>/dev/null); do pg_ctlcluster "$version" main start 2>/dev/null || true; done
fi
if ! port_open 6379 && command -v redis-server >/dev/null; then
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' >/dev/null 2>&1 || true
fi
for _ in $(seq 1 30); do port_open 5432 && port_open 6379 && break; sleep 1; done
port_open 5432 && echo "services: PostgreSQL up" || echo "services: PostgreSQL not available"
port_open 6379 && echo "services: Redis up" || echo "services: Redis not available"
exit 0
