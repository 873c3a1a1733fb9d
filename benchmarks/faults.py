"""Kill -9 at random moments, resume each time, and check that nothing was lost or changed.

    python benchmarks/faults.py [--kills 20] [--corpus FILE] [--seed 0] [--jobs-kills 10]

Training: trains a small GRU once without interruption, then the same run
again, killing it with SIGKILL at N moments chosen to cover every phase:
the import, the corpus ingestion (each attempt gets a fresh corpus cache),
the first steps, checkpoint writes (the moment a temp checkpoint appears),
validation, and random moments 2-11 s apart. After each kill the same
command runs again with --resume. Prints `K/N resumed, final val A vs B`
and whether the final weights are bit-identical; exits 1 if any resume
failed or anything differs.

Full disk: where a tmpfs can be mounted (root), trains the same run on
one too small for it, checks the one-line error and that the last
checkpoint is intact, grows the filesystem and resumes to the end.

Job files: runs a 30-output job file, kills `generate run` at random moments
and reruns it with the same --run-id, then checks that every output is
there once and whole, matching its sidecar, and that the manifest parses
and lists each output exactly once.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODEL = ["--cell", "gru", "--layers", "2", "--units", "64", "--embedding-dim", "16", "--batch-size", "16",
         "--seq-len", "64", "--epochs", "3", "--dropout", "0.1", "--seed", "7", "--checkpoint-every", "60",
         "--val-fraction", "0.1"]
PHASES = ("import", "ingestion", "first steps", "checkpoint write", "validation", "random")


def start(args: list[str], cache: Path) -> subprocess.Popen:
    env = {**os.environ, "GENERATE_CACHE_DIR": str(cache), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen([sys.executable, "-m", "generate", "-q", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition, proc: subprocess.Popen, timeout: float) -> bool:
    """Polls `condition` every 10 ms until it holds, the process ends, or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if condition():
            return True
        time.sleep(0.01)
    return False


def kill_during(phase: str, proc: subprocess.Popen, run: Path, rng: random.Random) -> bool:
    """Waits for a moment in `phase`, then SIGKILLs; False if the process ended first."""
    history_size = lambda: run.joinpath("history.csv").stat().st_size if run.joinpath("history.csv").exists() else 0  # noqa: E731
    if phase == "import":
        time.sleep(rng.uniform(0.05, 2.0))
    elif phase == "ingestion":
        time.sleep(rng.uniform(2.0, 5.0))
    elif phase == "first steps":
        wait_for(lambda: (run / "config.json").exists(), proc, 120)
        time.sleep(rng.uniform(0.0, 3.0))
    elif phase == "checkpoint write":
        wait_for(lambda: any(p.name.startswith((".latest.keras.", ".best.keras.", ".previous.keras."))
                             for p in run.glob(".*")), proc, 120)
    elif phase == "validation":
        size = history_size()
        wait_for(lambda: history_size() > size, proc, 120)  # the next validation's row
        time.sleep(rng.uniform(0.0, 0.3))
    else:
        time.sleep(rng.uniform(2.0, 11.0))
    if proc.poll() is not None:
        return False
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return True


def final_state(run: Path) -> tuple[float, list]:
    from generate.model.checkpoint import load_trainable_model, read_training_state
    from generate.model.rundir import RunDir

    state = read_training_state(RunDir(run).latest)
    return state["best_val_loss"], load_trainable_model(RunDir(run).latest).get_weights()


