"""The CLI imports only the module of the command a run names, and still knows every command."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from cli import COMMAND_MODULES, build_parser, main, named_command


def command_choices(parser: argparse.ArgumentParser) -> set[str]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert len(actions) == 1
    return set(actions[0].choices)


def test_the_full_parser_has_exactly_the_commands_of_the_table() -> None:
    assert command_choices(build_parser()) == set(COMMAND_MODULES)


@pytest.mark.parametrize("command", sorted(COMMAND_MODULES))
def test_a_named_command_gets_a_parser_that_knows_it(command: str) -> None:
    assert command in command_choices(build_parser(command))


@pytest.mark.parametrize(("argv", "expected"), [
    (["copy", "a", "b"], "copy"), (["-v", "-v", "sync", "x.json"], "sync"), (["--version"], None), ([], None),
])
def test_the_command_is_the_first_word_that_is_not_an_option(argv: list[str], expected: str | None) -> None:
    assert named_command(argv) == expected


def test_an_unknown_command_is_refused_with_the_list_of_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["nosuch"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'nosuch'" in err and "'copy'" in err and "'sync'" in err


def loaded_modules_after_help(command: str) -> set[str]:
    script = (f"import sys\nfrom cli import main\ntry:\n    main([{command!r}, '--help'])\n"
              "except SystemExit:\n    pass\n"
              "sys.stderr.write(' '.join(m for m in sys.modules if m.startswith(('ferry', 'cli'))))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    return set(done.stderr.split())


def test_copy_does_not_load_the_sync_code_and_sync_does() -> None:
    copy_modules = loaded_modules_after_help("copy")
    assert "cli.copy_command" in copy_modules
    assert not {m for m in copy_modules if m.startswith("ferry.sync")}
    assert "cli.sync_command" not in copy_modules
    assert "ferry.sync.definition" in loaded_modules_after_help("sync")
