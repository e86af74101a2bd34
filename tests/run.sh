#!/usr/bin/env bash
# The test command of the README: installs Open MPI (for the expert-parallel tests, which start `mpirun -np 2/4`) when
# mpirun is missing and the llama.cpp oracle, builds, runs every test and closes with the "N passed, N failed,
# N skipped" line that CI reads (dotnet test prints one summary per test assembly instead).
set -uo pipefail
cd "$(dirname "$0")/.."
if ! command -v mpirun >/dev/null; then
  as_root=$([ "$(id -u)" -eq 0 ] && echo "" || echo "sudo")
  { $as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
    $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q openmpi-bin; } ||
    { echo "could not install openmpi-bin (apt-get install openmpi-bin)"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }
fi
oracle/setup.sh || { echo "0 passed, 1 failed, 0 skipped"; exit 1; }
log=$(mktemp)
dotnet test Tune.sln -c Release "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
summary=$(grep -E '^(Passed|Failed)!  - Failed:' "$log" | awk -F'[:,]' '
  { failed += $2; passed += $4; skipped += $6 }
  END { printf "%d passed, %d failed, %d skipped\n", passed, failed, skipped }')
rm -f "$log"
echo "${summary:-0 passed, 0 failed, 0 skipped}"
exit "$status"
