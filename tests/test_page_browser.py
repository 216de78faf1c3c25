"""The results page: Flask-test-client checks, and a real headless Chromium driven by selenium.

The browser test (marker ``browser``) needs Debian's ``chromium`` and ``chromium-driver``
(``scripts/install-browser.sh``) and ``pip install selenium``; without them it is skipped. It saves
screenshots under ``tests/artifacts/`` (not committed).
"""

from __future__ import annotations

import json
import shutil
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import create_app
from app.settings import Settings

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMEDRIVER = "/usr/bin/chromedriver"
SENTENCE = "The old man sold his boat ."


@pytest.fixture(scope="module")
def client(api_root: Path):  # noqa: ANN201
    return create_app(Settings(root=api_root)).test_client()


# ---------------------------------------------------------------------------- test client


def test_index_renders_claims_plots_and_form(client) -> None:  # noqa: ANN001
    resp = client.get("/")
    assert resp.status_code == 200
    assert resp.mimetype == "text/html"
    html = resp.get_data(as_text=True)
    assert 'id="claims-table"' in html
    assert ">C5<" in html and "Neurons move down" in html and "status-inconclusive" in html
    for verdict in ("INCONCLUSIVE", "NOT_APPLICABLE"):
        assert verdict in html
    assert "PASS" not in html and "FAIL" not in html
    assert html.count('class="badge-proxy"') == 6 and "a verdict here is not a finding about the paper" in html
    assert '<img src="/plots/layers-minilm.svg"' in html
    for kind in ("layers", "delta", "neurons", "selectivity"):
        assert f"/plots/{kind}-minilm.svg" in html
    assert "Probe accuracy per layer" in html  # a caption
    assert 'id="probe-form"' in html and 'for="sentence"' in html and 'id="probe-error"' in html
    assert "/static/app.js" in html and "/static/style.css" in html
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html  # nothing external
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]


def test_index_without_claims(api_root: Path, tmp_path: Path) -> None:
    shutil.copy(api_root / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / "results").mkdir()
    resp = create_app(Settings(root=tmp_path)).test_client().get("/")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert 'id="no-claims"' in html and "make repro" in html
    assert 'id="claims-table"' not in html


def test_plot_served_with_cache_control(client) -> None:  # noqa: ANN001
    resp = client.get("/plots/layers-minilm.svg")
    assert resp.status_code == 200
    assert resp.mimetype == "image/svg+xml"
    assert resp.cache_control.max_age is not None
    assert resp.get_data().lstrip().startswith(b"<?xml")
    png = client.get("/plots/layers-minilm.png")
    assert png.status_code == 200 and png.mimetype == "image/png"


@pytest.mark.parametrize("path", ["/plots/../params.yaml", "/plots/..%2Fparams.yaml", "/plots/x.txt",
                                  "/plots/missing.svg", "/plots/layer_accuracy.csv", "/plots/.svg.txt"])
def test_plot_rejects(client, path: str) -> None:  # noqa: ANN001
    assert client.get(path).status_code == 404


def test_static_assets(client) -> None:  # noqa: ANN001
    js = client.get("/static/app.js")
    assert js.status_code == 200 and "javascript" in js.mimetype
    css = client.get("/static/style.css")
    assert css.status_code == 200 and css.mimetype == "text/css"


def test_page_not_in_openapi(client) -> None:  # noqa: ANN001
    paths = client.get("/openapi.json").get_json()["paths"]
    assert "/" not in paths and not any(p.startswith("/plots") for p in paths)


# ---------------------------------------------------------------------------- real browser


@pytest.fixture(scope="module")
def live_server(api_root: Path) -> Iterator[str]:
    """The app on a free loopback port, in a background thread."""
    from werkzeug.serving import make_server

    # a small word limit, so the error case is a quick server-side 422 (problem+json)
    app = create_app(Settings(root=api_root, max_words=12))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="page-test-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():  # noqa: ANN201
    chromium = next((p for p in CHROMIUM if Path(p).is_file()), None)
    if chromium is None or not Path(CHROMEDRIVER).is_file():
        pytest.skip("chromium and chromedriver are not installed: run scripts/install-browser.sh")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed: pip install selenium")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1366,900", "--disable-extensions", "--no-first-run", "--lang=en-US"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console errors, CSP violations
    # An explicit driver path: selenium-manager never runs (nothing is downloaded).
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _full_screenshot(driver, path: Path) -> None:  # noqa: ANN001
    """The whole page (beyond the viewport) as PNG."""
    import base64

    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    path.write_bytes(base64.b64decode(shot["data"]))


