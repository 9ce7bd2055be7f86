"""The mutation fuzzer (tests/fuzzing.py) in the suite: a few hundred seeded cases over the zoo.

Every case ends in exit 0 or a located exit 2, with no traceback and no hang; for accepted specs,
analyze, render, scale, expand and build accept them too and the built module's parameter count
equals the analysis. `bench/fuzz.py` runs the same engine on 20,000 cases (docs/robustness.md).
"""
from __future__ import annotations

import pytest

import fuzzing

CASES = 250


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    return fuzzing.fuzz(range(CASES), tmp_path_factory.mktemp("fuzz"))


def test_no_case_finds_a_defect(outcomes):
    defects = [f"seed {o.case.seed} ({o.case.name}): {d}" for o in outcomes for d in o.defects]
    assert not defects, "\n".join(defects[:20])


def test_the_cases_exercise_both_paths(outcomes):
    summary = fuzzing.summarize(outcomes)
    # a fuzzer that only ever produced refusals (or only acceptances) would test half the contract
    assert summary["accepted"] >= 10 and summary["refused"] >= 100 and summary["hostile"] >= 5


@pytest.mark.parametrize("kind", sorted(fuzzing.HOSTILE))
def test_every_hostile_file_is_refused_with_a_location(kind, tmp_path):
    case = fuzzing.Case(-1, f"hostile:{kind}", fuzzing.HOSTILE[kind] if isinstance(fuzzing.HOSTILE[kind], bytes)
                        else fuzzing.HOSTILE[kind].encode())
    outcome = fuzzing.run_case(case, tmp_path)
    assert not outcome.accepted and not outcome.defects, outcome.defects


def test_a_planted_defect_is_caught(tmp_path, monkeypatch):
    """The checker itself can fail: an unlocated refusal and an escaping exception are reported."""
    import netspec.commands.validate as validate

    def broken(args):
        raise ZeroDivisionError("planted")
    monkeypatch.setattr(validate, "run", broken)
    outcome = fuzzing.run_case(fuzzing.make_case(3), tmp_path)
    assert any("exit 1" in d for d in outcome.defects)


@pytest.mark.parametrize("seed", [13020, 17324, 3771, 10060, 12862, 10561])
def test_defects_the_20000_case_run_found_stay_fixed(seed, tmp_path):
    """13020: a stage repeated 1,000 times made a 9,000-op graph whose block diagram took 11 s (a
    per-block recomputation of node depths; and the graph limit is now 5,000 ops). 17324: an
    infinite depth multiplier escaped as ValueError (exit 1); multipliers are now finite. 3771 (the
    second 20,000-case run): an aux head with `layers: []` passed validate and build, then eject
    failed with a KeyError (exit 1); an aux head now needs at least one layer (a located error).
    10060 and 12862 (seeds 10,000-19,999 on the next landing's code): `type: $block` with vars.block a
    mapping or a list reached a dict lookup (TypeError, exit 1); `type` must now evaluate to a name.
    10561: a DenseNet layer whose output nothing reads made `eject` fail (KeyError, exit 1) writing
    that block's class; a block never called gets a forward of its own nodes."""
    outcome = fuzzing.run_case(fuzzing.make_case(seed), tmp_path)
    assert not outcome.defects, outcome.defects
