"""Checks several test files share."""

import pytest

from core.config import run_main


def one_line_error(main, argv: list[str], capsys: pytest.CaptureFixture) -> str:
    """Run `main` as `core.config.run` does; check exit status 2 and a one-line message."""
    with pytest.raises(SystemExit) as exit_info:
        run_main(lambda: main(argv))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err
