#!/usr/bin/env bash
# What `npm test` needs besides node_modules (run as its pretest step, and by .ci/run):
#   redis-check-aof, redis-cli, redis-benchmark  Debian's redis-tools   (the AOF and CLI suites
#                                                check our files with Redis's own tool)
#   redis-server                                 Debian's redis-server  (the kv-server suites)
#   PostgreSQL 15: pg_config and its server      Debian's postgresql-15 (the PostgreSQL store)
# When something is missing it installs the packages with apt-get if it runs as root on a
# system that has apt-get and APPENDONLY_NO_INSTALL is not set; otherwise it fails at once
# with the one command to run. When everything is there it only looks (no apt-get update).
set -euo pipefail

missing=()

need_command() { # need_command PACKAGE COMMAND...
  local package=$1 c
  shift
  for c in "$@"; do
    if ! command -v "$c" >/dev/null 2>&1; then
      missing+=("$package")
      return
    fi
  done
}

# A PostgreSQL 15 server and its pg_config: Debian puts both under /usr/lib/postgresql/15/bin;
# another system may have them on PATH.
have_postgres_15() {
  command -v pg_config >/dev/null 2>&1 || [ -x /usr/lib/postgresql/15/bin/pg_config ] || return 1
  local dir
  for dir in /usr/lib/postgresql/15/bin "$(pg_config --bindir 2>/dev/null || true)"; do
    if [ -x "$dir/postgres" ] && "$dir/postgres" --version 2>/dev/null | grep -q ' 15\.'; then
      return 0
    fi
  done
  return 1
}

need_command redis-tools redis-check-aof redis-cli redis-benchmark
need_command redis-server redis-server
have_postgres_15 || missing+=(postgresql-15)

[ ${#missing[@]} -eq 0 ] && exit 0

install="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1 || [ -n "${APPENDONLY_NO_INSTALL:-}" ]; then
  echo "the tests need ${missing[*]} (Debian packages), which are not installed: run \`sudo ${install}\`" >&2
  exit 1
fi

echo "test-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086 # the package names are words
apt-get install -y -qq --no-install-recommends ${missing[*]} >/dev/null
