"""Train a teacher policy by REINFORCE with a per-step baseline over the batched teaching core.

Each iteration draws ``n_envs`` fresh students (one batched :class:`TeachingCore`), runs one
synchronous episode in which the teacher samples a directive per step (and, with
``student_speaks``, the students sample reports that the teacher reads), and updates the
policies with the policy gradient of the shared return (Williams 1992). The baseline at step
``t`` is the mean return-to-go of the environments still running at ``t``; advantages are
normalised. The training return adds ``shaping`` times the validation-accuracy gain to the
environment's reward (potential-based shaping, Ng et al. 1999): with ``reward="time"`` no
student of a random initial teacher may reach the target, and the shaping term still ranks
the directives. The learned teacher is then evaluated greedily on held-out students, next to the
baselines of :mod:`commchannels.training.teaching_baselines` if ``compare_baselines``.

    commchannels train teacher --iterations 100 --run-dir runs/teacher
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from commchannels.agents.teachers import ReportPolicy, TeacherPolicy
from commchannels.config import check_choice, check_range, config_to_dict, option
from commchannels.data import DATASETS
from commchannels.envs.teaching import REWARDS, TeachingCore, TeachingSettings
from commchannels.runs import RunLogger, plot_curves, progress, save_checkpoint
from commchannels.seeding import seed_everything
from commchannels.training import teaching_baselines as tb
from commchannels.training.result import Result

DESCRIPTION = "train a teacher that directs a student's SGD training (REINFORCE over batched students)"


@dataclass(frozen=True)
class Config:
    """Teacher training (the environment options mirror ``teaching_v0.env``)."""

    dataset: str = option("digits", "data set the students learn", choices=DATASETS)
    data_path: str | None = option(None, "folder of MNIST IDX files (dataset=mnist)")
    target_accuracy: float = option(0.9, "validation accuracy that ends an episode")
    horizon: int = option(40, "directives per episode")
    updates_per_step: int = option(10, "student SGD updates per directive")
    reward: str = option("time", "shared reward: -1 per step (time) or accuracy gain", choices=REWARDS)
    student_speaks: bool = option(False, "the student is a learning agent sending reports")
    report_len: int = option(4, "tokens per student report")
    report_vocab: int = option(8, "symbols per report token")
    n_envs: int = option(64, "students trained together per iteration")
    iterations: int = option(100, "policy-gradient iterations (one episode of n_envs students each)")
    lr: float = option(3e-3, "Adam learning rate of the policies")
    entropy_coef: float = option(0.03, "entropy bonus weight")
    shaping: float = option(10.0, "training reward adds shaping x validation-accuracy gain (potential-based, "
                                  "Ng et al. 1999): a signal before any student reaches the target")
    policy_hidden: int = option(64, "hidden units of the policy networks")
    eval_seeds: int = option(10, "held-out seeds for the final evaluation")
    eval_students: int = option(4, "students per held-out seed")
    compare_baselines: bool = option(False, "also evaluate the baselines on the held-out students")
    seed: int = option(0, "random seed")
    cache_dir: str | None = option(None, "cache folder of the pre-trained teacher model")
    run_dir: str | None = option("runs/teacher", "run folder (empty string: write nothing)")
    tensorboard: bool = option(True, "write TensorBoard logs")
    show_progress: bool = option(True, "show a progress bar")

    def __post_init__(self) -> None:
        check_choice("dataset", self.dataset, DATASETS)
        check_choice("reward", self.reward, REWARDS)
        for name in ("horizon", "updates_per_step", "n_envs", "iterations", "policy_hidden", "eval_seeds",
                     "eval_students", "report_len"):
            check_range(name, getattr(self, name), 1, None)
        check_range("report_vocab", self.report_vocab, 2, None)
        check_range("target_accuracy", self.target_accuracy, 0.0, 1.0)
        check_range("entropy_coef", self.entropy_coef, 0.0, None)
        check_range("shaping", self.shaping, 0.0, None)
        if not self.lr > 0:
            raise ValueError(f"lr={self.lr!r} is invalid; expected a value > 0")
        self.settings  # noqa: B018 - validates the environment options now

    @property
    def settings(self) -> TeachingSettings:
        """The environment's rules."""
        return TeachingSettings(
            dataset=self.dataset, data_path=self.data_path, target_accuracy=self.target_accuracy,
            horizon=self.horizon, updates_per_step=self.updates_per_step, reward=self.reward,
            student_speaks=self.student_speaks, report_len=self.report_len, report_vocab=self.report_vocab,
            cache_dir=self.cache_dir)


def greedy_teacher(policy: TeacherPolicy) -> tb.Policy:
    """The trained policy as a baseline-style teacher (most likely directive, passive student)."""
    return lambda core: policy.act(core.teacher_observation())


def greedy_schedule(teacher: TeacherPolicy, settings: TeachingSettings, seed: int = tb.EVAL_SEED_BASE) -> list[str]:
    """The greedy teacher's directives for one held-out student, as ``"N x directive"`` runs."""
    core = TeachingCore(settings, n_envs=1, seed=seed)
    core.reset(seed)
    runs: list[list] = []
    while not bool(core.done.all()):
        directive = teacher.act(core.teacher_observation())
        core.step(directive)
        text = core.describe_directive(directive[0])
        if runs and runs[-1][0] == text:
            runs[-1][1] += 1
        else:
            runs.append([text, 1])
    return [f"{n} x ({text})" for text, n in runs]


