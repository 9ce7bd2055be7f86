"""Hostile specs against generated code (issue 22): nothing a spec says can run when the ejected file
is imported, every escaped string round-trips, and names that cannot be module attributes are
refused at validation with a located error."""
from __future__ import annotations

import ast
import copy
import importlib.util
import io
import math
import tokenize

import pytest
import yaml

import netspec
from conftest import SPECS
from netspec.api import load, lower
from netspec.cli import main
from netspec.eject import eject
from netspec.escape import (MODULE_ATTRIBUTES, NETSPEC_MODULE_ATTRIBUTES, dot_string, html_text,
                            module_key_problem, py_literal, py_text)
from netspec.scale import apply_scaling

NASTY = ['"""', "'''", "\\", "\\\\", "\n", "\r\n", "#", "\x00", "é☃𝔘", "\u2028", "\ufeff", "\ud800",
         '\\"""', "\\'", "\\x41", "{x}", "%s", "\x0c", "\t", "-" * 3, "\\-"]


def payload(canary) -> str:
    """Every character class that could close a string or comment, then code that writes the canary."""
    code = f';open({str(canary)!r},"w").write("1");'
    long_word = "".join(NASTY).replace(" ", "") * 3  # longer than a wrapped line, no spaces
    return " ".join(NASTY) + f' x"""{code}"""' + f" y'''{code}'''" + f" \n{code}\n#" + " " + long_word + \
        f'"""\n{code}'


@pytest.mark.parametrize("text", NASTY + ["".join(NASTY), "plain text", ""])
def test_py_text_round_trips_in_a_docstring_and_stays_a_comment(text):
    escaped = py_text(text)
    assert "\n" not in escaped and "\r" not in escaped
    # the value round-trips; a lone surrogate (no UTF-8 for it) becomes the text \udxxx
    expected = "".join(f"\\u{ord(c):04x}" if "\ud800" <= c <= "\udfff" else c for c in text)
    assert ast.literal_eval('"""' + escaped + '"""') == expected
    assert ast.literal_eval("'''" + escaped + "'''") == expected
    tokens = list(tokenize.generate_tokens(io.StringIO("x = 1  # " + escaped + "\ny = 2\n").readline))
    assert [t.string for t in tokens if t.type == tokenize.COMMENT] == ["# " + escaped]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), 0.1, -0.0, 1e-300, 3, True, None,
                                   "a'\"\\\n\x00", (1, 2.5), (7,), [1, "x"], {"k": float("inf")}])
def test_py_literal_parses_back(value):
    text = py_literal(value)
    back = eval(text, {"__builtins__": {"float": float}})  # noqa: S307 - the literal we just wrote
    if isinstance(value, float) and math.isnan(value):
        assert math.isnan(back)
    else:
        assert back == value and type(back) is type(value)


def test_py_literal_refuses_unknown_types():
    class Evil:
        def __repr__(self):
            return "__import__('os').system('x')"

    with pytest.raises(TypeError):
        py_literal(Evil())


def test_dot_and_html_escaping():
    assert html_text('<b a="1">&\'') == "&lt;b a=&quot;1&quot;&gt;&amp;&#x27;"
    assert dot_string('a"b\\') == 'a\\"b\\\\'
    assert dot_string("a\nb") == "a\\nb"


def test_module_attribute_list_covers_torch():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    names = set()
    for cls in (nn.Module, nn.Sequential, nn.ModuleList, nn.ModuleDict):
        names |= set(dir(cls)) | set(vars(cls()))
    # names with a double-underscore prefix are refused by that rule alone: they include what torch's
    # tools add at run time (torch.compile: `___needs_generation_tag_patch`), so the list cannot
    # depend on which tests ran before this one
    assert all(module_key_problem(n) for n in names if n.startswith("__"))
    names = {n for n in names if not n.startswith("__")}
    assert names <= MODULE_ATTRIBUTES, sorted(names - MODULE_ATTRIBUTES)
    import netspec
    from netspec.backends.pytorch import NetspecModule, OutputsModule, Part
    model = netspec.build("lenet5")  # instance attributes too: a child of that name would clash with them
    extra = {n for cls in (NetspecModule, Part, OutputsModule) for n in dir(cls) if not n.startswith("__")}
    extra |= set(vars(model)) | set(vars(model.head))
    extra -= MODULE_ATTRIBUTES
    assert extra <= NETSPEC_MODULE_ATTRIBUTES, sorted(extra - NETSPEC_MODULE_ATTRIBUTES)


@pytest.mark.parametrize("name,ok", [("conv1", True), ("0", True), ("12", True), ("class", False), ("9x", False),
                                     ("training", False), ("forward", False), ("__init__", False),
                                     ("_modules", False), ("keys", False), ("graph", False), ("fc_", True),
                                     ("__private", False), ("___needs_generation_tag_patch", False), ("_x", True)])
def test_module_key_rules(name, ok):
    assert (module_key_problem(name) is None) == ok


