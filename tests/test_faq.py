"""knowledge.faq: the FAQ knowledge base (issue 3, part 4).

A routine question that matches an entry gets the entry's answer as the passive reply at once; a
wrong answer is worse than none (the message then waits for a person, within the SLA). The tables
below pin both sides: questions as netizens type them (paraphrases, typos, traditional characters,
full-width, emoji, fillers) and messages that must get no FAQ answer (complaints, critical
messages, greetings, chat, questions about places the bureau does not run, CrossWOZ hotel and
attraction requests).
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from knowledge.faq import (
    ANSWER_MAX_CHARS,
    DEFAULT_CUTOFF,
    FAQ_FILE,
    FaqEntry,
    FaqFormatError,
    FaqMatch,
    FaqMatcher,
    FillerWords,
    dump_entries,
    entries_from_dicts,
    entries_to_dicts,
    load_entries,
    normalize_question,
    validate_entries,
)

ROOT = Path(__file__).resolve().parent.parent
CROSSWOZ = ROOT / "tests" / "data" / "crosswoz" / "user_requests_attraction_hotel.jsonl"
DEPARTMENT_KEYS = tuple(yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))["departments"])

WEIBO_MAX_CHARS = 300  # the shipped answers must also fit a Weibo private message


@pytest.fixture(scope="module")
def shipped() -> list[FaqEntry]:
    return load_entries(FAQ_FILE, departments=DEPARTMENT_KEYS)


@pytest.fixture(scope="module")
def matcher(shipped: list[FaqEntry]) -> FaqMatcher:
    return FaqMatcher(shipped)


# --------------------------------------------------------------------------------------------
# The match table
# --------------------------------------------------------------------------------------------

# (message as a netizen would type it, expected entry id or None). The first block was used to
# choose the scorer and the cut-off; the blocks marked "held out" were written before a change and
# scored once afterwards (their misses are in HARD_CASES, not here). See bench/faq_match.py.
MATCH_TABLE: list[tuple[str, str | None]] = [
    # -- opening hours (tuning set)
    ("请问博物馆几点开门？", "museum-hours"),
    ("博物馆周一开门吗", "museum-hours"),
    ("博物館幾點關門", "museum-hours"),  # traditional
    ("你好，博物馆今天开门吗😊", "museum-hours"),  # greeting + emoji
    ("博物官几点开门", "museum-hours"),  # typo: 官 for 馆
    ("图书馆几点关门", "library-hours"),
    ("图书馆晚上几点关门？", "library-hours"),
    ("圖書館週一開門嗎", "library-hours"),  # traditional
    ("文化馆几点开门呀", "cultural-centre-hours"),
    ("文化馆周六开吗", "cultural-centre-hours"),
    # -- booking and tickets
    ("博物馆要预约吗", "museum-booking"),
    ("去博物馆参观需要提前预约吗？", "museum-booking"),
    ("博物馆门票多少钱啊", "museum-admission-free"),
    ("博物馆免费吗", "museum-admission-free"),
    ("老年人门票有优惠吗", "tickets-senior-discount"),
    ("老年人門票有優惠嗎", "tickets-senior-discount"),
    ("６０岁以上老人免门票吗？", "tickets-senior-discount"),  # full-width digits and ?
    ("学生证能半价吗", "tickets-student-discount"),
    ("学生票怎么买？", "tickets-student-discount"),
    ("军人免票吗", "tickets-military-discount"),
    ("退役军人去景区免门票吗", "tickets-military-discount"),
    ("小孩多高要买票", "tickets-child-policy"),
    ("几岁以下的小孩免票", "tickets-child-policy"),
    ("残疾人免门票吗", "tickets-disability-discount"),
    ("景区要预约吗", "scenic-reservation"),
    ("市里有哪些5A景区", "scenic-spot-list"),
    # -- vouchers, hotlines, complaint channels (asking HOW to complain is routine)
    ("消费券怎么领？", "consumption-vouchers"),
    ("消费卷怎么领", "consumption-vouchers"),  # typo: 卷 for 券
    ("🙏请问文旅消费券在哪里领", "consumption-vouchers"),
    ("旅游投诉电话是多少", "complaint-tourism"),
    ("投诉电话是多少", "complaint-tourism"),
    ("12318是什么电话", "complaint-cultural-market"),
    ("文化市场举报电话是多少", "complaint-cultural-market"),
    ("怎么投诉导游？", "tour-guide-complaint-how"),
    ("怎么投诉黑导游", "tour-guide-complaint-how"),
    ("旅游合同纠纷怎么处理", "refund-dispute"),
    ("报团了想退团怎么退钱", "refund-dispute"),
    # -- licences
    ("怎么查旅行社是不是正规的", "travel-agency-licence-check"),
    ("导游证怎么查真假", "tour-guide-licence-check"),
    ("导游正怎么查", "tour-guide-licence-check"),  # typo: 正 for 证
    ("开网吧要办什么证", "internet-cafe-licence"),
    ("網吧許可證怎麼辦", "internet-cafe-licence"),
    ("ＫＴＶ要办什么证", "ktv-licence"),  # full-width latin
    ("开ktv需要什么手续", "ktv-licence"),
    ("未成年能进网吧吗", "internet-cafe-minors"),
    ("办演唱会需要审批吗？", "performance-approval"),
    # -- heritage, broadcasting, the bureau
    ("非遗项目怎么申报啊", "ich-application"),
    ("非遺項目怎麼申報", "ich-application"),
    ("挖到古董要上交吗", "relic-found-report"),
    ("有线电视没信号了怎么报修", "cable-tv-repair"),
    ("有线电视没信号怎么包修", "cable-tv-repair"),  # typo: 包 for 报
    ("卫星锅能装吗", "satellite-dish-rules"),
    ("怎么报名志愿者", "volunteer-signup"),
    ("文旅局在哪里？", "bureau-address-hours"),
    ("借书证怎么办", "library-card"),
    ("图书馆能借几本书", "library-borrowing-rules"),
    ("请问文物保护单位可以拍照吗", "relic-photography"),
    ("非遗展览在哪里举办", "ich-events"),
    # -- held out (1)
    ("博物馆开放时间", "museum-hours"),
    ("博物馆怎么约", "museum-booking"),
    ("博物馆收不收费", "museum-admission-free"),
    ("图书馆开到几点", "library-hours"),
    ("图书馆怎么续借啊", "library-borrowing-rules"),
    ("文化馆有免费的培训班吗", "cultural-centre-free-classes"),
    ("大学生有门票优惠吗", "tickets-student-discount"),
    ("现役军人景区门票优惠吗", "tickets-military-discount"),
    ("A级景区名单在哪里查", "scenic-spot-list"),
    ("消費券怎麼用", "consumption-vouchers"),
    ("旅游咨询热线是多少", "tourism-hotline"),
    ("留言多久回复啊", "account-reply-time"),
    ("在哪里投诉景区", "complaint-tourism"),
    ("12345能投诉旅游的事吗", "hotline-12345"),
    ("旅行社的资质怎么查询", "travel-agency-licence-check"),
    ("导游资格证考试怎么报名", "tour-guide-exam"),
    ("开旅行社要什么条件", "travel-agency-application"),
    ("娱乐场所许可证怎么办理", "ktv-licence"),
    ("营业性演出要审批吗", "performance-approval"),
    ("惠民演出票在哪领", "huimin-performance-tickets"),
    ("钢琴考级在哪报名", "art-grade-exam"),
    ("施工挖出文物了怎么办", "relic-found-report"),
    ("博物馆里可以拍照吗", "relic-photography"),
    ("户户通没信号了", "huhutong-service"),
    ("政府信息公开怎么申请", "information-disclosure"),
    # -- held out (2)
    ("博物馆几点关门啊", "museum-hours"),
    ("博物馆明天开不开门", "museum-hours"),
    ("博物馆参观要预约吗？", "museum-booking"),
    ("博物馆有免费讲解吗", "museum-guided-tour"),
    ("图书馆周日开门吗", "library-hours"),
    ("老人去景区免票吗", "tickets-senior-discount"),  # not 军人去景区免票吗 (a one-character swap)
    ("军人证能免票吗", "tickets-military-discount"),
    ("残疾证可以免门票吗", "tickets-disability-discount"),
    ("消费券在哪领啊", "consumption-vouchers"),
    ("文旅消费券怎么使用", "consumption-vouchers"),
    ("景区要不要实名预约", "scenic-reservation"),
    ("怎么投诉旅行社啊", "complaint-tourism"),
    ("12318是干什么的", "complaint-cultural-market"),
    ("导游证真假怎么查", "tour-guide-licence-check"),
    ("旅行社有没有资质怎么查", "travel-agency-licence-check"),
    ("网吧许可证怎么申请", "internet-cafe-licence"),
    ("未成年人能不能进网吧", "internet-cafe-minors"),
    ("非遗项目如何申报", "ich-application"),
    ("有线电视坏了找谁修", "cable-tv-repair"),
    ("家里可以装卫星电视吗", "satellite-dish-rules"),
    ("文旅局几点下班", "bureau-address-hours"),
    # -- held out (3)
    ("老年人免门票吗", "tickets-senior-discount"),
    ("老人门票优惠吗", "tickets-senior-discount"),
    ("小孩去景区免票吗", "tickets-child-policy"),
    ("军人景区免票吗", "tickets-military-discount"),
    ("残疾人去景区要门票吗", "tickets-disability-discount"),
    ("博物馆周二开门吗", "museum-hours"),
    ("图书馆几点开门啊", "library-hours"),
    ("图书管几点关门", "library-hours"),  # typo
    ("文化管几点开门", "cultural-centre-hours"),  # typo
    ("消费劵怎么领取", "consumption-vouchers"),  # variant character 劵
    ("导游证怎么查询", "tour-guide-licence-check"),
    ("开网吧要什么许可证", "internet-cafe-licence"),
    ("有线电视没有信号怎么办", "cable-tv-repair"),
    ("非遗怎么申报", "ich-application"),
    ("旅游投诉打什么电话", "complaint-tourism"),
    ("志愿者怎么报名", "volunteer-signup"),
    # ---------------------------------------------------------------- no FAQ answer
    # complaints, including ones about a topic an entry answers questions on
    # -- a first clause that only says what the message is not (fresh-eyes pass), and what is no such clause
    ("我不是要曝光谁，就是想问下导游证怎么查真假", "tour-guide-licence-check"),
    ("不是投诉哈，想问下学生去景区有优惠吗", "tickets-student-discount"),
    ("没别的意思，就问问老人去景区免票吗", "tickets-senior-discount"),
    ("不是说免费吗，怎么还收门票", None),
    # -- the subject of the entry (its first tag) is elsewhere in the phrasing: "民宿怎么办证" (second fresh-eyes pass)
    ("请问怎么办老年证", None),
    ("怎么办演出证", None),
    ("怎么办残疾证", None),
    ("民宿怎么办证？", "homestay-registration"),
    ("不是投诉，博物馆的保安态度太差了", None),
    ("导游强制购物", None),
    ("导游强制购物，不买不让走，我要投诉", None),
    ("旅行社不退钱，太坑了", None),
    ("酒店房间不干净，床单上有头发", None),
    ("博物馆的讲解员态度太差了", None),
    ("图书馆空调太冷了", None),
    ("有线电视又没信号了，一个星期了都没人来修", None),
    ("网吧里有小孩在上网", None),
    ("12345打了没人接", None),
    ("门票太贵了吧，一百多块钱！！！", None),
    ("导游骂人，态度恶劣", None),
    ("旅行社把我们扔在半路不管了", None),
    ("景区厕所太脏了", None),
    ("博物馆门口的保安很凶", None),
    ("网吧里抽烟的人太多了", None),
    ("导游把我们丢在景区不管了", None),
    ("网吧老板骂人", None),
    ("有线电视收费太贵了", None),
    ("图书馆的书太旧了", None),
    ("导游证被扣了", None),
    ("我是来投诉的", None),
    # critical (the pipeline never answers these from the FAQ anyway)
    ("景区发生踩踏，好多人受伤", None),
    ("景區發生踩踏事故，多人受傷", None),
    ("我要举报你们局长受贿", None),
    ("酒店着火了！！", None),
    ("景区里有人掉水里了，快来人", None),
    ("你们局里有人收红包", None),
    ("视频已经发到抖音上了", None),
    ("景区缆车停了，人被困在上面", None),
    # greetings, thanks, noise, chat
    ("在吗", None),
    ("你好", None),
    ("谢谢", None),
    ("好的，谢谢", None),
    ("收到，谢谢", None),
    ("嗯嗯", None),
    ("早上好", None),
    ("123", None),
    ("？？？", None),
    ("哈哈哈哈", None),
    ("😊😊", None),
    ("今天天气真好", None),
    ("你们小编真可爱", None),
    ("你是机器人吗", None),
    ("明天会下雨吗", None),
    ("什么时候放假", None),
    # places and people the knowledge base does not answer for, in the same frames
    ("科技馆几点开门", None),
    ("体育馆几点开门", None),
    ("海洋馆几点开门", None),
    ("美术馆几点开门", None),
    ("档案馆几点开门", None),
    ("纪念馆周一开门吗", None),
    ("游泳馆周一开门吗", None),
    ("电影院几点开门", None),
    ("动物园门票多少钱", None),
    ("植物园门票多少钱", None),
    ("游乐园门票多少钱", None),
    ("公园门票多少钱", None),
    ("记者去景区免票吗", None),
    ("医生免门票吗", None),
    ("健身房可以办卡吗", None),
    # hotel and travel requests
    ("附近有什么好吃的", None),
    ("演唱会什么时候开始", None),
    ("这家酒店有wifi吗", None),
    ("火车站怎么走", None),
    ("我想订一个标准间", None),
    ("哪家酒店性价比高", None),
    ("从机场到市区怎么坐车", None),
]

# Real questions the matcher misses today, and the one unrelated message it answers, kept to watch
# the rate (test_match_rate_over_all_tables) rather than to pin: a miss costs a person's reply
# within the SLA, not a wrong answer. Most would be fixed by an alternate in faq.yaml.
HARD_CASES: list[tuple[str, str | None]] = [
    ("投诉旅行社打什么电话", "complaint-tourism"),  # word order differs from every phrasing
    ("市博物馆星期一休息吗", "museum-hours"),  # 休息 for 闭馆/开门: no characters in common
    ("办借书证要什么材料", "library-card"),
    ("65岁老人进景区要门票吗", "tickets-senior-discount"),
    ("孩子要买门票吗", "tickets-child-policy"),
    ("举报黑网吧打什么电话", "complaint-cultural-market"),
    ("图书馆读者证怎么办理", "library-card"),
    ("文化馆星期天开放吗", "cultural-centre-hours"),  # 星期天 against 周末: two characters swapped
    ("学生去景区能半价吗", "tickets-student-discount"),
    ("媒体采访找谁", "media-interview"),
    ("儿童免票吗", "tickets-child-policy"),
    ("学生免门票吗", "tickets-student-discount"),
    ("卫星锅能不能装", "satellite-dish-rules"),
    # a one-character swap of subject in a shared frame is not caught: 老师 for 老人
    ("老师去景区免票吗", None),
]


@pytest.mark.parametrize(("text", "expected"), MATCH_TABLE, ids=[f"m{i:03d}" for i in range(len(MATCH_TABLE))])
def test_match_table(matcher: FaqMatcher, text: str, expected: str | None) -> None:
    result = matcher.match(text)
    got = result.entry.id if result else None
    assert got == expected, matcher.explain(text)


def test_match_table_is_large_and_covers_both_sides() -> None:
    texts = [t for t, _ in MATCH_TABLE + HARD_CASES]
    assert len(texts) == len(set(texts)), "a message appears twice"
    questions = [t for t, e in MATCH_TABLE if e is not None]
    non_questions = [t for t, e in MATCH_TABLE if e is None]
    assert len(questions) >= 40 and len(non_questions) >= 40


def test_table_ids_exist(shipped: list[FaqEntry]) -> None:
    ids = {e.id for e in shipped}
    for _, expected in MATCH_TABLE + HARD_CASES:
        assert expected is None or expected in ids, expected


def test_match_rate_over_all_tables(matcher: FaqMatcher) -> None:
    """Over every question written for these tables, at least 90 % get their entry and none gets
    another entry's answer; of the non-questions, at most one (the known 老师/老人 swap) gets one."""
    rows = MATCH_TABLE + HARD_CASES
    questions = [(t, e) for t, e in rows if e is not None]
    right = wrong = false = 0
    for text, expected in rows:
        result = matcher.match(text)
        got = result.entry.id if result else None
        if expected is None:
            false += got is not None
        elif got == expected:
            right += 1
        elif got is not None:
            wrong += 1
    assert wrong == 0
    assert false <= 1
    assert right / len(questions) >= 0.9, f"{right}/{len(questions)}"


