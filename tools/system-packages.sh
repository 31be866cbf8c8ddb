#!/usr/bin/env bash
# Debian packages the tests and benchmarks use besides the brokers (the broker
# harness installs its own): tmux drives the interactive tests (zsh for its completion), kcat and
# hyperfine are the benchmarks' peer tool and timer.
set -euo pipefail
missing=()
for pair in tmux:tmux kcat:kcat hyperfine:hyperfine zsh:zsh; do
    command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "missing ${missing[*]}: install them with apt-get (needs root)" >&2
    exit 2
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
