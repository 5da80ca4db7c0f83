#!/usr/bin/env python3
"""Every QR code the dashboard draws, decoded by an independent reader.

Loads the served dashboard in headless Chromium, draws each payload with the page's own
encoder (window.TollgateQR.draw) on a canvas, as the deposit panel does, takes the canvas as
a PNG and decodes it with zbarimg (Debian's zbar-tools). Each must decode to exactly the bytes
drawn. Payloads come from a JSON file: [{"text": ..., "canvas": pixels}, ...]. Run by the
Swift test QRCodeTests against a `tollgate serve` it started:

  qr_test.py --base http://127.0.0.1:PORT --payloads FILE --out DIR
"""
import argparse
import base64
import json
import os
import subprocess
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

DRAW = """
const [text, pixels] = arguments;
const canvas = document.createElement("canvas");
canvas.width = pixels; canvas.height = pixels;
window.TollgateQR.draw(canvas, text);
const version = window.TollgateQR.encode(text).version;
return [canvas.toDataURL("image/png"), version];
"""


def decode(path):
    """The bytes zbarimg reads from the image, or None when it finds no QR code."""
    result = subprocess.run(["zbarimg", "--quiet", "--raw", "-Sbinary", "-Sdisable", "-Sqrcode.enable", path],
                            capture_output=True, timeout=60)
    if result.returncode != 0:
        return None
    return result.stdout


def main():
    parser = argparse.ArgumentParser()
    for name in ("base", "payloads", "out"):
        parser.add_argument("--" + name, required=True)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    with open(args.payloads, encoding="utf-8") as file:
        payloads = json.load(file)

    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--no-first-run", "--disable-extensions", "--disable-background-networking"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")), options=options)
    failures = []
    versions = set()
    try:
        driver.get(args.base + "/")
        WebDriverWait(driver, 30).until(lambda d: d.execute_script("return !!(window.TollgateQR && window.TollgateQR.draw)"))
        for index, payload in enumerate(payloads):
            text, pixels = payload["text"], payload["canvas"]
            url, version = driver.execute_script(DRAW, text, pixels)
            versions.add(version)
            path = os.path.join(args.out, f"qr-{index:03d}.png")
            with open(path, "wb") as image:
                image.write(base64.b64decode(url.split(",", 1)[1]))
            read = decode(path)
            expected = text.encode("utf-8")
            # zbarimg ends its output with a newline.
            if read is None or read.rstrip(b"\n") != expected:
                failures.append(f"{path} (version {version}, {len(expected)} bytes): drew {text[:80]!r}, read {read[:80] if read else None!r}")
    finally:
        driver.quit()
    print(f"decoded {len(payloads) - len(failures)} of {len(payloads)} QR codes, versions {sorted(versions)}")
    if failures:
        print("\n".join(failures), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
