"""Privacy zones keep home out of shared exports; --drop-positions drops every position."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from runlog.cli import EXIT_OK, EXIT_USAGE, cli
from runlog.errors import InputError
from runlog.metrics import haversine_m
from runlog.privacy import inside_zones, parse_zone

LANDAL_FIT = (Path(__file__).resolve().parents[1] / "data" / "sample" / "fit"
              / "geo-activity-playground-Laufen_Landal_Park.fit")


def test_parse_zone() -> None:
    assert parse_zone("52.5, 13.4, 500") == {"lat_deg": 52.5, "lon_deg": 13.4,
                                              "radius_m": 500.0}
    for bad in ("52.5,13.4", "a,b,c", "95,0,10", "0,0,-1"):
        with pytest.raises(InputError):
            parse_zone(bad)


def test_inside_zones_at_the_radius() -> None:
    zone = {"lat_deg": 0.0, "lon_deg": 0.0, "radius_m": 1000.0}
    metres_per_deg = haversine_m(0.0, 0.0, 1.0, 0.0)
    lat = np.array([999 / metres_per_deg, 1001 / metres_per_deg, np.nan])
    assert inside_zones(lat, np.zeros(3), [zone]).tolist() == [True, False, False]


def test_export_leaves_out_positions_in_zones(tmp_path: Path) -> None:
    runner = CliRunner()
    store = ["--store", str(tmp_path / "s")]
    assert runner.invoke(cli, [*store, "import", "-q", str(LANDAL_FIT)]).exit_code == EXIT_OK

    def samples_csv(*extra: str) -> pd.DataFrame:
        out = runner.invoke(cli, [*store, "export", "--what", "samples", "--run", "last",
                                  *extra])
        assert out.exit_code == EXIT_OK, out.output
        return pd.read_csv(io.StringIO(out.output))

    everything = samples_csv()
    fixes = everything.dropna(subset=["lat_deg"])
    home = fixes.iloc[0]  # the start of the run stands for "home"
    zone = f"{home.lat_deg},{home.lon_deg},300"
    assert runner.invoke(cli, [*store, "profile", "--privacy-zone", zone]).exit_code == 0
    private = samples_csv()
    assert len(private) == len(everything)  # times, HR, cadence all still there
    dist = haversine_m(fixes["lat_deg"], fixes["lon_deg"], home.lat_deg, home.lon_deg)
    near, far = fixes.index[dist <= 299], fixes.index[dist >= 301]
    assert len(near) and len(far)
    assert private.loc[near, ["lat_deg", "lon_deg"]].isna().all().all()
    assert private.loc[far, "lat_deg"].notna().all()
    assert private["hr_bpm"].equals(everything["hr_bpm"])
    assert samples_csv("--drop-positions")[["lat_deg", "lon_deg"]].isna().all().all()
    cleared = runner.invoke(cli, [*store, "profile", "--clear-privacy-zones", "--format",
                                  "json"])
    assert '"privacy_zones": []' in cleared.output
    assert samples_csv()["lat_deg"].notna().sum() == len(fixes)
    bad = runner.invoke(cli, [*store, "profile", "--privacy-zone", "nowhere"])
    assert bad.exit_code == EXIT_USAGE
