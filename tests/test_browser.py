"""The console in a real browser (Debian's chromium driven by Playwright): log in, answer, see it arrive."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bot.config import Settings
from bot.storage import Database
from tests.test_console import PASSWORD, Console, console, new_inquiry  # noqa: F401  (console: a fixture)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason="Debian's chromium is not installed (.ci/run installs it with apt)")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_staff_logs_in_answers_the_top_item_and_the_platform_receives_it(
    console: Console, settings: Settings, database: Database, tmp_path: Path  # noqa: F811
) -> None:
    from playwright.async_api import async_playwright

    mine = await new_inquiry(console.client, "导游强制购物，不买不让下车，这归谁管？")
    theirs = await new_inquiry(console.client, "豫剧演出票怎么退", sender="oOtherOtherOtherOtherOtherOt")
    base = str(console.client.make_url("")).rstrip("/")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        page = await browser.new_page(viewport={"width": 390, "height": 844})  # a phone
        await page.goto(f"{base}/console/login")
        await page.fill("input[name=username]", "staff_market")
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{base}/console")
        assert "我的待办（1）" in await page.inner_text("h2")
        await page.screenshot(path=str(tmp_path / "queue.png"))

        await page.click(f"a[href='/console/inquiries/{mine}']")
        answer = "您好！您反映的导游强制购物问题已转市场管理处核查，我们会尽快联系旅行社处理。"
        await page.fill("textarea[name=text]", answer)
        await page.click("text=发送答复")
        await page.wait_for_selector("text=已送达")
        await page.screenshot(path=str(tmp_path / "answered.png"), full_page=True)

        await page.goto(f"{base}/console")
        assert "没有待办留言" in await page.content()
        received = await (await console.platform.get("/received")).json()
        assert received[-1]["text"] == answer

        response = await page.goto(f"{base}/console/inquiries/{theirs}")
        assert response is not None and response.status == 404  # another department's inquiry, by URL
        await browser.close()