def _import(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ejected_file_never_runs_spec_strings(tmp_path):
    """Every free string of the graph (name, reference, block type names, the source path) holds the
    payload; the file must import, build and keep the canary absent."""
    torch = pytest.importorskip("torch")
    canary = tmp_path / "canary"
    evil = payload(canary)
    G = lower(apply_scaling(load(SPECS / "squeezenet1_1.yaml")))
    G.graph["name"] = evil
    G.graph["reference"] = evil
    for info in G.graph["scopes"].values():
        if info["kind"] == "block":
            info["type"] = info["type"] + evil
    text = eject(G, version=evil, source=evil)
    ast.parse(text)
    path = tmp_path / "evil_model.py"
    path.write_text(text, encoding="utf-8")
    module = _import(path)
    model = module.build_model()
    assert not canary.exists()
    shown = "".join(f"\\u{ord(c):04x}" if "\ud800" <= c <= "\udfff" else c for c in evil)
    assert " ".join(shown.split()) in " ".join(module.__doc__.split())  # the text survives, wrapped
    model.eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 1000)
    assert not canary.exists()


def test_eject_cli_with_hostile_reference_and_file_name(tmp_path, capsys):
    """The issue's reproducer, through the CLI: reference and spec file name both carry code."""
    canary = tmp_path / "pwned"
    spec = yaml.safe_load((SPECS / "lenet5.yaml").read_text())
    spec["reference"] = f'x""";open({str(canary)!r},"w").write("1");""" C:\\xnets'
    spec["doc"] = spec["reference"]
    name = 'evil"""\'\'\'#\\é.yaml'
    (tmp_path / name).write_text(yaml.safe_dump(spec))
    out = tmp_path / "lenet_out.py"
    assert main(["eject", str(tmp_path / name), "-o", str(out)]) == 0
    module = _import(out)
    module.build_model()
    assert not canary.exists()
    assert f"Reference: {spec['reference']}" in " ".join(module.__doc__.split())
    assert f"Source spec: {tmp_path / name}" in module.__doc__


def test_non_finite_float_is_a_parseable_literal(tmp_path):
    """Defence in depth: validation refuses NaN layer parameters, and eject still writes float('nan')."""
    pytest.importorskip("torch")
    G = lower(apply_scaling(load(SPECS / "alexnet_2012.yaml")))
    lrn = next(n for n in G if G.nodes[n]["op"] == "lrn")
    G.nodes[lrn]["attrs"] = {**G.nodes[lrn]["attrs"], "alpha": float("nan")}
    path = tmp_path / "nan_model.py"
    path.write_text(eject(G, version=netspec.__version__), encoding="utf-8")
    assert "float('nan')" in path.read_text()
    _import(path).build_model()


LENET = yaml.safe_load((SPECS / "lenet5.yaml").read_text())


def _aux(scope):
    s = copy.deepcopy(LENET)
    s["aux_heads"] = [{"name": "a1", "at": "conv1", "scope": scope,
                       "layers": [{"type": "flatten"}, {"type": "linear", "name": "fc", "out": "$num_classes"}]}]
    return s


def _stage_named(name):
    s = copy.deepcopy(LENET)
    s["stages"][0]["name"] = name
    return s


def _layer_named(name):
    s = copy.deepcopy(LENET)
    s["stages"][0]["blocks"][0]["name"] = name
    return s


def _lrn(**params):
    s = copy.deepcopy(LENET)
    s["stages"][0]["blocks"].insert(1, {"type": "lrn", "size": 5, **params})
    return s


@pytest.mark.parametrize("spec,where,what", [
    (_aux("class.h"), "aux_heads[0].scope", "'class' cannot name a module: it is a Python keyword"),
    (_aux("9x.h"), "aux_heads[0].scope", "'9x' cannot name a module"),
    (_aux("training.h"), "aux_heads[0].scope", "'training' cannot name a module"),
    (_aux("forward.h"), "aux_heads[0].scope", "'forward' cannot name a module"),
    (_stage_named("training"), "stages[0].name", "'training' cannot name a module"),
    (_layer_named("eval"), "stages[0].blocks[0].name", "'eval' cannot name a module"),
    (_layer_named("__class__"), "stages[0].blocks[0].name", "dunder"),
    (_lrn(alpha=float("nan")), "stages[0].blocks[1].alpha", "finite"),
    (_lrn(k=float("inf")), "stages[0].blocks[1].k", "finite"),
])
def test_bad_names_and_non_finite_parameters_are_refused_at_validation(tmp_path, capsys, spec, where, what):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:" in err and where in err and what in err and "Traceback" not in err


def test_numeric_aux_scope_ejects_and_builds(tmp_path, capsys):
    """A numbered scope part (`0`, as in torchvision's features.0) is a module key, not an attribute."""
    torch = pytest.importorskip("torch")
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(_aux("0.h"), sort_keys=False))
    out = tmp_path / "numeric_aux.py"
    assert main(["eject", str(path), "-o", str(out)]) == 0
    model = _import(out).build_model()
    model.train()
    logits, aux = model(torch.zeros(2, 1, 32, 32))
    assert aux.shape == (2, 10)
