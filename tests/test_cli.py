"""The command line: clear errors for bad input, before any long work starts."""
import pytest

from circa.cli import main


@pytest.mark.parametrize("argv, message", [
    (["demo", "--k", "12"], "FFT size k must be a power of 2 from 2 to 64, not 12"),
    (["demo", "--lanes", "0"], "lanes must be an integer from 1 to 64, not 0"),
    (["bench", "--k", "3"], "FFT size k must be a power of 2 from 2 to 64, not 3"),
])
def test_bad_parameters_exit_2_with_message(argv, message, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err.replace("\n", " ")
    assert captured.out == ""


def test_unknown_command_is_rejected(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
