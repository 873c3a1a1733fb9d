#!/bin/bash
# The GPU benchmark, for a machine with a GPU but no TensorFlow: Keras on the JAX
# and PyTorch backends, beside PyTorch's own cuDNN nn.LSTM/nn.GRU, in one go.
#
#     bash benchmarks/gpu_run.sh OUTDIR
#
# Needs keras (and its namex and optree) importable; run from the repository root.
# Everything goes to OUTDIR/gpu.log (and the terminal).
set -u
out=${1:-/tmp/gpu-bench}
mkdir -p "$out"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
exec > >(tee "$out/gpu.log") 2>&1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c "import torch, jax; print('torch', torch.__version__, 'cudnn', torch.backends.cudnn.version(), '| jax', jax.__version__, jax.devices())"

echo "== end to end on Keras/JAX: train, resume, a seeded sample twice, info"
run=/tmp/gpu-e2e
rm -rf "$run" "$run-gru"
export KERAS_BACKEND=jax
timeout 240 python3 -m generate -q train "$run" corpora/texts/nursery-rhymes.txt --units 128 --batch-size 16 --seq-len 50 --epochs 2
timeout 120 python3 -m generate -q train "$run" --resume --epochs 3
for i in 1 2; do timeout 120 python3 -m generate sample "$run" -n 300 -N 4 --seed 7 2>/dev/null | md5sum; done
python3 -m generate info "$run" | head -n 8
echo "== --precision mixed: a GRU trains in float16; an LSTM is refused (cuDNN LSTM on JAX is float32 only)"
timeout 240 python3 -m generate -q train "$run-gru" corpora/texts/nursery-rhymes.txt --cell gru --units 128 --batch-size 16 --seq-len 50 --epochs 2 --precision mixed
timeout 120 python3 -m generate -q train "$run-lstm16" corpora/texts/nursery-rhymes.txt --units 128 --batch-size 16 --seq-len 50 --epochs 1 --precision mixed; echo "exit status $?"
unset KERAS_BACKEND

for spec in "jax float32 training,sampling 64" "jax float32 training 512" "jax mixed training 64" "torch mixed training 64"; do
    set -- $spec
    echo "== Keras on $1, $2, $3, B=$4"
    KERAS_BACKEND=$1 timeout 150 python3 benchmarks/run.py --quick --only "$3" --precision "$2" --batch-size "$4" 2>&1 | grep -v "^WARNING\|^I0000\|^W0000\|absl"
done
