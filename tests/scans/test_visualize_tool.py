"""tools/visualize_scans.py writes one PNG per scan (skipped without matplotlib)."""
import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

TOOL = Path(__file__).resolve().parents[2] / "tools" / "visualize_scans.py"


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("visualize_scans", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _is_png(path):
    return path.stat().st_size > 1000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_one_scan(tool, tmp_path):
    out = tmp_path / "w.png"
    written = tool.main(["--scan", "window", "--scan-kwargs", "size=3", "variants=('normal','reversed')",
                         "-H", "7", "-W", "10", "--dpi", "40", "--out", str(out)])
    assert written == [out] and _is_png(out)


def test_all_scans(tool, tmp_path, monkeypatch):
    # Drawing every scan costs seconds of matplotlib; check the jobs and draw one for real (test_one_scan).
    drawn = []
    monkeypatch.setattr(tool, "draw", lambda scan, H, W, out, **kw: drawn.append((scan.name, H, W)) or out)
    written = tool.main(["--scan", "all", "-H", "5", "-W", "6", "--out", str(tmp_path / "s.png")])
    from vssm.scans import list_scans

    assert [p.name for p in written] == [f"s_{n}.png" for n in list_scans()]
    assert [d[0] for d in drawn] == ["cross+hilbert" if n == "combine" else n for n in list_scans()]
    assert {d[1:] for d in drawn} == {(5, 6)}


def test_labels(tool):
    from vssm.scans import get_scan

    assert tool.path_labels(get_scan("cross"))[1] == "column-major"
    assert tool.path_labels(get_scan("localmamba", directions=["h", "w7_flip"])) == ["h", "w7_flip"]
    assert tool.path_labels(get_scan("cross+raster"))[-1] == "raster: path 0"


def test_bad_input_exits_with_message(tool, tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        tool.main(["--scan", "hilbrt", "--out", str(tmp_path / "x.png")])
    assert err.value.code == 2 and "did you mean 'hilbert'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.main(["--scan", "raster", "-H", "0", "--out", str(tmp_path / "x.png")])
    assert "H must be a positive integer" in capsys.readouterr().err