def training_faults(args, folder: Path) -> bool:
    import numpy as np

    corpus = args.corpus
    straight, faulty = folder / "straight", folder / "faulty"
    began = time.monotonic()
    done = start(["train", str(straight), str(corpus), *MODEL], folder / "cache-straight")
    _, err = done.communicate()
    if done.returncode != 0:
        print(f"uninterrupted run failed: {err.strip()}")
        return False
    straight_s = time.monotonic() - began
    rng = random.Random(args.seed)
    phases = [PHASES[i % len(PHASES)] for i in range(args.kills)]
    rng.shuffle(phases)
    # outcomes: for each kill, whether the attempt after it (with --resume) carried on without an error.
    outcomes, failures, aimed = [], [], {phase: 0 for phase in PHASES}
    command = ["train", str(faulty), str(corpus), *MODEL]
    after_kill, finished = False, False
    for attempt, phase in enumerate(phases):
        proc = start(command + (["--resume"] if attempt else []), folder / f"cache-{attempt}")
        killed = kill_during(phase, proc, faulty, rng)
        error = None
        if not killed:
            out, err = proc.communicate()
            error = None if proc.returncode == 0 else f"attempt {attempt + 1}: exit {proc.returncode}: {err.strip()[-300:]}"
            finished = proc.returncode == 0
        if after_kill:
            outcomes.append(error is None)
        if error:
            failures.append(error)
        if killed:
            aimed[phase] += 1
        after_kill = killed
        if finished:
            break
    if not finished:
        last = start(command + ["--resume"], folder / "cache-last")
        _, err = last.communicate()
        if after_kill:
            outcomes.append(last.returncode == 0)
        if last.returncode != 0:
            failures.append(f"final resume: exit {last.returncode}: {err.strip()[-300:]}")
    val_a, weights_a = final_state(straight)
    val_b, weights_b = final_state(faulty)
    identical = all(np.array_equal(a, b) for a, b in zip(weights_a, weights_b))
    print(f"training: {len(outcomes)} kills, aimed at {', '.join(f'{p} {n}' for p, n in aimed.items())}; "
          f"the uninterrupted run took {straight_s:.0f} s")
    print(f"{sum(outcomes)}/{len(outcomes)} resumed, final val {val_a:.6f} vs {val_b:.6f}, "
          f"weights {'bit-identical' if identical else 'DIFFER'}")
    for failure in failures:
        print(f"  FAILED {failure}")
    return not failures and identical and val_a == val_b


def full_disk(args, folder: Path) -> bool:
    """Trains on a tmpfs too small for the run, checks the error and the files, grows it, and resumes."""
    import numpy as np

    from generate.model.checkpoint import checkpoint_problem, read_training_state
    from generate.model.rundir import RunDir

    mount_point = folder / "small-fs"
    mount_point.mkdir()
    # latest, previous and best fit; the temp file of the next save does not, at the first epoch's end.
    size_kb = int((folder / "straight" / "latest.keras").stat().st_size * 3.5 / 1024)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(mount_point)], capture_output=True)
    if mounted.returncode != 0:
        print(f"full disk: skipped (mounting a tmpfs failed: {mounted.stderr.decode().strip() or 'needs root'})")
        return True
    try:
        run = RunDir(mount_point / "run")
        command = ["train", str(run.path), str(args.corpus), *MODEL]
        first = start(command, folder / "cache-full")
        _, err = first.communicate()
        lines = err.strip().splitlines()
        stopped = first.returncode == 1 and len(lines) == 1 and "No space left on device" in lines[0]
        intact = run.latest.exists() and checkpoint_problem(run.latest) is None
        step = read_training_state(run.latest)["global_step"] if intact else None
        leftovers = [p.name for p in run.path.iterdir() if p.name.startswith(".")]
        subprocess.run(["mount", "-o", "remount,size=256m", str(mount_point)], check=True)
        second = start(command + ["--resume"], folder / "cache-full")
        _, err2 = second.communicate()
        val_a, weights_a = final_state(folder / "straight")
        val_b, weights_b = (final_state(run.path) if second.returncode == 0 else (float("nan"), []))
        identical = second.returncode == 0 and all(np.array_equal(a, b) for a, b in zip(weights_a, weights_b))
    finally:
        subprocess.run(["umount", str(mount_point)], capture_output=True)
    print(f"full disk ({size_kb} KB tmpfs): exit {first.returncode}, stderr {lines!r}; latest.keras "
          f"{'intact at global step ' + str(step) if intact else 'DAMAGED OR MISSING'}, {len(leftovers)} temp file(s) left")
    print(f"  after growing it to 256 MB: --resume exit {second.returncode}, final val {val_a:.6f} vs {val_b:.6f}, "
          f"weights {'bit-identical' if identical else 'DIFFER'}" + (f" ({err2.strip()[-200:]})" if second.returncode else ""))
    return stopped and intact and not leftovers and identical


