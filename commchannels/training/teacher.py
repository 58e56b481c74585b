"""Train a teacher policy by REINFORCE with a per-step baseline over the batched teaching core.

Each iteration draws ``n_envs`` fresh students of the *training* families (one batched
:class:`TeachingCore`, ``env.split="train"``), runs one synchronous episode in which the teacher
samples a directive per step (and, with ``student_speaks``, the students sample reports that the
teacher reads), and updates the policies with the policy gradient of the shared return
(Williams 1992). The baseline at step ``t`` is the mean return-to-go of the environments still
running at ``t``; advantages are normalised. With ``value_coef > 0`` a value head on the
teacher's state learns what remains of the advantage, and is subtracted too: students of
different families earn very different returns whatever the teacher does, and a baseline that
knows the student removes that spread. The training return adds ``shaping`` times the
validation-accuracy gain to the environment's reward (potential-based shaping, Ng et al. 1999):
with ``reward="time"`` no student of a random initial teacher may reach the target, and the
shaping term still ranks the directives. The policies standardise their inputs by running
statistics (:class:`~commchannels.agents.teachers.RunningNorm`).

The teacher has memory by default (``memory="gru"``: a GRU over the episode's observations and its
own previous directives, its state reset at each episode's start, trained by backpropagation
through the episode), so it can
tell students apart by how they respond. ``observe="progress"`` makes it *blind*: it sees only
the episode's progress (column 0 of the observation), with the same policy and budget; the gap
between the sighted and the blind teacher is what the channel to the student is worth.

The learned teacher is then evaluated greedily on held-out seeds of the ``eval_split`` families
(by default the held-out ones, never seen in training), next to the baselines of
:mod:`commchannels.training.teaching_baselines` if ``compare_baselines`` (tuned on the training
families with as many student runs as the teacher's training consumed). As evidence of
customisation, the greedy teacher's directives on each evaluation family are recorded
(``directive_traces`` in evaluation.json, ``directives.png``).

The environment's options are its own (``cfg.env``, a :class:`TeachingSettings`, flattened on
the command line: ``--horizon 20`` or ``--env.horizon 20``). The loop runs under the trainer
protocol (:mod:`commchannels.training.protocol`), one step per iteration: a run folder holds
run.json, config.json, metrics.jsonl/csv, tb/, checkpoints/latest.pt (``--resume``; written
before the final evaluation), steps_to_target.png, directives.png, evaluation.json, final.json and
teacher.pt (the trained policies).

    commchannels train teacher --iterations 100 --run-dir runs/teacher
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from commchannels.agents.teachers import MEMORIES, MultiDiscretePolicy, ReportPolicy, make_policy
from commchannels.config import MAX_SEED, Options, check_memory, config_to_dict, option
from commchannels.data import Dataset, load_dataset
from commchannels.envs.teaching import TeachingCore, TeachingSettings
from commchannels.envs.teaching.core import N_SCALARS
from commchannels.envs.teaching.families import SPLITS
from commchannels.run_folder import RunFolder, RunOptions
from commchannels.runs import plot_curves, save_checkpoint, save_figure
from commchannels.seeding import seed_everything
from commchannels.training import teaching_baselines as tb
from commchannels.training.protocol import Trainer, run_trainer
from commchannels.training.result import Result
from commchannels.training.threads import THREADS_HELP, check_threads, torch_threads

DESCRIPTION = "train a teacher that directs a student's SGD training (REINFORCE over batched students)"
OBSERVATIONS = ("full", "progress")
COMPONENTS = ("bucket", "lr_level", "target_level")  # a directive's columns


@dataclass(frozen=True)
class Config(Options):
    """Teacher training: the environment's rules (``env``), the policy gradient and the run."""

    env: TeachingSettings = option(TeachingSettings(), "the teaching environment's rules (teaching_v0's "
                                                       "options); its split is the training split")
    n_envs: int = option(64, "students trained together per iteration", low=1)
    iterations: int = option(100, "policy-gradient iterations (one episode of n_envs students each)", low=1,
                             high=tb.MAX_TRAINING_BATCHES)
    lr: float = option(3e-3, "Adam learning rate of the policies", gt=0.0)
    entropy_coef: float = option(0.03, "entropy bonus weight", low=0.0)
    shaping: float = option(10.0, "training reward adds shaping x validation-accuracy gain (potential-based, "
                                  "Ng et al. 1999): a signal before any student reaches the target", low=0.0)
    value_coef: float = option(0.5, "weight of the learned baseline's loss: a value head on the teacher's "
                                    "state refines the per-step baseline (0: per-step baseline only)", low=0.0)
    policy_hidden: int = option(64, "hidden units of the policy networks", low=1, high=65536)
    memory: str = option("gru", "the teacher's memory: gru (a recurrent policy over the episode so far) or "
                                "none (an MLP on the current observation)", choices=MEMORIES)
    observe: str = option("full", "what the teacher sees: full (the student's statistics, or its reports) or "
                                  "progress (only the episode's progress: the blind teacher)", choices=OBSERVATIONS)
    eval_split: str = option("held-out", "student families of the final evaluation (held-out: never seen in "
                                         "training)", choices=SPLITS)
    eval_seeds: int = option(10, "held-out seeds for the final evaluation", low=1, high=tb.MAX_EVAL_SEEDS)
    eval_students: int = option(4, "students per held-out seed (and per family in the directive traces)", low=1)
    compare_baselines: bool = option(False, "also evaluate the baselines on the held-out students")
    threads: int = option(1, THREADS_HELP, low=0)
    seed: int = option(0, "random seed", low=0, high=MAX_SEED)
    run: RunOptions = option(RunOptions(), "run folder, checkpoints and logging")

    def validate(self) -> None:
        check_threads(self.threads)
        if self.env.split != "train":
            raise ValueError(f"env.split={self.env.split!r} is not allowed: the teacher trains on the training "
                             f"families; expected 'train' (the final evaluation runs on eval_split="
                             f"{self.eval_split!r})")
        if self.observe == "progress" and self.env.student_speaks:
            raise ValueError("observe='progress' with env.student_speaks=True is not allowed: a blind teacher "
                             "reads no reports; expected student_speaks=False for the blind teacher")
        data = load_dataset(self.env.dataset, self.env.data_path)  # cached; its sizes set the estimate
        check_memory(f"n_envs={self.n_envs}, eval_students={self.eval_students} with these student and policy "
                     "sizes", self.memory_estimate(data))

    @property
    def eval_env(self) -> TeachingSettings:
        """The final evaluation's environment: the training rules on the ``eval_split`` families."""
        return dataclasses.replace(self.env, split=self.eval_split)

    def memory_estimate(self, data: Dataset) -> float:
        """Rough peak bytes: per student (the most held at once, in training or evaluation) its
        parameters a few times over (weights, a fresh draw, gradients, the update), one SGD
        batch's activations, the batched validation pass and the rollout the policy gradient
        keeps (with a GRU's gates); plus the data and the distillation targets."""
        s, classes = self.env, data.n_classes
        students = [f.student for f in s.families]  # every student is padded to the largest
        depth, widest = max(len(x.hidden) for x in students), max(max(x.hidden) for x in students)
        sizes = [data.n_features, *(widest,) * depth, classes]
        params = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
        width = sum(sizes[1:])
        batch = max(x.batch_size for x in students)
        n_val = min(len(data.y_test), s.max_val)
        obs = N_SCALARS + classes + 2 * s.n_probe * classes + s.report_len * s.report_vocab
        policy = (12 if self.memory == "gru" else 4) * self.policy_hidden
        per_student = (4 * params + 3 * batch * (data.n_features + width + classes)
                       + 3 * n_val * width + s.horizon * (obs + policy + 16))
        n_students = max(self.n_envs, self.eval_students, 16 if self.compare_baselines else 0)
        data_floats = data.x_train.numel() + data.x_test.numel() + (1 + len(s.temperatures)) * len(
            data.y_train) * classes
        return 4.0 * (n_students * per_student + data_floats)