def test_every_phrasing_of_every_entry_matches_its_entry(shipped: list[FaqEntry], matcher: FaqMatcher) -> None:
    for entry in shipped:
        for phrasing in entry.questions:
            result = matcher.match(phrasing)
            assert result is not None and result.entry.id == entry.id, (phrasing, matcher.explain(phrasing))
            assert result.score == 100.0
            assert result.matched_question == phrasing


# --------------------------------------------------------------------------------------------
# CrossWOZ: routine requests about Beijing attractions and hotels, not addressed to the bureau
# --------------------------------------------------------------------------------------------


def test_crosswoz_requests_almost_never_match(matcher: FaqMatcher) -> None:
    """A fixed sample of 100. Over all 400, one matches today: "电话是多少？" (a bare "what is the
    phone number", which gets the tourism information line at 71.4). The bound leaves room for one
    more such bare question, no more."""
    lines = CROSSWOZ.read_text(encoding="utf-8").splitlines()
    sample = [json.loads(line)["text"] for line in random.Random(20240603).sample(lines, 100)]
    hits = [(text, r.entry.id, r.score) for text in sample if (r := matcher.match(text)) is not None]
    assert len(hits) <= 2, hits


def test_crosswoz_all_400_at_most_two_match(matcher: FaqMatcher) -> None:
    texts = [json.loads(line)["text"] for line in CROSSWOZ.read_text(encoding="utf-8").splitlines()]
    assert len(texts) == 400
    hits = [(text, r.entry.id, r.score) for text in texts if (r := matcher.match(text)) is not None]
    assert len(hits) <= 2, hits


