"""Publishing posts on the platforms. No server code, no SQL.

- WeChat, through wechatpy's client (in a worker thread, like `bot.outbound`): the cover image and
  the other images are uploaded (``material/add_material`` for the cover, ``media/uploadimg`` for
  pictures in the text), voice and video become permanent material (``material/add_material``), the
  article is saved as a draft (``draft/add``) and published (``freepublish/submit``). wechatpy 1.8
  has no draft or freepublish API, so two thin API classes in its own style sit here.
- Weibo: ``POST {weibo_post_base_url}/2/statuses/share.json`` with the account's access token, the
  text (cut to 140 characters) and the first image as ``pic``.

A refusal is a `ChannelOutcome` with a Chinese reason, never an exception; tokens never reach a
reason or a log.
"""

from __future__ import annotations

import asyncio
import html
import io
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import requests
from loguru import logger
from wechatpy import WeChatClient
from wechatpy.client.api.base import BaseWeChatAPI
from wechatpy.exceptions import WeChatClientException

from bot.logs import redact_secrets
from bot.weibo import truncate_text

WEIBO_SHARE_PATH = "/2/statuses/share.json"
WEIBO_STATUS_LIMIT = 140
MIME = {"bmp": "image/bmp", "jpeg": "image/jpeg", "gif": "image/gif", "mp3": "audio/mpeg", "wma": "audio/x-ms-wma",
        "wav": "audio/wav", "amr": "audio/amr", "rm": "application/vnd.rn-realmedia", "wmv": "video/x-ms-wmv",
        "avi": "video/x-msvideo", "mpeg": "video/mpeg", "mp4": "video/mp4"}


@dataclass(frozen=True)
class Media:
    filename: str
    kind: str  # image | voice | video
    format: str
    content: bytes


@dataclass(frozen=True)
class Article:
    title: str
    body: str
    source: str
    author: str  # the department's name
    media: tuple[Media, ...] = ()


@dataclass(frozen=True)
class ChannelOutcome:
    channel: str
    ok: bool
    platform_id: str | None = None
    reason: str | None = None


class WeChatDraftAPI(BaseWeChatAPI):  # type: ignore[misc]
    """草稿箱: https://developers.weixin.qq.com/doc/offiaccount/Draft_Box/Add_draft.html"""

    def add(self, articles: list[dict[str, Any]]) -> str:
        return self._post("draft/add", data={"articles": articles},  # type: ignore[no-any-return]
                          result_processor=lambda result: result["media_id"])


class WeChatFreePublishAPI(BaseWeChatAPI):  # type: ignore[misc]
    """发布能力: https://developers.weixin.qq.com/doc/offiaccount/Publish/Publish.html"""

    def submit(self, media_id: str) -> str:
        return self._post("freepublish/submit", data={"media_id": media_id},  # type: ignore[no-any-return]
                          result_processor=lambda result: str(result["publish_id"]))


def article_html(article: Article, image_urls: Sequence[str]) -> str:
    paragraphs = [f"<p>{html.escape(line)}</p>" for line in article.body.splitlines() if line.strip()]
    images = [f'<p><img src="{html.escape(url, quote=True)}"></p>' for url in image_urls]
    return "".join(paragraphs + images) + f"<p>来源：{html.escape(article.source)}</p>"


class ChannelPublisher(Protocol):
    channel: str

    async def publish(self, article: Article) -> ChannelOutcome: ...