def train(cfg: Config) -> Result:
    """Train the teacher (and a speaking student's report policy); see the module docstring."""
    # ---------------------------------------------------------------- seeding
    seed_everything(cfg.seed)

    # ---------------------------------------------------------------- setup
    core = TeachingCore(cfg.settings, n_envs=cfg.n_envs, seed=cfg.seed)
    teacher = TeacherPolicy(core.teacher_obs_dim, core.action_nvec, (cfg.policy_hidden,))
    speaker = ReportPolicy(core.stats_dim, core.report_nvec, (cfg.policy_hidden,)) if cfg.student_speaks else None
    params = list(teacher.parameters()) + (list(speaker.parameters()) if speaker else [])
    optimiser = torch.optim.Adam(params, lr=cfg.lr)
    run_dir = Path(cfg.run_dir) if cfg.run_dir else None
    logger = RunLogger(run_dir, cfg, tensorboard=cfg.tensorboard)
    k = cfg.updates_per_step

    for iteration in progress(range(cfg.iterations), desc="teacher", enabled=cfg.show_progress):
        # ------------------------------------------------------------ rollout
        core.reset(seed=cfg.seed * 1_000 + iteration)  # training seeds stay below EVAL_SEED_BASE
        log_probs, entropies, rewards, shaped, alive = [], [], [], [], []
        while not bool(core.done.all()):
            running = ~core.done
            log_prob = entropy = torch.zeros(cfg.n_envs)
            if speaker is not None:
                report, log_prob, entropy = speaker.sample(core.student_observation())
                core.report(report)
            directive, lp, ent = teacher.sample(core.teacher_observation())
            before = core.accuracy.clone()
            out = core.step(directive)
            log_probs.append(log_prob + lp)
            entropies.append(entropy + ent)
            rewards.append(out["reward"])
            shaped.append(out["reward"] + cfg.shaping * (core.accuracy - before) * running)
            alive.append(running.float())

        # ------------------------------------------------------------ loss
        mask = torch.stack(alive, 1)
        reward = torch.stack(rewards, 1)
        returns = torch.stack(shaped, 1).flip(1).cumsum(1).flip(1)  # undiscounted return-to-go
        baseline = (returns * mask).sum(0) / mask.sum(0).clamp_min(1)
        advantage = (returns - baseline) * mask
        spread = advantage[mask.bool()].std() if int(mask.sum()) > 1 else torch.ones(())
        advantage = advantage / (spread + 1e-8)
        log_prob = torch.stack(log_probs, 1)
        entropy = (torch.stack(entropies, 1) * mask).sum() / mask.sum()
        loss = -(advantage * log_prob * mask).sum() / mask.sum() - cfg.entropy_coef * entropy

        # ------------------------------------------------------------ update
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimiser.step()

        # ------------------------------------------------------------ log
        steps = torch.where(core.reached, core.t * k, torch.full((), cfg.horizon * k)).float()
        logger.log(iteration, {
            "return": float(reward.sum(1).mean()), "steps_to_target": float(steps.mean()),
            "reached": float(core.reached.float().mean()), "diverged": float(core.diverged.float().mean()),
            "final_accuracy": float(core.accuracy.mean()), "entropy": entropy.item(), "loss": loss.item()})

    # ---------------------------------------------------------------- save
    final: dict[str, float] = {"train_steps_to_target": logger.rows[-1]["steps_to_target"]}
    evaluations: dict[str, dict] = {}
    extras: dict[str, object] = {"teacher": teacher, "speaker": speaker, "evaluations": evaluations,
                                 "config": dataclasses.asdict(cfg)}
    if not cfg.student_speaks:
        teachers = {"learned teacher": greedy_teacher(teacher)}
        if cfg.compare_baselines:
            teachers.update(tb.baselines(cfg.settings, seed=cfg.seed, tuned_directive=True))
        for name, policy in teachers.items():
            evaluations[name] = tb.evaluate(cfg.settings, policy, cfg.eval_seeds, cfg.eval_students)
        extras["greedy_directives"] = greedy_schedule(teacher, cfg.settings)
        final.update({"eval_steps_mean": evaluations["learned teacher"]["steps_mean"],
                      "eval_steps_ci95": evaluations["learned teacher"]["steps_ci95"],
                      "eval_reached": evaluations["learned teacher"]["reached"]})
    if run_dir is not None:
        state = {"teacher": teacher.state_dict(), "config": config_to_dict(cfg)}
        if speaker is not None:
            state["speaker"] = speaker.state_dict()
        save_checkpoint(run_dir / "checkpoint.pt", state)
        xs = [row["step"] for row in logger.rows]
        plot_curves(run_dir / "steps_to_target.png", {"training students": (xs, [
            row["steps_to_target"] for row in logger.rows])}, "iteration", "SGD steps to target")
        logger.write_json("evaluation.json", {"final": final, "evaluations": evaluations,
                                              "greedy_directives": extras.get("greedy_directives")})
    logger.close()
    return Result(final=final, history=logger.rows, run_dir=run_dir, extras=extras)


def summarize(result: Result) -> str:
    """A short text summary of a run."""
    lines = [f"final: {result.final}"]
    for name, ev in result.extras.get("evaluations", {}).items():
        lines.append(f"{name:<44} steps to target {ev['steps_mean']:7.1f} ± {ev['steps_ci95']:5.1f}"
                     f"  reached {ev['reached']:.2f}")
    if result.extras.get("greedy_directives"):
        lines.append("greedy teacher, one held-out student: " + "; ".join(result.extras["greedy_directives"]))
    if result.run_dir is not None:
        lines.append(f"run folder: {result.run_dir}")
    return "\n".join(lines)
