"""The README's commands, run as a new user runs them on a fresh clone.

Every command in README.md's fenced bash blocks has a rule below: run it (with appended options that make it
small: argparse keeps an option's last value), run it expecting the one-line "no camera" answer of a machine
without one, or skip it for the reason given. The commands run in README order in a scratch folder that stands
in for the repository root: its entries link to the checkout's, except `training/configs` (the same configs,
shrunk to a few steps) and `runs/` (empty), with `../shared` beside it. Afterwards the checkout's
`git status --porcelain` must be what it was: no README example writes into a tracked file.

The default run walks the cheap commands (seconds each); `-m slow` walks every command, training included.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
SHARED = REPO.parent / "shared"


@dataclass(frozen=True)
class Rule:
    pattern: str         # a regular expression matched at the start of the command
    action: str          # "run", "after-install" (run what follows the install), "no-camera" or "skip"
    extra: str = ""      # options appended to make it small; {tmp} is a folder of override files
    cheap: bool = False  # part of the default run (a few seconds); every runnable command is in the slow walk
    reason: str = ""     # why it is skipped

    def __post_init__(self):
        assert self.action in ("run", "after-install", "no-camera", "skip"), self.action
        assert (self.action == "skip") == bool(self.reason), self.pattern


TINY_TRAIN = "--detector-steps 2 --presence-steps 2 --batch 4 --threads 1"
TINY_EXPERIMENT = ("--pretrain-steps 2 --adapt-steps 2 --fractions 0 25 --widths 8 8 16 16 --fused 16 "
                   "--view-width 16 --threads 1")

RULES = (
    Rule(r"python3 -m venv \.venv && \. \.venv/bin/activate && pip install -e \. && handtrack", "after-install",
         extra="--frames 5", cheap=True),
    Rule(r"python3 -m venv \.venv && .* python -m pytest", "skip",
         reason="command 2 is this test run; .ci/run runs it, install included, on a fresh clone"),
    Rule(r"mkdir -p runs$", "run", cheap=True),
    Rule(r"handtrack-gui$", "skip", reason="opens a window until it is closed; the screenshot line below and "
                                             "tests/test_gui.py run the app"),
    Rule(r"xvfb-run -a handtrack-gui --source demo --screenshot", "run", extra="--frames 5"),
    Rule(r"xvfb-run -a handtrack bench gui", "run", extra="--seconds 1 --warmup 3 --repeats 1"),
    Rule(r"handtrack --help$", "run", cheap=True),
    Rule(r"handtrack doctor --source realsense", "no-camera", cheap=True),
    Rule(r"handtrack data synth --n 10000 --sensor realsense", "run", extra="--n 12", cheap=True),
    Rule(r"handtrack data fit-prior", "run"),  # about 25 s of fitting, no smaller size
    Rule(r"handtrack eval nyu ", "run"),
    Rule(r"handtrack eval reprojection", "run", cheap=True),
    Rule(r"taskset -c 0 handtrack bench synth", "run", extra="--n 10"),
    Rule(r"handtrack data synth --n \d+ --sensor \w+ (--views 2 )?--seed \d+ --out runs/data/", "run",
         extra="--n 40"),
    Rule(r"handtrack data synth --n \d+ --sensor sr305 --size-factors", "run", extra="--n 40"),
    Rule(r"handtrack train (murauer|crossingnets) --config", "run"),  # the configs are shrunk
    Rule(r"handtrack export (murauer|crossingnets) --checkpoint", "run"),
    Rule(r"handtrack eval synth", "run", extra="--n 16"),
    Rule(r"handtrack eval tracker", "run", extra="--demo-frames 10"),
    Rule(r"handtrack eval detect", "run", extra="--n 6"),
    Rule(r"handtrack data frames", "run", extra="--n 8 --shard-size 4"),
    Rule(r"handtrack train detect", "run", extra=TINY_TRAIN),
    Rule(r"handtrack train murauer-experiment", "run", extra=TINY_EXPERIMENT),
    Rule(r"handtrack eval nyu-frame", "run"),
    Rule(r"handtrack eval latent-walk", "run", extra="--steps 3"),
    Rule(r"torchrun --nproc_per_node 2 -m handtrack\.app\.cli train crossingnets", "run"),
    Rule(r"taskset -c 0 handtrack bench --threads 1", "run", extra="--model murauer --frames 10 --headless-frames 0"),
    Rule(r"handtrack --stream --source demo --frames 200 > runs/poses\.jsonl", "run", extra="--frames 5"),
    Rule(r"handtrack --stream --source realsense", "no-camera"),
    Rule(r"python3 docs/examples/subscriber\.py", "skip",
         reason="waits for a publisher until Ctrl-C; tests/test_stream.py runs it against a stream"),
    Rule(r"handtrack bench stream", "run", extra="--frames 20 --latency-frames 10"),
    Rule(r"handtrack record --source demo", "run", extra="--frames 10", cheap=True),
    Rule(r"handtrack --stream --source runs/S\.mcap", "run", cheap=True),
    Rule(r"handtrack bench record", "run", extra="--seconds 1"),
    Rule(r"handtrack finetune --sessions", "run", extra="--steps 2 --config {tmp}/finetune.json"),
    Rule(r"handtrack data user-domain", "run", extra="--frames 4"),
    Rule(r"handtrack eval finetune", "run", extra="--frames 4"),
)

# Fine-tuning at a tiny size: a small labelled synthetic side, small batches.
TINY_FINETUNE = {"synthetic": {"samples": 16}, "batch": {"synthetic": 4, "session": 4}, "semihand": {"views": 2},
                 "bf16": False}


def readme_commands(text: str) -> list[str]:
    """The commands of the fenced bash blocks: continuation lines joined, comments dropped."""
    commands = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M):
        for line in block.replace("\\\n", " ").splitlines():
            command = re.sub(r"(^|\s+)#.*$", "", line).strip()
            if command:
                commands.append(re.sub(r"\s+", " ", command))
    return commands


def rule_for(command: str) -> Rule:
    matches = [rule for rule in RULES if re.match(rule.pattern, command)]
    assert len(matches) == 1, f"{len(matches)} rules match the README command: {command}"
    return matches[0]


def test_every_readme_command_has_exactly_one_rule_and_every_rule_a_command():
    commands = readme_commands(README.read_text())
    assert len(commands) > 30
    used = {rule_for(command) for command in commands}
    assert not set(RULES) - used, f"rules for commands the README no longer has: {set(RULES) - used}"


# --- the walk -----------------------------------------------------------------------------------------------------
def shrink(value, key: str = ""):
    """A training config at a few steps and small batches, on the same data paths."""
    if isinstance(value, dict):
        return {k: shrink(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [shrink(v, key) for v in value]
    if not isinstance(value, int) or isinstance(value, bool):
        return value
    small = {"steps": 2, "warmup": 1, "threads": 1, "limit": 16, "crops_per_frame": 2, "log_every": 1}
    if key in small:
        return small[key]
    if key.endswith("_every"):
        return 2
    if key in ("batch", "labelled", "unlabelled", "synth", "synthetic", "real_labelled", "real_unlabelled",
               "paired"):
        return min(value, 4)
    return value


def scratch_root(tmp: Path) -> Path:
    """A stand-in for the checkout: links to its entries, shrunk training configs, no runs/, ../shared beside."""
    root = tmp / "handtrack"
    root.mkdir()
    for entry in REPO.iterdir():
        if entry.name not in ("training", "runs", ".git", ".venv"):
            (root / entry.name).symlink_to(entry)
    (root / "training").mkdir()
    for entry in (REPO / "training").iterdir():
        if entry.name != "configs":
            (root / "training" / entry.name).symlink_to(entry)
    (root / "training" / "configs").mkdir()
    for config in (REPO / "training" / "configs").glob("*.json"):
        (root / "training" / "configs" / config.name).write_text(json.dumps(shrink(json.loads(config.read_text()))))
    (tmp / "shared").symlink_to(SHARED)
    return root


def with_extra(command: str, extra: str) -> str:
    """Append options before an output redirection, if there is one."""
    head, redirect, tail = command.partition(" > ")
    return f"{head} {extra}{redirect}{tail}" if extra else command


def run_command(command: str, rule: Rule, root: Path, overrides: Path, timeout: float) -> None:
    if rule.action == "after-install":
        command = command[command.rindex("&& ") + 3:]
    command = with_extra(command, rule.extra.format(tmp=overrides))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(["bash", "-c", command], cwd=root, env=env, capture_output=True, text=True,
                          timeout=timeout)
    output = f"$ {command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert "Traceback" not in done.stderr, output
    if rule.action == "no-camera":
        assert done.returncode != 0 and "no RealSense camera" in done.stdout + done.stderr, output
    else:
        assert done.returncode == 0, output


def tracked_changes() -> str:
    return subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                          capture_output=True, text=True, check=True).stdout


def walk(tmp: Path, cheap_only: bool, timeout: float) -> None:
    import handtrack.app

    if Path(handtrack.app.__file__).resolve().parents[1] != REPO:
        pytest.skip(f"handtrack is installed from {Path(handtrack.app.__file__).parents[1]}, not this checkout")
    if not (SHARED / "data").is_dir():
        pytest.skip(f"no shared data at {SHARED / 'data'}")
    check_git = (REPO / ".git").exists() and shutil.which("git") is not None
    before = tracked_changes() if check_git else ""
    root, overrides = scratch_root(tmp), tmp / "overrides"
    overrides.mkdir()
    (overrides / "finetune.json").write_text(json.dumps(TINY_FINETUNE))
    missing_tools = set()
    for command in readme_commands(README.read_text()):
        rule = rule_for(command)
        if rule.action == "skip" or (cheap_only and not rule.cheap):
            continue
        program = command.split()[0]
        if shutil.which(program, path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}") is None:
            missing_tools.add(program)
            continue
        run_command(command, rule, root, overrides, timeout)
    if check_git:
        assert tracked_changes() == before, "README commands changed tracked files"
    if missing_tools:
        warnings.warn(f"README commands not run for lack of {', '.join(sorted(missing_tools))}")


def test_the_cheap_readme_commands_run_and_write_no_tracked_file(tmp_path):
    walk(tmp_path, cheap_only=True, timeout=120)


@pytest.mark.slow
def test_every_readme_command_runs_at_a_small_size_and_writes_no_tracked_file(tmp_path):
    pytest.importorskip("torch", reason="training and export need the train extra")
    walk(tmp_path, cheap_only=False, timeout=600)
