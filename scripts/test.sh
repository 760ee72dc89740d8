#!/usr/bin/env bash
# Runs the whole test suite (everything but the `gpu` marker), starting what it needs:
# a Docker engine (dockerd) when none answers. The shop server, the retriever server,
# chromium and the vLLM engine are started by the tests' own fixtures.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
venv="${TURNGYM_VENV:-$root/.venv}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-2}"

started_dockerd=""
if command -v dockerd >/dev/null && ! docker info >/dev/null 2>&1; then
  echo "[test] starting dockerd" >&2
  mkdir -p /tmp/turngym-ci
  dockerd >/tmp/turngym-ci/dockerd.log 2>&1 &
  started_dockerd=$!
  for _ in $(seq 1 120); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { echo "[test] dockerd did not start:" >&2; tail -20 /tmp/turngym-ci/dockerd.log >&2; }
fi
cleanup() { [ -n "$started_dockerd" ] && kill "$started_dockerd" 2>/dev/null; true; }
trap cleanup EXIT

# The SWE sandbox image, built from Debian packages (nothing can be pulled); a no-op when the
# tag exists. The docker tests need it, so a failed build fails the run here.
if docker info >/dev/null 2>&1; then
  "$venv/bin/turngym" swe build-image || { echo "[test] turngym swe build-image failed" >&2; exit 1; }
fi

# Every test must run: a skip (no Docker engine, no Chromium, ...) fails, unless its reason
# starts with "optional:" (tests/conftest.py).
export TURNGYM_NO_SKIPS="${TURNGYM_NO_SKIPS:-1}"

# -X faulthandler: a crash after pytest returns (interpreter shutdown) prints its stacks
"$venv/bin/python" -X faulthandler -m pytest -m "not gpu" --timeout=1200 -p no:cacheprovider "$@"
rc=$?
if [ "$rc" -eq 5 ]; then echo "[test] pytest collected no tests: failing" >&2; exit 1; fi
exit "$rc"
