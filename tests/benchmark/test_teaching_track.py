"""The teaching track: its evaluation is deterministic and in range, every built-in method runs
within its budget on training families only, and tuning beats random directives."""

import dataclasses
import json
import math

import pytest

from commchannels.benchmark import teaching
from commchannels.benchmark.protocol import BUILTIN, run_one
from commchannels.benchmark.tasks import Task
from commchannels.envs.teaching import TeachingCore
from commchannels.registry import REGISTRY
from commchannels.training import teaching_baselines as tb

pytestmark = pytest.mark.usefixtures("one_torch_thread")
METHODS = sorted(name for name, tracks in BUILTIN.items() if "teaching" in tracks)
METRICS = ("updates_to_target", "reached", "auc", "final_accuracy")


def small_task(cache: str, budget: int = 32, **env) -> Task:
    """The registry's debug settings on the mlp-arch families (a 3-point rate grid keeps tuning fast)."""
    kwargs = {**REGISTRY["teaching_v0"].debug_kwargs, "students": "mlp-arch", "lr_scales": (1.0, 3.0),
              "cache_dir": cache, **env}
    cap = kwargs["horizon"] * kwargs["updates_per_step"]
    return Task(name="teaching-tiny", version=1, track="teaching", description="tiny", env_id="teaching_v0",
                env=kwargs, budget=budget, budget_unit="student runs", eval_games=4, eval_seeds=2,
                primary="updates_to_target", chance=float(cap), best=0.0, metrics=METRICS)


def test_the_methods_are_the_builtin_teaching_methods():
    assert METHODS == ["blind-teacher", "plain-sgd", "random", "sighted-teacher", "tuned-cosine", "tuned-lr",
                       "tuned-lr-per-family"]


def test_evaluate_is_deterministic_and_in_range(cache):
    task = small_task(cache)
    first = teaching.evaluate(task, tb.plain_sgd())
    assert first == teaching.evaluate(task, tb.plain_sgd())
    cap = task.chance
    assert 0 < first["updates_to_target"] <= cap
    for key in ("reached", "diverged", "auc", "final_accuracy"):
        assert 0.0 <= first[key] <= 1.0, (key, first)
    assert first["auc"] <= first["final_accuracy"] + 1e-6 or first["diverged"] > 0  # accuracy mostly rises
    # a random teacher's generator is seeded by the method seed: the same seed, the same score
    assert teaching.evaluate(task, tb.random_directives(3)) == teaching.evaluate(task, tb.random_directives(3))


def test_evaluate_uses_held_out_families_and_evaluation_seeds(cache, monkeypatch):
    seen = []
    reset = TeachingCore.reset

    def recording(core, seed=None, family=None, envs=None):
        seen.append((core.settings.split, seed))
        return reset(core, seed, family, envs)
    monkeypatch.setattr(TeachingCore, "reset", recording)
    task = small_task(cache)
    teaching.evaluate(task, tb.plain_sgd())
    assert seen == [("held-out", tb.EVAL_SEED_BASE + i) for i in range(task.eval_seeds)]


@pytest.mark.parametrize("method", METHODS)
def test_every_method_trains_within_budget_on_training_families(method, cache, monkeypatch):
    task = small_task(cache)
    splits = set()
    reset = TeachingCore.reset

    def recording(core, seed=None, family=None, envs=None):
        splits.add(core.settings.split)
        return reset(core, seed, family, envs)
    monkeypatch.setattr(TeachingCore, "reset", recording)
    monkeypatch.setattr(teaching, "evaluate", lambda task, policy: {"updates_to_target": 0.0})  # training only
    row = run_one(task, method, seed=0)
    trains = method not in ("random", "plain-sgd")
    assert splits == ({"train"} if trains else set()), splits
    assert 0 <= row["budget_used"] <= task.budget, row
    assert (row["budget_used"] > 0) == trains, row


def test_evaluate_is_the_baselines_evaluation_under_the_benchmarks_names(cache):
    task = dataclasses.replace(small_task(cache), eval_games=3, eval_seeds=3)
    found = tb.evaluate(teaching.task_settings(task, "held-out"), tb.plain_sgd(), task.eval_seeds, task.eval_games)
    metrics = teaching.evaluate(task, tb.plain_sgd())
    assert metrics["updates_to_target"] == found["student_steps_mean"]
    assert metrics["updates_to_target_ci95"] == found["steps_ci95"]
    for key in ("reached", "diverged", "auc", "final_accuracy"):
        assert metrics[key] == found[key], key


def test_one_evaluation_seed_gives_a_json_safe_row(cache):
    task = dataclasses.replace(small_task(cache), eval_seeds=1)
    assert math.isnan(tb.evaluate(teaching.task_settings(task, "held-out"), tb.plain_sgd(), 1, 4)["steps_ci95"])
    row = run_one(task, "plain-sgd", seed=0)
    assert row["updates_to_target_ci95"] is None and math.isfinite(row["updates_to_target"]), row
    json.dumps(row, allow_nan=False)  # what the results writer does


def test_tuned_methods_report_the_students_tuning_spends(cache, monkeypatch):
    students = []
    reset = TeachingCore.reset

    def counting(core, seed=None, family=None, envs=None):
        students.append(core.n_envs)
        return reset(core, seed, family, envs)
    monkeypatch.setattr(TeachingCore, "reset", counting)
    task = small_task(cache, budget=40)
    n_rates = len(tb.lr_grid(teaching.task_settings(task)))
    assert task.budget % n_rates  # a remainder is left unspent
    assert teaching.tuned_lr(task, 0).budget_used == sum(students) == tb.tuning_cost(task.budget, n_rates) == 39


def test_a_trained_method_is_scored_by_the_protocol(cache):
    task = small_task(cache)
    row = run_one(task, "sighted-teacher", seed=0)
    assert row["budget_used"] == task.budget  # 32 students x 1 iteration
    assert 0.0 <= row["score"] <= 1.0 and row["score"] == task.score(row["updates_to_target"])
    assert set(METRICS) <= set(row)


def test_a_task_too_small_for_tuning_says_so(cache):
    with pytest.raises(ValueError, match="budget=8 is too small"):
        teaching.tuned_lr_per_family(small_task(cache, budget=8), seed=0)


@pytest.mark.slow
def test_tuned_lr_and_sighted_teacher_beat_random_directives(cache):
    task = small_task(cache, budget=512, horizon=10, updates_per_step=10, max_val=300, target_accuracy=0.8,
                      lr_scales=(0.1, 1.0, 10.0), teacher_epochs=5)
    task = dataclasses.replace(task, eval_games=8)
    random = teaching.evaluate(task, teaching.random_directives(task, 0))
    tuned = teaching.evaluate(task, teaching.tuned_lr(task, 0))
    assert tuned["updates_to_target"] < random["updates_to_target"] and tuned["reached"] > 0, (tuned, random)
    assert tuned["auc"] > random["auc"] + 0.1, (tuned, random)
    # 8 iterations are too few for the teacher to reach the target, but it learns faster than at random
    sighted = teaching.evaluate(task, teaching.sighted_teacher(task, 0))
    assert sighted["auc"] > random["auc"] + 0.1, (sighted, random)
