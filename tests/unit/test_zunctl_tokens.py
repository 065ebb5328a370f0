"""`zunctl token list`'s table: 80 columns whatever the names and projects, times as spans."""

from __future__ import annotations

from datetime import UTC, datetime

from zun_controller.cli.zunctl_tokens import table

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def test_the_table_fits_80_columns_cutting_projects_then_names() -> None:
    items = [
        {
            "name": "a" * 63,
            "role": "member",
            "projects": [f"project-{i}" for i in range(20)],
            "createdAt": "2026-11-01T12:00:00Z",
            "expiresAt": "2027-03-01T12:00:00Z",
            "lastUsedAt": "2026-12-01T11:57:00Z",
        },
        {"name": "root", "role": "admin", "projects": []},
        {"name": "ci", "role": "reader", "projects": ["demo"], "expiresAt": "2026-12-01T11:30:00Z"},
    ]
    lines = table(items, NOW)
    assert max(len(line) for line in lines) <= 80
    assert lines[0].split() == ["NAME", "ROLE", "PROJECTS", "EXPIRES", "LAST", "USED", "AGE"]
    assert lines[1].split()[1:] == ["member", "project…", "in", "90d", "3m", "ago", "30d"]
    assert lines[1].split()[0].endswith("…")
    assert lines[2].split() == ["root", "admin", "*", "never", "<none>", "<unknown>"]
    assert lines[3].split()[3] == "expired"


def test_a_short_table_is_not_padded_out() -> None:
    lines = table([{"name": "ci", "role": "reader", "projects": ["demo"]}], NOW)
    assert lines == [
        "NAME   ROLE     PROJECTS   EXPIRES   LAST USED   AGE",
        "ci     reader   demo       never     <none>      <unknown>",
    ]
