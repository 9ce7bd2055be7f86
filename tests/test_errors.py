"""Every class of user error yields a SpecError naming file:line:col, the spec path, and a hint."""
from __future__ import annotations

import subprocess
import sys

import pytest

import netspec
from netspec.cli import main
from netspec.errors import SpecError

# indented like the specs below, which are dedented as a whole
GOOD_HEAD = """
        head:
          - {type: global_avgpool, keepdim: false}
          - {type: linear, out: 10}
        """


def pos(path, token: str, occurrence: int = 0) -> tuple[int, int]:
    """1-based (line, column) of a token in a file: where an error must point."""
    lines = path.read_text().splitlines()
    hits = [(n + 1, line.index(token) + 1) for n, line in enumerate(lines) if token in line]
    return hits[occurrence]


def errors_of(path, **kw) -> list:
    with pytest.raises(SpecError) as info:
        netspec.lower(netspec.load(path, **kw))
    return info.value.issues


def test_yaml_syntax_error_points_at_the_position(write_spec):
    path = write_spec("name: x\ninput: {channels: 3, size: 32\nstages: []\n")
    [issue] = errors_of(path)
    assert (issue.loc.file, issue.loc.line, issue.loc.col) == (str(path), 3, 7)
    assert "YAML syntax error" in issue.message
    assert "indentation" in issue.hint


def test_unknown_key_suggests_the_right_one(write_spec):
    path = write_spec("""
        name: x
        input: {channels: 3, size: 32}
        stages:
          - blocks:
              - {type: conv2d, out: 8, kernel: 3, strides: 2}
        """ + GOOD_HEAD)
    [issue] = errors_of(path)
    assert (issue.loc.line, issue.loc.col) == pos(path, "strides")
    assert issue.loc.path == "stages[0].blocks[0].strides"
    assert issue.message == "unknown key 'strides'"
    assert issue.hint == "did you mean 'stride'?"


def test_several_schema_errors_are_reported_together(write_spec):
    path = write_spec("""
        name: x
        input: {channels: 3, size: 32}
        stages:
          - blocks:
              - {type: conv_bn_act, out: 8, kernal: 3}
              - {type: convbnact, out: 8}
              - {type: conv2d, out: -1, kernel: 3}
              - {type: maxpool}
        """ + GOOD_HEAD)
    issues = errors_of(path)
    by_path = {i.loc.path: i for i in issues}
    assert set(by_path) == {"stages[0].blocks[0].kernal", "stages[0].blocks[1].type",
                            "stages[0].blocks[2].out", "stages[0].blocks[3].kernel"}
    assert by_path["stages[0].blocks[1].type"].hint == "did you mean 'conv_bn_act'?"
    assert by_path["stages[0].blocks[1].type"].loc.line == 6
    assert "greater than or equal to 1" in by_path["stages[0].blocks[2].out"].message
    assert by_path["stages[0].blocks[3].kernel"].message.startswith("Field required")
    # the message lists all four, each on its own line with its location
    text = str(SpecError(issues))
    assert text.startswith("4 problems in spec:")
    line, col = pos(path, "-1")
    assert f"{path}:{line}:{col}: stages[0].blocks[2].out" in text


def test_unknown_input_name(write_spec):
    path = write_spec("""
        name: x
        input: {channels: 3, size: 32}
        stages:
          - blocks:
              - {type: conv2d, name: left, out: 8, kernel: 3, padding: 1}
              - {type: conv2d, name: right, inputs: input, out: 8, kernel: 3, padding: 1}
              - {type: add, inputs: [left, rigth]}
        """ + GOOD_HEAD)
    [issue] = errors_of(path)
    assert (issue.loc.line, issue.loc.path) == (7, "stages[0].blocks[2].inputs")
    assert issue.message == "unknown input 'rigth'"
    assert "did you mean 'right'?" in issue.hint


