#!/usr/bin/env bash
# On a machine with an NVIDIA GPU, from a plain copy of the repository (no install step):
# test every GPU backend on the device, then time them on the gpu preset (the distinct
# ResNet-50 layers at batch 128 and a batch sweep); the run's JSON and HTML land in
# reports/runs/, named after the GPU, and with $OUT set they and the log are copied there too.
#   benchmarks/gpu_run.sh              tests + benchmark (under 10 minutes on one H100/H200)
#   benchmarks/gpu_run.sh --no-tests   the benchmark alone
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# the real device: never numba's CUDA simulator
export NUMBA_ENABLE_CUDASIM=0
#: seconds the tests, and the benchmark, may take at most: the whole script stays under 10 minutes
TESTS_S=${TESTS_S:-150}
BENCH_S=${BENCH_S:-380}

tests=1
case "${1:-}" in
    --no-tests) tests=0 ;;
    "") ;;
    *) echo "usage: benchmarks/gpu_run.sh [--no-tests]" >&2; exit 2 ;;
esac

if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT"
    exec > >(tee -a "$OUT/gpu_run.log") 2>&1
fi

gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1 || true)
if [ -z "$gpu" ]; then
    echo "gpu_run.sh: error: no NVIDIA GPU found (nvidia-smi lists none)" >&2
    exit 1
fi
# the harness is a pytest plugin where benchmarks/plugin.py exists, else the root conftest.py
plugin=()
if [ -f benchmarks/plugin.py ]; then plugin=(-p benchmarks.plugin); fi

# every GPU backend, found as the tests and benchmarks find them; each says if it cannot run
gpu_backends=$("$PY" - <<'PYEOF'
import sys
import impls

names = [n for n in impls.backend_names() if impls.get_backend(n).device == "gpu"]
for name in names:
    ok, reason = impls.get_backend(name).available()
    print(f"{name}: {'available' if ok else 'UNAVAILABLE: ' + reason}", file=sys.stderr)
print(",".join(names))
PYEOF
)
echo "== $gpu; GPU backends: $gpu_backends"
status=0

if [ "$tests" = 1 ]; then
    echo "== tests of the GPU backends and the GPU protocol on the device (at most $TESTS_S s)"
    started=$SECONDS
    timeout -s INT "$TESTS_S" "$PY" -m pytest tests/test_conformance.py tests/test_torch_oracle.py \
        tests/test_properties.py tests/test_gpu_protocol.py \
        -k "${gpu_backends//,/ or } or gpu" -q -rs -p no:cacheprovider \
        ${plugin[@]+"${plugin[@]}"} || status=$?
    echo "== tests: exit $status, $((SECONDS - started)) s"
fi

preset=gpu
echo "== benchmarks: --preset $preset --backends $gpu_backends (at most $BENCH_S s)"
stamp=$(date +%Y%m%d-%H%M%S)
slug=$(printf '%s' "$gpu" | tr -cs 'A-Za-z0-9._-' '-' | sed 's/-*$//')
mkdir -p reports/runs
scratch=$(mktemp -d "$PWD/reports/.gpu_run.XXXXXX")
bench=0
# a Ctrl-C (SIGINT) at the limit still saves the run, marked interrupted
timeout -s INT "$BENCH_S" "$PY" -m pytest --benchmark-only --preset "$preset" \
    --backends "$gpu_backends" --report-dir "$scratch" -p no:cacheprovider \
    ${plugin[@]+"${plugin[@]}"} || bench=$?
echo "== benchmarks: exit $bench"
[ "$bench" = 0 ] || status=$bench

# move the run to reports/runs/<stamp>_<gpu>_gpu.*, rebuild its report and the index
run=""
for found in "$scratch"/runs/*.json; do
    [ -e "$found" ] || continue
    run="reports/runs/${stamp}_${slug}_${preset}.json"
    if [ -e "$run" ]; then
        echo "gpu_run.sh: error: $run exists; the run stays in $found" >&2
        exit 1
    fi
    mv -n "$found" "$run"
done
if [ -z "$run" ]; then
    echo "gpu_run.sh: error: the benchmark saved no run (left in $scratch)" >&2
    exit 1
fi
rm -rf "$scratch"
"$PY" -m reports build "$run" -o "${run%.json}.html"
"$PY" -c 'import sys; from reports import update_index; update_index(sys.argv[1])' reports

# the goals, as the report judges them
"$PY" - "$run" <<'PYEOF'
import sys

from reports import judge, load

for verdict in judge(load([sys.argv[1]])):
    print(verdict.line())
PYEOF
if [ -n "${OUT:-}" ]; then
    cp "$run" "${run%.json}.html" "$OUT/"
    echo "== copied $run and its report to $OUT"
fi
echo "${run%.json}.html"
exit "$status"
