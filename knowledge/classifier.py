"""Message classification: severity (rule R6.1d) and the responsible department (R6.2).

Every follower message gets a ``severity`` (``routine`` or ``critical``) and a ``department``
key. Critical means "major problems and negative information that directly harm the bureau's
reputation" (R6.1d): safety incidents, threats to go to the press or higher authorities,
accusations of official misconduct, fraud with many victims. Those must reach a responsible
person within one hour, day or night; a false alarm wakes a department head, a miss means the
bureau reads about a stampede in the newspaper.

The scoring is deliberately plain so that it explains itself: weighted word lists and a few
regular expressions in ``knowledge/data/severity.yaml`` (each with a comment saying why it
weighs what it weighs), negation and question-about handling, small bonuses for combinations
and intensity. ``Classifier.explain`` lists every contribution.

A second opinion (``knowledge.second_opinion``: logistic regressions on character n-grams, weights in
``knowledge/data/second_opinion.json``) catches messages written in words the lists do not have: a message
is critical when the word lists say so or the model's probability reaches its threshold, and ``matched``
then says so ("相似案例判断 62%") followed by the n-grams that weighed most; the department is the one the
model's log-odds and the lists' routing score favour together, and where no listed term backs it,
``matched`` ends with the n-grams that spoke for it. Without the file the word lists decide alone.

Load once, classify many: ``Classifier.load()`` reads and validates the data files, builds a
segmenter with the domain user dictionary (``knowledge.segmentation``: jieba's segmentation over its
main dictionary, which is loaded once per process and shared with the screener), and compiles the
matchers; ``classify`` does no I/O and never raises on any ``str``.
"""

from __future__ import annotations

import bisect
import copy
import json
import math
import re
import unicodedata
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import reduce
from itertools import repeat
from operator import or_
from pathlib import Path
from re import _constants as _regex_ops  # re's own parser (private, as in 3.11-3.13), for _required_characters
from re import _parser as _regex_parser
from typing import Any

import yaml

from knowledge.second_opinion import SECOND_OPINION_FILE, SecondOpinion
from knowledge.segmentation import Segmenter
from knowledge.yaml_base import FastSafeLoader

__all__ = [
    "CRITICAL",
    "DATA_DIR",
    "MAX_CHARS",
    "ROUTINE",
    "Classification",
    "Classifier",
    "KnowledgeDataError",
    "SecondOpinion",
    "normalize",
]

DATA_DIR = Path(__file__).resolve().with_name("data")
SEVERITY_FILE = "severity.yaml"
DEPARTMENTS_FILE = "departments.yaml"
USERDICT_FILE = "userdict.txt"

ROUTINE = "routine"
CRITICAL = "critical"

# Only the first MAX_CHARS characters (after normalisation) are analysed. A WeChat or Weibo
# message is far shorter; the cap bounds the time one pathological message can take (~30 ms).
MAX_CHARS = 20_000

_FALLBACK_CONFIDENCE = 0.0
# First entry of ``matched`` when the second opinion made a message critical: "judged by similar cases 62%"
SECOND_OPINION_LABEL = "相似案例判断"
_MASK = "\x00"  # masked spans of benign phrases; normalisation removes real control characters


class KnowledgeDataError(ValueError):
    """A knowledge data file is malformed. The message names the file, the line or key, and the problem."""


@dataclass(frozen=True, slots=True)
class Classification:
    severity: str  # ROUTINE | CRITICAL
    department: str  # a department key
    department_confidence: float  # 0..1; < 0.5 when the fallback was used or topics were tied
    score: float  # severity score; critical when >= the threshold
    matched: tuple[str, ...]  # the terms that decided it: severity terms first, then department terms
    faq: str | None = None  # FAQ question id (the FAQ knowledge base is a later issue)
    # p(critical) of the second opinion (knowledge.second_opinion); None when it is not loaded
    second_opinion: float | None = None

    @property
    def is_critical(self) -> bool:
        return self.severity == CRITICAL

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "department": self.department,
            "department_confidence": self.department_confidence,
            "score": self.score,
            "matched": list(self.matched),
            "faq": self.faq,
            "second_opinion": None if self.second_opinion is None else round(self.second_opinion, 4),
        }


# --------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------

# Traditional → simplified, character by character, for the characters that occur in the word
# lists and in everyday messages (no dependency on OpenCC). Each item is "traditional simplified".
_T2S_PAIRS = """
們们 個个 區区 發发 髮发 傷伤 體体 記记 報报 舉举 訴诉 電电 話话 視视 廣广 廠厂 衛卫 機机
門门 禮礼 錢钱 騙骗 詐诈 賄贿 賂赂 貪贪 敗败 職职 權权 濫滥 護护 傘伞 結结 為为 爲为 勢势
導导 遊游 購购 買买 賣卖 強强 誤误 價价 貴贵 費费 團团 險险 災灾 燒烧 壞坏 毀毁 傾倾 車车
輛辆 動动 號号 氣气 憤愤 讓让 說说 請请 問问 題题 這这 裡里 裏里 來来 會会 麼么 麽么 嗎吗
沒没 無无 從从 還还 過过 進进 開开 關关 閉闭 時时 間间 點点 場场 廳厅 館馆 書书 圖图 藝艺
術术 劇剧 戲戏 樂乐 聲声 響响 擾扰 網网 娛娱 營营 業业 執执 證证 許许 盜盗 鄉乡 鎮镇 縣县
長长 領领 紀纪 檢检 監监 訪访 熱热 聞闻 臺台 檯台 颱台 頻频 訊讯 線线 錄录 鍋锅 蓋盖 頭头
傳传 遺遗 產产 歷历 處处 辦办 務务 員员 飯饭 賓宾 淨净 乾干 幹干 髒脏 臟脏 亂乱 擠挤 墜坠
醫医 殺杀 斃毙 屍尸 難难 隊队 擁拥 滿满 萬万 億亿 兩两 幾几 數数 隻只 陣阵 級级 風风 項项
設设 驗验 樣样 對对 應应 該该 當当 謝谢 讀读 閱阅 歡欢 參参 觀观 預预 約约 覽览 講讲 課课
輕轻 兒儿 鬧闹 訂订 單单 後后 續续 決决 給给 賠赔 償偿 質质 違违 規规 罰罚 黨党 頂顶 層层
愛爱 國国 張张 園园 纜缆 棧栈 橋桥 邊边 濕湿 燈灯 煙烟 鬥斗 毆殴 罵骂 態态 惡恶 麵面 飲饮
瀉泻 療疗 藥药 隱隐 欄栏 斷断 脫脱 鬆松 壓压 塊块 緊紧 況况 嚴严 極极 別别 實实 離离 譜谱
貨货 虛虚 誘诱 剋克 賬账 帳账 額额 現现 優优 減减 補补 貼贴 撥拨 線线 碼码 郵邮 寫写 審审
準准 節节 聽听 眾众 劃划 選选 擇择 環环 廁厕 蟲虫 貓猫 蝦虾 魚鱼 雞鸡 鴨鸭 鵝鹅 豬猪 馬马
驢驴 錯错 確确 認认 識识 憶忆 絕绝 議议 論论 評评 據据 絡络 頁页 載载 軟软 顯显 螢荧 總总
統统 經经 濟济 標标 測测 試试 鑒鉴 鑑鉴 復复 複复 雜杂 維维 訟讼 師师 遞递 狀状 攤摊 販贩
鋪铺 舖铺 廚厨 衝冲 擊击 陸陆 島岛 灣湾 龍龙 鳳凤 壽寿 慶庆 憂忧 慮虑 懼惧 嚇吓 驚惊 瘋疯
癱瘫 瘓痪 診诊 類类 願愿 與与 於于 則则 紅红 綠绿 藍蓝 黃黄 聯联 繫系 係系 歸归 屬属 學学
習习 練练 筆笔 紙纸 畫画 樓楼 鐘钟 錶表 鈴铃 靜静 談谈 語语 詞词 譯译 運运 輸输 達达 陳陈
舊旧 幣币 銀银 賺赚 虧亏 損损 滅灭 殘残 獄狱 判判 瀆渎 懶懒 陰阴 陽阳 雲云 霧雾 飛飞 鐵铁
軌轨 輪轮 艙舱 澗涧 灘滩 湧涌 漲涨 潰溃 壩坝 鐘钟 碼码 嗎吗 喚唤 傑杰 俠侠 億亿 啟启 衆众
儘尽 盡尽 醜丑 徵征 製制 佈布 夥伙 蘇苏 僅仅 範范 傢家 捨舍 纔才 奪夺 搶抢 槍枪 礙碍 懷怀
壯壮 將将 專专 尋寻 對对 導导 幫帮 帶带 廢废 彈弹 歲岁 燈灯 獨独 獲获 產产 畢毕 異异 瘧疟
盤盘 睜睁 紛纷 細细 終终 給给 統统 絲丝 經经 綁绑 緒绪 緣缘 縮缩 繩绳 續续 罷罢 聞闻 肅肃
脅胁 腦脑 膽胆 臉脸 興兴 舉举 艱艰 莊庄 華华 萊莱 葉叶 藥药 虧亏 蟻蚁 術术 襲袭 覺觉 親亲
計计 訂订 認认 誠诚 調调 談谈 證证 議议 讚赞 負负 貸贷 賭赌 趕赶 蹤踪 較较 輔辅 農农 遠远
適适 遲迟 選选 還还 邊边 郵邮 鄰邻 釋释 針针 鈔钞 鋼钢 錯错 鍵键 鎖锁 長长 門门 閃闪 閒闲
間间 閘闸 闖闯 陣阵 陳陈 陰阴 隨随 險险 雖虽 雙双 雜杂 雞鸡 離离 電电 靈灵 韓韩 順顺 預预
領领 頻频 顧顾 風风 飄飘 飯饭 養养 餓饿 餘余 館馆 駕驾 騎骑 驗验 體体 鬧闹 魯鲁 鳥鸟 鹽盐
麗丽 黨党 齊齐 齒齿 龜龟 鎖锁 隨随 鬨哄 偵侦 側侧 偽伪 傘伞 備备 債债 傾倾 僱雇 價价 儀仪
優优 兇凶 內内 冊册 凍冻 劇剧 勁劲 勞劳 務务 勵励 勸劝 匯汇 協协 卻却 厲厉 縣县 參参 員员
喪丧 單单 嘆叹 嚴严 囑嘱 團团 圍围 圓圆 墳坟 壓压 壞坏 夢梦 奮奋 婦妇 嬰婴 寧宁 實实 寵宠
審审 寶宝 屆届 層层 岡冈 嶺岭 巖岩 帥帅 師师 幣币 廟庙 廠厂 廣广 張张 強强 彎弯 徑径 從从
復复 態态 慘惨 慣惯 憐怜 應应 戰战 戲戏 戶户 擔担 據据 擴扩 擺摆 攜携 敵敌 斷断 暫暂 曆历
曉晓 樸朴 權权 歐欧 殼壳 毆殴 氣气 湯汤 滯滞 潔洁 澆浇 濱滨 灑洒 災灾 炮炮 烏乌 煩烦 燒烧
爭争 牆墙 犧牺 猶犹 獎奖 現现 瑪玛 環环 產产 甦苏 畝亩 瘡疮 療疗 發发 盜盗 碩硕 礎础 禍祸
穩稳 窮穷 競竞 筍笋 範范 築筑 簡简 籃篮 糧粮 緊紧 總总 縱纵 績绩 織织 罰罚 羅罗 聖圣 聲声
職职 膚肤 腳脚 臨临 艦舰 蘭兰 處处 號号 補补 製制 複复 規规 視视 覽览 觸触 訊讯 訓训 託托
設设 詢询 該该 詳详 誌志 説说 課课 誰谁 請请 諾诺 謀谋 謠谣 證证 識识 護护 讀读 變变 豐丰
貝贝 財财 貧贫 貨货 販贩 責责 貿贸 費费 資资 賊贼 賓宾 賞赏 賴赖 贈赠 贏赢 躍跃 軍军 輕轻
輩辈 辦办 辭辞 遞递 遙遥 邏逻 醫医 鏡镜 鑰钥 閱阅 闆板 陝陕 隊队 際际 難难 雲云 靜静 韋韦
頒颁 頓顿 頭头 頸颈 額额 願愿 類类 飼饲 餐餐 駐驻 騰腾 驅驱 驚惊 髮发 鬥斗 鮮鲜 鳴鸣 麥麦
黃黄 點点 齡龄 週周 夠够 餵喂 綫线 噁恶 賽赛 衛卫
"""


