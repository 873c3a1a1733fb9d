"""`generate train`'s one entry point: this process alone, one worker of a cluster, or N local workers.

- Alone (the default) or with `--devices`: this process trains.
- With TF_CONFIG set: this process is one worker of the cluster it names;
  the same command runs on every host, and only the chief writes the run.
- With `--local-workers N`: this process checks everything a worker would
  (options, corpus, run directory), builds the corpus caches once, then
  starts N worker processes on 127.0.0.1 and supervises them. A worker that
  dies stops the others within `STOP_GRACE_S` and is named in one line.

Workers receive the request as JSON, already checked: they do not parse a
command line. Each reports its result or error as one JSON line on stdout.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..data.config import CorpusConfig
from ..errors import GenerateError, OptionError, UsageError, WorkerLostError
from ..model.config import ModelConfig, TrainConfig
from .cluster import (
    LOCAL_WORKER_ENVIRONMENT,
    ClusterSpec,
    ReplicaOptions,
    Replication,
    check_port_free,
    cluster_from_environment,
    free_local_addresses,
    verify_replica_options,
)
from .plan import Plan, TrainResult, plan_new_run, plan_resume
from .trainer import TrainingInterrupted, execute

log = logging.getLogger(__name__)

REQUEST_ENVIRONMENT = "GENERATE_WORKER_REQUEST"
STOP_GRACE_S = 30.0  # after one worker dies, how long the others get to notice before they are killed
_POLL_S = 0.1


@dataclass(frozen=True)
class TrainRequest:
    """One `generate train` command, resolved: what every worker of it plans from.

    `configs` holds the corpus, model and training options of a new run, or,
    with `resume`, of the run to start if it was killed before it recorded
    its own; `overrides` are the options given explicitly on `--resume`.
    """

    run: Path  # the run directory
    resume: bool = False  # continue the run in `run`
    configs: tuple[CorpusConfig, ModelConfig, TrainConfig] | None = None
    sources: tuple[str, ...] = ()  # --resume: sources to read instead of the recorded ones
    overrides: dict = field(default_factory=dict)  # --resume: options set on the command line
    skipped_report: Path | None = None  # music: write every skipped piece here
    show_progress: bool = True  # progress bars on stderr (the chief's only)

    def to_json(self) -> str:
        return json.dumps({
            "run": str(self.run), "resume": self.resume,
            "configs": [dataclasses.asdict(c) for c in self.configs] if self.configs else None,
            "sources": list(self.sources), "overrides": self.overrides,
            "skipped_report": str(self.skipped_report) if self.skipped_report else None, "show_progress": self.show_progress,
        })

    @classmethod
    def from_json(cls, text: str) -> TrainRequest:
        data = json.loads(text)
        configs = data["configs"]
        return cls(
            Path(data["run"]), data["resume"],
            (CorpusConfig(**configs[0]), ModelConfig(**configs[1]), TrainConfig(**configs[2])) if configs else None,
            tuple(data["sources"]), data["overrides"], Path(data["skipped_report"]) if data["skipped_report"] else None,
            data["show_progress"],
        )


def plan_request(request: TrainRequest, chief: bool = True) -> Plan:
    """Checks and reads what `request` trains on; writes nothing."""
    if request.resume:
        return plan_resume(request.run, list(request.sources) or None, request.overrides, request.show_progress,
                           new_run=request.configs if request.sources else None, skipped_report=request.skipped_report,
                           chief=chief)
    if request.configs is None:
        raise UsageError("missing SOURCES: expected one or more corpus files, directories or glob patterns")
    return plan_new_run(request.run, *request.configs, request.show_progress, request.skipped_report, chief)


# What a run is made of, as `generate train` and `generate.train` take it (the rest is worked out from the corpus).
_WORKED_OUT = {"sources", "vocab_size", "label_count"}
REPLICA_KEYWORDS = ("devices", "local_workers")


def train_keywords() -> tuple[str, ...]:
    """Every option of `generate train`, as a keyword (`epochs`, `units`, `kind`, ...)."""
    names = [f.name for cls in (CorpusConfig, ModelConfig, TrainConfig) for f in dataclasses.fields(cls)]
    return tuple(n for n in names if n not in _WORKED_OUT) + REPLICA_KEYWORDS


def build_request(run: Path, sources: tuple[str, ...], resume: bool, options: dict, explicit: dict,
                  skipped_report: Path | None = None, show_progress: bool = True) -> tuple[TrainRequest, ReplicaOptions]:
    """A `TrainRequest` from `generate train`'s options, as the command line and the Python API both give them.

    Args:
        options: every option's value (the command line's defaults included).
        explicit: the options the user set: on `resume`, those that apply (and changes to the rest are refused).

    Raises:
        OptionError: no SOURCES for a new run.
    """
    from ..data.corpus import corpus_config  # a new run's corpus config needs the registry

    options = dict(options)
    replicas = ReplicaOptions(options.pop("devices", None) or "", options.pop("local_workers", None) or 0)
    corpus, model, training = ({f.name: options[f.name] for f in dataclasses.fields(cls) if f.name in options}
                               for cls in (CorpusConfig, ModelConfig, TrainConfig))
    if not resume and not sources:
        raise OptionError("sources", "expected one or more corpus files, directories or glob patterns")
    # With resume, these start a run killed before it recorded its configuration, as the same call without it would.
    configs = (corpus_config(list(sources), **corpus), ModelConfig(**model), TrainConfig(**training)) if sources else None
    explicit = {k: v for k, v in explicit.items() if k not in REPLICA_KEYWORDS} if resume else {}
    return TrainRequest(Path(run), resume, configs, tuple(sources) if resume else (), explicit, skipped_report,
                        show_progress), replicas


def train_with_keywords(run: str | Path, sources: tuple[str, ...] | list[str] = (), resume: bool = False,
                        show_progress: bool = False, **options) -> TrainResult:
    """`generate train` for the Python API (`generate.train`): its options as keywords, errors naming keywords.

    Raises:
        OptionError: an unknown keyword (with the nearest one), or a bad value, named as the keyword.
        UsageError, CorpusError: as `train`.
    """
    known = train_keywords()
    for name in options:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            raise OptionError(name, "not an option of generate.train" + (f"; did you mean {close[0]!r}?" if close else
                                                                          f"; expected one of {', '.join(known)}")).as_keyword()
    if isinstance(sources, str):
        sources = (sources,)
    try:
        request, replicas = build_request(Path(run), tuple(str(s) for s in sources), resume, options, options,
                                          show_progress=show_progress)
        return train(request, replicas)
    except OptionError as exc:  # named as the keyword the caller wrote, not as a flag
        raise exc.as_keyword() from None


def train(request: TrainRequest, replicas: ReplicaOptions | None = None) -> TrainResult:
    """Trains as `request` says, on the devices and processes `replicas` and TF_CONFIG say.

    Raises:
        UsageError: a bad option, cluster or corpus, before anything trains.
        TrainingInterrupted: a signal stopped training after a checkpoint was saved.
        WorkerLostError: a worker died or hung; the last checkpoint is intact.
    """
    replicas = verify_replica_options(replicas or ReplicaOptions())
    if replicas.local_workers and replicas.devices:
        raise UsageError(f"--local-workers {replicas.local_workers}: each local worker takes one device; "
                         f"expected either --local-workers or --devices {replicas.devices}, not both")
    if replicas.local_workers:
        return _launch_local_workers(request, replicas.local_workers)
    cluster = cluster_from_environment()
    if cluster is not None:
        check_port_free(cluster)
    replication = Replication(cluster, replicas.device_count, int(os.environ.get("GENERATE_CPU_THREADS", "0") or 0))
    plan = plan_request(request, chief=replication.is_chief)
    return execute(plan, request.show_progress, replication)


# ---------------------------------------------------------------- the launcher


def _launch_local_workers(request: TrainRequest, count: int) -> TrainResult:
    """Plans once here (checks, corpus caches), then trains on `count` worker processes over loopback."""
    plan = plan_request(request)
    if plan.done is not None:
        return plan.done
    verify_replica_options(ReplicaOptions(local_workers=count), plan.config.train.batch_size)
    cluster = ClusterSpec(free_local_addresses(count), 0)
    workers = [_start_worker(request, cluster.with_index(i), count) for i in range(count)]
    log.info("started %d local workers (pids %s) on %s", count, ", ".join(str(w.pid) for w in workers), ", ".join(cluster.addresses))
    forwarded: list[int] = []

    def forward(signum, frame):
        forwarded.append(signum)
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)} \
        if threading.current_thread() is threading.main_thread() else {}
    try:
        lost, killed = _supervise(workers)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    reports = [_report(w) for w in workers]
    return _outcome(reports, workers, lost, killed, cluster, plan, forwarded)


def _start_worker(request: TrainRequest, cluster: ClusterSpec, count: int) -> subprocess.Popen:
    env = dict(os.environ)
    env.update({
        "TF_CONFIG": cluster.to_tf_config(),
        LOCAL_WORKER_ENVIRONMENT: str(cluster.index),
        REQUEST_ENVIRONMENT: request.to_json(),
        "GENERATE_CPU_THREADS": str(max(1, (os.cpu_count() or 1) // count)),
        "GENERATE_LOG_LEVEL": str(logging.getLogger("generate").getEffectiveLevel()),
    })
    visible = [d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    env["CUDA_VISIBLE_DEVICES"] = visible[cluster.index] if cluster.index < len(visible) else str(cluster.index)
    # Its own session: a Ctrl-C at the terminal reaches the launcher alone, which passes it on once.
    return subprocess.Popen([sys.executable, "-m", "generate.training.launch"], env=env, stdout=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, start_new_session=True)


def _supervise(workers: list[subprocess.Popen]) -> tuple[int | None, list[int]]:
    """Waits for every worker; returns the index of the first that died without reporting (if any), and
    the indices of those this launcher had to kill.

    Once one has died, the others get STOP_GRACE_S to notice (the engine's
    collectives fail within seconds) and are then killed. A worker killed here
    hung (it neither trained nor noticed): it is named as such, not as lost.
    """
    lost, failed_at, killed = None, None, []
    while any(w.poll() is None for w in workers):
        for index, worker in enumerate(workers):
            if lost is None and index not in killed and worker.returncode is not None and worker.returncode < 0:
                lost = index
                log.debug("worker %d (pid %d) %s; stopping the others", index, worker.pid, _how(worker.returncode))
            if failed_at is None and worker.returncode:
                failed_at = time.monotonic()
        if failed_at is not None and time.monotonic() - failed_at > STOP_GRACE_S:
            for index, worker in enumerate(workers):
                if worker.poll() is None:
                    worker.kill()
                    killed.append(index)
        time.sleep(_POLL_S)
    if lost is None:
        lost = next((i for i, w in enumerate(workers) if w.returncode < 0 and i not in killed), None)
    return lost, killed


def _report(worker: subprocess.Popen) -> dict:
    """The worker's one JSON line, or {} if it died before writing it."""
    text = worker.stdout.read().decode("utf-8", "replace") if worker.stdout else ""
    for line in reversed(text.strip().splitlines()):
        try:
            return json.loads(line)
        except ValueError:
            continue
    return {}


