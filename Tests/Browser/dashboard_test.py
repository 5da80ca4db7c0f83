#!/usr/bin/env python3
"""The dashboard in a real browser: headless Chromium driven by Selenium.

Signs in with an account token, sees the balance, makes a debit through the API and sees the
new balance on the page within one second without a reload, redeems a coupon through the
page, downloads the transactions CSV, and saves screenshots. Run by the Swift test
BrowserTests (so `make test` runs it) against a `tollgate serve` it started:

  dashboard_test.py --base http://127.0.0.1:PORT --account ID --token tga_... \
      --service-token S --coupon TG-... --out DIR
"""
import argparse
import glob
import json
import os
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


def api(base, method, path, token, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def text_of(driver, element_id):
    return driver.find_element(By.ID, element_id).text.strip()


def wait_text(driver, element_id, expected, timeout, what):
    try:
        WebDriverWait(driver, timeout, poll_frequency=0.02).until(lambda d: text_of(d, element_id) == expected)
    except Exception:
        raise AssertionError(f"{what}: #{element_id} shows {text_of(driver, element_id)!r}, expected {expected!r} within {timeout}s")


def main():
    parser = argparse.ArgumentParser()
    for name in ("base", "account", "token", "service-token", "coupon", "out"):
        parser.add_argument("--" + name, required=True)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    downloads = os.path.join(args.out, "downloads")
    os.makedirs(downloads, exist_ok=True)

    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,1500",
                 "--no-first-run", "--disable-extensions", "--disable-background-networking"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"download.default_directory": downloads, "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")), options=options)
    try:
        driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": downloads})
        driver.get(args.base + "/")

        # Sign in with the account token; the live balance appears.
        start = api(args.base, "GET", "/v1/accounts/" + args.account, args.token)
        driver.find_element(By.ID, "token").send_keys(args.token)
        driver.find_element(By.ID, "sign-in-btn").click()
        wait_text(driver, "balance", start["balance"], 30, "after sign-in")
        WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "conn-state").get_attribute("data-state") == "live")
        assert text_of(driver, "available") == start["available"], text_of(driver, "available")
        driver.save_screenshot(os.path.join(args.out, "1-signed-in.png"))

        # A debit through the API shows on the page within one second, without a reload.
        marker = driver.execute_script("window.__noReload = 'still here'; return window.__noReload;")
        decision = api(args.base, "POST", "/v1/authorize", args.service_token,
                       {"account": args.account, "request_id": "browser-debit-1", "usage": [{"meter": "api_call", "quantity": 1}]})
        assert decision["allowed"], decision
        wait_text(driver, "balance", decision["balance"], 1.0, "one second after the debit")
        assert driver.execute_script("return window.__noReload;") == marker, "the page was reloaded"
        rows = driver.find_elements(By.CSS_SELECTOR, "#activity-rows tr")
        assert rows and "debit" in rows[0].text, [r.text for r in rows]
        driver.save_screenshot(os.path.join(args.out, "2-after-debit.png"))

        # Redeem a coupon through the page.
        driver.find_element(By.ID, "coupon-code").send_keys(args.coupon)
        driver.find_element(By.ID, "redeem-btn").click()
        WebDriverWait(driver, 30, poll_frequency=0.05).until(lambda d: "Redeemed" in text_of(d, "coupon-state") or "error" in d.find_element(By.ID, "coupon-state").get_attribute("class"))
        assert "Redeemed" in text_of(driver, "coupon-state"), text_of(driver, "coupon-state")
        after = api(args.base, "GET", "/v1/accounts/" + args.account, args.token)
        wait_text(driver, "balance", after["balance"], 30, "after redeeming")
        wait_text(driver, "promotional", after["promotional"], 30, "promotional after redeeming")
        WebDriverWait(driver, 30).until(lambda d: "coupon" in text_of(d, "payments-table"))
        driver.save_screenshot(os.path.join(args.out, "3-after-coupon.png"))

        # Download the transactions report as CSV.
        driver.find_element(By.ID, "report-transactions").click()
        deadline = time.time() + 30
        files = []
        while time.time() < deadline:
            files = [f for f in glob.glob(os.path.join(downloads, "*.csv"))]
            if files and not glob.glob(os.path.join(downloads, "*.crdownload")):
                break
            time.sleep(0.1)
        assert files, "no CSV was downloaded"
        with open(files[0], encoding="utf-8") as handle:
            lines = handle.read().splitlines()
        assert len(lines) >= 4, lines  # header, top-up, debit, coupon
        assert any("coupon" in line for line in lines) and any("debit" in line for line in lines), lines
        WebDriverWait(driver, 30).until(lambda d: "Downloaded" in text_of(d, "report-state"))
        driver.save_screenshot(os.path.join(args.out, "4-report-downloaded.png"))
        print("browser test passed; screenshots in", args.out)
    except Exception:
        driver.save_screenshot(os.path.join(args.out, "failure.png"))
        print("browser console:", [entry.get("message") for entry in (driver.get_log("browser") or [])], file=sys.stderr)
        raise
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