def test_add_of_unequal_shapes(write_spec):
    path = write_spec("""
        name: x
        input: {channels: 3, size: 32}
        stages:
          - blocks:
              - {type: conv2d, name: a, out: 8, kernel: 3, padding: 1}
              - {type: conv2d, name: b, out: 16, kernel: 3, padding: 1}
              - {type: add, inputs: [a, b]}
        """ + GOOD_HEAD)
    [issue] = errors_of(path)
    assert (issue.loc.line, issue.loc.col, issue.loc.path) == (7, 9, "stages[0].blocks[2]")
    assert "add of unequal shapes: (8, 32, 32), (16, 32, 32)" in issue.message
    assert "residual" in issue.hint


def test_concat_of_unequal_spatial_sizes(write_spec):
    path = write_spec("""
        name: x
        input: {channels: 3, size: 32}
        stages:
          - blocks:
              - {type: conv2d, name: a, out: 8, kernel: 3, padding: 1}
              - {type: conv2d, name: b, inputs: input, out: 8, kernel: 3, stride: 2}
              - {type: concat, inputs: [a, b]}
        """ + GOOD_HEAD)
    [issue] = errors_of(path)
    assert issue.loc.line == 7
    assert "concat of unequal spatial sizes: (8, 32, 32), (8, 15, 15)" in issue.message
    assert "ceil_mode" in issue.hint


def test_non_positive_output_size(write_spec):
    path = write_spec("""
        name: x
        input: {channels: 3, size: 8}
        stages:
          - blocks:
              - {type: conv2d, out: 8, kernel: 3, stride: 2}
              - {type: maxpool, kernel: 5}
        """ + GOOD_HEAD)
    [issue] = errors_of(path)
    assert (issue.loc.line, issue.loc.path) == (6, "stages[0].blocks[1]")
    assert "output size 0x0 is not positive (input 3x3, kernel 5x5)" in issue.message
    assert "input is too small" in issue.hint


def test_channels_not_divisible_by_groups(write_spec):
    path = write_spec("""
        name: x
        input: {channels: 3, size: 32}
        stages:
          - blocks:
              - {type: conv2d, out: 8, kernel: 3, groups: 3}
        """ + GOOD_HEAD)
    [issue] = errors_of(path)
    assert issue.loc.line == 5
    assert "channels not divisible by groups: in 3, out 8, groups 3" in issue.message
    assert "multiples of groups" in issue.hint


def test_shape_error_inside_a_library_block_names_the_call_site(write_spec):
    # inception_b's unpadded 3x3/2 conv can't run on a 2x2 map: the error is two templates deep,
    # reported where the user wrote inception_b
    path = write_spec("""
        name: x
        input: {channels: 3, size: 4}
        stages:
          - blocks:
              - {type: conv2d, out: 8, kernel: 3, stride: 2, padding: 1}
              - {type: inception_b}
        """ + GOOD_HEAD)
    [issue] = errors_of(path)
    assert (issue.loc.line, issue.loc.path) == (6, "stages[0].blocks[1]")
    assert issue.message.startswith("in block inception_b > conv_bn_act: conv2d 'stages.0.blocks.1.branch3x3.conv'")
    assert "output size 0x0 is not positive (input 2x2, kernel 3x3)" in issue.message


def test_error_inside_a_user_block_names_both_places(write_spec):
    path = write_spec("""
        name: x
        input: {channels: 3, size: 16}
        blocks:
          res:
            params: {width: {type: int}}
            body:
              - {type: conv_bn_act, name: c1, out: $width}
              - {type: add, inputs: [input, c1]}
        stages:
          - blocks:
              - {type: conv2d, out: 8, kernel: 1}
              - {type: res, width: 16}
        """ + GOOD_HEAD)
    [issue] = errors_of(path)
    assert (issue.loc.line, issue.loc.path) == (12, "stages[0].blocks[1]")
    assert f"entry at {path}:8:9 blocks.res.body[1]" in issue.message
    assert "add of unequal shapes" in issue.message


def test_user_block_parameters_are_checked(write_spec):
    path = write_spec("""
        name: x
        input: {channels: 3, size: 16}
        blocks:
          res:
            params: {width: {type: int}}
            body: [{type: conv_bn_act, out: $width}]
        stages:
          - blocks: [{type: res, widht: 16}]
        """ + GOOD_HEAD)
    issues = errors_of(path)
    assert [(i.loc.line, i.message) for i in issues] == [
        (8, "unknown parameter 'widht' of block 'res'"),
        (8, "missing required parameter 'width' of block 'res'"),
    ]
    assert issues[0].hint == "did you mean 'width'?"
    assert (issues[0].loc.line, issues[0].loc.col) == pos(path, "widht")  # at the misspelt key itself