def _build_t2s() -> dict[int, str]:
    table: dict[int, str] = {}
    for pair in _T2S_PAIRS.split():
        if len(pair) != 2:  # pragma: no cover - guarded by a test
            raise ValueError(f"bad traditional→simplified pair {pair!r}")
        traditional, simplified = pair
        if traditional != simplified:
            table[ord(traditional)] = simplified
    return table


_T2S = _build_t2s()

# Cantonese written forms of the function words that carry the meaning of an incident ("打咗个阿伯",
# "流咗好多血", "喺景区跌咗落水", "冇人理", "到而家都未搵到") → their Mandarin equivalents, one character for
# one, so that positions do not move and the Mandarin word lists and patterns apply. Only characters
# that are not used in Mandarin writing are mapped.
_CANTONESE_PAIRS = "咗了 喺在 嘅的 冇没 唔不 佢他 哋们 嚟来 睇看 畀给 搵找 揾找 啲些 攞拿 嘢西"
for _pair in _CANTONESE_PAIRS.split():
    _T2S[ord(_pair[0])] = _pair[1]

# Control and format characters (C0, C1, zero-width, bidi, BOM) and lone surrogates become spaces.
_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ud800-\udfff]")
_PUNCT_RUN_RE = re.compile(r"[!?]{2,}")


def normalize(text: str) -> str:
    """The form every matcher sees: NFKC (full-width → half-width), lower case, simplified characters,
    control characters as spaces. Word-list terms go through the same function at load time."""
    text = unicodedata.normalize("NFKC", text)
    text = text.lower().translate(_T2S)
    return _CONTROL_RE.sub(" ", text)


# --------------------------------------------------------------------------------------------
# Loading and validating the data files
# --------------------------------------------------------------------------------------------


class _Lined(dict):  # type: ignore[type-arg]
    """A YAML mapping that remembers the line (1-based) of each key."""

    __slots__ = ("lines",)

    def __init__(self) -> None:
        super().__init__()
        self.lines: dict[Any, int] = {}


class _LinedList(list):  # type: ignore[type-arg]
    __slots__ = ("lines",)

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[int] = []


class _DuplicateKeyError(Exception):
    def __init__(self, key: Any, line: int, first_line: int) -> None:
        super().__init__(key, line, first_line)
        self.key, self.line, self.first_line = key, line, first_line