# --------------------------------------------------------------------------------------------
# Matcher behaviour
# --------------------------------------------------------------------------------------------


def test_empty_knowledge_base_matches_nothing() -> None:
    matcher = FaqMatcher([])
    assert len(matcher) == 0
    assert matcher.match("博物馆几点开门") is None
    assert matcher.match("") is None


@pytest.mark.parametrize("text", ["", " ", "在吗", "吗", "？", "😊", "a", "你好！", "请问", "谢谢。"])
def test_very_short_normalised_text_matches_nothing(matcher: FaqMatcher, text: str) -> None:
    assert len(matcher.normalize(text)) < 2
    assert matcher.match(text) is None


def test_non_text_matches_nothing(matcher: FaqMatcher) -> None:
    assert matcher.match(None) is None  # type: ignore[arg-type]
    assert matcher.match(12318) is None  # type: ignore[arg-type]


def test_match_result_carries_entry_score_and_phrasing(matcher: FaqMatcher) -> None:
    result = matcher.match("請問，博物館幾點開門？😊")
    assert isinstance(result, FaqMatch)
    assert result.entry.id == "museum-hours"
    assert DEFAULT_CUTOFF <= result.score <= 100
    assert result.matched_question in result.entry.questions


def test_cutoff_is_applied(shipped: list[FaqEntry]) -> None:
    text = "图书馆晚上几点关门"  # about 80 against "图书馆几点开门几点关门"
    score = FaqMatcher(shipped, cutoff=50).match(text)
    assert score is not None
    assert FaqMatcher(shipped, cutoff=min(100.0, score.score + 0.1)).match(text) is None
    with pytest.raises(ValueError):
        FaqMatcher(shipped, cutoff=0)
    with pytest.raises(ValueError):
        FaqMatcher(shipped, cutoff=101)


