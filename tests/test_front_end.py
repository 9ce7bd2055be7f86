"""The front end (load, validate, scale, lower, analyse, render) never imports torch."""
from __future__ import annotations

import subprocess
import sys
import textwrap

from conftest import ROOT, SPECS


def run_without_torch(code: str, tmp_path) -> subprocess.CompletedProcess:
    # A `torch` package that explodes on import shadows the real one: any import, even a lazy one, fails.
    poison = tmp_path / "poison" / "torch"
    poison.mkdir(parents=True)
    (poison / "__init__.py").write_text("raise ImportError('netspec front end imported torch')\n")
    script = textwrap.dedent(code)
    env = {"PYTHONPATH": f"{poison.parent}:{ROOT}", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=ROOT)


def test_pipeline_without_torch(tmp_path):
    proc = run_without_torch(f"""
        import sys
        import netspec
        from netspec.analysis import costs
        from netspec.spec import json_schema
        G = netspec.lower(netspec.load({str(SPECS / 'mobilenet_v2.yaml')!r}))
        print(costs.total_params(G), costs.total_macs(G))
        json_schema()
        assert 'torch' not in sys.modules
    """, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["3504872", "300774272"]


def test_cli_validate_and_schema_without_torch(tmp_path):
    proc = run_without_torch(f"""
        import sys
        from netspec.cli import main
        assert main(['validate', {str(SPECS / 'mobilenet_v2.yaml')!r}]) == 0
        assert main(['schema', '--out', {str(tmp_path / 's.json')!r}]) == 0
        assert main(['compare', {str(SPECS / 'mobilenet_v1.yaml')!r}, {str(SPECS / 'mobilenet_v2.yaml')!r},
                     '--render', {str(tmp_path / 'c.dot')!r}]) == 0
        assert main(['report', {str(SPECS / 'lenet5.yaml')!r}, '-o', {str(tmp_path / 'r.html')!r}]) == 0
        import netspec
        assert 'lenet5' in netspec.report({str(SPECS / 'lenet5.yaml')!r})
        assert 'torch' not in sys.modules
    """, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "ok - mobilenet_v2" in proc.stdout


def test_latency_prediction_without_torch(tmp_path):
    # analyze --latency and the latency-budget search predict from a profile: no torch (issue 19)
    from test_latency import SYNTHETIC, TOY
    import json
    (tmp_path / "dev.json").write_text(json.dumps(SYNTHETIC))
    (tmp_path / "toy.yaml").write_text(TOY)
    proc = run_without_torch(f"""
        import sys
        from netspec.cli import main
        dev = {str(tmp_path / 'dev.json')!r}
        assert main(['analyze', {str(SPECS / 'mobilenet_v2.yaml')!r}, '--latency', '--device', dev]) == 0
        assert main(['compare', {str(SPECS / 'mobilenet_v1.yaml')!r}, {str(SPECS / 'mobilenet_v2.yaml')!r},
                     '--device', dev]) == 0
        assert main(['scale', {str(tmp_path / 'toy.yaml')!r}, '--search', '--latency-budget', '0.5ms', '--grid', '0.5',
                     '--device', dev, '--no-measure']) == 0
        assert 'torch' not in sys.modules
    """, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "ms predicted" in proc.stdout and "chosen: alpha=" in proc.stdout


def test_build_needs_torch_and_says_so(tmp_path):
    # the poisoned torch proves the test above would have caught an import
    proc = run_without_torch(f"""
        import sys
        from netspec.cli import main
        sys.exit(main(['build', {str(SPECS / 'lenet5.yaml')!r}]))
    """, tmp_path)
    assert proc.returncode == 1 and "netspec front end imported torch" in proc.stderr
    assert "needs torch" in proc.stderr and "Traceback" not in proc.stderr
