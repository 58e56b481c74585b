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

The environment's options are its own (``cfg.env``, a :class:`TeachingSettings`, flattened on
the command line: ``--horizon 20`` or ``--env.horizon 20``). The loop runs under the trainer
protocol (:mod:`commchannels.training.protocol`), one step per iteration: a run folder holds
run.json, config.json, metrics.jsonl/csv, tb/, checkpoints/latest.pt (``--resume``; written
before the final evaluation), steps_to_target.png, evaluation.json, final.json and teacher.pt
(the trained policies).

    commchannels train teacher --iterations 100 --run-dir runs/teacher
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from commchannels.agents.teachers import ReportPolicy, TeacherPolicy
from commchannels.config import MAX_SEED, Options, check_memory, config_to_dict, option
from commchannels.data import Dataset, load_dataset
from commchannels.envs.teaching import TeachingCore, TeachingSettings
from commchannels.run_folder import RunFolder, RunOptions
from commchannels.runs import plot_curves, save_checkpoint
from commchannels.seeding import seed_everything
from commchannels.training import teaching_baselines as tb
from commchannels.training.protocol import Trainer, run_trainer
from commchannels.training.result import Result
from commchannels.training.threads import THREADS_HELP, check_threads, torch_threads

DESCRIPTION = "train a teacher that directs a student's SGD training (REINFORCE over batched students)"


@dataclass(frozen=True)
class Config(Options):
    """Teacher training: the environment's rules (``env``), the policy gradient and the run."""

    env: TeachingSettings = option(TeachingSettings(), "the teaching environment's rules (teaching_v0's "
                                                       "options)")
    n_envs: int = option(64, "students trained together per iteration", low=1)
    iterations: int = option(100, "policy-gradient iterations (one episode of n_envs students each)", low=1,
                             high=tb.MAX_TRAINING_BATCHES)
    lr: float = option(3e-3, "Adam learning rate of the policies", gt=0.0)
    entropy_coef: float = option(0.03, "entropy bonus weight", low=0.0)
    shaping: float = option(10.0, "training reward adds shaping x validation-accuracy gain (potential-based, "
                                  "Ng et al. 1999): a signal before any student reaches the target", low=0.0)
    policy_hidden: int = option(64, "hidden units of the policy networks", low=1, high=65536)
    eval_seeds: int = option(10, "held-out seeds for the final evaluation", low=1, high=tb.MAX_EVAL_SEEDS)
    eval_students: int = option(4, "students per held-out seed", low=1)
    compare_baselines: bool = option(False, "also evaluate the baselines on the held-out students")
    threads: int = option(1, THREADS_HELP, low=0)
    seed: int = option(0, "random seed", low=0, high=MAX_SEED)
    run: RunOptions = option(RunOptions(), "run folder, checkpoints and logging")

    def validate(self) -> None:
        check_threads(self.threads)
        data = load_dataset(self.env.dataset, self.env.data_path)  # cached; its sizes set the estimate
        check_memory(f"n_envs={self.n_envs}, eval_students={self.eval_students} with these student and policy "
                     "sizes", self.memory_estimate(data))

    def memory_estimate(self, data: Dataset) -> float:
        """Rough peak bytes: per student (the most held at once, in training or evaluation) its
        parameters a few times over (weights, a fresh draw, gradients, the update), one SGD
        batch's activations, the batched validation pass and the rollout the policy gradient
        keeps; plus the data and the distillation targets."""
        s, classes = self.env, data.n_classes
        sizes = [data.n_features, *s.hidden, classes]
        params = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
        width = sum(sizes[1:])
        n_val = min(len(data.y_test), s.max_val)
        obs = 3 + classes + 2 * s.n_probe * classes + s.report_len * s.report_vocab
        per_student = (4 * params + 3 * s.batch_size * (data.n_features + width + classes)
                       + 3 * n_val * width + s.horizon * (obs + 4 * self.policy_hidden + 16))
        students = max(self.n_envs, self.eval_students, 16 if self.compare_baselines else 0)
        data_floats = data.x_train.numel() + data.x_test.numel() + (1 + len(s.temperatures)) * len(
            data.y_train) * classes
        return 4.0 * (students * per_student + data_floats)


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


