"""The package's layout rules (ARCHITECTURE.md), checked on the source:

- imports run one way, downward through the layers below; no two modules import each
  other, directly or through others (no cycle), lazy imports inside functions included;
- the contract (`tfflows.bijectors.base`) imports nothing of the package, except its one
  declared lazy edge to the TFP adapter, a leaf that imports nothing of the package;
- no private attribute of Keras, TensorFlow or TFP is used: every `obj._name` in the
  package names something the package itself defines;
- no global state at import: no `matplotlib.use`, no `os.environ` writes outside the
  command line's entry point, no global NumPy RNG;
- modules stay under 400 lines, within the 100 columns of setup.cfg, and no function
  passes ~60 lines (so the line limit counts ideas, not density).
"""

import ast
import configparser
import os
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "tfflows"

# Lower layers first; a module may import its own layer or any layer below it.
SUBPACKAGES = ["tfflows.bijectors", "tfflows.bijectors.image", "tfflows.nets", "tfflows.flows",
               "tfflows.gaussianization", "tfflows.interop", "tfflows.data", "tfflows.plot"]
LAYERS = [
    SUBPACKAGES + ["tfflows._math", "tfflows.interop.tfp_adapter", "tfflows.data.validation", "tfflows.data.datasets",
                   "tfflows.data.splits", "tfflows.data.tables", "tfflows.data.files", "tfflows.data.source",
                   "tfflows.data.loading", "tfflows.data.toy_density"],
    ["tfflows.bijectors.base"],
    ["tfflows.bijectors.*", "tfflows.nets.*", "tfflows.distributions"],
    ["tfflows.gaussianization.normal_cdf", "tfflows.gaussianization.marginal_fit",
     "tfflows.gaussianization.marginal", "tfflows.gaussianization.marginal_logistic",
     "tfflows.gaussianization.rotations", "tfflows.gaussianization.greedy",
     "tfflows.gaussianization.sketches", "tfflows.gaussianization.streamed"],
    ["tfflows.interop.tfp", "tfflows.interop.tf_training", "tfflows.interop.export", "tfflows.interop.saving",
     "tfflows.interop.feed", "tfflows.interop.backend", "tfflows.interop.source_dataset"],
    ["tfflows.flows.*"],
    ["tfflows.gaussianization.greedy_preset", "tfflows.gaussianization.rbig",
     "tfflows.gaussianization.gaussianization_flow"],
    ["tfflows.gaussianization.*", "tfflows.plot.*"],
    ["tfflows.cli", "tfflows.commands", "tfflows.commands.*", "tfflows.sklearn", "tfflows"],
]
DECLARED_UPWARD = {("tfflows.bijectors.base", "tfflows.interop.tfp_adapter")}


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path


def _level(module):
    for level, patterns in enumerate(LAYERS):
        for pattern in patterns:
            if module == pattern or (pattern.endswith(".*") and module.startswith(pattern[:-1])
                                     and module.count(".") >= pattern.count(".")):
                return level
    raise AssertionError(f"{module} is in no layer of ARCHITECTURE.md; add it to LAYERS here and there.")


def _imports(path, module):
    """tfflows modules imported anywhere in the file (top level and inside functions)."""
    tree = ast.parse(path.read_text())
    found = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("tfflows")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if not base.startswith("tfflows"):
                continue
            for alias in node.names:  # `from tfflows.x import y` may import the module x.y
                candidate = f"{base}.{alias.name}"
                found.add(candidate if (PACKAGE.parent / (candidate.replace(".", "/") + ".py")).exists()
                          or (PACKAGE.parent / candidate.replace(".", "/")).is_dir() else base)
    return found - {module}


GRAPH = {module: _imports(path, module) for module, path in _modules()}


def test_every_module_is_placed_in_a_layer():
    for module in GRAPH:
        _level(module)


def test_subpackage_inits_only_document():
    for name in SUBPACKAGES:
        assert GRAPH[name] == set(), f"{name}/__init__.py imports {GRAPH[name]}; import the defining modules"


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_point_down(module):
    if module in ("tfflows", "tfflows.cli"):
        return  # the package root re-exports everything; the command line sits on top of it
    upward = [target for target in GRAPH[module]
              if target != "tfflows" and _level(target) > _level(module) and (module, target) not in DECLARED_UPWARD]
    assert not upward, f"{module} (layer {_level(module)}) imports higher layers: {upward}"
    assert "tfflows" not in GRAPH[module], f"{module} imports the package root; import the defining module"


