"""A command that needs Spark, run before the jars are provisioned, says how to provision them."""

from __future__ import annotations

from typer.testing import CliRunner

from recsys_cli.main import app


def test_evaluate_without_provisioned_jars_says_how_to_provision_them(tmp_path, monkeypatch):
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("user_id,item_id\n" + "".join(f"u{u},i{i}\n" for u in range(4) for i in range(4)))
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RECSYS_TOOLS_DIR", str(tmp_path / "tools"))
    result = CliRunner().invoke(app, ["evaluate", "--interactions", str(ratings)])
    assert result.exit_code == 1, result.output
    assert "`recsys stack provision` (or `make provision`)" in result.output
    assert "make install" not in result.output
