"""Alert records in the artifact store: listed while open, gone from the open list once acknowledged."""
from __future__ import annotations

from pathlib import Path

import pytest

from monitoring.alerts import AlertStore
from monitoring.summary import AlertRecord


def _alert(alert_id: str, severity: str = "warning") -> AlertRecord:
    return AlertRecord(id=alert_id, run_id="r1", created="2026-01-01T00:00:00+00:00", status="open",
                       rule="input_drift", kind="drift", severity=severity, metric="input_drift_share", arm="control",
                       model="m", window="reference [0] -> current [1]", value=0.8, threshold=0.5, message="m",
                       report="r1/evidently_control.html", summary="r1/summary.json")


def test_written_alerts_are_listed_as_open(tmp_path: Path) -> None:
    store = AlertStore(str(tmp_path))
    store.write([_alert("a"), _alert("b", "critical")])
    assert {a.id for a in store.open_alerts()} == {"a", "b"}
    assert (tmp_path / "alerts" / "a.json").is_file()


def test_an_acknowledged_alert_is_no_longer_open(tmp_path: Path) -> None:
    store = AlertStore(str(tmp_path))
    store.write([_alert("a"), _alert("b")])
    store.acknowledge("a")
    assert [a.id for a in store.open_alerts()] == ["b"]
    assert {a.id: a.status for a in store.all()} == {"a": "acknowledged", "b": "open"}


def test_acknowledging_an_unknown_alert_names_it(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="no alert 'zzz'"):
        AlertStore(str(tmp_path)).acknowledge("zzz")
