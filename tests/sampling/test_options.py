"""One declaration per sampling option: the CLI flag, the job-file key, the API keyword and the check all come from it."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from generate.cli import cli
from generate.cli.sample import sample as sample_command
from generate.data.config import OOV_POLICIES
from generate.errors import OptionError
from generate.jobs.schema import JOB_KEYS, LEGACY_OFF, SCHEMA, schema_table
from generate.music import RENDER_SUFFIXES
from generate.sampling.options import OOV_CHOICES, RENDER_NAMES, SampleOptions, declarations, defaults, kinds, options_from, verify_declared

from ..helpers import one_line_error

JOBS_PAGE = Path(__file__).resolve().parents[2] / "docs" / "jobs.md"
FLAGS = {opt: param for param in sample_command.params for opt in param.opts + param.secondary_opts}


def out_of_range(name: str):
    """A value just outside the declared range of `name`, or None when it declares none."""
    declared, kind = declarations()[name], kinds()[name]
    step = 1 if kind.integer else 0.5
    if declared.minimum is not None:
        return declared.minimum - step if kind.integer else declared.minimum - step
    if declared.above is not None:
        return int(declared.above) if kind.integer else float(declared.above)
    if declared.maximum is not None:
        return declared.maximum + step
    return None


RANGED = [name for name in declarations() if out_of_range(name) is not None]


def test_every_field_is_a_flag_and_a_job_key_or_its_declaration_says_why():
    assert len(declarations()) >= 30
    for name, declared in declarations().items():
        flag = "--" + name.replace("_", "-")
        assert (flag in FLAGS) == declared.cli, name
        assert (name in SCHEMA) == declared.job, name
        if not (declared.cli and declared.job):
            assert len(declared.why.split()) >= 5, name  # the exception is named, with its reason
    assert set(SCHEMA) == set(JOB_KEYS) | {n for n, d in declarations().items() if d.job}
    # renders, the one field without a flag of its own: a flag per render instead
    assert all(f"--{render}" in FLAGS for render in RENDER_SUFFIXES) and tuple(RENDER_SUFFIXES) == RENDER_NAMES
    assert OOV_CHOICES == OOV_POLICIES


def test_flags_and_job_keys_take_the_dataclass_defaults():
    for name, default in defaults().items():
        if declarations()[name].cli:
            assert FLAGS["--" + name.replace("_", "-")].default == (default if default != () else None) or default == (), name
        if declarations()[name].job:
            assert SCHEMA[name][1] == (list(default) if isinstance(default, tuple) else default), name


def test_the_docs_print_the_schema_as_the_code_derives_it():
    assert schema_table() in JOBS_PAGE.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", RANGED)
def test_each_declared_range_is_checked_alike_by_the_api_the_cli_and_a_job_file(name, trained_run, tmp_path):
    bad = out_of_range(name)
    declared, kind = declarations()[name], kinds()[name]
    problem = f"expected {declared.expected(kind.integer)}, received {bad!r}"
    with pytest.raises(OptionError) as caught:
        verify_declared(SampleOptions(**{name: bad}))
    assert caught.value.option == name and caught.value.problem == problem
    if declared.cli:
        flag = "--" + name.replace("_", "-")
        one_line_error(CliRunner().invoke(cli, ["sample", str(trained_run), f"{flag}={bad}"]), 2, f"{flag}: {problem}")
    if declared.job and name != "seed":  # a job's seed is a base that each output's seed is derived from
        jobs = tmp_path / "jobs.toml"
        jobs.write_text(f'[[job]]\nname = "x"\nmodel = "{trained_run}"\nout = "{tmp_path}/o-{{n}}"\n{name} = {bad!r}\n')
        result = CliRunner().invoke(cli, ["run", str(jobs), "--dry-run"])
        if LEGACY_OFF.get(name) == bad:  # older job files said 0 for off, and still may
            assert result.exit_code == 0, result.stderr
        else:
            one_line_error(result, 2, f"job 'x': {name}: {problem}")


def test_api_keywords_are_checked_by_name_and_type():
    with pytest.raises(OptionError, match="unknown option.*did you mean 'top_k'"):
        options_from({"topk": 3})
    with pytest.raises(OptionError, match="--length: expected int, received str '400'"):
        verify_declared(options_from({"length": "400"}))
    with pytest.raises(OptionError, match="--greedy: expected bool, received int 1"):
        verify_declared(options_from({"greedy": 1}))
    with pytest.raises(OptionError, match="--oov: expected one of error, drop, unk, received 'ignore'"):
        verify_declared(options_from({"oov": "ignore"}))
    assert options_from({"stop": ["\n"], "temperature": 1}).stop == ("\n",)  # JSON lists are tuples; an int is a number
    verify_declared(options_from({"stop": ["\n"], "temperature": 1}))


def test_a_setting_reaches_the_loop_and_every_record_without_code_of_its_own(trained_run):
    """What a new logit filter relies on: its option passes through to `SamplingConfig` and lands in each sidecar."""
    import dataclasses

    import generate
    from generate.model.rundir import RunDir
    from generate.sampling.config import SamplingConfig
    from generate.sampling.resolve import PASSED_THROUGH, RunFacts, resolve_options

    given = {"temperature": 0.7, "top_k": 5, "top_p": 0.9, "num_samples": 2, "lines": 2, "oov": "drop"}
    assert set(given) | {"beam", "greedy"} == set(PASSED_THROUGH)
    cfg = resolve_options(SampleOptions(**given), RunFacts.of(RunDir(trained_run)))
    assert {name: getattr(cfg, name) for name in given} == given
    record = generate.load(trained_run).samples(seed=1, **given)[0].record  # a poem: its lines set its length
    recorded = {f.name for f in dataclasses.fields(SamplingConfig)} - {"banned", "oov", "label_shares"}
    assert recorded <= set(record) and record["top_k"] == 5 and record["top_p"] == 0.9


def test_beam_search_refuses_every_setting_declared_to_change_how_characters_are_drawn(trained_run):
    from generate.model.rundir import RunDir
    from generate.sampling.resolve import RunFacts, resolve_options

    facts = RunFacts.of(RunDir(trained_run))
    other = {"temperature": 0.5, "top_k": 3, "top_p": 0.5, "greedy": True}
    drawn = [name for name, declared in declarations().items() if declared.draws]
    assert sorted(drawn) == sorted(other)  # a new one needs a value here, and is refused below
    for name in drawn:
        with pytest.raises(OptionError, match="with --beam") as caught:
            resolve_options(SampleOptions(beam=2, **{name: other[name]}), facts)
        assert caught.value.option == name
