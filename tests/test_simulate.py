"""`guanwei simulate`'s shipped messages against the real app on loopback: the product as a user tries it."""

from __future__ import annotations

import aiohttp
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from bot.app import create_app
from bot.config import Settings
from bot.simulate import Simulator, load_script
from bot.storage import Database, Inquiry
from knowledge import Classifier
from tests.conftest import Clock, import_starter_faq


async def test_simulated_followers_are_registered_and_acknowledged(
    settings: Settings, database: Database, classifier: Classifier, clock: Clock
) -> None:
    script = load_script()
    await import_starter_faq(database)  # as `guanwei init` does
    app = create_app(settings, database=database, classifier=classifier, clock=clock)
    async with TestServer(app) as server, aiohttp.ClientSession() as session:
        simulator = Simulator(settings, str(server.make_url("/")), run_id="test", clock=clock)
        exchanges = await simulator.run(session, script)

    assert [e.status for e in exchanges] == [200] * (len(script) + 1)
    assert exchanges[-1].reply == exchanges[-2].reply  # the platform retry got the identical reply
    assert "欢迎关注" in exchanges[0].reply
    by_words = {e.said: e.reply for e in exchanges}
    assert "1小时内" in by_words[next(s for s in by_words if "踩踏" in s)]
    assert "1小时内" in by_words[next(s for s in by_words if "保护伞" in s)]
    assert "自动答复" in by_words["你好，请问市博物馆周一开放吗？需要提前预约吗？"]  # from the FAQ
    assert "今天12:00前答复" in by_words["小区楼下KTV天天半夜唱歌，吵得睡不着，能不能查一下有没有营业执照"]

    async with database.transaction() as db_session:
        inquiries = (await db_session.scalars(select(Inquiry))).all()
    asked = [item for item in script if item["type"] != "event"]
    assert len(inquiries) == len(asked)
    def department_of(start: str) -> str:
        return next(i.department for i in inquiries if i.summary.startswith(start))

    assert department_of("有线电视") == "broadcasting"
    assert department_of("小区楼下KTV") == "enforcement"
    assert department_of("请问今年的文旅消费券") == "industry"
    assert {i.severity for i in inquiries} == {"routine", "critical"}
