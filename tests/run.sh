#!/usr/bin/env bash
# Installs the test dependencies and runs every test: the README's test command.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      chromium chromium-driver >/dev/null
  else
    echo "tests/run.sh: chromium or chromedriver is missing and cannot be installed here" >&2
  fi
fi
# the TLS tests make a throwaway certificate with the openssl command
if ! command -v openssl >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null
fi
# PostgreSQL (the app suites run on it too) and nginx (the cluster test's balancer)
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ! command -v nginx >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      postgresql nginx >/dev/null
  else
    echo "tests/run.sh: postgresql or nginx is missing and cannot be installed here" >&2
  fi
fi
# ab (apache2-utils) drives the USR2 upgrade test under load
if ! command -v ab >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      apache2-utils >/dev/null
  else
    echo "tests/run.sh: ab is missing and cannot be installed here" >&2
  fi
fi
python3 -m pip install -q --disable-pip-version-check -r tests/requirements.txt
exec python3 -m pytest -q tests "$@"
