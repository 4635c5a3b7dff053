"""The integrity export another agency receives: signed with the office's key, checked with its public
key; a changed byte, another key or a missing signature is one clear refusal."""

from __future__ import annotations

from typer.testing import CliRunner

from engine.cli import app
from engine.declarations import CreditClass, Enterprise
from engine.office import Office


def office_with_a_dishonest_firm(tmp_path) -> str:
    db = str(tmp_path / "office.db")
    office = Office(db)
    office.register(
        [Enterprise(id="E1", credit_class=CreditClass.dishonest), Enterprise(id="E2"), Enterprise(id="E3")]
    )
    office.store.close()
    return db


def keys(tmp_path, name: str):
    runner = CliRunner()
    done = runner.invoke(app, ["audit", "keygen", str(tmp_path / name)])
    assert done.exit_code == 0, done.output
    return tmp_path / name, tmp_path / f"{name}.pub"


def test_a_signed_export_verifies_and_any_change_is_refused(tmp_path):
    db, runner = office_with_a_dishonest_firm(tmp_path), CliRunner()
    private, public = keys(tmp_path, "office.key")
    _, other_public = keys(tmp_path, "other.key")
    export = tmp_path / "list.csv"
    made = runner.invoke(
        app, ["integrity", "export", db, str(export), "--on", "2026-06-01", "--sign", str(private)]
    )
    assert made.exit_code == 0, made.output
    assert (tmp_path / "list.csv.sig").exists() and "E1,dishonest,customs,2026-06-01" in export.read_text()

    checked = runner.invoke(app, ["integrity", "verify-bundle", str(export), "--public-key", str(public)])
    assert checked.exit_code == 0 and "customs' export of 2026-06-01" in checked.output, checked.output

    other = runner.invoke(app, ["integrity", "verify-bundle", str(export), "--public-key", str(other_public)])
    assert other.exit_code == 2 and "not by the public key given" in other.output

    export.write_text(export.read_text().replace("E1,dishonest", "E2,dishonest"))
    altered = runner.invoke(app, ["integrity", "verify-bundle", str(export), "--public-key", str(public)])
    assert altered.exit_code == 2 and "altered after export" in altered.output
    assert "Traceback" not in altered.output

    signature = tmp_path / "list.csv.sig"
    signature.write_text(signature.read_text().replace("2026-06-01", "2026-06-02"))
    redated = runner.invoke(app, ["integrity", "verify-bundle", str(export), "--public-key", str(public)])
    assert redated.exit_code == 2 and "does not match its statement" in redated.output

    signature.unlink()
    missing = runner.invoke(app, ["integrity", "verify-bundle", str(export), "--public-key", str(public)])
    assert missing.exit_code == 2 and "cannot read the signature" in missing.output
