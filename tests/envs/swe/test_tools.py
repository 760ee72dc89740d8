"""The action parser, output truncation and the host-side file tools."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from turngym.envs.swe import tools as T


@pytest.mark.parametrize("action, name, args", [
    ('{"name": "bash", "arguments": {"command": "ls"}}', "bash", {"command": "ls"}),
    ('{"name": "bash", "arguments": "{\\"command\\": \\"ls -l\\"}"}', "bash",
     {"command": "ls -l"}),
    ('<tool_call>{"name": "submit", "arguments": {}}</tool_call>', "submit", {}),
    ('{"name": "submit"}', "submit", {}),
    ('{"name": "view", "arguments": {"path": "a.py", "start": 2, "end": 5}}', "view",
     {"path": "a.py", "start": 2, "end": 5}),
])
def test_parse_valid(action, name, args):
    call = T.parse_action(action)
    assert (call.name, call.arguments) == (name, args)


@pytest.mark.parametrize("action, fragment", [
    ("", "expected one JSON tool call"),
    ("[1, 2]", 'must be an object with a "name"'),
    ('{"name": "bash", "arguments": "not json"}', "are not JSON"),
    ('{"name": "bash", "arguments": [1]}', "must be an object"),
    ('{"name": "bash", "arguments": {"command": 3}}', "'command' of bash must be a string"),
    ('{"name": "view", "arguments": {"path": "a", "start": "x"}}', "must be a number"),
    ('{"name": "view", "arguments": {"path": "a", "start": true}}', "must be a number"),
    ('{"name": "edit", "arguments": {"path": "a", "old": "x"}}', "needs argument(s) new"),
    ('{"name": "submit", "arguments": {"force": 1}}', "has no argument(s) force"),
    ("[" * 100000, "nested deeper than 64 levels"),
    ('{"name": "create", "arguments": {"path": "a", "content": ' + "[" * 1500 + "]" * 1500
     + "}}", "nested deeper than 64 levels"),
    ('{"name": "bash", "arguments": "' + "[" * 1500 + "]" * 1500 + '"}',
     "the arguments of 'bash': JSON nested deeper than 64"),
])
def test_parse_invalid(action, fragment):
    with pytest.raises(T.ToolError, match=None) as err:
        T.parse_action(action)
    assert fragment in str(err.value)


def test_brackets_inside_strings_are_text_not_nesting():
    content = "[" * 3000 + "{" * 100
    call = T.parse_action(json.dumps({"name": "create",
                                      "arguments": {"path": "a.py", "content": content}}))
    assert call.arguments["content"] == content


def test_tool_call_round_trip():
    action = T.tool_call("edit", path="x.py", old="a", new="b")
    assert json.loads(action) == {"name": "edit", "arguments": {"path": "x.py", "old": "a",
                                                                 "new": "b"}}
    assert T.parse_action(action).arguments == {"path": "x.py", "old": "a", "new": "b"}


def test_truncate_exact():
    assert T.truncate("abc", 10) == "abc"
    out = T.truncate("0123456789" * 3, 9)  # keep 6 head + 3 tail of 30
    assert out == "012345\n[... 21 characters truncated ...]\n789"


def test_view_edit_create(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "m.py").write_text("a = 1\nb = 2\nc = 3\n")
    assert T.view(tmp_path, "pkg/m.py", 2, 3) == \
        "pkg/m.py (lines 2-3 of 3)\n   2  b = 2\n   3  c = 3"
    assert T.view(tmp_path, ".") == "pkg/\npkg/m.py"
    assert T.edit(tmp_path, "/workspace/pkg/m.py", "b = 2", "b = 20") == \
        "Edited /workspace/pkg/m.py: replaced 1 line(s) at line 2."
    assert (tmp_path / "pkg" / "m.py").read_text() == "a = 1\nb = 20\nc = 3\n"
    assert T.create(tmp_path, "new/x.txt", "hi\n") == "Created new/x.txt (1 lines)."
    assert (tmp_path / "new" / "x.txt").read_text() == "hi\n"
    with pytest.raises(T.ToolError, match="not found"):
        T.edit(tmp_path, "pkg/m.py", "zzz", "y")
    with pytest.raises(T.ToolError, match="past the end"):
        T.view(tmp_path, "pkg/m.py", 10, 12)


@pytest.mark.parametrize("rel, why", [
    ("../x", "outside /workspace"),
    ("/etc/passwd", "outside /workspace"),
    ("a/../../x", "outside /workspace"),
    ("link/passwd", "'link/passwd' goes through the symbolic link 'link'"),
    ("lnk", "'lnk' is a symbolic link"),
])
def test_paths_cannot_escape(tmp_path, rel, why):
    work = tmp_path / "w"
    work.mkdir()
    os.symlink("/etc", work / "link")
    os.symlink("/etc/passwd", work / "lnk")
    before = Path("/etc/passwd").read_text()
    for call in (lambda: T.view(work, rel), lambda: T.create(work, rel, "pwned"),
                 lambda: T.edit(work, rel, "root", "pwned")):
        with pytest.raises(T.ToolError) as err:
            call()
        assert why in str(err.value)
    assert Path("/etc/passwd").read_text() == before
    assert sorted(p.name for p in work.iterdir()) == ["link", "lnk"]


@pytest.mark.parametrize("rel, norm", [("a/./b/../c.py", "a/c.py"), ("/workspace", "."),
                                       ("/workspace/x/", "x"), (" x.py ", "x.py")])
def test_resolve_is_by_name(rel, norm):
    assert T.resolve(rel) == norm