# ---------------------------------------------------------------------------- the trained teacher
def teacher_input(core: TeachingCore, observe: str) -> torch.Tensor:
    """What the teacher reads: its whole observation, or (blind) only the progress column."""
    obs = core.teacher_observation()
    return obs if observe == "full" else obs[:, :1]


def input_size(core: TeachingCore, observe: str) -> int:
    """The width of :func:`teacher_input`."""
    return core.teacher_obs_dim if observe == "full" else 1


class GreedyTeacher:
    """A trained teacher as a :data:`~commchannels.training.teaching_baselines.Policy`: the most
    likely directive each step, its memory started afresh by :meth:`reset` at each episode's
    start. With a ``speaker`` (``student_speaks``), the students first send their most likely
    reports, which the teacher reads."""

    def __init__(self, policy: MultiDiscretePolicy, observe: str = "full",
                 speaker: MultiDiscretePolicy | None = None) -> None:
        self.policy, self.observe, self.speaker = policy, observe, speaker
        self.sends_reports = speaker is not None  # it drives speaking students (tb.run_episode)
        self.state: torch.Tensor | None = None

    def reset(self, core: TeachingCore) -> None:
        """Start an episode of ``core``'s students: a fresh memory per environment."""
        self.state = self.policy.initial_state(core.n_envs)

    def __call__(self, core: TeachingCore) -> torch.Tensor:
        if self.state is None or len(self.state) != core.n_envs:
            raise ValueError("GreedyTeacher.reset(core) must be called at each episode's start, before the "
                             "first directive")
        if self.speaker is not None:
            core.report(self.speaker.act(core.student_observation())[0])
        directives, self.state = self.policy.act(teacher_input(core, self.observe), self.state)
        return directives


