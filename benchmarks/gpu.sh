#!/usr/bin/env bash
# Every GPU row of benchmarks/RESULTS.md (random weights: the same compute as real ones), in one run
# of under 8 minutes: at SD 1.5 size, recording overhead in fp16 (batch 8, 50 steps) and per eraser
# iteration and attack step (ESD-x, P-ESD, UnlearnDiffAtk, soft prompt); at FLUX.1 and SD3.5-large
# size in bf16 at 1024 px, one denoising step plain and recorded, one ESD-x iteration and one
# prompt-attack step; SAE training steps at SD 1.5 size (SAeUron's 16x, k 32); each with peak memory;
# fresh ESD draws one iteration a sampler call against 8 (seconds and denoiser calls an iteration).
#
#   bash benchmarks/gpu.sh --fetch   # here, once: wheels the device image lacks into .whl/ (ignored)
#   bash benchmarks/gpu.sh           # on the GPU machine (the device tool: carry [".whl"]); writes
#                                    # $OUT/RESULTS-gpu.md (or benchmarks/RESULTS-gpu.md), to paste
#                                    # into benchmarks/RESULTS.md under "GPU"
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--fetch" ]; then
    echo /.whl/ >> .git/info/exclude
    # the device image has torch, transformers, xarray, safetensors, tqdm, numpy; not these
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
        diffusers==0.42.1 zarr==3.1.6 numcodecs==0.16.6 donfig==0.8.1.post1 google-crc32c==1.9.0 plotly==7.1.0
    exit 0
fi
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1
dest=${OUT:-benchmarks}
report="$dest/RESULTS-gpu.md"
gpu=$(python3 -c "import torch; print(torch.cuda.get_device_name(0))")
{
    echo "## GPU ($gpu, $(date -u +%Y-%m-%d), \`bash benchmarks/gpu.sh\`)"
    echo
    echo "Recording (\`benchmarks/record_overhead.py --mode sd15-gpu --repeats 2\`):"
    echo
    echo '```'
    timeout 140 python3 benchmarks/record_overhead.py --mode sd15-gpu --repeats 2 2>&1 | tail -n 5 || echo "record_overhead: failed or past 140 s"
    echo '```'
    echo
    echo "Erasers and attacks (\`benchmarks/erasers.py --device cuda --iterations 10 --markdown\`):"
    echo
    timeout 120 python3 benchmarks/erasers.py --device cuda --iterations 10 --markdown 2>&1 | grep '^|' || echo "erasers: failed or past 120 s"
    echo
    echo "Diffusion transformers at full size, bf16, 1024 px (\`benchmarks/dit_sizes.py --device cuda --markdown\`):"
    echo
    timeout 140 python3 benchmarks/dit_sizes.py --device cuda --markdown 2>&1 | grep '^|' || echo "dit_sizes: failed or past 140 s"
    echo
    echo "SAE training at SD 1.5 size (\`benchmarks/sae_train.py --device cuda --steps 20 --markdown\`):"
    echo
    timeout 40 python3 benchmarks/sae_train.py --device cuda --steps 20 --markdown 2>&1 | grep '^|' || echo "sae_train: failed or past 40 s"
    echo
    echo "Fresh ESD draws at SD 1.5 size, one iteration a sampler call against 8 (\`benchmarks/fresh_draws.py --model sd15 --device cuda -n 8\`):"
    echo
    timeout 40 python3 benchmarks/fresh_draws.py --model sd15 --device cuda -n 8 2>&1 | grep -E '^\||speed-up' || echo "fresh_draws: failed or past 40 s"
} | tee "$report"