def test_another_place_in_the_same_frame_is_refused_then_the_next_candidate_tried() -> None:
    entries = [
        FaqEntry("cultural-centre-hours", "文化馆几点开门", "A"),
        FaqEntry("museum-hours", "科技馆开放时间", "B"),
    ]
    matcher = FaqMatcher(entries)
    explained = matcher.explain("科技馆几点开门")
    top = explained["candidates"][0]
    assert top["id"] == "cultural-centre-hours" and top["score"] >= DEFAULT_CUTOFF
    assert top["names_something_else"] is True
    assert explained["match"] is None  # the next candidate scores below the cut-off
    # function characters do not count as naming something else
    assert FaqMatcher([FaqEntry("tickets", "惠民演出票怎么领", "C")]).match("惠民演出票在哪领") is not None


def test_duplicate_phrasing_across_entries_first_entry_wins() -> None:
    a = FaqEntry("a-one", "博物馆几点开门", "A")
    b = FaqEntry("b-two", "博物馆几点开门？", "B")
    result = FaqMatcher([a, b]).match("博物馆几点开门")
    assert result is not None and result.entry.id == "a-one"


def test_long_message_is_cut_and_matches_nothing(matcher: FaqMatcher) -> None:
    assert matcher.match("博物馆几点开门" * 10_000) is None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_match_never_raises(text: str) -> None:
    matcher = _shared_matcher()
    result = matcher.match(text)
    assert result is None or result.score >= DEFAULT_CUTOFF