class TeacherTrainer(Trainer):
    """The teacher (and a speaking student's report policy) trained on ``cfg.env``; one step is
    one policy-gradient iteration. See the module docstring."""

    name = "teacher"
    # the budget, and options read only by the final evaluation (which runs after the last
    # checkpoint), may change on --resume; everything else must match the interrupted run
    resumable = ("iterations", "eval_seeds", "eval_students", "compare_baselines", "threads")

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg)
        self.total_steps = cfg.iterations
        self._threads = torch_threads(cfg.threads)
        try:
            # -------------------------------------------------------- seeding
            seed_everything(cfg.seed)  # policy initialisation and the policies' sampling
            # -------------------------------------------------------- setup
            self.core = core = TeachingCore(cfg.env, n_envs=cfg.n_envs, seed=cfg.seed)
            self.teacher = TeacherPolicy(core.teacher_obs_dim, core.action_nvec, (cfg.policy_hidden,))
            self.speaker = (ReportPolicy(core.stats_dim, core.report_nvec, (cfg.policy_hidden,))
                            if cfg.env.student_speaks else None)
            self.params = [*self.teacher.parameters(), *(self.speaker.parameters() if self.speaker else ())]
            self.optimiser = torch.optim.Adam(self.params, lr=cfg.lr)
        except BaseException:
            self.close()
            raise

    def step(self, step: int) -> dict[str, Any]:
        cfg, core, speaker = self.cfg, self.core, self.speaker
        # ------------------------------------------------------------ rollout
        core.reset(seed=tb.training_seed(cfg.seed, step - 1))  # never a held-out student's seed
        log_probs, entropies, rewards, shaped, alive = [], [], [], [], []
        while not bool(core.done.all()):
            running = ~core.done
            log_prob = entropy = torch.zeros(cfg.n_envs)
            if speaker is not None:
                report, log_prob, entropy = speaker.sample(core.student_observation())
                core.report(report)
            directive, lp, ent = self.teacher.sample(core.teacher_observation())
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
        self.optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.optimiser.step()

        # ------------------------------------------------------------ log
        k = cfg.env.updates_per_step
        steps = torch.where(core.reached, core.t * k, torch.full((), cfg.env.horizon * k)).float()
        return {"return": float(reward.sum(1).mean()), "steps_to_target": float(steps.mean()),
                "reached": float(core.reached.float().mean()), "diverged": float(core.diverged.float().mean()),
                "final_accuracy": float(core.accuracy.mean()), "entropy": entropy.item(), "loss": loss.item()}

    def progress_postfix(self, row: dict[str, Any]) -> dict[str, str]:
        return {"steps_to_target": f"{row['steps_to_target']:.1f}", "reached": f"{row['reached']:.2f}"}

    def state_dict(self) -> dict[str, Any]:
        # the students need no saving: every iteration draws fresh ones from a seeded generator
        return {"teacher": self.teacher.state_dict(), "optimiser": self.optimiser.state_dict(),
                "speaker": None if self.speaker is None else self.speaker.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.teacher.load_state_dict(state["teacher"])
        if self.speaker is not None:
            self.speaker.load_state_dict(state["speaker"])
        self.optimiser.load_state_dict(state["optimiser"])

    def finish(self, folder: RunFolder, steps: int) -> tuple[dict[str, Any], dict[str, Any]]:
        cfg, settings, rows = self.cfg, self.cfg.env, folder.logger.rows
        # ------------------------------------------------------------ evaluate
        final: dict[str, Any] = {"iterations": steps,
                                 "train_steps_to_target": rows[-1]["steps_to_target"] if rows else None}
        evaluations: dict[str, dict] = {}
        greedy = None
        if not settings.student_speaks:  # held-out students are passive: the teacher alone is scored
            teachers = {"learned teacher": greedy_teacher(self.teacher)}
            if cfg.compare_baselines:
                teachers.update(tb.baselines(settings, seed=cfg.seed, tuned_directive=True))
            for name, policy in teachers.items():
                evaluations[name] = tb.evaluate(settings, policy, cfg.eval_seeds, cfg.eval_students)
            greedy = greedy_schedule(self.teacher, settings)
            learned = evaluations["learned teacher"]
            final.update({"eval_steps_mean": learned["steps_mean"], "eval_steps_ci95": learned["steps_ci95"],
                          "eval_reached": learned["reached"]})
        # ------------------------------------------------------------ save
        if folder.path is not None:
            model = {"teacher": self.teacher.state_dict(), "config": config_to_dict(cfg)}
            if self.speaker is not None:
                model["speaker"] = self.speaker.state_dict()
            save_checkpoint(folder.path / "teacher.pt", model)
            plot_curves(folder.path / "steps_to_target.png", {"training students": (
                [r["step"] for r in rows], [r["steps_to_target"] for r in rows])},
                "iteration", "SGD steps to target")
            folder.write_json("evaluation.json", {"final": final, "evaluations": evaluations,
                                                  "greedy_directives": greedy})
        return final, {"teacher": self.teacher, "speaker": self.speaker, "evaluations": evaluations,
                       "greedy_directives": greedy, "config": cfg}

    def close(self) -> None:
        torch.set_num_threads(self._threads)  # no global state left changed


def train(cfg: Config) -> Result:
    """Train the teacher (and a speaking student's report policy) under the trainer protocol."""
    return run_trainer(TeacherTrainer(cfg))


def summarize(result: Result) -> str:
    """A short text summary of a run."""
    lines = [f"final: {result.final}"]
    for name, ev in result.extras.get("evaluations", {}).items():
        lines.append(f"{name:<44} steps to target {ev['steps_mean']:7.1f} ± {ev['steps_ci95']:5.1f}"
                     f"  reached {ev['reached']:.2f}")
    if result.extras.get("greedy_directives"):
        lines.append("greedy teacher, one held-out student: " + "; ".join(result.extras["greedy_directives"]))
    if result.run_dir is not None:
        lines.append(f"run folder: {Path(result.run_dir)}")
    return "\n".join(lines)
