"""Before/after speed comparisons of two source trees of tfflows, each run in its own
process: `before_tree(commit)` extracts the package of an earlier commit (`git archive`),
and `alternate(trees, rounds, run)` runs each tree once per round, alternating which goes
first (on a shared machine, compare within a round)."""

import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def before_tree(commit):
    """A folder holding the `tfflows` package as it was at `commit`."""
    folder = tempfile.mkdtemp(prefix="tfflows-before-")
    archive = subprocess.run(["git", "-C", ROOT, "archive", commit, "tfflows"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
    return folder


def alternate(trees, rounds, run):
    """{name: [run(name, tree) for each round]} over `trees` ({name: folder}), the order
    of the trees reversed every other round."""
    results = {name: [] for name in trees}
    for round_ in range(rounds):
        order = list(trees.items()) if round_ % 2 == 0 else list(trees.items())[::-1]
        for name, tree in order:
            results[name].append(run(name, tree))
    return results


def worker_result(script, name, tree, *arguments):
    """Run `script --worker tree *arguments` in a fresh process and return the JSON it
    prints on its "RESULT " line (exits with the worker's stderr if there is none)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    run = subprocess.run([sys.executable, script, "--worker", tree, *arguments], env=env,
                         capture_output=True, text=True)
    lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT ")]
    if not lines:
        sys.exit(f"the {name} worker failed:\n{run.stderr[-3000:]}")
    return json.loads(lines[0][len("RESULT "):])