def _outcome(reports: list[dict], workers: list[subprocess.Popen], lost: int | None, killed: list[int], cluster: ClusterSpec,
             plan: Plan, forwarded: list[int]) -> TrainResult:
    run = plan.run.path
    resume_hint = f"the last checkpoint in {run} is intact: continue with 'generate train {run} --resume' (with any number of workers)"
    chief = reports[0]
    if "result" in chief and all("result" in r for r in reports):
        result = chief["result"]
        return TrainResult(Path(result["run"]), result["epochs_done"], result["global_step"], result["best_val_loss"],
                           result["stopped_early"], result["finished"])
    if lost is not None and not (forwarded and workers[lost].returncode == -forwarded[0]):
        raise WorkerLostError(f"{cluster.name(lost)}, pid {workers[lost].pid}, {_how(workers[lost].returncode)}; "
                              f"the other workers were stopped; {resume_hint}")
    if forwarded and chief.get("interrupted"):
        raise TrainingInterrupted(chief["error"], forwarded[0])
    # The chief's own error comes first: every worker checked the same things, and it holds the run.
    for index, report in enumerate(reports):
        if "error" in report and not report.get("lost"):
            error = UsageError if report["exit_code"] == 2 else GenerateError
            raise error(report["error"] if index == 0 else f"{cluster.name(index)}: {report['error']}")
    lost_report = next((r for r in reports if r.get("lost")), None)
    if lost_report and killed:
        hung = " and ".join(f"{cluster.name(i)}, pid {workers[i].pid}," for i in killed)
        raise WorkerLostError(f"{hung} stopped responding ({lost_report.get('reason') or 'its peers lost it'}) and was killed "
                              f"{STOP_GRACE_S:g} s later; {resume_hint}")
    if lost_report:
        raise WorkerLostError(lost_report["error"])
    silent = next(i for i, r in enumerate(reports) if not r)
    raise WorkerLostError(f"{cluster.name(silent)}, pid {workers[silent].pid}, {_how(workers[silent].returncode)} without a "
                          f"report; the other workers were stopped; {resume_hint}")


