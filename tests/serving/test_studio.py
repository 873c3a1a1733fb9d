"""The studio in a real browser (Debian's chromium, headless, driven by Selenium): a poem streams in, the
reproduce command gives the same bytes, co-writing takes, undoes, redoes and saves by its keys, a folk tune
is drawn and plays, and the page fits a phone."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from generate.cli import cli

from .test_server import start_server

webdriver = pytest.importorskip("selenium.webdriver")
if not (shutil.which("chromium") and shutil.which("chromedriver")):
    pytest.skip("the studio's browser tests need Debian's chromium and chromium-driver", allow_module_level=True)

from selenium.webdriver.common.by import By  # noqa: E402 - only once the browser is known to be there
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

SCREENSHOTS = Path(os.environ.get("GENERATE_SCREENSHOTS", "")) if os.environ.get("GENERATE_SCREENSHOTS") else None


# Each visible element's own text against the first opaque background behind it; the failures, if any.
CONTRAST = """
const luminance = (c) => { const [r, g, b] = c.match(/[\\d.]+/g).slice(0, 3).map(Number).map((v) => {
  v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; }); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
const opaque = (c) => { const parts = c.match(/[\\d.]+/g); return parts && (parts.length < 4 || Number(parts[3]) > 0.5); };
const failures = [];
for (const el of document.querySelectorAll('body *')) {
  const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
  if (!own || !el.offsetParent && el.tagName !== 'BODY') continue;
  let ground = el, background = 'rgb(255, 255, 255)';
  while (ground) { const b = getComputedStyle(ground).backgroundColor; if (opaque(b)) { background = b; break; } ground = ground.parentElement; }
  const [a, b] = [luminance(getComputedStyle(el).color), luminance(background)];
  const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  if (ratio < 4.5) failures.push(`${el.tagName}#${el.id} ${ratio.toFixed(2)}`);
}
return failures;
"""


NARROW_CONTROLS = """
return [...document.querySelectorAll('input, button, select, textarea, summary')]
  .filter((el) => el.offsetParent !== null)
  .map((el) => [el.id || el.textContent.trim(), el.getBoundingClientRect()])
  .filter(([, box]) => box.width < 16 || box.height < 16).map(([name, box]) => `${name} ${box.width}x${box.height}`);
"""


@pytest.fixture(scope="module")
def address():
    child, url = start_server("tang", "folk", "tang-int8")
    yield url
    child.terminate()
    child.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000",
                 "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=shutil.which("chromedriver")))
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


def until(driver, condition, seconds: float = 30):
    return WebDriverWait(driver, seconds, poll_frequency=0.05).until(lambda d: condition(d))


def open_studio(browser, address: str, model: str) -> None:
    browser.set_window_size(1280, 1000)
    browser.get(address + "/")
    until(browser, lambda d: len(Select(d.find_element(By.ID, "model")).options) == 3)
    Select(browser.find_element(By.ID, "model")).select_by_value(model)


def screenshot(browser, name: str, tmp_path: Path) -> Path:
    folder = SCREENSHOTS or tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    browser.save_screenshot(str(path))
    return path


def test_a_poem_streams_in_and_its_command_gives_the_same_bytes(browser, address, tmp_path):
    open_studio(browser, address, "tang")
    style = browser.find_element(By.ID, "label")  # tang is labelled by rhyme: its groups are the styles
    assert style.is_displayed() and "陽" in [o.get_attribute("value") for o in Select(style).options]
    browser.find_element(By.ID, "form").send_keys("5x4")
    browser.find_element(By.ID, "seed").send_keys("3")
    browser.execute_script("""window.seen = []; new MutationObserver(() => seen.push(
        document.getElementById('output').textContent)).observe(document.getElementById('output'),
        {childList: true, characterData: true, subtree: true});""")
    browser.find_element(By.ID, "go").click()
    until(browser, lambda d: d.find_element(By.ID, "status").text == "done")
    poem = browser.find_element(By.ID, "output").get_attribute("textContent")
    lines = [line for line in poem.split("\n") if line]
    assert len(lines) == 4 and all(len(line) == 6 for line in lines), poem  # five characters and a mark
    seen = [s for s in browser.execute_script("return window.seen") if s]
    # A poem arrives once its lines are checked against the corpus's (tang carries them): whole, and as written.
    assert seen and all(poem.startswith(s) for s in seen)
    command = browser.find_element(By.CSS_SELECTOR, "#history li code").text
    assert command == "generate sample tang --seed 3 --form 5x4"
    asked = browser.find_element(By.CSS_SELECTOR, "#history li div").text
    assert asked == "tang: seed 3, form 5x4"  # what was asked: no length the form worked out
    browser.find_element(By.CSS_SELECTOR, "#history li button").click()
    until(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#history li button").text in ("Copied", "Selected: press Ctrl+C"))
    again = CliRunner().invoke(cli, shlex.split(command)[1:])
    assert again.exit_code == 0 and again.stdout.rstrip("\n") == poem.rstrip("\n")
    screenshot(browser, "studio-desktop", tmp_path)
    assert browser.execute_script(CONTRAST) == []  # every visible text against its background: WCAG AA
    assert browser.execute_script(NARROW_CONTROLS) == []
    browser.set_window_size(375, 800)
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 375  # nothing wider than a phone
    browser.get(browser.current_url)  # a phone opens the page: the prime and Generate come first, settings folded
    until(browser, lambda d: len(Select(d.find_element(By.ID, "model")).options) == 3)
    assert browser.execute_script("return document.getElementById('settings').open") is False
    go, prime = browser.find_element(By.ID, "go"), browser.find_element(By.ID, "prime")
    assert go.is_displayed() and go.location["y"] < 400 and prime.location["y"] < go.location["y"]
    browser.find_element(By.CSS_SELECTOR, "#settings summary").click()
    box = browser.find_element(By.ID, "in-browser").size
    assert box["width"] >= 20 and box["height"] >= 20  # a checkbox a finger can hit
    assert browser.execute_script(NARROW_CONTROLS) == []
    screenshot(browser, "studio-phone", tmp_path)


@pytest.mark.parametrize("model", ["tang", "tang-int8"])  # int8: onnxruntime-web runs the quantized graph as well
def test_the_model_runs_in_the_browser_itself_and_writes_the_server_s_greedy_text(browser, address, model):
    import httpx

    open_studio(browser, address, model)
    browser.find_element(By.ID, "prime").send_keys("春")
    browser.find_element(By.ID, "temperature").send_keys("0")
    browser.find_element(By.ID, "length").send_keys("60")
    browser.find_element(By.ID, "in-browser").click()

    def samples_answered():
        metrics = httpx.get(address + "/metrics", timeout=30).text
        return sum(int(line.rsplit(" ", 1)[1]) for line in metrics.splitlines() if line.startswith('generate_requests_total{route="samples"'))

    before = samples_answered()
    browser.find_element(By.ID, "go").click()
    until(browser, lambda d: d.find_element(By.ID, "status").text.startswith(("done", "error")), 120)
    assert browser.find_element(By.ID, "status").text == "done in this browser"
    assert samples_answered() == before  # no sample was asked of the server: the browser wrote it
    written = browser.execute_script("return studio.browserText")
    # tang draws each text's rhyme group unless told; the browser cannot draw as the server does, so it writes
    # with none, and says so in its command.
    server = httpx.post(address + "/v1/samples", json={"model": model, "prime": "春", "greedy": True, "length": 60,
                                                       "label": "none"}, timeout=60).json()["samples"][0]["text"]
    assert written == server and len(written) == 61
    command = browser.find_element(By.CSS_SELECTOR, "#history li code").text
    assert command == f"generate sample {model} --prime '春' --length 60 --label none --greedy"
    again = CliRunner().invoke(cli, shlex.split(command)[1:])
    assert again.exit_code == 0 and again.stdout.rstrip("\n") == written.rstrip("\n")


def test_stop_ends_a_long_text_midway(browser, address):
    open_studio(browser, address, "tang")
    browser.find_element(By.ID, "length").send_keys("9000")
    browser.find_element(By.ID, "go").click()
    until(browser, lambda d: len(d.find_element(By.ID, "output").get_attribute("textContent")) > 20)
    browser.find_element(By.ID, "stop").click()
    until(browser, lambda d: d.find_element(By.ID, "status").text == "stopped")
    written = len(browser.find_element(By.ID, "output").get_attribute("textContent"))
    time.sleep(0.3)
    assert len(browser.find_element(By.ID, "output").get_attribute("textContent")) == written < 9000
    assert browser.find_element(By.ID, "go").is_enabled()


def test_co_writing_by_its_keys_takes_undoes_redoes_and_saves(browser, address, tmp_path):
    open_studio(browser, address, "tang")
    browser.find_element(By.ID, "tab-together").click()
    browser.find_element(By.ID, "together-seed").send_keys("5")
    browser.find_element(By.ID, "start").click()
    until(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#candidates button")) == 4)
    first = browser.execute_script("return studio.state.candidates[0]")
    assert not browser.find_element(By.CSS_SELECTOR, "#candidates button").text.startswith("1.")  # the list numbers it
    body = browser.find_element(By.TAG_NAME, "body")
    body.click()
    body.send_keys("N")  # more candidates, as n/N do in the terminal
    until(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#candidates button")) == 5)
    warmth = browser.execute_script("return studio.state.temperature")
    body.send_keys("T")
    until(browser, lambda d: d.execute_script("return studio.state.temperature") > warmth)
    assert float(browser.find_element(By.ID, "together-temperature").get_attribute("value")) > warmth
    count = browser.find_element(By.ID, "together-count")
    # Typed over, as a person does: clear() would send the emptied field's change first, and the state that
    # answered it could land before the "4" and make it "14".
    count.send_keys(Keys.CONTROL, "a")
    count.send_keys("4", Keys.TAB)  # the control does what the key does
    until(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#candidates button")) == 4)
    count.clear()  # an emptied field sends nothing and shows the session's count again
    assert count.get_attribute("value") == "4"
    warmth = browser.execute_script("return studio.state.temperature")
    body.click()
    body.send_keys("t")  # answered after anything the emptied field might have sent
    until(browser, lambda d: d.execute_script("return studio.state.temperature") < warmth)
    assert browser.execute_script("return studio.state.count") == 4
    first = browser.execute_script("return studio.state.candidates[0]")
    body.send_keys("1")
    until(browser, lambda d: d.execute_script("return studio.state.text") == first)
    body.send_keys("u")
    until(browser, lambda d: d.execute_script("return studio.state.text") == "")
    body.send_keys(Keys.CONTROL, "r")
    until(browser, lambda d: d.execute_script("return studio.state.text") == first)
    browser.find_elements(By.CSS_SELECTOR, "#candidates button")[1].click()  # and with the mouse
    until(browser, lambda d: len(d.execute_script("return studio.state.text")) > len(first))
    text = browser.execute_script("return studio.state.text")
    body.send_keys("s")
    until(browser, lambda d: d.execute_script("return studio.saved") is not None)
    sidecar = tmp_path / "session.txt.json"
    sidecar.write_text(json.dumps(browser.execute_script("return studio.saved")), encoding="utf-8")
    replayed = CliRunner().invoke(cli, ["write", "--replay", str(sidecar)])
    assert replayed.exit_code == 0 and replayed.stdout.rstrip("\n") == text.rstrip("\n")
    screenshot(browser, "studio-together", tmp_path)


def test_the_page_works_from_the_keyboard_alone(browser, address):
    open_studio(browser, address, "tang")

    def tab_to(element_id: str) -> None:
        for _ in range(40):
            if browser.execute_script("return document.activeElement.id") == element_id:
                return
            browser.switch_to.active_element.send_keys(Keys.TAB)
        raise AssertionError(f"Tab never reached #{element_id}")

    tab_to("tab-together")
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    tab_to("start")
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    until(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#candidates button")) == 4)
    first = browser.execute_script("return studio.state.candidates[0]")
    browser.switch_to.active_element.send_keys("1")
    until(browser, lambda d: d.execute_script("return studio.state.text") == first)


def test_the_page_says_what_a_model_writes_and_shows_only_its_inputs(browser, address):
    import httpx

    models = {m["name"]: m for m in httpx.get(address + "/v1/models", timeout=30).json()["models"]}
    assert models["tang"]["chinese_verse"] and not models["folk"]["chinese_verse"]
    assert models["tang"]["label_drawn"] and not models["folk"]["label_drawn"]  # tang draws a rhyme group unless told
    assert "regulated Tang poems" in models["tang"]["writes"] and "Folk melodies" in models["folk"]["writes"]
    assert "6/8" in models["folk"]["meters"] and "1/4" not in models["folk"]["meters"]  # 2 tunes: not a meter to offer
    open_studio(browser, address, "folk")
    assert browser.find_element(By.ID, "card").text.startswith("Folk melodies")
    assert not browser.find_element(By.ID, "form").is_displayed()  # no Form or Acrostic for a tune
    offered = [o.get_attribute("value") for o in Select(browser.find_element(By.ID, "meter")).options]
    assert offered == ["", *models["folk"]["meters"]]
    open_studio(browser, address, "tang")
    assert browser.find_element(By.ID, "form").is_displayed()


def test_an_error_reads_as_one_and_the_next_message_replaces_it(browser, address):
    open_studio(browser, address, "tang")
    browser.find_element(By.ID, "form").send_keys("6x4")  # a form the model can write, but not regulated: fine
    browser.find_element(By.ID, "acrostic").send_keys("春夏")  # two heads for four lines: refused
    browser.find_element(By.ID, "go").click()
    status = browser.find_element(By.ID, "status")
    until(browser, lambda d: d.find_element(By.ID, "status").text.startswith(("done", "error")))
    assert status.text.startswith("error: acrostic") and "error" in status.get_attribute("class")
    browser.find_element(By.ID, "acrostic").clear()
    browser.find_element(By.ID, "form").clear()
    browser.find_element(By.ID, "go").click()
    until(browser, lambda d: d.find_element(By.ID, "status").text == "done")
    assert "error" not in (status.get_attribute("class") or "")


def test_a_folk_tune_is_drawn_and_plays(browser, address, tmp_path):
    open_studio(browser, address, "folk")
    browser.find_element(By.ID, "seed").send_keys("7")
    Select(browser.find_element(By.ID, "label")).select_by_value("jig")  # folk has rhythm labels: a jig, in 6/8
    Select(browser.find_element(By.ID, "meter")).select_by_value("6/8")
    browser.find_element(By.ID, "go").click()
    until(browser, lambda d: d.find_element(By.ID, "status").text == "done")
    record = browser.execute_script("return studio.history[studio.history.length - 1]")
    assert record["label"] == "jig" and record["prime"] == "M:6/8 " and record["text"].startswith("M:6/8 K:")
    assert "--prime 'M:6/8 '" in record["command"] and "--label jig" in record["command"]
    until(browser, lambda d: d.find_element(By.ID, "music").is_displayed())
    inked = browser.execute_script("""const c = document.getElementById('roll');
        const pixels = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let inked = 0; for (let i = 0; i < pixels.length; i += 4) if (pixels[i] < 200) inked++; return inked;""")
    assert inked > 200  # notes drawn on the piano roll
    if shutil.which("lilypond"):  # and the engraved score beside it, where the server can engrave one
        until(browser, lambda d: d.execute_script("const s = document.getElementById('score'); "
                                                  "return !s.hidden && s.complete && s.naturalWidth > 0"), 60)
    browser.find_element(By.ID, "play").click()
    until(browser, lambda d: d.execute_script("return studio.playing && studio.audio.state === 'running'"), 10)
    started = browser.execute_script("return studio.audio.currentTime")
    time.sleep(0.3)
    assert browser.execute_script("return studio.audio.currentTime") > started  # the audio clock runs: it plays
    browser.find_element(By.ID, "halt").click()
    assert browser.execute_script("return studio.playing") is False
    midi = browser.execute_script("""return fetch(document.querySelector('#history a').href.replace(/\\.mid$/, '.mid'))
        .then(r => r.arrayBuffer()).then(b => Array.from(new Uint8Array(b).slice(0, 4)))""")
    assert bytes(midi) == b"MThd"
    screenshot(browser, "studio-music", tmp_path)
