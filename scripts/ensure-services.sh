#!/usr/bin/env bash
# Make sure the real backends the suite talks to are up: PostgreSQL and Redis on loopback.
# (The Kafka-protocol broker, tansu, is started by the test fixtures themselves.)
# On this kind of machine both are installed from Debian packages and usually already running;
# this starts them with the machine's own commands when they are not. Missing entirely: say so,
# and the suite skips (or, under CI=true, fails) the tests that need them.
set -u

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; }

if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  fi
fi
pg_up && echo "PostgreSQL: up" || echo "PostgreSQL: NOT available on 127.0.0.1:5432"

if ! redis_up; then
  if command -v redis-server >/dev/null 2>&1; then
    echo "starting Redis"
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
    for _ in $(seq 1 20); do redis_up && break; sleep 0.5; done
  fi
fi
redis_up && echo "Redis: up" || echo "Redis: NOT available on 127.0.0.1:6379"
exit 0