def record_directives(core: TeachingCore, teacher: GreedyTeacher, seed: int,
                      family: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One greedy episode from ``core.reset(seed, family=family)``: the directives ``(T, B, 3)``
    and whether each student still ran at each step ``(T, B)``."""
    core.reset(seed, family=family)
    teacher.reset(core)
    directives, running = [], []
    while not bool(core.done.all()):
        running.append(~core.done)
        directives.append(teacher(core))
        core.step(directives[-1])
    return torch.stack(directives), torch.stack(running)


def greedy_schedule(teacher: GreedyTeacher, settings: TeachingSettings, seed: int = tb.EVAL_SEED_BASE) -> list[str]:
    """The greedy teacher's directives for one held-out student, as ``"N x directive"`` runs."""
    core = TeachingCore(settings, n_envs=1, seed=seed)
    directives, _ = record_directives(core, teacher, seed)
    runs: list[list] = []
    for directive in directives[:, 0]:  # one student: it ran at every step of the episode
        text = core.describe_directive(directive)
        if runs and runs[-1][0] == text:
            runs[-1][1] += 1
        else:
            runs.append([text, 1])
    return [f"{n} x ({text})" for text, n in runs]


def directive_traces(teacher: GreedyTeacher, settings: TeachingSettings, students: int,
                     seed: int = tb.EVAL_SEED_BASE) -> dict[str, dict[str, list]]:
    """The greedy teacher's directives on each family of ``settings``' split (``students`` fresh
    students each, the same seed for every family): per family and directive step, the mean of
    each directive component over the students still running and their number (``running``);
    and each student's own sequence (``students``: ``[bucket, lr_level, target_level]`` per step)."""
    core = TeachingCore(settings, n_envs=students, seed=seed)
    traces = {}
    for index, family in enumerate(core.families):
        directives, running = record_directives(core, teacher, seed, torch.full((students,), index))
        weight = running.float()
        mean = (directives.float() * weight[..., None]).sum(1) / weight.sum(1).clamp_min(1)[:, None]
        traces[family.name] = {**{name: mean[:, i].tolist() for i, name in enumerate(COMPONENTS)},
                               "running": running.sum(1).tolist(),
                               "students": [directives[running[:, b], b].tolist() for b in range(students)]}
    return traces


def plot_directives(path: str | Path, traces: dict[str, dict[str, list]], settings: TeachingSettings) -> Path:
    """Save one panel per directive component, one line per family (mean over its students); the
    learning-rate and target levels are labelled by their values under ``settings``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = {"lr_level": [f"x{scale:g}" for scale in settings.lr_scales],
              "target_level": ["labels", *(f"T={t:g}" for t in settings.temperatures)]}
    fig, axes = plt.subplots(1, len(COMPONENTS), figsize=(4 * len(COMPONENTS), 3.6), dpi=100)
    for ax, component in zip(axes, COMPONENTS):
        for family, trace in traces.items():
            ax.plot(range(1, len(trace[component]) + 1), trace[component], label=family)
        if component in levels:
            ax.set_yticks(range(len(levels[component])), levels[component])
        ax.set_xlabel("directive step")
        ax.set_ylabel(f"{component} (mean over students)")
        ax.grid(alpha=0.3)
    if traces:
        axes[0].legend(fontsize="small")
    return save_figure(fig, path)


# ---------------------------------------------------------------------------- the trainer
def normalised(advantage: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``advantage`` divided by its spread over the steps that ran (``mask``)."""
    spread = advantage[mask.bool()].std() if int(mask.sum()) > 1 else torch.ones(())
    return advantage / (spread + 1e-8)


class TeacherTrainer(Trainer):
    """The teacher (and a speaking student's report policy) trained on ``cfg.env``; one step is
    one policy-gradient iteration. See the module docstring."""

    name = "teacher"
    # the budget, and options read only by the final evaluation (which runs after the last
    # checkpoint), may change on --resume; everything else must match the interrupted run
    resumable = ("iterations", "eval_split", "eval_seeds", "eval_students", "compare_baselines", "threads")

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg)
        self.total_steps = cfg.iterations
        self._threads = torch_threads(cfg.threads)
        try:
            # -------------------------------------------------------- seeding
            seed_everything(cfg.seed)  # policy initialisation and the policies' sampling
            # -------------------------------------------------------- setup
            self.core = core = TeachingCore(cfg.env, n_envs=cfg.n_envs, seed=cfg.seed)
            self.teacher = make_policy(cfg.memory, input_size(core, cfg.observe), core.action_nvec,
                                       (cfg.policy_hidden,))
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
        state = self.teacher.initial_state(cfg.n_envs)  # a fresh memory per episode; gradients flow through it
        log_probs, entropies, values, rewards, shaped, alive = [], [], [], [], [], []
        while not bool(core.done.all()):
            running = ~core.done
            log_prob = entropy = torch.zeros(cfg.n_envs)
            if speaker is not None:
                report = speaker.sample(core.student_observation())
                core.report(report.actions)
                log_prob, entropy = report.log_prob, report.entropy
            sampled = self.teacher.sample(teacher_input(core, cfg.observe), state)
            state = sampled.state
            before = core.accuracy.clone()
            out = core.step(sampled.actions)
            log_probs.append(log_prob + sampled.log_prob)
            entropies.append(entropy + sampled.entropy)
            values.append(sampled.value)
            rewards.append(out["reward"])
            shaped.append(out["reward"] + cfg.shaping * (core.accuracy - before) * running)
            alive.append(running.float())

        # ------------------------------------------------------------ loss
        mask = torch.stack(alive, 1)
        reward = torch.stack(rewards, 1)
        returns = torch.stack(shaped, 1).flip(1).cumsum(1).flip(1)  # undiscounted return-to-go
        baseline = (returns * mask).sum(0) / mask.sum(0).clamp_min(1)
        advantage = normalised((returns - baseline) * mask, mask)
        value_loss = torch.zeros(())
        if cfg.value_coef > 0:  # the value head predicts the normalised advantage over the per-step baseline
            value = torch.stack(values, 1)
            value_loss = ((value - advantage) ** 2 * mask).sum() / mask.sum()
            advantage = normalised((advantage - value.detach()) * mask, mask)
        log_prob = torch.stack(log_probs, 1)
        entropy = (torch.stack(entropies, 1) * mask).sum() / mask.sum()
        loss = (-(advantage * log_prob * mask).sum() / mask.sum() - cfg.entropy_coef * entropy
                + cfg.value_coef * value_loss)

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
                "final_accuracy": float(core.accuracy.mean()), "entropy": entropy.item(), "loss": loss.item(),
                "value_loss": value_loss.item()}

    def progress_postfix(self, row: dict[str, Any]) -> dict[str, str]:
        return {"steps_to_target": f"{row['steps_to_target']:.1f}", "reached": f"{row['reached']:.2f}"}

    def state_dict(self) -> dict[str, Any]:
        # the students need no saving: every iteration draws fresh ones from a seeded generator,
        # and the teacher's memory starts afresh with each episode
        return {"teacher": self.teacher.state_dict(), "optimiser": self.optimiser.state_dict(),
                "speaker": None if self.speaker is None else self.speaker.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.teacher.load_state_dict(state["teacher"])
        if self.speaker is not None:
            self.speaker.load_state_dict(state["speaker"])
        self.optimiser.load_state_dict(state["optimiser"])

    def finish(self, folder: RunFolder, steps: int) -> tuple[dict[str, Any], dict[str, Any]]:
        cfg, rows = self.cfg, folder.logger.rows
        settings = cfg.eval_env  # the training rules on the evaluation families
        greedy = GreedyTeacher(self.teacher, cfg.observe, self.speaker)
        # ------------------------------------------------------------ evaluate
        final: dict[str, Any] = {"iterations": steps, "eval_split": cfg.eval_split,
                                 "train_steps_to_target": rows[-1]["steps_to_target"] if rows else None}
        evaluations: dict[str, dict] = {}
        teachers: dict[str, tb.Policy] = {"learned teacher": greedy}  # it drives a speaking student's reports too
        if cfg.compare_baselines and not settings.student_speaks:  # baselines read no reports
            # tuned on the training families, with the teacher's budget of students
            teachers.update(tb.baselines(cfg.env, seed=cfg.seed, budget=cfg.n_envs * steps, tuned_directive=True))
        for name, policy in teachers.items():
            evaluations[name] = tb.evaluate(settings, policy, cfg.eval_seeds, cfg.eval_students)
        learned = evaluations["learned teacher"]
        final.update({"eval_steps_mean": learned["steps_mean"], "eval_steps_ci95": learned["steps_ci95"],
                      "eval_reached": learned["reached"]})
        schedule = greedy_schedule(greedy, settings)
        traces = directive_traces(greedy, settings, cfg.eval_students)
        # ------------------------------------------------------------ save
        if folder.path is not None:
            model = {"teacher": self.teacher.state_dict(), "config": config_to_dict(cfg)}
            if self.speaker is not None:
                model["speaker"] = self.speaker.state_dict()
            save_checkpoint(folder.path / "teacher.pt", model)
            plot_curves(folder.path / "steps_to_target.png", {"training students": (
                [r["step"] for r in rows], [r["steps_to_target"] for r in rows])},
                "iteration", "SGD steps to target")
            plot_directives(folder.path / "directives.png", traces, settings)
            folder.write_json("evaluation.json", {"final": final, "evaluations": evaluations,
                                                  "greedy_directives": schedule, "directive_traces": traces})
        return final, {"teacher": self.teacher, "speaker": self.speaker, "evaluations": evaluations,
                       "greedy_directives": schedule, "directive_traces": traces, "config": cfg}

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
