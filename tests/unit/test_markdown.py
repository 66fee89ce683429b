"""The one Markdown table renderer behind the CLI's and the Dagster UI's tables."""

from recsys_core.markdown import markdown_table


def test_table_has_a_header_a_separator_and_one_line_per_row():
    assert markdown_table(["day", "events"], [("2026-11-01", 3), ["2026-11-02", 0]]) == (
        "| day | events |\n|---|---|\n| 2026-11-01 | 3 |\n| 2026-11-02 | 0 |"
    )


def test_a_pipe_inside_a_cell_is_escaped():
    assert markdown_table(["reason"], [["type: 'a|b' is unknown"]]).splitlines()[-1] == "| type: 'a\\|b' is unknown |"