_MATCHER: list[FaqMatcher] = []


def _shared_matcher() -> FaqMatcher:
    if not _MATCHER:
        _MATCHER.append(FaqMatcher(load_entries(FAQ_FILE)))
    return _MATCHER[0]


# --------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------

NORMALISATION: list[tuple[str, str]] = [
    # traditional → simplified
    ("博物館幾點開門", "博物馆几点开门"),
    ("網吧許可證怎麼辦", "网吧许可证怎么办"),
    ("圖書館週一開門", "图书馆周一开门"),
    # full-width → half-width, lower case
    ("ＫＴＶ许可证", "ktv许可证"),
    ("６０岁以上老人", "60岁以上老人"),
    ("5A景区", "5a景区"),
    # punctuation, emoji, whitespace
    ("博物馆，几点 开门？？？", "博物馆几点开门"),
    ("😊博物馆几点开门🙏🏻👍", "博物馆几点开门"),
    ("博物馆\u200b几点\t开门\n", "博物馆几点开门"),
    ("《非遗》项目【申报】", "非遗项目申报"),
    # fillers and politeness, anywhere
    ("请问博物馆几点开门", "博物馆几点开门"),
    ("你好，想问一下博物馆几点开门，谢谢！", "博物馆几点开门"),
    ("您好麻烦咨询一下借书证怎么办", "借书证怎么办"),
    ("博物馆的话几点开门", "博物馆几点开门"),
    # sentence-final particles only at the end of a clause
    ("博物馆几点开门呀？", "博物馆几点开门"),
    ("是免费的吧", "是免费的"),
    ("博物馆免费吗？谢谢", "博物馆免费"),
    ("门票多少钱啊呀", "门票多少钱"),
    ("吧台在哪", "吧台在哪"),
    # protected words keep their filler characters
    ("附近有网吧吗？", "附近有网吧"),
    ("有酒吧吗", "有酒吧"),
    ("旅游咨询电话是多少", "旅游咨询电话是多少"),
    # nothing left
    ("在吗", ""),
    ("你好！😊", ""),
    ("？？？", ""),
]


@pytest.mark.parametrize(("text", "expected"), NORMALISATION)
def test_normalize_question(text: str, expected: str) -> None:
    assert normalize_question(text) == expected


def test_filler_file_is_shipped_and_used() -> None:
    fillers = FillerWords.default()
    assert {"请问", "你好", "您好", "麻烦", "一下", "想问", "咨询", "谢谢", "的话"} <= set(fillers.words)
    assert {"呢", "吗", "啊", "呀", "吧", "哦", "嗯"} <= set(fillers.words)
    assert "网吧" in fillers.protected
    assert {"怎", "么", "哪"} <= fillers.function_chars
    assert FillerWords.default() is fillers  # loaded once