class WeChatPublisher:
    channel = "wechat"

    def __init__(self, client_factory: Callable[[], WeChatClient]) -> None:
        self._client_factory = client_factory

    async def publish(self, article: Article) -> ChannelOutcome:
        images = [m for m in article.media if m.kind == "image"]
        if not images:
            return ChannelOutcome(self.channel, False, None, "微信图文消息需要封面图片：请先附加一张图片")
        return await asyncio.to_thread(self._publish_blocking, article, images)

    def _publish_blocking(self, article: Article, images: list[Media]) -> ChannelOutcome:
        try:
            client = self._client_factory()
            cover = client.material.add("image", _file(images[0]))["media_id"]
            urls = [client.media.upload_image(_file(image)) for image in images[1:]]
            for media in article.media:
                if media.kind == "voice":
                    client.material.add("voice", _file(media))
                elif media.kind == "video":
                    client.material.add("video", _file(media), title=article.title[:30],
                                        introduction=article.source[:60] or article.title[:30])
            media_id = WeChatDraftAPI(client).add([{
                "title": article.title, "author": article.author[:16], "digest": article.body[:54],
                "content": article_html(article, urls), "content_source_url": "", "thumb_media_id": cover,
                "need_open_comment": 0, "only_fans_can_comment": 0,
            }])
            publish_id = WeChatFreePublishAPI(client).submit(media_id)
        except WeChatClientException as exc:
            return ChannelOutcome(self.channel, False, None,
                                  f"微信接口拒绝发布（{exc.errcode}：{redact_secrets(str(exc.errmsg or ''))[:200]}）")
        except requests.RequestException as exc:
            return ChannelOutcome(self.channel, False, None, f"连接微信接口失败（{type(exc).__name__}），请稍后重试")
        except (KeyError, TypeError, ValueError) as exc:
            return ChannelOutcome(self.channel, False, None, f"微信接口返回了无法识别的应答（{type(exc).__name__}）")
        logger.info("wechat post published: publish_id {}", publish_id)
        return ChannelOutcome(self.channel, True, publish_id, None)


def _file(media: Media) -> tuple[str, io.BytesIO, str]:
    return (media.filename or f"file.{media.format}", io.BytesIO(media.content), MIME.get(media.format, "application/"
                                                                                          "octet-stream"))


def weibo_status(article: Article) -> str:
    """Title and body cut to Weibo's limit, ending in the source, which is never cut off (R8.2)."""
    source = f"（来源：{truncate_text(article.source, WEIBO_STATUS_LIMIT // 2)}）"
    return truncate_text(f"【{article.title}】{article.body}", WEIBO_STATUS_LIMIT - len(source)) + source


class WeiboPublisher:
    channel = "weibo"

    def __init__(self, session: aiohttp.ClientSession, access_token: str, api_base_url: str = "https://api.weibo.com",
                 *, timeout: float = 30.0) -> None:
        self._session, self._token = session, access_token
        self._url = api_base_url.rstrip("/") + WEIBO_SHARE_PATH
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def publish(self, article: Article) -> ChannelOutcome:
        form = aiohttp.FormData()
        form.add_field("access_token", self._token)
        form.add_field("status", weibo_status(article))
        image = next((m for m in article.media if m.kind == "image"), None)
        if image is not None:
            form.add_field("pic", io.BytesIO(image.content), filename=image.filename, content_type=MIME[image.format])
        try:
            async with self._session.post(self._url, data=form, timeout=self._timeout) as response:
                status, raw = response.status, await response.read()
        except TimeoutError:
            return ChannelOutcome(self.channel, False, None, "微博接口超时，请稍后重试")
        except aiohttp.ClientError as exc:
            return ChannelOutcome(self.channel, False, None, f"连接微博接口失败（{type(exc).__name__}），请稍后重试")
        try:
            answer: Any = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            answer = None
        if isinstance(answer, dict) and answer.get("error_code"):
            said = f"{answer.get('error_code')}：{str(answer.get('error', ''))[:200]}"
            return ChannelOutcome(self.channel, False, None, f"微博接口拒绝发布（{said}）")
        if status >= 400 or not isinstance(answer, dict) or not answer.get("idstr", answer.get("id")):
            return ChannelOutcome(self.channel, False, None, f"微博接口暂时不可用（HTTP {status}），请稍后重试")
        weibo_id = str(answer.get("idstr") or answer.get("id"))
        logger.info("weibo post published: status {}", weibo_id)
        return ChannelOutcome(self.channel, True, weibo_id, None)


class Publisher:
    """The channels posts go to; a channel without its secret fails with a reason."""

    def __init__(self, publishers: Mapping[str, ChannelPublisher]) -> None:
        self._publishers = dict(publishers)

    async def publish(self, channel: str, article: Article) -> ChannelOutcome:
        publisher = self._publishers.get(channel)
        if publisher is None:
            what = {"wechat": "未配置微信公众号发布（缺少 GUANWEI_WECHAT_APPSECRET）",
                    "weibo": "未配置微博发布（缺少 GUANWEI_WEIBO_ACCESS_TOKEN）"}.get(channel, f"未知的渠道 {channel}")
            return ChannelOutcome(channel, False, None, what)
        return await publisher.publish(article)