def _how(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "an unknown signal"
        return f"was killed by signal {-returncode} ({name})"
    return f"exited with status {returncode}"


# ---------------------------------------------------------------- one local worker


def _worker_main() -> int:
    """The body of one process `--local-workers` started: train, then report one JSON line on stdout."""
    index = int(os.environ[LOCAL_WORKER_ENVIRONMENT])
    _setup_worker_logging(index)
    _stop_when_orphaned()
    request = TrainRequest.from_json(os.environ[REQUEST_ENVIRONMENT])
    if index:
        request = dataclasses.replace(request, show_progress=False)
    report: dict
    code = 0
    try:
        result = train(request)
        report = {"result": dataclasses.asdict(result) | {"run": str(result.run)}}
    except TrainingInterrupted as exc:
        report, code = {"error": str(exc), "exit_code": exc.exit_code, "interrupted": True}, exc.exit_code
    except WorkerLostError as exc:
        report, code = {"error": str(exc), "exit_code": exc.exit_code, "lost": True, "reason": exc.reason}, exc.exit_code
    except GenerateError as exc:
        report, code = {"error": str(exc), "exit_code": exc.exit_code}, exc.exit_code
    except Exception as exc:  # a bug: one line, with the traceback under -v
        log.debug("worker %d failed", index, exc_info=True)
        report, code = {"error": f"unexpected {type(exc).__name__}: {exc} (run with -v for the traceback)", "exit_code": 1}, 1
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()
    return code


def _setup_worker_logging(index: int) -> None:
    """Logs on stderr as the command line's: the chief's at the launcher's level, the others' from warnings up, named."""
    root = logging.getLogger("generate")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s" if index == 0 else f"worker {index}: %(message)s"))
    root.addHandler(handler)
    level = int(os.environ.get("GENERATE_LOG_LEVEL", logging.INFO))
    root.setLevel(level if index == 0 else max(level, logging.WARNING))
    root.propagate = False


def _stop_when_orphaned() -> None:
    """A worker whose launcher died stops as if signalled: with a checkpoint, never training on alone."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True, name="orphan-watch").start()


if __name__ == "__main__":
    sys.exit(_worker_main())
