"""`guanwei simulate`: send the shipped realistic messages to a running server, as the platforms do.

Every push is signed with the server's own secrets (read from the same environment), safe-mode
pushes are encrypted with wechatpy, and the last message is sent again as a platform retry so the
identical reply can be seen.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import aiohttp
import yaml
from wechatpy.crypto import WeChatCrypto

from bot import weibo
from bot.config import Settings
from bot.pipeline import utc_now
from bot.platform_payloads import read_wechat_reply, sign_wechat, wechat_xml

OUR_WECHAT_ACCOUNT = "gh_simulated00001"
OUR_WEIBO_ACCOUNT = 5000000001


@dataclass(frozen=True)
class Exchange:
    label: str
    said: str
    status: int
    reply: str


def load_script() -> list[dict[str, Any]]:
    text = resources.files("bot").joinpath("data/simulate.yaml").read_text(encoding="utf-8")
    return list(yaml.safe_load(text))


def _fake_openid(n: int) -> str:
    # Shaped like a real openid (o + 27 url-safe chars) so masking and storage see the real thing.
    return "o" + hashlib.sha256(f"simulated-follower-{n}".encode()).hexdigest()[:27]


def _said(item: dict[str, Any]) -> str:
    words = item.get("text") or item.get("recognition") or item.get("label")
    return words or f"[{item.get('event') or item.get('subtype') or item['type']}]"


class Simulator:
    def __init__(
        self, settings: Settings, base_url: str, run_id: str | None = None, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.base_url = base_url.rstrip("/")
        # A fresh run id per run makes message ids new, so a second run is not taken for retries.
        self.run_id = run_id or secrets.token_hex(3)
        wechat = settings.wechat
        self.crypto = (
            WeChatCrypto(wechat.token, wechat.aes_key, wechat.appid) if wechat and wechat.aes_key else None
        )

    async def run(self, session: aiohttp.ClientSession, script: list[dict[str, Any]]) -> list[Exchange]:
        results = []
        base_id = int(hashlib.sha256(self.run_id.encode()).hexdigest()[:10], 16) * 1000
        last: tuple[str, dict[str, Any], int] | None = None
        for n, item in enumerate(script):
            results.append(await self.send(session, item, base_id + n, n))
            last = (item["channel"], item, n)
        if last is not None:
            _, item, n = last
            again = await self.send(session, item, base_id + n, n, retry=True)
            results.append(again)
        return results

    async def send(
        self, session: aiohttp.ClientSession, item: dict[str, Any], msg_id: int, n: int, retry: bool = False
    ) -> Exchange:
        if item["channel"] == "weibo":
            return await self._send_weibo(session, item, n, retry)
        return await self._send_wechat(session, item, msg_id, n, retry)

    def _created_at(self, n: int) -> datetime:
        return datetime.fromtimestamp(int(hashlib.sha256(f"{self.run_id}{n}".encode()).hexdigest()[:8], 16) % 10**6
                                      + 1_700_000_000, UTC)

    async def _send_wechat(
        self, session: aiohttp.ClientSession, item: dict[str, Any], msg_id: int, n: int, retry: bool
    ) -> Exchange:
        wechat = self.settings.wechat
        if wechat is None:
            return Exchange(f"wechat {item['type']}", _said(item), 0, "(channel disabled in config)")
        openid = _fake_openid(n)
        fields: dict[str, str | int] = {}
        kind = item["type"]
        if kind == "text":
            fields["Content"] = item["text"]
        elif kind == "voice":
            fields.update(MediaId=f"media{msg_id}", Format="amr", Recognition=item.get("recognition", ""))
        elif kind == "image":
            fields.update(PicUrl="http://mmbiz.qpic.cn/simulated.jpg", MediaId=f"media{msg_id}")
        elif kind == "location":
            fields.update(Location_X=item["x"], Location_Y=item["y"], Scale=15, Label=item["label"])
        elif kind == "event":
            fields.update(Event=item["event"], EventKey=item.get("key", ""))
        xml = wechat_xml(
            to_user=OUR_WECHAT_ACCOUNT, from_user=openid, created_at=self._created_at(n), msg_type=kind,
            msg_id=None if kind == "event" else msg_id, **fields,
        )
        mode = "aes" if self.settings.file.channels.wechat.require_safe_mode else item.get("mode", "plain")
        crypto = self.crypto if mode == "aes" else None
        if mode == "aes" and crypto is None:
            return Exchange(f"wechat {kind} (aes)", _said(item), 0, "(GUANWEI_WECHAT_AES_KEY not set)")
        push = sign_wechat(xml, token=wechat.token, timestamp=int(self.clock().timestamp()),
                           openid=openid, crypto=crypto, to_user=OUR_WECHAT_ACCOUNT)
        async with session.post(f"{self.base_url}/wechat", params=push.query, data=push.body) as response:
            body = await response.text()
            if response.status == 200:
                reply = read_wechat_reply(body, crypto).get("Content", "(success: no passive reply)")
            else:
                reply = body.strip()
        label = f"wechat {mode} {kind}" + (" — retry" if retry else "")
        return Exchange(label, _said(item), response.status, reply)

    async def _send_weibo(self, session: aiohttp.ClientSession, item: dict[str, Any], n: int, retry: bool) -> Exchange:
        secret = self.settings.weibo_app_secret
        if secret is None:
            return Exchange(f"weibo {item['type']}", _said(item), 0, "(channel disabled in config)")
        kind = item["type"]
        data: dict[str, Any] = {}
        text = item.get("text", "")
        if kind == "event":
            data = {"subtype": item["subtype"]}
        elif kind in ("voice", "image"):
            data = {"vfid": 3000000000 + n, "tovfid": 4000000000 + n}
            text = "发了一个语音消息" if kind == "voice" else "发了一张图片"
        body = weibo.build_push(
            type=kind, sender_id=2000000000 + n, receiver_id=OUR_WEIBO_ACCOUNT,
            created_at=self._created_at(n), text=text, data=data,
        )
        timestamp, nonce = str(int(self.clock().timestamp() * 1000)), str(secrets.randbelow(10**8))
        params = {"timestamp": timestamp, "nonce": nonce, "signature": weibo.sign(secret, timestamp, nonce)}
        async with session.post(f"{self.base_url}/weibo", params=params, data=body,
                                headers={"Content-Type": "application/json"}) as response:
            raw = await response.text()
            if response.status == 200 and raw:
                reply = weibo.decode_reply_data(json.loads(raw)["data"]).get("text", raw)
            elif response.status == 200:
                reply = "(empty: no passive reply)"
            else:
                reply = raw.strip()
        return Exchange(f"weibo {kind}" + (" — retry" if retry else ""), _said(item), response.status, reply)