@pytest.mark.browser
@pytest.mark.slow
def test_page_in_headless_chromium(browser, live_server: str) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    ARTIFACTS.mkdir(exist_ok=True)
    # what the page should show (this also loads the model once, so the browser's wait is short)
    req = urllib.request.Request(live_server + "/v1/probe", method="POST", headers={"Content-Type": "application/json"},
                                 data=json.dumps({"sentence": SENTENCE, "model": "minilm", "task": "pos-wsj"}).encode())
    with urllib.request.urlopen(req, timeout=120) as resp:
        want = json.load(resp)

    d = browser
    d.get(live_server + "/")
    assert d.title == "LingShift results"
    rows = d.find_elements(By.CSS_SELECTOR, "#claims-table tbody tr")
    assert len(rows) == 5
    assert "C5" in rows[4].text and "INCONCLUSIVE" in rows[4].text
    badges = d.find_elements(By.CSS_SELECTOR, "#claims-table .badge-proxy")
    assert len(badges) == 5 and all(b.is_displayed() and b.text.upper() == "PROXY" for b in badges)
    imgs = d.find_elements(By.CSS_SELECTOR, "#plots img")
    assert imgs and all(i.get_attribute("src").startswith(live_server + "/plots/") for i in imgs)

    wait = WebDriverWait(d, 60)
    wait.until(ec.element_to_be_clickable((By.ID, "probe-submit")))  # /v1/models has filled the selects
    assert [o.text for o in Select(d.find_element(By.ID, "model")).options] == ["minilm"]
    Select(d.find_element(By.ID, "task")).select_by_value("pos-wsj")

    # an error first: an empty sentence
    d.find_element(By.ID, "probe-submit").click()
    err = d.find_element(By.ID, "probe-error")
    wait.until(lambda _: err.is_displayed())
    assert "sentence" in err.text.lower()
    d.execute_script("document.getElementById('probe').scrollIntoView()")
    d.save_screenshot(str(ARTIFACTS / "page-error-empty.png"))

    # the probe
    box = d.find_element(By.ID, "sentence")
    box.send_keys(SENTENCE)
    d.find_element(By.ID, "probe-submit").click()
    n_layers = len(want["layers"])
    wait.until(lambda _: len(d.find_elements(By.CSS_SELECTOR, "#probe-result tbody tr")) == n_layers)
    assert not err.is_displayed()
    table = d.find_element(By.ID, "probe-result")
    heads = [th.text for th in table.find_elements(By.CSS_SELECTOR, "thead th.word")]
    assert heads == want["words"] == ["The", "old", "man", "sold", "his", "boat", "."]
    variants = [v["variant"] for v in want["variants"]]
    assert variants[0] == "base" and len(variants) == 3
    # each row: a layer header, then per word the tag of every variant side by side
    first = table.find_elements(By.CSS_SELECTOR, "tbody tr")[0]
    cells = first.find_elements(By.CSS_SELECTOR, "td")
    assert len(cells) == len(heads) * len(variants)
    base0 = [t["tag"] for t in want["variants"][0]["layers"][0]["tags"]]
    assert [c.text for c in cells[::len(variants)]] == base0
    # the fixture's variants share base's weights: no tag differs
    assert table.find_elements(By.CSS_SELECTOR, "td.changed") == []
    d.execute_script("document.getElementById('probe').scrollIntoView()")
    _full_screenshot(d, ARTIFACTS / "page.png")

    # a fine-tuned tag that differs from base's is highlighted (the page's own renderer, a crafted answer)
    crafted = {k: want[k] for k in ("model", "task", "words", "layers", "elapsed_ms")}
    crafted["variants"] = [dict(v, neurons=[]) for v in want["variants"]]
    sentiment = crafted["variants"][1]
    layer = dict(sentiment["layers"][3], tags=[dict(t) for t in sentiment["layers"][3]["tags"]])
    layer["tags"][2]["tag"] = "ZZZ"
    sentiment["layers"] = sentiment["layers"][:3] + [layer] + sentiment["layers"][4:]
    d.execute_script("window.LingShift.render(arguments[0])", crafted)
    changed = d.find_elements(By.CSS_SELECTOR, "#probe-result td.changed")
    assert len(changed) == 1 and changed[0].text.startswith("ZZZ")
    d.find_element(By.ID, "probe-result").screenshot(str(ARTIFACTS / "page-changed.png"))

    # a server error (problem+json): its detail is shown
    box.clear()
    box.send_keys("one two three four five six seven eight nine ten eleven twelve thirteen")
    d.find_element(By.ID, "probe-submit").click()
    wait.until(lambda _: err.is_displayed())
    assert err.text == "13 words; at most 12 per request"
    assert not d.find_element(By.ID, "probe-output").is_displayed()  # no stale result next to the error
    d.execute_script("document.getElementById('probe').scrollIntoView()")
    d.save_screenshot(str(ARTIFACTS / "page-error.png"))

    logs = [e for e in d.get_log("browser") if e.get("level") == "SEVERE" and "/v1/probe" not in e["message"]]
    assert logs == []  # no script error, no CSP violation, no missing asset
