"""The publishing desk in a real browser (Debian's chromium, headless): a draft goes through review, the
secrecy form, approval, the media check and publishing; refused files say why; the register and the weekly
push check show the result."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.fake_platform import FAKE_PLATFORM
from tests import media_fixtures as m
from tests.clamd_support import clamd_socket, eicar  # noqa: F401  (clamd_socket: a fixture)
from tests.test_browser import CHROMIUM, LAUNCH_ARGS, pytestmark  # noqa: F401  (skips without chromium)
from tests.test_console import PASSWORD, console  # noqa: F401  (console: a fixture)
from tests.test_publishing_workflow import Desk, desk  # noqa: F401  (desk: a fixture)

MB = 1024 * 1024
TITLE = "“文化惠民”周末音乐会免费开放预约"


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_r5_1_r5_2_r8_3_a_draft_is_reviewed_approved_checked_and_published_in_a_browser(
        desk: Desk, tmp_path: Path) -> None:  # noqa: F811
    from playwright.async_api import async_playwright

    base = str(desk.client.make_url("")).rstrip("/")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)

        async def as_user(name: str):  # type: ignore[no-untyped-def]
            page = await (await browser.new_context(viewport={"width": 1100, "height": 900})).new_page()
            await page.goto(f"{base}/console/login")
            await page.fill("input[name=username]", name)
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{base}/console")
            return page

        staff = await as_user("staff_market")
        await staff.goto(f"{base}/console/desk/new")
        await staff.fill("input[name=title]", TITLE)
        await staff.fill("textarea[name=body]", "本周六晚七点半，市文化馆音乐厅举办周末音乐会，免费开放预约。")
        await staff.fill("input[name=source]", "市文化馆 活动通知")
        await staff.check("input[name=important]")
        await staff.click("text=保存草稿")
        await staff.wait_for_selector("#post-status")
        post_url = staff.url

        refusals = {}
        for name, data, mime in (("poster.bmp", m.big_bmp(3 * MB), "image/bmp"), ("photo.jpg", m.elf(), "image/jpeg"),
                                 ("voice.wav", m.wav(70), "audio/wav"), ("eicar.gif", eicar(), "image/gif")):
            await staff.set_input_files("input[name=file]", files=[{"name": name, "mimeType": mime, "buffer": data}])
            await staff.click("text=上传附件")
            refusals[name] = await staff.inner_text(".blocked")
        assert "超过 2 MB 的上限" in refusals["poster.bmp"]
        assert "Linux 可执行程序（ELF）" in refusals["photo.jpg"]
        assert "70.0 秒超过 60 秒的上限" in refusals["voice.wav"]
        assert "病毒扫描发现威胁" in refusals["eicar.gif"]
        await staff.screenshot(path=str(tmp_path / "refused.png"), full_page=True)

        await staff.set_input_files("input[name=file]", files=[{"name": "hall.jpg", "mimeType": "image/jpeg",
                                                                "buffer": m.jpeg()}])
        await staff.click("text=上传附件")
        await staff.wait_for_selector("text=hall.jpg")
        await staff.check("input[name=contains_secrets][value=no]")
        await staff.fill("#secrecy input[name=opinion]", "活动信息已公开，不涉及秘密")
        await staff.click("text=填写保密审查表")
        await staff.click("text=提交局办公室审核")
        assert await staff.inner_text("#post-status") == "待审核"

        office = await as_user("office_head")
        await office.goto(post_url)
        for check in ("accuracy", "completeness", "timeliness", "secrecy"):
            await office.check(f"input[name={check}][value=yes]")
        await office.click("text=提交审核意见")
        assert await office.inner_text("#post-status") == "待领导审批"

        leader = await as_user("leader")
        await leader.goto(post_url)
        await leader.click("text=同意发布")
        assert "保密审查表" in await leader.inner_text(".error")  # the form is not approved yet (R5.2)
        await leader.click("text=审批保密审查表")
        await leader.click("text=同意发布")
        assert await leader.inner_text("#post-status") == "待校对"

        info = await as_user("info")
        await info.goto(post_url)
        await info.click("text=校对完成")
        assert await info.inner_text("#post-status") == "待推送"
        await info.goto(f"{base}/console/pushes")
        await info.check("input[name=post_id] >> nth=0")
        await info.fill("input[name=planned_at]", "2026-12-03T10:30")
        await info.click("text=排入推送")
        await info.click("text=立即发布")
        result = await info.inner_text("#publish-result")
        assert "已发布" in result and "微信公众号：成功" in result and "微博：成功" in result
        assert "已推送 1 次" in await info.inner_text("#week-check")
        await info.screenshot(path=str(tmp_path / "published.png"), full_page=True)

        await info.goto(f"{base}/console/register")
        register = await info.inner_text("#register")
        assert TITLE in register and "微信公众号" in register and "office_head" in register
        assert "不足每周 3 次" in await info.inner_text("#week-check")
        await info.screenshot(path=str(tmp_path / "register.png"), full_page=True)
        await browser.close()

    titles = [p.get("title") or p.get("text") for p in desk.platform.app[FAKE_PLATFORM].published]
    assert titles[0] == TITLE and titles[1].startswith(f"【{TITLE}】")
