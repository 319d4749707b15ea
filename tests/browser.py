"""A real browser for the UI tests: Debian's ``chromium`` and ``chromium-driver``, driven
by selenium with the system browser (selenium's own browser download fails offline).

Installed the way the services are: on first use, by the project itself — with apt when
this runs as root on Debian, else the test fails saying what to install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

PACKAGES = ("chromium", "chromium-driver")
HOW = "install Debian's chromium and chromium-driver: apt-get install -y chromium chromium-driver"


def browser_paths() -> tuple[str, str] | None:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


def ensure_chromium() -> tuple[str, str]:
    """(chromium, chromedriver), installing them with apt if missing and allowed."""
    found = browser_paths()
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        raise RuntimeError(f"no chromium/chromedriver on PATH; {HOW}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [apt, "install", "-y", "-q", *PACKAGES]
    if subprocess.run(install, env=env, capture_output=True, timeout=900).returncode != 0:
        subprocess.run([apt, "update", "-q"], env=env, capture_output=True, timeout=900)
        done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise RuntimeError(f"apt-get could not install {PACKAGES}: {done.stderr[-500:]}; "
                               f"{HOW}")
    found = browser_paths()
    if not found:
        raise RuntimeError(f"chromium installed but not found on PATH; {HOW}")
    return found


def headless_chromium() -> Any:
    """A selenium WebDriver on the system's headless Chromium."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = ensure_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1200,1300"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)
