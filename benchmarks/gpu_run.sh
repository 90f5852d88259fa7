#!/usr/bin/env bash
# On a machine with an NVIDIA GPU, from a plain copy of the repository (no install step):
# test every GPU backend on the device, then benchmark them and naive_loop (default sizes and
# the resnet configuration); the run's JSON and HTML land in reports/runs/, named after the GPU.
#   benchmarks/gpu_run.sh            tests + benchmark (about 10 minutes)
#   benchmarks/gpu_run.sh --quick    tests + a quick resnet-configuration timing (python -m benchmarks.gpu_step)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# the real device: never numba's CUDA simulator
export NUMBA_ENABLE_CUDASIM=0

quick=0
case "${1:-}" in
    --quick) quick=1 ;;
    "") ;;
    *) echo "usage: benchmarks/gpu_run.sh [--quick]" >&2; exit 2 ;;
esac

gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1 || true)
if [ -z "$gpu" ]; then
    echo "gpu_run.sh: error: no NVIDIA GPU found (nvidia-smi lists none)" >&2
    exit 1
fi
# the harness is a pytest plugin where benchmarks/plugin.py exists, else the root conftest.py
plugin=()
if [ -f benchmarks/plugin.py ]; then plugin=(-p benchmarks.plugin); fi

# every GPU backend, found as the tests and benchmarks find them; each says if it cannot run
gpu_backends=$("$PY" - <<'EOF'
import sys
import impls

names = [n for n in impls.backend_names() if impls.get_backend(n).device == "gpu"]
for name in names:
    ok, reason = impls.get_backend(name).available()
    print(f"{name}: {'available' if ok else 'UNAVAILABLE: ' + reason}", file=sys.stderr)
print(",".join(names))
EOF
)
echo "== $gpu; GPU backends: $gpu_backends"

echo "== conformance tests of the GPU backends on the device"
started=$SECONDS
status=0
"$PY" -m pytest tests/test_conformance.py tests/test_torch_oracle.py tests/test_properties.py \
    -k "${gpu_backends//,/ or }" -q -rs -p no:cacheprovider ${plugin[@]+"${plugin[@]}"} || status=$?
echo "== tests: exit $status, $((SECONDS - started)) s"

if [ "$quick" = 1 ]; then
    "$PY" -m benchmarks.gpu_step || status=$?
    exit "$status"
fi

echo "== benchmarks: $gpu_backends,naive_loop"
preset=default
stamp=$(date +%Y%m%d-%H%M%S)
slug=$(printf '%s' "$gpu" | tr -cs 'A-Za-z0-9._-' '-' | sed 's/-*$//')
scratch=$(mktemp -d "$PWD/reports/.gpu_run.XXXXXX")
"$PY" -m pytest --benchmark-only --preset "$preset" --backends "$gpu_backends,naive_loop" \
    --report-dir "$scratch" -p no:cacheprovider ${plugin[@]+"${plugin[@]}"} || status=$?

# move the run to reports/runs/<stamp>_<gpu>_default.*, rebuild its report and the index
mkdir -p reports/runs
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

# numba_cuda against cuDNN at the resnet configuration: the goal is at most 3x on a step
"$PY" - "$run" <<'EOF'
import json
import sys

medians = {}
for bench in json.load(open(sys.argv[1]))["benchmarks"]:
    info = bench.get("extra_info", {})
    if info.get("config") == "resnet":
        medians[(info.get("backend"), info.get("pass"))] = bench["stats"]["median"]
for pass_ in ("forward", "backward", "step"):
    ours, peer = medians.get(("numba_cuda", pass_)), medians.get(("torch_cudnn", pass_))
    if ours is None or peer is None:
        print(f"resnet configuration, {pass_}: not measured for both numba_cuda and torch_cudnn")
        continue
    goal = "  (goal: at most 3x)" if pass_ == "step" else ""
    print(
        f"resnet configuration, {pass_}: numba_cuda {ours * 1e3:.3f} ms, torch_cudnn "
        f"{peer * 1e3:.3f} ms, ratio {ours / peer:.2f}x{goal}"
    )
EOF
echo "${run%.json}.html"
exit "$status"