def test_custom_filler_words(tmp_path: Path) -> None:
    path = tmp_path / "fillers.txt"
    path.write_text("# test\n劳驾\n呗\n!劳驾驶\n~怎么\n", encoding="utf-8")
    fillers = FillerWords.load(path)
    assert normalize_question("劳驾，博物馆开门呗", fillers) == "博物馆开门"
    assert normalize_question("劳驾驶员", fillers) == "劳驾驶员"
    assert normalize_question("请问博物馆", fillers) == "请问博物馆"  # not in this list
    assert fillers.function_chars == frozenset("怎么")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("请问\n请问\n", "line 2: duplicate word '请问' (first at line 1)"),
        ("请问\n!请问\n", "line 2: duplicate word"),
        ("请 问\n", "line 1: '请 问' contains whitespace or punctuation"),
        ("请问？\n", "contains whitespace or punctuation"),
        ("!\n", "line 1: empty word"),
        ("~怎么\n~么\n", "line 2: duplicate function character '么'"),
        ("# only a comment\n", "no filler words"),
    ],
)
def test_bad_filler_file_is_named(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "fillers.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(FaqFormatError) as info:
        FillerWords.load(path)
    assert str(path) in str(info.value)
    assert problem in str(info.value)


# --------------------------------------------------------------------------------------------
# The shipped knowledge base
# --------------------------------------------------------------------------------------------


def test_shipped_faq_loads_with_enough_unique_entries(shipped: list[FaqEntry]) -> None:
    assert len(shipped) >= 45
    assert len({e.id for e in shipped}) == len(shipped)


def test_shipped_faq_is_marked_as_example_data() -> None:
    head = FAQ_FILE.read_text(encoding="utf-8")[:600]
    assert "EXAMPLE DATA" in head and "示例数据" in head


def test_shipped_entries_are_short_polite_and_routed(shipped: list[FaqEntry]) -> None:
    for entry in shipped:
        assert 1 <= len(entry.alternates) <= 3, entry.id
        assert len(entry.answer) < WEIBO_MAX_CHARS, (entry.id, len(entry.answer))
        assert entry.answer.startswith("您好"), entry.id
        assert entry.department in DEPARTMENT_KEYS, entry.id
    # every department that answers the public has entries
    assert {e.department for e in shipped} == set(DEPARTMENT_KEYS)


def test_shipped_local_phone_numbers_are_placeholders(shipped: list[FaqEntry]) -> None:
    for entry in shipped:
        for number in re.findall(r"\d{3,4}-\d{3,}(?:-\d+)?", entry.answer):
            assert number.startswith(("0000-", "4008-000-000")), (entry.id, number)


# --------------------------------------------------------------------------------------------
# Files: round trips
# --------------------------------------------------------------------------------------------

TRICKY_ENTRIES = [
    FaqEntry(
        id="museum-hours",
        question="市博物馆的开放时间是什么？",
        answer="您好！开放时间为9:00—17:00。\n周一闭馆，节假日除外。",
        alternates=("博物馆几点开门", "博物馆周一开门吗"),
        department="public_service",
        tags=("博物馆", "开放时间"),
    ),
    FaqEntry(id="x1", question="yes", answer="null"),  # YAML words that are not strings unquoted
    FaqEntry(id="x2", question="12345是什么电话", answer="12345", tags=("12345", "true")),
    FaqEntry(
        id="x3",
        question='"引号", 逗号, and: colon',
        answer="# not a comment, - not a list, 'quotes', \"double\", a,b,c",
        alternates=("- dash", "key: value"),
    ),
    FaqEntry(id="x4", question="Trailing   spaces inside", answer="line one  \nline two\n\nline four"),
]


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".csv"])
def test_round_trip_is_exact(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"faq{suffix}"
    dump_entries(TRICKY_ENTRIES, path)
    assert load_entries(path) == TRICKY_ENTRIES


@pytest.mark.parametrize("suffix", [".yaml", ".csv"])
def test_shipped_faq_round_trips(tmp_path: Path, shipped: list[FaqEntry], suffix: str) -> None:
    path = tmp_path / f"faq{suffix}"
    dump_entries(shipped, path)
    assert load_entries(path, departments=DEPARTMENT_KEYS) == shipped


def test_csv_format(tmp_path: Path) -> None:
    path = tmp_path / "faq.csv"
    dump_entries(TRICKY_ENTRIES[:1], path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "id,question,answer,alternates,department,tags"
    assert lines[1].startswith('museum-hours,市博物馆的开放时间是什么？,"您好！')  # the answer has a line break
    assert lines[-1] == '周一闭馆，节假日除外。",博物馆几点开门|博物馆周一开门吗,public_service,博物馆|开放时间'


def test_yaml_list_and_mapping_forms_and_optional_columns(tmp_path: Path) -> None:
    listed = tmp_path / "a.yaml"
    listed.write_text("- id: a\n  question: 博物馆几点开门\n  answer: 九点\n", encoding="utf-8")
    mapped = tmp_path / "b.yml"
    mapped.write_text("entries:\n  - id: a\n    question: 博物馆几点开门\n    answer: 九点\n", encoding="utf-8")
    short_csv = tmp_path / "c.csv"
    short_csv.write_text("id,question,answer\na,博物馆几点开门,九点\n\n", encoding="utf-8")
    expected = [FaqEntry("a", "博物馆几点开门", "九点")]
    assert load_entries(listed) == load_entries(mapped) == load_entries(short_csv) == expected
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n", encoding="utf-8")
    assert load_entries(empty) == []


def test_loaders_strip_surrounding_whitespace(tmp_path: Path) -> None:
    path = tmp_path / "faq.yaml"
    path.write_text("- id: a\n  question: ' 博物馆几点开门 '\n  answer: |\n    九点\n", encoding="utf-8")
    assert load_entries(path) == [FaqEntry("a", "博物馆几点开门", "九点")]
    csv_path = tmp_path / "faq.csv"
    csv_path.write_text(
        "id,question,answer,alternates,department,tags\na, 博物馆几点开门 ,九点, 博物馆开门 | 几点开门 ,,\n"
    )
    assert load_entries(csv_path)[0].alternates == ("博物馆开门", "几点开门")


def test_dicts_round_trip_and_are_json_ready(shipped: list[FaqEntry]) -> None:
    dicts = entries_to_dicts(shipped)
    assert json.loads(json.dumps(dicts, ensure_ascii=False)) == dicts
    assert set(dicts[0]) == {"id", "question", "answer", "alternates", "department", "tags"}
    assert entries_from_dicts(dicts, departments=DEPARTMENT_KEYS) == shipped
    assert entries_from_dicts([{"id": "a", "question": "博物馆几点开门", "answer": "九点"}]) == [
        FaqEntry("a", "博物馆几点开门", "九点")
    ]


# --------------------------------------------------------------------------------------------
# Files: every validation error names the file, the line and the problem
# --------------------------------------------------------------------------------------------

GOOD = "  question: 博物馆几点开门\n  answer: 九点\n"

YAML_ERRORS: list[tuple[str, str]] = [
    # (file content, expected fragment of the message, including the line)
    ("- question: 博物馆几点开门\n  answer: 九点\n", "line 1: missing required key 'id'"),
    ("- id: a\n  answer: 九点\n", "line 1: a: missing required key 'question'"),
    ("- id: a\n  question: 博物馆几点开门\n", "line 1: a: missing required key 'answer'"),
    ("- id: Museum_Hours\n" + GOOD, "line 1: id 'Museum_Hours' must be lower-case"),
    ("- id: a--b\n" + GOOD, "id 'a--b' must be"),
    (
        "- id: a\n" + GOOD + "- id: a\n  question: 图书馆几点开门\n  answer: 九点\n",
        "line 4: duplicate id 'a' (first at line 1)",
    ),
    ("- id: a\n  question: 博物馆几点开门\n  answer: ''\n", "line 1: a: empty answer"),
    ("- id: a\n  question: 博物馆几点开门\n  answer: '   '\n", "a: empty answer"),
    (
        "- id: a\n  question: 博物馆几点开门\n  answer: " + "字" * (ANSWER_MAX_CHARS + 1) + "\n",
        f"a: answer has {ANSWER_MAX_CHARS + 1} characters, more than {ANSWER_MAX_CHARS}",
    ),
    ("- id: a\n  question: " + "问" * 201 + "\n  answer: 九点\n", "a: question has 201 characters, more than 200"),
    ("- id: a\n" + GOOD + "  alternates: [" + "问" * 201 + "]\n", "a: alternates has 201 characters"),
    ("- id: a\n" + GOOD + "  answr: typo\n", "line 4: unknown key 'answr'"),
    ("entries:\n  - id: a\n    question: q1\n    answer: x\nversion: 2\n", "line 5: unknown top-level key 'version'"),
    ("other: []\n", "line 1: unknown top-level key 'other'"),
    ("{}\n", "missing top-level key 'entries'"),
    ("entries: 3\n", "line 1: entries must be a list"),
    ("just a string\n", "expected a list of entries or {entries: [...]}, got str"),
    ("- just a string\n", "line 1: an entry must be a mapping"),
    ("- id: a\n" + GOOD + "  alternates: 博物馆开门\n", "line 4: alternates must be a list of strings"),
    ("- id: a\n" + GOOD + "  tags: [博物馆, 12345]\n", "line 4: tags must be a list of strings"),
    ("- id: a\n" + GOOD + "  alternates: ['']\n", "a: empty item in alternates"),
    ("- id: a\n" + GOOD + "  alternates: [开门|关门]\n", "a: alternates item '开门|关门' contains '|'"),
    ("- id: a\n" + GOOD + "  tags: [x, x]\n", "a: duplicate item in tags"),
    ("- id: a\n" + GOOD + "  department: Public-Service\n", "a: department 'Public-Service' must be a department key"),
    ("- id: a\n" + GOOD + "  department: 3\n", "line 4: department must be a string"),
    ("- id: 7\n" + GOOD, "line 1: id must be a string, got 7"),
    ("- id: a\n  question: 你好！\n  answer: x\n", "a: question '你好！' normalises to almost nothing"),
    (
        "- id: a\n" + GOOD + "- id: b\n  question: 请问，博物馆几点开门？\n  answer: x\n",
        "line 4: b: question '请问，博物馆几点开门？' normalises to '博物馆几点开门', the same as a question of 'a'",
    ),
    ('- id: a\n  question: "博物馆\\n几点开门"\n  answer: x\n', "a: question '博物馆\\n几点开门' spans several lines"),
    ('- id: a\n  question: 博物馆几点开门\n  answer: "九点\\r\\n\\u0007"\n', "a: answer contains a control character"),
    ("- id: a\n  id: b\n", "line 2: duplicate key 'id' (first at line 1)"),
    ("- id: a\n  question: [unclosed\n", "invalid YAML"),
]


@pytest.mark.parametrize(("content", "fragment"), YAML_ERRORS, ids=[f"yaml{i:02d}" for i in range(len(YAML_ERRORS))])
def test_yaml_validation_errors(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "faq.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(FaqFormatError) as info:
        load_entries(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert fragment in message, message


def test_department_must_be_configured(tmp_path: Path) -> None:
    path = tmp_path / "faq.yaml"
    path.write_text("- id: a\n" + GOOD + "  department: tourism\n", encoding="utf-8")
    assert load_entries(path)[0].department == "tourism"  # no configuration given: only the format
    with pytest.raises(FaqFormatError, match=r"line 1: a: department 'tourism' is not configured \(configured: "):
        load_entries(path, departments=DEPARTMENT_KEYS)


HEADER = "id,question,answer,alternates,department,tags\n"

CSV_ERRORS: list[tuple[str, str]] = [
    ("", "empty file; expected the header id,question,answer,alternates,department,tags"),
    ("id,question,answer,notes\n", "line 1: unknown column 'notes'"),
    ("id,question\n", "line 1: missing required column 'answer'"),
    ("id,question,answer,id\n", "line 1: duplicate column"),
    (HEADER + "a,博物馆几点开门,九点\n", "line 2: expected 6 fields, got 3"),
    (HEADER + "a,博物馆几点开门,,,,\n", "line 2: empty answer"),
    (HEADER + ",博物馆几点开门,九点,,,\n", "line 2: empty id"),
    (
        HEADER + "a,博物馆几点开门,九点,,,\n\nb,图书馆几点开门,九点,,,\na,文化馆几点开门,九点,,,\n",
        "line 5: duplicate id 'a' (first at line 2)",
    ),
    (HEADER + 'a,博物馆几点开门,"九点\n\n十点",,,\nB,图书馆几点开门,x,,,\n', "line 5: id 'B' must be"),
    (HEADER + f"a,博物馆几点开门,{'字' * (ANSWER_MAX_CHARS + 1)},,,\n", "more than 600"),
    (HEADER + "a,博物馆几点开门,九点,开门||关门,,\n", "line 2: a: empty item in alternates"),
    (HEADER + "a,博物馆几点开门,九点,,Public Service,\n", "a: department 'Public Service' must be"),
    (HEADER + 'a,博物馆几点开门,"九点\n', "invalid CSV"),
]


@pytest.mark.parametrize(("content", "fragment"), CSV_ERRORS, ids=[f"csv{i:02d}" for i in range(len(CSV_ERRORS))])
def test_csv_validation_errors(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "faq.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(FaqFormatError) as info:
        load_entries(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert fragment in message, message


def test_file_type_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FaqFormatError, match=r"unknown file type '\.txt'"):
        load_entries(tmp_path / "faq.txt")
    with pytest.raises(FaqFormatError, match="file not found"):
        load_entries(tmp_path / "missing.yaml")
    with pytest.raises(FaqFormatError, match="unknown file type"):
        dump_entries([], tmp_path / "faq.json")


def test_dicts_are_validated_by_entry_number() -> None:
    good = {"id": "a", "question": "博物馆几点开门", "answer": "九点"}
    with pytest.raises(FaqFormatError, match=r"^entries entry 2: duplicate id 'a' \(first at entry 1\)"):
        entries_from_dicts([good, good])
    with pytest.raises(FaqFormatError, match=r"entry 1: unknown key 'extra'"):
        entries_from_dicts([{**good, "extra": 1}])
    with pytest.raises(FaqFormatError, match=r"^db entry 1: a: empty answer"):
        entries_from_dicts([{**good, "answer": ""}], source="db")


def test_dump_refuses_invalid_entries_before_writing(tmp_path: Path) -> None:
    path = tmp_path / "faq.yaml"
    bad = [FaqEntry("a", "博物馆几点开门", " padded ")]
    with pytest.raises(FaqFormatError, match="answer has leading or trailing whitespace"):
        dump_entries(bad, path)
    assert not path.exists()
    with pytest.raises(FaqFormatError, match=re.escape("contains '|'")):
        validate_entries([FaqEntry("a", "博物馆几点开门", "x", tags=("a|b",))])


@pytest.mark.parametrize("text", ["请问几点开门", "几点关门啊", "周一开门吗"])
def test_a_question_that_names_no_place_gets_no_place_bound_answer(matcher: FaqMatcher, text: str) -> None:
    # "请问几点开门" used to get the cultural centre's hours: the netizen may mean any place (fresh-eyes pass)
    assert matcher.match(text) is None, matcher.explain(text)
    assert any(c["place_missing"] for c in matcher.explain(text)["candidates"])


@pytest.mark.parametrize(("text", "entry"), [
    ("博物官几点开门", "museum-hours"),  # a typo in the place still names it
    ("志愿者怎么报名", "volunteer-signup"),  # an entry with a phrasing that names no place stays open
])
def test_a_place_named_loosely_or_not_needed_still_matches(matcher: FaqMatcher, text: str, entry: str) -> None:
    found = matcher.match(text)
    assert found is not None and found.entry.id == entry, matcher.explain(text)


def test_a_gbk_csv_from_excel_is_named_with_what_to_do(tmp_path: Path) -> None:
    # Excel's plain "CSV" on a Chinese Windows is GBK; the message was Python's raw codec error (fresh-eyes pass)
    path = tmp_path / "faq.csv"
    path.write_bytes("id,question,answer\na,博物馆几点开门,九点\n".encode("gbk"))
    with pytest.raises(FaqFormatError, match=r"faq.csv line 2: not UTF-8 text \(GBK\?\).*CSV UTF-8"):
        load_entries(path)