def test_the_contract_imports_nothing_of_the_package_but_the_leaf_adapter():
    assert GRAPH["tfflows.bijectors.base"] <= {"tfflows.interop.tfp_adapter"}
    assert GRAPH["tfflows.interop.tfp_adapter"] == set()


def test_no_import_cycles():
    state = {}

    def visit(module, stack):
        state[module] = "open"
        for target in sorted(GRAPH.get(module, ())):
            if target not in GRAPH or target == "tfflows":
                continue
            if state.get(target) == "open":
                cycle = stack[stack.index(target):] + [target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, stack + [target])
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state and module != "tfflows":
            visit(module, [module])


def _defined_private_names():
    """Underscore names the package defines: functions, classes, attributes it assigns."""
    names = set()
    for _, path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
    return {n for n in names if n.startswith("_")}


# Public, documented functions whose names start with an underscore.
DOCUMENTED_UNDERSCORED = {("os", "_exit")}


def test_no_private_attributes_of_other_libraries():
    ours = _defined_private_names()
    offenders = []
    for module, path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            name = None
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                if (getattr(node.value, "id", None), node.attr) in DOCUMENTED_UNDERSCORED:
                    continue
                name = node.attr
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                  and node.func.id in ("getattr", "hasattr", "setattr") and len(node.args) >= 2
                  and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)
                  and node.args[1].value.startswith("_") and not node.args[1].value.startswith("__")):
                name = node.args[1].value
            if name is not None and name not in ours:
                offenders.append(f"{module}:{node.lineno} ._{name.lstrip('_')}")
    assert not offenders, "private attributes of other libraries: " + ", ".join(offenders)


def test_no_global_state_at_import():
    offenders = []
    for module, path in _modules():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "use" and getattr(node.value, "id", "") == "matplotlib":
                offenders.append(f"{module}:{node.lineno} matplotlib.use")
            if (isinstance(node, ast.Attribute) and getattr(node.value, "attr", None) == "random"
                    and getattr(getattr(node.value, "value", None), "id", None) == "np"
                    and node.attr in ("seed", "randint", "rand", "randn", "normal", "uniform", "choice",
                                      "permutation", "shuffle")):
                offenders.append(f"{module}:{node.lineno} global numpy RNG np.random.{node.attr}")
        if module != "tfflows.cli":
            source = path.read_text()
            if "os.environ[" in source.replace("os.environ.get(", "") or "os.environ.setdefault" in source \
                    or "os.environ.update" in source or "putenv" in source:
                offenders.append(f"{module}: writes os.environ")
    assert not offenders, ", ".join(offenders)


def test_the_command_line_sets_the_environment_only_in_its_entry_point():
    tree = ast.parse((PACKAGE / "cli.py").read_text())
    for node in tree.body:  # module level: no environment writes
        assert "os.environ" not in ast.unparse(node) or isinstance(node, ast.FunctionDef), ast.unparse(node)


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_modules_stay_small(module):
    path = dict(_modules())[module]
    lines = len(path.read_text().splitlines())
    assert lines <= 400, f"{module} has {lines} lines; split it (one module, one idea)"


def test_no_module_is_importable_only_by_the_old_flat_layout():
    flat = [p.name for p in PACKAGE.glob("*.py")]
    assert sorted(flat) == ["__init__.py", "_math.py", "cli.py", "distributions.py", "sklearn.py"], flat
    assert os.path.isfile(PACKAGE.parent / "ARCHITECTURE.md")


COLUMNS = 100  # setup.cfg's max-line-length, read by `_column_limit`
FUNCTION_LINES = 60
def _column_limit():
    config = configparser.ConfigParser()
    config.read(PACKAGE.parent / "setup.cfg")
    for section in config.sections():
        if config.has_option(section, "max-line-length"):
            return config.getint(section, "max-line-length")
    return COLUMNS


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_lines_fit_the_column_limit(module):
    limit = _column_limit()
    lines = dict(_modules())[module].read_text().splitlines()
    wide = [number for number, line in enumerate(lines, 1) if len(line) > limit]
    assert not wide, f"{module}: lines {wide[:8]} are wider than {limit} columns (setup.cfg)"


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_functions_stay_short(module):
    tree = ast.parse(dict(_modules())[module].read_text())
    long = [f"{node.name} ({node.end_lineno - node.lineno + 1} lines)" for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > FUNCTION_LINES]
    assert not long, f"{module}: functions over {FUNCTION_LINES} lines: {', '.join(long)}"
