#!/usr/bin/env bash
# jaxls's GPU benchmarks (issue 14): one run of benchmarks/gpu.py, in under 8 minutes.
#
#   bash benchmarks/gpu.sh [OUT]                  # OUT defaults to benchmarks/gpu-results
#   GPU_ARGS=--quick bash benchmarks/gpu.sh OUT   # tiny sizes: a CPU smoke run
#
# Run from anywhere, on a machine where the project is installed (`pip install --no-deps -e .`;
# jax, jaxlib, optax and numpy are needed; matplotlib is optional: without it, no PNG).
# Prints the device, then runs benchmarks/gpu.py under `timeout 470`: three float32
# measurements (the exact searches under vmap up to 10^8 problems, optax's L-BFGS with
# jaxls.wolfe against its zoom search on 10^6 parameters, forward- against reverse-mode
# Jacobians). OUT receives report.md and the PNGs; report.md is rewritten as each line is
# measured, so a run stopped by the time limit keeps what it had. GPU_ARGS passes options
# through to gpu.py (--quick, --max-problems N, --params N, --time-limit S); see
# `python3 benchmarks/gpu.py --help`.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/benchmarks/gpu-results}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac # relative to where the script was called
read -r -a extra <<<"${GPU_ARGS:-}"

echo "== device"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total --format=csv || true
else
  echo "(no nvidia-smi)"
fi
python3 -c 'import jax; print(jax.devices())'

echo "== python3 benchmarks/gpu.py --out $out ${extra[*]:-}"
status=0
(cd "$root" && timeout 470 python3 benchmarks/gpu.py --out "$out" ${extra[@]+"${extra[@]}"}) ||
  status=$?
if [ "$status" -eq 124 ]; then
  echo "gpu.py stopped by the time limit (470 s): the report holds what was measured"
fi

echo "== report: $out/report.md"
ls -l "$out"
exit "$status"