JOBS = """
[[job]]
name = "verse"
model = "MODEL"
out = "OUT/{run_id}/verse-{n:02}"
count = 30
prime = PRIMES
temperature = [0.7, 1.0]
length = 200
formats = ["txt", "json"]
"""


def job_faults(args, folder: Path) -> bool:
    from generate.jobs.manifest import read_manifest

    model = folder / "straight"  # the run trained above
    out = folder / "jobs-out"
    jobs = folder / "jobs.toml"
    text = args.corpus.read_text(encoding="utf-8")
    primes = json.dumps([text[:2], text[len(text) // 2: len(text) // 2 + 2]], ensure_ascii=False)  # in any corpus's vocabulary
    jobs.write_text(JOBS.replace("MODEL", str(model)).replace("OUT", str(out)).replace("PRIMES", primes), encoding="utf-8")
    rng = random.Random(args.seed + 1)
    command = ["run", str(jobs), "--run-id", "night"]
    kills = 0
    for _ in range(args.jobs_kills):
        proc = start(command, folder / "cache-jobs")
        time.sleep(rng.uniform(0.5, 8.0))  # a run with nothing left to make ends in about 8 s
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            kills += 1
    final = start(command, folder / "cache-jobs")
    _, err = final.communicate()
    problems = [] if final.returncode == 0 else [f"final run: exit {final.returncode}: {err.strip()[-300:]}"]
    made_folder = out / "night"
    for n in range(1, 31):
        for suffix in (".txt", ".json"):
            path = made_folder / f"verse-{n:02}{suffix}"
            sidecar = path.with_name(path.name + ".json")
            if not path.exists() or not sidecar.exists():
                problems.append(f"{path.name}: missing")
                continue
            record = json.loads(sidecar.read_text(encoding="utf-8"))
            whole = path.read_text(encoding="utf-8") == record["text"] if suffix == ".txt" else json.loads(path.read_text()) == record
            if not whole:
                problems.append(f"{path.name}: does not match its sidecar")
    extra = sorted(p.name for p in made_folder.iterdir() if p.name.startswith(".") or not p.name.startswith("verse-"))
    problems += [f"{name}: left behind" for name in extra]
    lines = (out / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    records = read_manifest(out / "manifest.jsonl")
    made = [r["n"] for r in records if r.get("event") == "made"]
    if sorted(made) != list(range(1, 31)):
        problems.append(f"manifest lists outputs {sorted(made)}, expected each of 1-30 once")
    torn = len(lines) - len(records)
    print(f"job files: {kills} kills of `generate run`, then {len(list(made_folder.glob('verse-*')))} files, "
          f"{len(made)} made records for 30 outputs, {torn} torn manifest line(s) skipped")
    for problem in problems:
        print(f"  FAILED {problem}")
    return not problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs of the training run")
    parser.add_argument("--jobs-kills", type=int, default=10, help="SIGKILLs of `generate run`")
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "data" / "tinyshakespeare.txt",
                        help="the training corpus; the first --chars characters are used")
    parser.add_argument("--chars", type=int, default=300_000)
    parser.add_argument("--seed", type=int, default=0, help="seeds the kill moments")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="faults-") as name:
        folder = Path(name)
        corpus = folder / args.corpus.name
        corpus.write_text(args.corpus.read_text(encoding="utf-8")[: args.chars], encoding="utf-8")
        args.corpus = corpus
        ok = training_faults(args, folder)
        ok = full_disk(args, folder) and ok
        ok = job_faults(args, folder) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
