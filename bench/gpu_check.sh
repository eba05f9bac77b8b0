#!/usr/bin/env bash
# The GPU path in one command (issue 10): on a machine with CUDA, grade solutions/ on the GPU and on the
# CPU, compare the two results item by item, then grade every variant on the GPU (the grader picks CUDA
# when it is there). Prints the figures; writes the JSON results to $OUT (default: a temporary folder).
#
#   bash bench/gpu_check.sh            # from the repository root, with the project's venv active
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
OUT=${OUT:-$(mktemp -d)}
"$PY" -c 'import torch, sys; ok = torch.cuda.is_available(); print("CUDA:", torch.cuda.get_device_name(0) if ok else "none", "| torch", torch.__version__); sys.exit(0 if ok else 3)'
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
for device in cuda cpu; do
    SECONDS=0
    "$PY" -m grader.cli grade --submission solutions --device "$device" --no-record --json "$OUT/solutions-$device.json" >"$OUT/solutions-$device.txt" || true
    echo "full grade of solutions/ on $device: ${SECONDS} s"
done
"$PY" - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
runs = {d: json.loads((out / f"solutions-{d}.json").read_text()) for d in ("cuda", "cpu")}
for d, run in runs.items():
    print(f"{d}: {run['score']}/{run['max_score']} points, status {run['status']}, device {run['device']}")
cpu = {i["id"]: i for i in runs["cpu"]["items"]}
for item in runs["cuda"]["items"]:
    other = cpu[item["id"]]
    if (item["status"], item["points"]) != (other["status"], other["points"]):
        print(f"differs: {item['id']}: cuda {item['status']} {item['points']} | cpu {other['status']} {other['points']}: {item['message']}")
PY
SECONDS=0
LLMGRADE_DEVICE=cuda "$PY" -m pytest tests/grader/test_variants.py -q -p no:cacheprovider
echo "variants on cuda: ${SECONDS} s"
echo "results in $OUT"
