"""The studio's in-browser mode against the server: load time, characters per second, and the same greedy text.

    python benchmarks/browser_sampling.py [--models tang folk shakespeare] [--length 400] [--runs 3]

Starts `generate serve` with the models, opens the studio in headless
Chromium (Debian's `chromium` and `chromium-driver`), and for each model
writes `--length` greedy characters after a short prime in the
browser itself (onnxruntime-web on WebAssembly, one thread), then asks the
server for the same (`POST /v1/samples`, greedy; for music, without the
well-formedness automata and the key's pull, which the browser does not
run, and ending at the tune's end as the browser does). Reports the first run's
time (the graph and runtime loading), the median of the warm runs, the
server's median, and whether the texts are the same.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import time

PRIMES = {"tang": "春", "folk": "M:6/8 K:2|", "shakespeare": "T", "bach": "M:4/4 K:0|", "python": "d"}
BARE_MUSIC = {"syntax": False, "key_penalty": 0}  # the browser steps the bare model: no automata, no pull to the key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["tang", "folk", "shakespeare"])
    parser.add_argument("--length", type=int, default=400)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    import httpx
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    server = subprocess.Popen([sys.executable, "-m", "generate", "serve", *args.models, "--port", "0"], stderr=subprocess.PIPE,
                              text=True)
    address = re.search(r"at (http://\S+)", server.stderr.readline()).group(1)
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=shutil.which("chromedriver")))
    try:
        driver.get(address + "/")
        WebDriverWait(driver, 60).until(lambda d: len(Select(d.find_element(By.ID, "model")).options) == len(args.models))
        print("| model | characters | first run in the browser (loading included) | warm, median | chars/s in the browser | "
              "server, median | chars/s on the server | same text |")
        print("|---|---|---|---|---|---|---|---|")
        for model in args.models:
            Select(driver.find_element(By.ID, "model")).select_by_value(model)
            for field, value in (("prime", PRIMES[model]), ("temperature", "0"), ("length", str(args.length))):
                element = driver.find_element(By.ID, field)
                element.clear()
                element.send_keys(value)
            if not driver.find_element(By.ID, "in-browser").is_selected():
                driver.find_element(By.ID, "in-browser").click()
            times = []
            for _ in range(args.runs):
                started = time.perf_counter()
                driver.find_element(By.ID, "go").click()
                WebDriverWait(driver, 600, poll_frequency=0.01).until(
                    lambda d: d.find_element(By.ID, "status").text.startswith(("done", "error")))
                times.append(time.perf_counter() - started)
            written = driver.execute_script("return studio.browserText")
            served = []
            for _ in range(args.runs):
                started = time.perf_counter()
                body = {"model": model, "prime": PRIMES[model], "greedy": True, "length": args.length,
                        **(BARE_MUSIC if model in ("folk", "bach") else {})}
                text = httpx.post(address + "/v1/samples", json=body, timeout=600).json()["samples"][0]["text"]
                served.append(time.perf_counter() - started)
            warm, server_time = statistics.median(times[1:]), statistics.median(served)
            chars = len(written) - len(PRIMES[model])  # a tune may end before --length
            print(f"| {model} | {chars} | {times[0]:.2f} s | {warm:.2f} s | {chars / warm:,.0f} | {server_time:.3f} s | "
                  f"{chars / server_time:,.0f} | {'yes' if written == text else 'NO'} |", flush=True)
            print(json.dumps({"model": model, "browser_s": times, "server_s": served}), file=sys.stderr)
    finally:
        driver.quit()
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
