"""A month refreshed from URLs: a real static file server on 127.0.0.1, as INSEE's would be."""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sirene_builder import etab_row, new_siren, ul_row, write_stock

from observatoire import refresh


@pytest.fixture
def server(tmp_path: Path):
    root = tmp_path / "www"
    root.mkdir()
    seen: list[tuple[str, int]] = []

    class Handler(SimpleHTTPRequestHandler):
        def log_request(self, code="-", size="-"):  # noqa: ANN001 - http.server signature
            seen.append((self.path, int(code)))

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}", root, seen
    httpd.shutdown()
    httpd.server_close()


def test_refresh_downloads_then_reuses_unchanged_files(server, settings, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    base, root, seen = server
    siren = new_siren()
    write_stock(root / "2026-11", [ul_row(siren)], [etab_row(siren)], zipped=True)
    s = settings.with_(
        sirene_etablissements=f"{base}/{{mois}}/StockEtablissement_utf8.zip",
        sirene_unites_legales=f"{base}/{{mois}}/StockUniteLegale_utf8.zip",
    )
    first = refresh.refresh(s, "2026-11", run_id="url1")
    assert first.ingested["etablissements"].rows == 1
    downloaded = Path(s.download_dir) / "2026-11" / "StockEtablissement_utf8.zip"
    assert (
        downloaded.read_bytes() == (root / "2026-11" / "StockEtablissement_utf8.zip").read_bytes()
    )
    assert sorted(code for _, code in seen) == [200, 200]
    seen.clear()
    second = refresh.refresh(s, "2026-11", run_id="url2")
    assert second.ingested["etablissements"].rows == 1
    # unchanged on the server: conditional requests answered 304, nothing downloaded again
    assert sorted(code for _, code in seen) == [304, 304]