class _StrictLoader(FastSafeLoader):
    """SafeLoader that rejects duplicate keys (PyYAML silently keeps the last) and records lines."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> _Lined:
    loader.flatten_mapping(node)
    result = _Lined()
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "found an unhashable key", key_node.start_mark
            ) from None
        if key in result:
            raise _DuplicateKeyError(key, line, result.lines[key])
        result[key] = loader.construct_object(value_node, deep=True)
        result.lines[key] = line
    return result


def _construct_sequence(loader: _StrictLoader, node: yaml.SequenceNode) -> _LinedList:
    result = _LinedList()
    for child in node.value:
        result.append(loader.construct_object(child, deep=True))
        result.lines.append(child.start_mark.line + 1)
    return result


_StrictLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_StrictLoader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


class _Source:
    """One data file being validated: every error names the file, the line when known, and the key."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = path.name

    def error(self, where: str, problem: str, line: int | None = None) -> KnowledgeDataError:
        at = f" line {line}" if line else ""
        return KnowledgeDataError(f"{self.path}{at}: {where}: {problem}")

    def load_yaml(self) -> Any:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise KnowledgeDataError(f"{self.path}: file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise KnowledgeDataError(f"{self.path}: cannot read: {exc}") from None
        loader = _StrictLoader(text)
        try:
            return loader.get_single_data()
        except _DuplicateKeyError as exc:
            raise self.error(
                repr(exc.key), f"duplicate key (first defined at line {exc.first_line})", exc.line
            ) from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            problem = getattr(exc, "problem", None) or str(exc)
            raise self.error("YAML", f"invalid YAML: {problem}", line) from None
        finally:
            loader.dispose()

    # -- typed accessors ---------------------------------------------------------------------

    @staticmethod
    def line_of(container: Any, key: Any) -> int | None:
        lines = getattr(container, "lines", None)
        if isinstance(lines, dict):
            return lines.get(key)
        if isinstance(lines, list) and isinstance(key, int) and 0 <= key < len(lines):
            return lines[key]
        return None

    def mapping(self, value: Any, where: str, line: int | None = None) -> Mapping[Any, Any]:
        if not isinstance(value, Mapping):
            raise self.error(where, f"must be a mapping, got {type(value).__name__}", line)
        return value

    def keys(
        self, value: Mapping[Any, Any], where: str, allowed: Collection[str], required: Collection[str] = ()
    ) -> None:
        for key in value:
            if key not in allowed:
                raise self.error(
                    f"{where}.{key}" if where else str(key),
                    f"unknown key (allowed: {', '.join(sorted(allowed))})",
                    self.line_of(value, key),
                )
        for key in required:
            if key not in value:
                raise self.error(where or "top level", f"missing required key {key!r}")

    def number(self, value: Any, where: str, line: int | None, *, minimum: float = 0.0) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.error(where, f"must be a number, got {value!r}", line)
        if value <= minimum:
            raise self.error(where, f"must be greater than {minimum:g}, got {value!r}", line)
        return float(value)

    def text(self, value: Any, where: str, line: int | None) -> str:
        if not isinstance(value, str):
            raise self.error(where, f"must be a string, got {value!r}", line)
        return value

    def term(self, raw: Any, where: str, line: int | None) -> str:
        """A word-list term: a non-empty string (a bare integer such as 12345 is accepted), normalised."""
        if isinstance(raw, bool) or not isinstance(raw, str | int):
            raise self.error(where, f"term must be a string, got {raw!r}", line)
        term = normalize(str(raw)).strip()
        if not term:
            raise self.error(where, "empty term", line)
        if any(ch.isspace() for ch in term):
            raise self.error(where, f"term {term!r} contains whitespace", line)
        return term

    def term_list(self, value: Any, where: str, line: int | None) -> list[str]:
        if not isinstance(value, list):
            raise self.error(where, f"must be a list of terms, got {type(value).__name__}", line)
        seen: dict[str, int] = {}
        out: list[str] = []
        for index, raw in enumerate(value):
            item_line = self.line_of(value, index) or line
            term = self.term(raw, f"{where}[{index}]", item_line)
            if term in seen:
                raise self.error(f"{where}[{index}]", f"duplicate term {term!r} (also item {seen[term]})", item_line)
            seen[term] = index
            out.append(term)
        return out

    def weighted_terms(self, value: Any, where: str, line: int | None) -> dict[str, tuple[float, int | None]]:
        terms = self.mapping(value, where, line)
        if not terms:
            raise self.error(where, "no terms", line)
        out: dict[str, tuple[float, int | None]] = {}
        for raw, weight in terms.items():
            term_line = self.line_of(terms, raw)
            term = self.term(raw, f"{where}[{raw!r}]", term_line)
            if term in out:
                raise self.error(f"{where}[{raw!r}]", f"duplicate term {term!r} after normalisation", term_line)
            out[term] = (self.number(weight, f"{where}[{raw!r}]", term_line), term_line)
        return out


@dataclass(frozen=True, slots=True)
class _Pattern:
    name: str
    group: str
    regex: re.Pattern[str]
    weight: float


@dataclass(frozen=True, slots=True)
class _Combination:
    name: str
    groups: frozenset[str]
    with_words: tuple[str, ...]
    with_patterns: tuple[re.Pattern[str], ...]  # regexes that count like the words ("三十多个人")
    bonus: float
    department: str | None = None  # when it fires, this department gains department_weight
    department_weight: float = 0.0


@dataclass(frozen=True, slots=True)
class _SeverityData:
    threshold: float
    terms: dict[str, tuple[str, float]]  # term → (group, weight)
    patterns: tuple[_Pattern, ...]
    masked_phrases: tuple[str, ...]  # inquiry phrases + benign phrases
    negators: dict[str, int]  # negator → window in tokens
    breakers: frozenset[str]
    combinations: tuple[_Combination, ...]
    degree_words: tuple[str, ...]
    degree_weight: float
    degree_cap: float
    punctuation_weight: float
    punctuation_cap: float
    intensity_cap: float
    resolved_phrases: tuple[str, ...] = ()
    resolved_discount: float = 0.0
    question_endings: tuple[str, ...] = ()  # a clause ending so asks about its terms ("撞到人怎么办")
    question_demands: tuple[str, ...] = ()  # ... unless it demands action ("景区踩踏你们不管吗")
    question_done: tuple[str, ...] = ()  # ... or reports something done ("有人受伤了吗")
    # a rhetorical question asserts its terms ("局长收红包，这不是受贿吗"): neither negated nor asked about
    question_rhetorical: tuple[str, ...] = ()
    masked_patterns: tuple[re.Pattern[str], ...] = ()  # benign_patterns: regexes masked like the phrases


def _load_severity(path: Path) -> _SeverityData:
    src = _Source(path)
    doc = src.mapping(src.load_yaml(), "top level")
    src.keys(
        doc,
        "",
        {
            "threshold",
            "groups",
            "patterns",
            "inquiry_phrases",
            "benign_phrases",
            "benign_patterns",
            "negation",
            "combinations",
            "intensity",
            "resolution",
            "question",
        },
        required=("threshold", "groups"),
    )
    threshold = src.number(doc["threshold"], "threshold", src.line_of(doc, "threshold"))

    groups = src.mapping(doc["groups"], "groups", src.line_of(doc, "groups"))
    if not groups:
        raise src.error("groups", "no groups", src.line_of(doc, "groups"))
    terms: dict[str, tuple[str, float]] = {}
    term_where: dict[str, str] = {}
    for group_name, group in groups.items():
        where = f"groups.{group_name}"
        line = src.line_of(groups, group_name)
        group = src.mapping(group, where, line)
        src.keys(group, where, {"why", "terms"}, required=("terms",))
        if "why" in group:
            src.text(group["why"], f"{where}.why", src.line_of(group, "why"))
        for term, (weight, term_line) in src.weighted_terms(
            group["terms"], f"{where}.terms", src.line_of(group, "terms")
        ).items():
            if term in terms:
                raise src.error(
                    f"{where}.terms[{term!r}]", f"duplicate term (already in {term_where[term]})", term_line
                )
            terms[term] = (str(group_name), weight)
            term_where[term] = where

    patterns: list[_Pattern] = []
    raw_patterns = src.mapping(doc.get("patterns", {}), "patterns", src.line_of(doc, "patterns"))
    for name, spec in raw_patterns.items():
        where = f"patterns.{name}"
        line = src.line_of(raw_patterns, name)
        spec = src.mapping(spec, where, line)
        src.keys(spec, where, {"group", "why", "regex", "weight"}, required=("group", "regex", "weight"))
        group_name = src.text(spec["group"], f"{where}.group", src.line_of(spec, "group"))
        if group_name not in groups:
            raise src.error(f"{where}.group", f"unknown group {group_name!r}", src.line_of(spec, "group"))
        regex_text = src.text(spec["regex"], f"{where}.regex", src.line_of(spec, "regex"))
        regex = _compile(src, regex_text, f"{where}.regex", src.line_of(spec, "regex"))
        weight = src.number(spec["weight"], f"{where}.weight", src.line_of(spec, "weight"))
        patterns.append(_Pattern(str(name), group_name, regex, weight))

    masked: dict[str, str] = {}
    for key in ("inquiry_phrases", "benign_phrases"):
        for phrase in src.term_list(doc.get(key, []), key, src.line_of(doc, key)):
            if phrase in masked:
                raise src.error(key, f"duplicate phrase {phrase!r} (also in {masked[phrase]})", src.line_of(doc, key))
            if phrase in terms:
                raise src.error(
                    key,
                    f"{phrase!r} is also a term of {term_where[phrase]}; it would never count",
                    src.line_of(doc, key),
                )
            masked[phrase] = key

    masked_patterns: list[re.Pattern[str]] = []
    raw_benign = src.mapping(doc.get("benign_patterns", {}), "benign_patterns", src.line_of(doc, "benign_patterns"))
    for name, spec in raw_benign.items():
        where = f"benign_patterns.{name}"
        spec = src.mapping(spec, where, src.line_of(raw_benign, name))
        src.keys(spec, where, {"why", "regex"}, required=("regex",))
        regex_text = src.text(spec["regex"], f"{where}.regex", src.line_of(spec, "regex"))
        masked_patterns.append(_compile(src, regex_text, f"{where}.regex", src.line_of(spec, "regex")))

    negation = src.mapping(doc.get("negation", {}), "negation", src.line_of(doc, "negation"))
    src.keys(negation, "negation", {"why", "negators", "breakers"})
    negators: dict[str, int] = {}
    raw_negators = src.mapping(negation.get("negators", {}), "negation.negators", src.line_of(negation, "negators"))
    for raw, window in raw_negators.items():
        line = src.line_of(raw_negators, raw)
        word = src.term(raw, f"negation.negators[{raw!r}]", line)
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise src.error(f"negation.negators[{raw!r}]", f"window must be a positive integer, got {window!r}", line)
        if word in negators:
            raise src.error(f"negation.negators[{raw!r}]", "duplicate negator after normalisation", line)
        negators[word] = window
    breakers = frozenset(
        src.term_list(negation.get("breakers", []), "negation.breakers", src.line_of(negation, "breakers"))
    )

    combinations: list[_Combination] = []
    raw_combos = src.mapping(doc.get("combinations", {}), "combinations", src.line_of(doc, "combinations"))
    for name, spec in raw_combos.items():
        where = f"combinations.{name}"
        spec = src.mapping(spec, where, src.line_of(raw_combos, name))
        src.keys(
            spec,
            where,
            {"group", "why", "with", "with_patterns", "bonus", "department", "department_weight"},
            required=("group", "bonus"),
        )
        if "with" not in spec and "with_patterns" not in spec:
            raise src.error(where, "needs 'with' words or 'with_patterns'", src.line_of(raw_combos, name))
        raw_group = spec["group"]
        group_names = [raw_group] if isinstance(raw_group, str) else raw_group
        if not isinstance(group_names, list) or not group_names:
            raise src.error(f"{where}.group", "must be a group name or a list of them", src.line_of(spec, "group"))
        for group_name in group_names:
            if group_name not in groups:
                raise src.error(f"{where}.group", f"unknown group {group_name!r}", src.line_of(spec, "group"))
        with_words: list[str] = []
        if "with" in spec:
            with_words = src.term_list(spec["with"], f"{where}.with", src.line_of(spec, "with"))
            if not with_words:
                raise src.error(f"{where}.with", "no words", src.line_of(spec, "with"))
        with_patterns: list[re.Pattern[str]] = []
        if "with_patterns" in spec:
            line = src.line_of(spec, "with_patterns")
            raw_list = spec["with_patterns"]
            if not isinstance(raw_list, list) or not raw_list:
                raise src.error(f"{where}.with_patterns", "must be a non-empty list of regular expressions", line)
            for index, raw in enumerate(raw_list):
                item_where = f"{where}.with_patterns[{index}]"
                item_line = src.line_of(raw_list, index) or line
                with_patterns.append(_compile(src, src.text(raw, item_where, item_line), item_where, item_line))
        # a combination that only routes (department set) may add nothing to the score
        routes = "department" in spec
        bonus = src.number(
            spec["bonus"], f"{where}.bonus", src.line_of(spec, "bonus"), minimum=-1e-9 if routes else 0.0
        )
        department: str | None = None
        department_weight = 0.0
        if "department" in spec or "department_weight" in spec:
            if "department" not in spec or "department_weight" not in spec:
                raise src.error(
                    where, "'department' and 'department_weight' go together", src.line_of(raw_combos, name)
                )
            department = src.text(spec["department"], f"{where}.department", src.line_of(spec, "department"))
            department_weight = src.number(
                spec["department_weight"], f"{where}.department_weight", src.line_of(spec, "department_weight")
            )
        combinations.append(
            _Combination(
                str(name),
                frozenset(map(str, group_names)),
                tuple(with_words),
                tuple(with_patterns),
                bonus,
                department,
                department_weight,
            )
        )

    resolution = src.mapping(doc.get("resolution", {}), "resolution", src.line_of(doc, "resolution"))
    src.keys(resolution, "resolution", {"why", "phrases", "discount"})
    resolved_phrases = tuple(
        src.term_list(resolution.get("phrases", []), "resolution.phrases", src.line_of(resolution, "phrases"))
    )
    question = src.mapping(doc.get("question", {}), "question", src.line_of(doc, "question"))
    src.keys(question, "question", {"why", "endings", "demands", "done", "rhetorical"})

    def question_list(key: str) -> tuple[str, ...]:
        return tuple(src.term_list(question.get(key, []), f"question.{key}", src.line_of(question, key)))

    resolved_discount = 0.0
    if "discount" in resolution:
        resolved_discount = src.number(
            resolution["discount"], "resolution.discount", src.line_of(resolution, "discount")
        )

    intensity = src.mapping(doc.get("intensity", {}), "intensity", src.line_of(doc, "intensity"))
    src.keys(
        intensity,
        "intensity",
        {"why", "degree_words", "degree_weight", "degree_cap", "punctuation_weight", "punctuation_cap", "cap"},
    )

    def knob(key: str, default: float) -> float:
        if key not in intensity:
            return default
        return src.number(intensity[key], f"intensity.{key}", src.line_of(intensity, key), minimum=-1e-9)

    return _SeverityData(
        threshold=threshold,
        terms=terms,
        patterns=tuple(patterns),
        masked_phrases=tuple(masked),
        masked_patterns=tuple(masked_patterns),
        negators=negators,
        breakers=breakers,
        combinations=tuple(combinations),
        degree_words=tuple(
            src.term_list(
                intensity.get("degree_words", []), "intensity.degree_words", src.line_of(intensity, "degree_words")
            )
        ),
        degree_weight=knob("degree_weight", 0.5),
        degree_cap=knob("degree_cap", 1.0),
        punctuation_weight=knob("punctuation_weight", 0.5),
        punctuation_cap=knob("punctuation_cap", 1.0),
        intensity_cap=knob("cap", 1.5),
        resolved_phrases=resolved_phrases,
        resolved_discount=resolved_discount,
        question_endings=question_list("endings"),
        question_demands=question_list("demands"),
        question_done=question_list("done"),
        question_rhetorical=question_list("rhetorical"),
    )


def _compile(src: _Source, regex_text: str, where: str, line: int | None) -> re.Pattern[str]:
    try:
        regex = re.compile(regex_text)
    except re.error as exc:
        raise src.error(where, f"bad regular expression: {exc}", line) from None
    if regex.search("") is not None:
        raise src.error(where, "matches the empty string", line)
    return regex


_DEPARTMENT_KEY_RE = re.compile(r"[a-z][a-z0-9_]*\Z")


def _load_departments(path: Path) -> tuple[dict[str, str], dict[str, tuple[str, float]]]:
    """Returns (department key → name, in file order) and (term → (department, weight))."""
    src = _Source(path)
    doc = src.mapping(src.load_yaml(), "top level")
    src.keys(doc, "", {"departments"}, required=("departments",))
    departments = src.mapping(doc["departments"], "departments", src.line_of(doc, "departments"))
    if not departments:
        raise src.error("departments", "no departments", src.line_of(doc, "departments"))
    names: dict[str, str] = {}
    terms: dict[str, tuple[str, float]] = {}
    for key, spec in departments.items():
        line = src.line_of(departments, key)
        where = f"departments.{key}"
        if not isinstance(key, str) or not _DEPARTMENT_KEY_RE.match(key):
            raise src.error(where, "department key must be lower-case letters, digits and _", line)
        spec = src.mapping(spec, where, line)
        src.keys(spec, where, {"name", "terms"}, required=("name", "terms"))
        names[key] = src.text(spec["name"], f"{where}.name", src.line_of(spec, "name"))
        for term, (weight, term_line) in src.weighted_terms(
            spec["terms"], f"{where}.terms", src.line_of(spec, "terms")
        ).items():
            if term in terms:
                raise src.error(
                    f"{where}.terms[{term!r}]", f"duplicate term (already in departments.{terms[term][0]})", term_line
                )
            terms[term] = (key, weight)
    return names, terms


def _load_userdict(path: Path) -> list[tuple[str, int | None]]:
    """(word, freq) from jieba user dictionary lines ``word [freq] [tag]``; blank lines and ``#`` comments
    are skipped. The tag (part of speech) documents the word: segmentation does not use it."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise KnowledgeDataError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KnowledgeDataError(f"{path}: cannot read: {exc}") from None
    entries: list[tuple[str, int | None]] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) > 3:
            raise KnowledgeDataError(f"{path} line {number}: expected 'word [freq] [tag]', got {line!r}")
        word = normalize(parts[0]).strip()
        if not word:
            raise KnowledgeDataError(f"{path} line {number}: empty word")
        freq: int | None = None
        if len(parts) >= 2:
            if not parts[1].isdigit():
                raise KnowledgeDataError(f"{path} line {number}: {word!r}: freq {parts[1]!r} is not a whole number")
            freq = int(parts[1])
        if word in seen:
            raise KnowledgeDataError(f"{path} line {number}: duplicate word {word!r} (first at line {seen[word]})")
        seen[word] = number
        entries.append((word, freq))
    return entries


def _load_second_opinion(path: Path) -> SecondOpinion | None:
    """The second opinion's idf and weights (``knowledge.train_second_opinion`` writes the file), or None when
    the file does not exist: the word lists then decide alone. Anything else wrong raises KnowledgeDataError."""
    src = _Source(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise KnowledgeDataError(f"{path}: cannot read: {exc}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise src.error("JSON", f"invalid JSON: {exc.msg} (column {exc.colno})", exc.lineno) from None
    doc = src.mapping(doc, "top level")
    src.keys(doc, "", {"about", "ngram", "idf", "severity", "department"}, required=("idf", "severity", "department"))
    if "about" in doc and not isinstance(doc["about"], str | Mapping):
        raise src.error("about", f"must be a string or a mapping, got {type(doc['about']).__name__}")
    ngram = doc.get("ngram", [1, 3])
    if (
        not isinstance(ngram, list)
        or len(ngram) != 2
        or not all(isinstance(n, int) and not isinstance(n, bool) for n in ngram)
        or not 1 <= ngram[0] <= ngram[1]
    ):
        raise src.error("ngram", f"must be [shortest, longest] with 1 <= shortest <= longest, got {ngram!r}")
    low, high = ngram

    def finite(value: Any, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise src.error(where, f"must be a finite number, got {value!r}")
        return float(value)

    idf = src.mapping(doc["idf"], "idf")
    if not idf:
        raise src.error("idf", "no n-grams")
    for gram, value in idf.items():
        if not low <= len(gram) <= high:
            raise src.error(f"idf[{gram!r}]", f"n-gram length {len(gram)} is outside ngram {ngram!r}")
        if finite(value, f"idf[{gram!r}]") <= 0.0:
            raise src.error(f"idf[{gram!r}]", f"must be positive, got {value!r}")

    def weights(value: Any, where: str) -> None:
        for gram, weight in src.mapping(value, where).items():
            finite(weight, f"{where}[{gram!r}]")
            if gram not in idf:
                raise src.error(f"{where}[{gram!r}]", "n-gram has no idf")

    severity = src.mapping(doc["severity"], "severity")
    src.keys(severity, "severity", {"bias", "threshold", "weights"}, required=("bias", "threshold", "weights"))
    finite(severity["bias"], "severity.bias")
    threshold = finite(severity["threshold"], "severity.threshold")
    if not 0.0 < threshold < 1.0:
        raise src.error("severity.threshold", f"must lie between 0 and 1 (a probability), got {threshold!r}")
    weights(severity["weights"], "severity.weights")

    department = src.mapping(doc["department"], "department")
    src.keys(department, "department", {"keys", "bias", "lexicon_weight", "weights"},
             required=("keys", "bias", "lexicon_weight", "weights"))
    keys = department["keys"]
    if (not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys)
            or len(set(keys)) != len(keys)):
        raise src.error("department.keys", f"must be a list of distinct department keys, got {keys!r}")
    bias = department["bias"]
    if not isinstance(bias, list) or len(bias) != len(keys):
        raise src.error("department.bias", f"must be a list of {len(keys)} numbers (one per key), got {bias!r}")
    for index, value in enumerate(bias):
        finite(value, f"department.bias[{index}]")
    if finite(department["lexicon_weight"], "department.lexicon_weight") < 0.0:
        raise src.error("department.lexicon_weight", f"must not be negative, got {department['lexicon_weight']!r}")
    for key, column in src.mapping(department["weights"], "department.weights").items():
        if key not in keys:
            raise src.error(f"department.weights.{key}", f"not one of department.keys {keys!r}")
        weights(column, f"department.weights.{key}")
    return SecondOpinion.from_document(doc, source=str(path))


# --------------------------------------------------------------------------------------------
# Matching
# --------------------------------------------------------------------------------------------


class _Terms:
    """Occurrences of literal terms, longest first at each position (one compiled alternation, and the
    terms by their first character for ``find_overlapping``)."""

    __slots__ = ("_lengths_by_initial", "_regex", "_terms")

    def __init__(self, terms: Collection[str]) -> None:
        ordered = sorted(terms, key=lambda term: (-len(term), term))
        self._regex = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        self._terms = frozenset(terms)
        lengths: dict[str, set[int]] = {}
        for term in self._terms:
            lengths.setdefault(term[0], set()).add(len(term))
        # the lengths of the terms that start with each character, longest first
        self._lengths_by_initial = {initial: sorted(found, reverse=True) for initial, found in lengths.items()}

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        """Leftmost-longest, non-overlapping."""
        if self._regex is None:
            return iter(())
        return self._regex.finditer(text)

    def find_overlapping(self, text: str) -> Iterator[tuple[str, int]]:
        """The longest term starting at each position, dropping those inside an earlier, longer match:
        "发生踩踏事故" yields 发生踩踏 and 踩踏事故 (which overlap), but not 踩踏 (inside both)."""
        lengths_by_initial = self._lengths_by_initial
        terms = self._terms
        size = len(text)
        reach = 0
        for start, initial in enumerate(text):
            lengths = lengths_by_initial.get(initial)
            if lengths is None:
                continue
            for length in lengths:
                end = start + length
                if end <= reach:
                    break  # this term and any shorter one lie inside the earlier match
                term = text[start:end]
                if end <= size and term in terms:
                    reach = end
                    yield term, start
                    break

    def search(self, text: str, start: int = 0, end: int | None = None) -> re.Match[str] | None:
        """The first occurrence inside text[start:end]."""
        if self._regex is None:
            return None
        return self._regex.search(text, start, len(text) if end is None else end)


# A character-class range up to this wide counts as its characters; a wider one tells too little.
_MAX_INITIALS_RANGE = 256


def _required_characters(regex: re.Pattern[str]) -> list[frozenset[str]]:
    """Sets of characters of which every match of ``regex`` contains at least one each: for each part of
    the expression that a match cannot skip, the characters that part can begin with. Read from the
    parsed form (``re``'s own parser, so the reading is the engine's); empty when nothing can be told.

    A message lacking the characters of one set cannot match, so most of the (many, separate) pattern
    searches need not run: "被[^，。]{1,6}(打|揍)(了|伤)" needs 被, one of 打揍 and one of 了伤."""
    if regex.flags & ~re.UNICODE:  # case-insensitive and similar: the characters are not the text's
        return []
    return [frozenset(found) for found in _unskippable_initials(_regex_parser.parse(regex.pattern, regex.flags))]


def _unskippable_initials(items: Iterable[tuple[Any, Any]]) -> list[set[str]]:
    """The initials of each part of consecutive parsed regex items that a match cannot skip, looking into
    plain groups and into repeats of at least one."""
    ops = _regex_ops
    sets: list[set[str]] = []
    for op, argument in items:
        if op is ops.SUBPATTERN and not (argument[1] or argument[2]):  # a group without flags of its own
            sets.extend(_unskippable_initials(argument[3]))
        elif op in (ops.MAX_REPEAT, ops.MIN_REPEAT, ops.POSSESSIVE_REPEAT) and argument[0] >= 1:
            sets.extend(_unskippable_initials(argument[2]))
        else:
            found, can_be_empty = _item_initials(op, argument)
            if found is not None and not can_be_empty:
                sets.append(found)
    return sets


def _sequence_initials(items: Iterable[tuple[Any, Any]]) -> tuple[set[str] | None, bool]:
    """(initials or None, can match the empty string) of consecutive parsed regex items."""
    initials: set[str] = set()
    for op, argument in items:
        found, can_be_empty = _item_initials(op, argument)
        if found is None:
            return None, False
        initials |= found
        if not can_be_empty:
            return initials, False
    return initials, True


def _item_initials(op: Any, argument: Any) -> tuple[set[str] | None, bool]:
    """(initials or None, can match the empty string) of one parsed regex item."""
    ops = _regex_ops
    if op is ops.LITERAL:
        return {chr(argument)}, False
    if op is ops.IN:
        chars: set[str] = set()
        for member_op, member in argument:
            if member_op is ops.LITERAL:
                chars.add(chr(member))
            elif member_op is ops.RANGE and member[1] - member[0] < _MAX_INITIALS_RANGE:
                chars.update(map(chr, range(member[0], member[1] + 1)))
            else:  # a negated set, a category (\d, \w), a wide range
                return None, False
        return chars, False
    if op is ops.BRANCH:
        initials: set[str] = set()
        any_empty = False
        for alternative in argument[1]:
            found, can_be_empty = _sequence_initials(alternative)
            if found is None:
                return None, False
            initials |= found
            any_empty = any_empty or can_be_empty
        return initials, any_empty
    if op is ops.SUBPATTERN:
        _group, add_flags, del_flags, items = argument
        return (None, False) if add_flags or del_flags else _sequence_initials(items)
    if op is ops.ATOMIC_GROUP:
        return _sequence_initials(argument)
    if op in (ops.MAX_REPEAT, ops.MIN_REPEAT, ops.POSSESSIVE_REPEAT):
        minimum, _maximum, items = argument
        found, can_be_empty = _sequence_initials(items)
        return found, can_be_empty or minimum == 0
    if op in (ops.AT, ops.ASSERT, ops.ASSERT_NOT):  # zero width: the match begins with what follows
        return set(), True
    return None, False  # any character, a negated literal, a back-reference, a conditional


class _PatternFilter:
    """Which of a list of regexes can match a text, from the characters each requires (the sets of
    ``_required_characters``): those for which the text has a character of every set.

    Decided for all regexes at once, with integers as bit sets, because one set operation per regex
    would cost as much as the searches it saves: every required set has a bit; a character stands for
    the bits of the sets it belongs to, a text for the union of its characters' bits. The bits of one
    regex's sets are adjacent, followed by a spare bit: adding 1 at the lowest bit of every such group
    carries into its spare bit exactly when the whole group is set. A regex with no set has an empty
    group, so it is always tried."""

    __slots__ = ("_bits_of_character", "_group_lowest_bits", "_regex_of_spare_bit", "_spare_bits")

    def __init__(self, requirements: list[list[frozenset[str]]]) -> None:
        self._bits_of_character: dict[str, int] = {}
        self._group_lowest_bits = 0
        self._spare_bits = 0
        self._regex_of_spare_bit: dict[int, int] = {}  # spare bit's position → index of the regex
        position = 0
        for index, sets in enumerate(requirements):
            self._group_lowest_bits |= 1 << position
            for found in sets:
                for char in found:
                    self._bits_of_character[char] = self._bits_of_character.get(char, 0) | 1 << position
                position += 1
            self._spare_bits |= 1 << position
            self._regex_of_spare_bit[position] = index
            position += 1

    def can_match(self, text: str) -> list[int]:
        """The indices of the regexes that can match ``text``, in increasing order."""
        present = reduce(or_, map(self._bits_of_character.get, set(text), repeat(0)), 0)
        complete = (present + self._group_lowest_bits) & self._spare_bits
        indices: list[int] = []
        while complete:
            lowest = complete & -complete
            indices.append(self._regex_of_spare_bit[lowest.bit_length() - 1])
            complete ^= lowest
        return indices


@dataclass(slots=True)
class _Contribution:
    kind: str  # term | pattern | combination | intensity | resolution (a negative weight)
    label: str  # the term, the matched text of a pattern, the combination's name
    weight: float
    start: int = 0
    group: str | None = None
    negated_by: str | None = None  # set when a negator cancelled it (weight then does not count)


@dataclass(slots=True)
class _Analysis:
    severity_score: float
    contributions: list[_Contribution] = field(default_factory=list)
    department: str = ""
    department_confidence: float = 0.0
    department_terms: list[tuple[str, float, int]] = field(default_factory=list)
    department_scores: dict[str, float] = field(default_factory=dict)  # every department's term weight
    norm: str = ""  # the normalised text analysed
    second_opinion: float | None = None  # its p(critical), when a second opinion is loaded
    department_logits: dict[str, float] | None = None  # the second opinion's log-odds per department
    department_evidence: list[str] = field(default_factory=list)  # its n-grams, when no listed term routed it


def _is_clause_break(token: str) -> bool:
    """Punctuation, emoji and whitespace end a negator's reach (CJK characters are alphanumeric)."""
    return not any(ch.isalnum() for ch in token)


# --------------------------------------------------------------------------------------------
# The classifier
# --------------------------------------------------------------------------------------------


class Classifier:
    """Severity (R6.1d) and department (R6.2) of a follower message. Build with ``Classifier.load()``."""

    def __init__(
        self,
        severity: _SeverityData,
        department_names: dict[str, str],
        department_terms: dict[str, tuple[str, float]],
        userdict: list[tuple[str, int | None]],
        fallback: str,
        second_opinion: SecondOpinion | None = None,
    ) -> None:
        self._severity = severity
        self._second_opinion = second_opinion
        self._department_names = dict(department_names)
        self._department_order = {key: index for index, key in enumerate(department_names)}
        self._department_terms = dict(department_terms)
        self.fallback = fallback

        self._severity_terms = _Terms([t for t in severity.terms if not _is_latin(t)])
        # pinyin ("caita", "shoushang"): matched on the message with its spaces removed, like department terms
        self._latin_severity_terms = _Terms([t for t in severity.terms if _is_latin(t)])
        self._masked = _Terms(severity.masked_phrases)
        self._degree = _Terms(severity.degree_words)
        self._combination_words = [_Terms(combo.with_words) for combo in severity.combinations]
        self._resolved = _Terms(severity.resolved_phrases)
        self._pattern_filter = _PatternFilter([_required_characters(p.regex) for p in severity.patterns])
        self._max_window = max(severity.negators.values(), default=0)
        # negators whose reach is their whole clause (window >= _CLAUSE_WINDOW): hypotheses
        self._hypotheses = frozenset(w for w, window in severity.negators.items() if window >= _CLAUSE_WINDOW)
        # where none of these words occurs, there is no negator or hypothesis to find among the tokens
        self._negator_words = _Terms(severity.negators)
        self._hypothesis_words = _Terms(self._hypotheses)
        # Latin-letter terms (pinyin such as "tushuguan", English such as "museum") are matched on the
        # message with its spaces removed, so "tu shu guan" and "cable car" find them too.
        self._departments = _Terms([t for t in department_terms if not _is_latin(t)])
        self._latin_departments = _Terms([t for t in department_terms if _is_latin(t)])

        # Our domain words stay in our own segmenter: nobody else's words change our segmentation,
        # and ours do not change the screener's. jieba's main dictionary, which it shares, is loaded
        # on first use (cached in the temp directory by jieba) and once per process.
        self._segmenter = Segmenter(userdict)

    @classmethod
    def load(
        cls,
        data_dir: Path | None = None,
        *,
        departments: Collection[str] | None = None,
        fallback: str = "info_center",
    ) -> Classifier:
        """Read and validate ``severity.yaml``, ``departments.yaml``, ``userdict.txt`` and, when it exists,
        ``second_opinion.json`` from ``data_dir`` (default ``knowledge/data``; without the last one the word
        lists decide alone and ``second_opinion`` is None: the caller may say so). When ``departments`` (the
        configured keys) is given, every department in the data and the fallback must be among them. Raises
        KnowledgeDataError on any problem, before the segmenter is built (which loads jieba's dictionary,
        slowly, the first time in a process)."""
        data_dir = Path(data_dir) if data_dir is not None else DATA_DIR
        severity = _load_severity(data_dir / SEVERITY_FILE)
        names, terms = _load_departments(data_dir / DEPARTMENTS_FILE)
        userdict = _load_userdict(data_dir / USERDICT_FILE)
        second_opinion = _load_second_opinion(data_dir / SECOND_OPINION_FILE)
        departments_path = data_dir / DEPARTMENTS_FILE
        for combo in severity.combinations:
            if combo.department is not None and combo.department not in names:
                raise KnowledgeDataError(
                    f"{data_dir / SEVERITY_FILE}: combinations.{combo.name}.department: "
                    f"{combo.department!r} is not defined in {DEPARTMENTS_FILE}"
                )
        if departments is not None:
            known = set(departments)
            for key in names:
                if key not in known:
                    raise KnowledgeDataError(
                        f"{departments_path}: departments.{key}: not a configured department "
                        f"(configured: {', '.join(sorted(known))})"
                    )
            if fallback not in known:
                raise KnowledgeDataError(
                    f"fallback department {fallback!r} is not a configured department "
                    f"(configured: {', '.join(sorted(known))})"
                )
        elif fallback not in names:
            raise KnowledgeDataError(f"{departments_path}: fallback department {fallback!r} is not defined in the file")
        if second_opinion is not None:
            for key in second_opinion.departments:
                if key not in names:
                    raise KnowledgeDataError(
                        f"{data_dir / SECOND_OPINION_FILE}: department.keys: {key!r} is not defined in "
                        f"{DEPARTMENTS_FILE}"
                    )
        return cls(severity, names, terms, userdict, fallback, second_opinion)

    # -- public ------------------------------------------------------------------------------

    @property
    def threshold(self) -> float:
        return self._severity.threshold

    @property
    def second_opinion(self) -> SecondOpinion | None:
        """The second opinion in use, or None (its file was absent at load: the word lists decide alone)."""
        return self._second_opinion

    def word_lists_only(self) -> Classifier:
        """The same word lists without the second opinion (to train or measure the second opinion against)."""
        alone = copy.copy(self)
        alone._second_opinion = None
        return alone

    @property
    def departments(self) -> dict[str, str]:
        """Department key → name, as in departments.yaml (the order breaks ties)."""
        return dict(self._department_names)

    def tokens(self, text: str) -> list[str]:
        """The tokens the classifier sees (normalised text, our segmenter); for diagnostics and tests."""
        return self._segmenter.cut(normalize(_as_text(text))[:MAX_CHARS])

    def classify(self, text: str) -> Classification:
        return self._decide(self._analyse(text))

    def explain(self, text: str) -> dict[str, Any]:
        """``classify(text).to_dict()`` plus the threshold and every contribution: counted and negated
        terms, patterns, combinations, intensity, and the winning department's terms."""
        analysis = self._analyse(text)
        opinion = self._second_opinion
        return {
            **self._decide(analysis).to_dict(),
            "threshold": self._severity.threshold,
            "second_opinion_threshold": opinion.threshold if opinion is not None else None,
            "contributions": [
                {
                    "kind": c.kind,
                    "label": c.label,
                    "group": c.group,
                    "weight": c.weight,
                    "counted": c.negated_by is None,
                    "negated_by": c.negated_by,
                }
                for c in analysis.contributions
            ],
            "department_terms": [{"term": t, "weight": w} for t, w, _ in analysis.department_terms],
            "department_scores": {key: round(w, 3) for key, w in analysis.department_scores.items()},
            "department_model": None if analysis.department_logits is None else {
                "logits": {key: round(z, 3) for key, z in analysis.department_logits.items()},
                "evidence": analysis.department_evidence,
            },
        }

    # -- internals ---------------------------------------------------------------------------

    def _decide(self, analysis: _Analysis) -> Classification:
        score = float(round(analysis.severity_score, 2))
        counted = sorted(
            (c for c in analysis.contributions if c.kind in ("term", "pattern") and c.negated_by is None),
            key=lambda c: (-c.weight, c.start),
        )
        labels = [c.label for c in counted] + [term for term, _, _ in analysis.department_terms]
        labels += analysis.department_evidence
        critical = score >= self._severity.threshold
        p = analysis.second_opinion
        opinion = self._second_opinion
        if not critical and opinion is not None and p is not None and p >= opinion.threshold:
            # The model made it critical: say so first, then the n-grams that weighed most for it.
            critical = True
            labels = [f"{SECOND_OPINION_LABEL} {math.floor(p * 100)}%", *opinion.evidence(analysis.norm), *labels]
        return Classification(
            severity=CRITICAL if critical else ROUTINE,
            department=analysis.department,
            department_confidence=analysis.department_confidence,
            score=score,
            matched=tuple(dict.fromkeys(labels)),
            second_opinion=p,
        )

    def _analyse(self, text: str) -> _Analysis:
        # cut before normalising too, so a megabyte of text costs no more than MAX_CHARS of it
        norm = normalize(_as_text(text)[: 2 * MAX_CHARS])[:MAX_CHARS]
        tokens = _Tokens(self._segmenter, norm)
        severity_score, contributions, boosts = self._score(norm, tokens)
        analysis = _Analysis(severity_score=severity_score, contributions=contributions, norm=norm)
        if self._second_opinion is not None:
            analysis.second_opinion, analysis.department_logits = self._second_opinion.assess(norm)
        # "再不回复我就找电视台": the outlet named in a media threat is not the message's topic
        threat_spans = [
            (c.start, c.start + len(c.label))
            for c in contributions
            if c.kind in ("term", "pattern") and c.negated_by is None and c.group in _THREAT_GROUPS
        ]
        self._route(norm, tokens, analysis, boosts, threat_spans)
        return analysis

    def _score(
        self, norm: str, tokens: _Tokens
    ) -> tuple[float, list[_Contribution], list[tuple[str, str, float, int]]]:
        """The severity score, every contribution, and the department boosts of the combinations
        that fired (department, label, weight, position)."""
        data = self._severity
        masked = norm
        spans = [(m.start(), m.end()) for m in self._masked.finditer(norm)]
        for regex in data.masked_patterns:
            spans.extend((m.start(), m.end()) for m in regex.finditer(norm))
        if spans:
            spans = _merge_spans(spans)
            parts: list[str] = []
            last = 0
            for start, end in spans:
                parts.append(norm[last:start])
                parts.append(_MASK * (end - start))
                last = end
            parts.append(norm[last:])
            masked = "".join(parts)

        contributions: list[_Contribution] = []
        counted: set[str] = set()
        negated: dict[str, _Contribution] = {}

        # (kind, key, label, weight, start, group); a term or a pattern counts once, at its first
        # occurrence that no negator cancels
        candidates: list[tuple[str, str, str, float, int, str]] = []
        for term, start in self._severity_terms.find_overlapping(masked):
            group, weight = data.terms[term]
            candidates.append(("term", "t:" + term, term, weight, start, group))
        if _LATIN_RE.search(masked) is not None:
            compact = _SPACE_RE.sub("", masked)
            for m in self._latin_severity_terms.finditer(compact):
                term = m.group()
                group, weight = data.terms[term]
                # positions in ``compact`` are not ``norm``'s; the end of the text has no negator before it
                candidates.append(("term", "t:" + term, term, weight, len(norm), group))
        for pattern in self._patterns_that_can_match(masked):
            for m in pattern.regex.finditer(masked):
                candidates.append(("pattern", "p:" + pattern.name, m.group(), pattern.weight, m.start(), pattern.group))
        candidates.sort(key=lambda c: c[4])

        for kind, key, label, weight, start, group in candidates:
            if key in counted:
                continue
            if kind == "term" and start < len(norm) and tokens.straddles(start, start + len(label)):
                continue  # "去世" in 去/世界公园: the characters belong to two other words
            negator = None
            # pinyin terms (found in the space-free text) stand at len(norm): no context
            if start < len(norm) and not self._rhetorical(norm, start, start + len(label)):
                negator = (
                    self._negator_before(tokens, norm, start)
                    or self._asked_about(norm, start + len(label))
                    or (self._hypothesis_inside(tokens, norm, start, start + len(label)) if kind == "pattern" else None)
                )
            if negator is not None:
                negated.setdefault(key, _Contribution(kind, label, weight, start, group, negator))
                continue
            counted.add(key)
            negated.pop(key, None)
            contributions.append(_Contribution(kind, label, weight, start, group))

        # The same words are one piece of evidence: a term or pattern lying inside a heavier (or equal)
        # match that also counted ("走丢" inside "孩子走丢了") adds nothing of its own.
        found = list(contributions)
        for index, inner in enumerate(found):
            if inner.start >= len(norm):
                continue
            inner_end = inner.start + len(inner.label)
            outer = next(
                (
                    c
                    for other, c in enumerate(found)
                    if other != index
                    and c.start <= inner.start
                    and inner_end <= c.start + len(c.label)
                    and c.weight >= inner.weight
                    # the same span twice (a term and a pattern on the same words): the first one stays
                    and (c.start != inner.start or len(c.label) != len(inner.label) or other < index)
                ),
                None,
            )
            if outer is not None:
                contributions.append(
                    _Contribution("overlap", f"{inner.label}⊂{outer.label}", -inner.weight, inner.start, inner.group)
                )

        base = sum(c.weight for c in contributions)
        groups_hit = {c.group for c in contributions}
        boosts: list[tuple[str, str, float, int]] = []
        for combo, words in zip(data.combinations, self._combination_words, strict=True):
            if combo.groups & groups_hit:
                hit = words.search(norm)
                if hit is None:
                    for regex in combo.with_patterns:
                        hit = regex.search(norm)
                        if hit is not None:
                            break
                if hit is not None:
                    label = f"{combo.name}({hit.group()})"
                    if combo.bonus > 0:
                        contributions.append(_Contribution("combination", label, combo.bonus, hit.start()))
                        base += combo.bonus
                    if combo.department is not None:
                        boosts.append((combo.department, label, combo.department_weight, hit.start()))

        score = base
        if base > 0:
            degree = sorted({m.group() for m in self._degree.finditer(masked)})
            degree_bonus = min(data.degree_cap, data.degree_weight * len(degree), data.intensity_cap)
            runs = _PUNCT_RUN_RE.findall(norm)
            punct_bonus = min(data.punctuation_cap, data.punctuation_weight * len(runs))
            punct_bonus = min(punct_bonus, data.intensity_cap - degree_bonus)  # the total is capped too
            if degree_bonus > 0:
                contributions.append(_Contribution("intensity", "+".join(degree), degree_bonus))
            if punct_bonus > 0:
                contributions.append(_Contribution("intensity", "".join(runs)[:12], punct_bonus))
            score += degree_bonus + max(punct_bonus, 0.0)
            # "孩子走丢了一会儿，广播一喊就找到了": the message reports an incident already over
            resolved = self._resolved.search(masked) if data.resolved_discount > 0 else None
            if resolved is not None:
                discount = min(data.resolved_discount, score)
                contributions.append(_Contribution("resolution", resolved.group(), -discount, resolved.start()))
                score -= discount
        contributions.extend(negated.values())
        return score, contributions, boosts

    def _patterns_that_can_match(self, text: str) -> list[_Pattern]:
        """The severity patterns for which ``text`` has a character of each required set, in the data file's
        order (which orders the candidates that start at the same position)."""
        patterns = self._severity.patterns
        return [patterns[index] for index in self._pattern_filter.can_match(text)]

    def _rhetorical(self, norm: str, start: int, end: int) -> bool:
        """The clause holding a match (``start``–``end``) is a rhetorical question that asserts it: it opens with
        one of ``question.rhetorical`` before the match ("这不是受贿吗", "难道不是包庇?") and ends as a question.
        "这不是投诉，就问问" opens the same way but is no question: its 不是 negates."""
        openers = self._severity.question_rhetorical
        if not openers:
            return False
        before = _CLAUSE_END_RE.split(norm[:start])[-1]
        if not any(opener in before for opener in openers):
            return False
        stop = _CLAUSE_END_RE.search(norm, end)
        tail = norm[end : stop.start() if stop is not None else len(norm)].rstrip(" ~～…")
        return tail.endswith(("吗", "嘛", "么")) or (stop is not None and stop.group() == "?")

    def _asked_about(self, norm: str, end: int) -> str | None:
        """The question ending that makes the clause holding a match (ending at ``end``) a question about it:
        "撞到人怎么办", "纪委的举报电话是多少", "急救点在哪". Not when the rest of the clause reports something
        done ("有人受伤了吗") or demands action ("景区踩踏你们不管吗")."""
        data = self._severity
        if not data.question_endings:
            return None
        stop = _CLAUSE_END_RE.search(norm, end)
        tail = norm[end : stop.start() if stop is not None else len(norm)].rstrip(" ~～…")
        ending = next((e for e in data.question_endings if tail.endswith(e)), None)
        if ending is None:
            return None
        if any(word in tail for word in data.question_done) or any(word in tail for word in data.question_demands):
            return None
        return "?" + ending

    def _hypothesis_inside(self, tokens: _Tokens, norm: str, start: int, end: int) -> str | None:
        """A clause-wide negator (a hypothesis: 要是, 如果, 万一) standing inside a pattern's own match:
        "过山车要是卡在半空中" is matched from 过山车, so the word before the match never sees 要是."""
        if self._hypothesis_words.search(norm, start, end) is None:
            return None  # none in the matched text: its words need not be cut
        return next((word for word in tokens.words_from(start, end) if word in self._hypotheses), None)

    def _negator_before(self, tokens: _Tokens, norm: str, start: int) -> str | None:
        """The negator cancelling a match at ``start``, if one stands within its window in the same clause."""
        data = self._severity
        if self._negator_words.search(norm, 0, start) is None:
            return None  # no negator anywhere before the match: its words need not be cut
        # the token that straddles ``start`` contributes its part before the match ("没" of "没受伤")
        word_start = tokens.word_start(start)
        if word_start < start:
            head = norm[word_start:start]
            if data.negators.get(head, 0) >= 1:
                return head
            if head in data.breakers or _is_clause_break(head):
                return None
        for distance, word in enumerate(tokens.words_before(start), start=1):
            if word in data.breakers or _is_clause_break(word):
                return None
            window = data.negators.get(word)
            if window is not None and distance <= window:
                return word
            if distance >= self._max_window:
                return None
        return None

    def _route(
        self,
        norm: str,
        tokens: _Tokens,
        analysis: _Analysis,
        boosts: list[tuple[str, str, float, int]],
        threat_spans: list[tuple[int, int]],
    ) -> None:
        scores: dict[str, float] = {}
        seen: set[str] = set()
        hits: dict[str, list[tuple[str, float, int]]] = {}

        def add(department: str, label: str, weight: float, start: int) -> None:
            scores[department] = scores.get(department, 0.0) + weight
            hits.setdefault(department, []).append((label, weight, start))

        # overlapping, so that a term the tokenizer splits (市博 in 市/博物馆, 你们局 in 你们/局长) does not
        # hide the real word that starts inside it
        for term, start in self._departments.find_overlapping(norm):
            if term in seen or tokens.straddles(start, start + len(term)):
                continue
            department, weight = self._department_terms[term]
            in_threat = any(s <= start and start + len(term) <= e for s, e in threat_spans)
            if in_threat and department in _OUTLET_DEPARTMENTS:
                continue  # the outlet named in the threat; "把这家酒店的视频发小红书了" still names the hotel
            seen.add(term)
            add(department, term, weight, start)
        if _LATIN_RE.search(norm) is not None:
            compact = _SPACE_RE.sub("", norm)
            for m in self._latin_departments.finditer(compact):
                term = m.group()
                if term not in seen:
                    seen.add(term)
                    department, weight = self._department_terms[term]
                    add(department, term, weight, len(norm))  # positions in ``compact`` are not ``norm``'s
        for department, label, weight, start in boosts:
            add(department, label, weight, start)
        analysis.department_scores = scores
        if analysis.department_logits is not None and self._second_opinion is not None:
            self._route_with_second_opinion(norm, analysis, scores, hits, self._second_opinion)
            return
        if not scores:
            analysis.department = self.fallback
            analysis.department_confidence = _FALLBACK_CONFIDENCE
            return
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], self._department_order[kv[0]]))
        best_key, best = ranked[0]
        second = ranked[1][1] if len(ranked) > 1 else 0.0
        # strength: how much evidence (one weight-3 term → 0.63, two → 0.86); margin: how clear the
        # winner is (tied → 0). A tie can therefore never reach 0.5.
        strength = 1.0 - math.exp(-best / 3.0)
        margin = (best - second) / best
        analysis.department = best_key
        analysis.department_confidence = round(strength * (0.5 + 0.5 * margin), 3)
        analysis.department_terms = sorted(hits[best_key], key=lambda h: (-h[1], h[2]))

    def _route_with_second_opinion(
        self,
        norm: str,
        analysis: _Analysis,
        scores: dict[str, float],
        hits: dict[str, list[tuple[str, float, int]]],
        opinion: SecondOpinion,
    ) -> None:
        """The model's log-odds for each department plus the word lists' score for it, weighted: on messages by
        writers who never saw the lists this routed 0.927 right where the lists alone routed 0.81, because the
        model knows the subjects the lists have no word for, and the lists still carry a clear term. The
        winner's softmax share is the confidence."""
        assert analysis.department_logits is not None
        combined = {key: logit + opinion.lexicon_weight * scores.get(key, 0.0)
                    for key, logit in analysis.department_logits.items()}
        best_key = max(combined, key=lambda key: (combined[key], -self._department_order.get(key, 0)))
        top = combined[best_key]
        share = 1.0 / sum(math.exp(value - top) for value in combined.values())
        analysis.department = best_key
        analysis.department_confidence = round(share, 3)
        analysis.department_terms = sorted(hits.get(best_key, []), key=lambda h: (-h[1], h[2]))
        if not analysis.department_terms:
            analysis.department_evidence = opinion.evidence(norm, limit=3, department=best_key)