def test_wrong_type_of_block_parameter(write_spec):
    path = write_spec("""
        name: x
        input: {channels: 3, size: 16}
        stages:
          - blocks: [{type: conv_bn_act, out: 8, act: relu7}]
        """ + GOOD_HEAD)
    [issue] = errors_of(path)
    assert issue.loc.path == "stages[0].blocks[0].act"
    assert "relu6" in issue.message  # the allowed activations are listed


def test_bad_expression(write_spec):
    path = write_spec("""
        name: x
        input: {channels: 3, size: 16}
        stages:
          - blocks: [{type: conv2d, out: "$in * ", kernel: 1}]
        """ + GOOD_HEAD)
    [issue] = errors_of(path)
    assert (issue.loc.line, issue.loc.path) == (4, "stages[0].blocks[0].out")
    assert "cannot parse expression '$in * '" in issue.message
    assert "$name variables" in issue.hint


def test_unknown_variable_in_expression(write_spec):
    path = write_spec("""
        name: x
        input: {channels: 3, size: 16}
        vars: {width: 8}
        stages:
          - blocks: [{type: conv2d, out: $widht, kernel: 1}]
        """ + GOOD_HEAD)
    [issue] = errors_of(path)
    assert issue.message.endswith("unknown variable '$widht' in expression '$widht'")
    assert issue.hint == "did you mean 'width'?"


def test_duplicate_key(write_spec):
    path = write_spec("name: x\nname: y\ninput: {size: 8}\nhead: [{type: flatten}]\n")
    [issue] = errors_of(path)
    assert (issue.loc.line, issue.loc.col, issue.message) == (2, 1, "duplicate key 'name'")


def test_python_tags_are_refused(write_spec):
    path = write_spec('name: x\ninput: {size: 8}\nhead: [{type: flatten}]\n'
                      'doc: !!python/object/apply:os.system ["echo pwned"]\n')
    [issue] = errors_of(path)
    assert issue.loc.line == 4 and "unsupported YAML tag" in issue.message


def test_aux_head_at_unknown_point(write_spec):
    path = write_spec("""
        name: x
        input: {channels: 3, size: 16}
        stages:
          - blocks: [{type: conv2d, name: body, out: 8, kernel: 1}]
        """ + GOOD_HEAD + """
        aux_heads:
          - {name: aux, at: bdy, layers: [{type: flatten}]}
        """)
    [issue] = errors_of(path)
    assert issue.loc.path == "aux_heads[0].at"
    assert "did you mean 'body'?" in issue.hint


def test_missing_file():
    with pytest.raises(SpecError) as info:
        netspec.load("does/not/exist.yaml")
    assert info.value.first.message == "no such file: does/not/exist.yaml"


def test_set_override_bad_path(write_spec):
    path = write_spec("name: x\ninput: {size: 8}\nhead: [{type: flatten}]\n")
    with pytest.raises(SpecError) as info:
        netspec.load(path, overrides=["stages[3].x=1"])
    assert info.value.first.loc.file == "--set"
    assert "does not exist" in info.value.first.message


def test_cli_prints_located_error_and_exits_2_without_traceback(write_spec, capsys):
    path = write_spec("""
        name: x
        input: {channels: 3, size: 32}
        stages:
          - blocks: [{type: conv2d, out: 8, kernel: 3, strides: 2}]
        """ + GOOD_HEAD)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    line, col = pos(path, "strides")
    assert err.startswith(f"error: {path}:{line}:{col}: stages[0].blocks[0].strides: unknown key 'strides'")
    assert "hint: did you mean 'stride'?" in err
    assert "Traceback" not in err


def test_cli_exit_code_in_a_real_process(write_spec):
    path = write_spec("name: x\ninput: {size: 8}\nstages: [")
    proc = subprocess.run([sys.executable, "-m", "netspec", "build", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "YAML syntax error" in proc.stderr and "Traceback" not in proc.stderr