class _Tokens:
    """The tokens of one normalised message with their character offsets, for the questions asked about
    the words at and around a match. Segmenting is the largest part of a classification, and the
    segmenter cuts each piece of a text on its own (``Segmenter.pieces``), so a piece is cut when a
    question first reaches into it: most messages are asked about one or two of their clauses, a
    message in which nothing matched about none."""

    __slots__ = ("_cut", "_piece_starts", "_pieces", "_segmenter", "_size", "_text")

    def __init__(self, segmenter: Segmenter, text: str) -> None:
        self._segmenter = segmenter
        self._text = text
        self._size = len(text)
        self._pieces = segmenter.pieces(text)
        self._piece_starts: list[int] = []
        offset = 0
        for piece in self._pieces:
            self._piece_starts.append(offset)
            offset += len(piece)
        # per piece, once cut: its words and their starts and ends in the text
        self._cut: list[tuple[list[str], list[int], list[int]] | None] = [None] * len(self._pieces)

    def _piece(self, index: int) -> tuple[list[str], list[int], list[int]]:
        cut = self._cut[index]
        if cut is None:
            words = self._segmenter.cut(self._pieces[index])
            starts: list[int] = []
            ends: list[int] = []
            offset = self._piece_starts[index]
            for word in words:
                starts.append(offset)
                offset += len(word)
                ends.append(offset)
            cut = self._cut[index] = (words, starts, ends)
        return cut

    def _piece_at(self, position: int) -> int:
        """The index of the piece holding the character at ``position`` (0 <= position < size)."""
        return bisect.bisect_right(self._piece_starts, position) - 1

    def straddles(self, start: int, end: int) -> bool:
        """True when a word begins inside the span [start, end) and runs on past its end: the term's tail
        belongs to the next word, so the term was never said (去世 in 去/世界公园, 打人 in 打/人家, 大火 in
        大/火锅, 起火 in 一起/火锅). A term may be whole words, lie inside one word (受伤 in 受伤者), or
        begin inside a word (人死了 in 有人/死/了)."""
        if end <= start or not self._segmenter.may_straddle(self._text, start, end):
            return False
        _, starts, ends = self._piece(self._piece_at(end - 1))
        last = bisect.bisect_right(starts, end - 1) - 1  # the word holding the span's last character
        return start < starts[last] < end < ends[last]

    def word_start(self, position: int) -> int:
        """Where the word holding the character at ``position`` begins (``position`` at the end of the text)."""
        if position >= self._size:
            return position
        _, starts, _ = self._piece(self._piece_at(position))
        return starts[bisect.bisect_right(starts, position) - 1]

    def words_before(self, position: int) -> Iterator[str]:
        """The words that end at or before ``position``, nearest first."""
        if position <= 0 or not self._pieces:
            return
        index = self._piece_at(min(position, self._size) - 1)
        words, _, ends = self._piece(index)
        yield from reversed(words[: bisect.bisect_right(ends, position)])
        for earlier in range(index - 1, -1, -1):
            yield from reversed(self._piece(earlier)[0])

    def words_from(self, start: int, end: int) -> Iterator[str]:
        """The words that begin at or after ``start``, in order, up to the first one that ends after ``end``."""
        if start >= self._size:
            return
        index = self._piece_at(start)
        words, starts, ends = self._piece(index)
        at = bisect.bisect_left(starts, start)
        while True:
            for word, word_end in zip(words[at:], ends[at:], strict=True):
                if word_end > end:
                    return
                yield word
            index += 1
            if index == len(self._pieces):
                return
            words, _, ends = self._piece(index)
            at = 0


_LATIN_RE = re.compile("[a-z]")
_CLAUSE_WINDOW = 10  # a negator with at least this window covers its clause, even inside a pattern's match
_THREAT_GROUPS = frozenset({"media"})
# departments whose words name an outlet or a channel (电视台, 记者, 媒体, 网上): skipped inside a threat
_OUTLET_DEPARTMENTS = frozenset({"broadcasting", "office", "info_center"})
_CLAUSE_END_RE = re.compile(r"[,.!?;，。！？；\n]")
_SPACE_RE = re.compile(r"\s+")


def _merge_spans(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, non-overlapping spans covering the same characters."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _is_latin(term: str) -> bool:
    """A term written in Latin letters and digits only (pinyin, English, "ktv", "5a")."""
    return term.isascii()


def _as_text(text: object) -> str:
    if isinstance(text, str):
        return text
    if text is None:
        return ""
    if isinstance(text, bytes | bytearray):
        return bytes(text).decode("utf-8", errors="replace")
    return str(text)
