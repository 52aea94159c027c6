"""knowledge.classifier: severity (R6.1d) and department routing (R6.2).

R6.1d: "major problems and negative information that directly harm the bureau's reputation" are
critical and must reach a responsible person within one hour. A false alarm wakes a department
head; a miss means the bureau hears of a stampede from the newspaper. The tables below pin both
sides: realistic critical messages (netizen style, voice recognition without punctuation,
traditional characters, emoji) and tricky routine ones (negation, questions about how to
complain, ordinary complaints, figures of speech).
"""

from __future__ import annotations

import ast
import json
import math
import re
import shutil
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from knowledge import Classification, Classifier, KnowledgeDataError
from knowledge.classifier import CRITICAL, DATA_DIR, ROUTINE, normalize
from knowledge.train_second_opinion import WRITERS

CROSSWOZ = Path(__file__).parent / "data" / "crosswoz" / "user_requests_attraction_hotel.jsonl"
KNOWLEDGE_DIR = Path(__file__).resolve().parent.parent / "knowledge"

# The department keys shipped in config.yaml (fixed for this product).
DEPARTMENT_KEYS = (
    "office",
    "info_center",
    "market",
    "enforcement",
    "public_service",
    "arts",
    "heritage",
    "broadcasting",
    "industry",
)


@pytest.fixture(scope="module")
def clf() -> Classifier:
    # jieba's dictionary loads once for the whole module (about half a second).
    return Classifier.load(departments=DEPARTMENT_KEYS, fallback="info_center")


# --------------------------------------------------------------------------------------------
# R6.1d: critical messages — (message, a term that must be among `matched`)
# --------------------------------------------------------------------------------------------

CRITICAL_MESSAGES: list[tuple[str, str]] = [
    # voice recognition: no punctuation
    ("我在景区被打了要找记者曝光你们", "曝光"),
    ("喂你好我跟你说啊我们在那个景区里面被人打了现在头上还在流血你们管不管", "流血"),
    ("那个旅行社老板跑了我们几十个人的钱都没了我要去告他们还要找记者", "找记者"),
    ("景区发生踩踏了好多人倒在地上快来人啊", "发生踩踏"),
    ("救命 我们被困在山上了 天黑了 下不去", "救命"),
    ("你们再不管我就天天去市政府门口上访", "上访"),
    # safety incidents
    ("黄河风景区有个小孩掉水里了，现在还没找到", "掉水里"),
    ("刚才在游乐园过山车上有人摔下来了，流了好多血", "摔下来"),
    ("酒店着火了！！浓烟很大，消防车还没到", "着火"),
    ("玻璃栈道塌了 有游客受伤", "受伤"),
    ("我们团二十多个人在农家乐吃完饭上吐下泻，现在都在医院", "上吐下泻"),
    ("索道停在半空一个多小时了，我们被困在上面，没人来救", "被困"),
    ("我家孩子在景区走失了，已经两个小时了，求求你们帮忙找找", "走失"),
    ("演唱会散场人太多，挤倒了好几个人，有人被踩伤", "踩伤"),
    ("博物馆展厅天花板掉下来砸伤了一个老人", "砸伤"),
    ("漂流的时候船翻了，有人溺水", "溺水"),
    ("民宿的燃气爆炸了，窗户全碎了", "爆炸"),
    ("庙会现场发生火灾，大家都在往外跑", "火灾"),
    ("已经有人死了你们还在这里推卸责任", "人死了"),
    ("景区大门口挤满了人，前面有人晕倒了，叫了120", "叫了120"),
    ("游乐设施突然断了，好几个小孩摔下来了", "摔下来"),
    ("大巴车在去景区的路上翻车了", "翻车"),
    ("景区山体滑坡，埋了几个人", "滑坡"),
    ("酒店的自助餐有问题，全团的人都食物中毒了", "食物中毒"),
    ("网吧里有人打架，有人被捅了", "被捅"),
    ("景区演出的时候舞台倒了砸到观众", "砸到"),
    ("景区里面有人跳河了", "跳河"),
    ("研学的学生在景区门口被大巴撞了", "被大巴撞了"),
    ("KTV里有未成年人陪酒，还有人吸毒", "吸毒"),
    ("景区工作人员把游客打得头破血流", "头破血流"),
    # threats to go to the media or higher authorities
    ("再不给我退钱，我就去12345投诉你们", "去12345"),
    ("导游带我们去购物店不买不让走，还动手打人，我已经报警了", "打人"),
    ("我要把这件事发到网上让大家看看你们是怎么管理的", "发到网上"),
    ("如果今天不给个说法，明天我就去省里上访", "上访"),
    ("这件事已经上热搜了，你们还不回应吗", "上热搜"),
    ("视频已经在网上疯传了，说你们景区宰客打人", "疯传"),
    ("我已经联系了电视台的记者，明天来现场", "联系了电视台的记者"),
    ("举报到省里去，看你们管不管", "举报到省里"),
    ("我打了12345都没用，准备去北京上访", "上访"),
    ("不处理的话我就找媒体曝光，让全网都看看", "曝光"),
    # accusations of official misconduct
    ("你们文旅局就是不作为，旅行社骗了我们几十个老人你们一点不管", "不作为"),
    ("这家KTV老板是黑社会，后面有保护伞，你们敢查吗", "保护伞"),
    ("听说执法队的人收红包，所以才一直不查那家网吧", "收红包"),
    ("举报文旅局某科长收受贿赂，给不合格的景区评4A", "收受贿赂"),
    ("景区和文旅局官商勾结，门票乱涨价没人管", "官商勾结"),
    ("我要去纪委举报你们局长", "纪委"),
    ("你们的执法人员吃拿卡要，每次来都要拿东西", "吃拿卡要"),
    ("某领导亲戚开的景区违规建设没人敢管，这就是腐败", "腐败"),
    ("景区工作人员和黄牛勾结倒卖门票，你们文旅局就是他们的保护伞", "保护伞"),
    ("我在执法大队举报了三次都不理，你们就是官僚主义，不作为！！！", "不作为"),
    # large-scale fraud with many victims
    ("某某旅行社卷款跑路了，上百名游客的团费都没了", "卷款跑路"),
    ("老年旅游团免费旅游是骗局，我妈他们一车人都被骗去买保健品了", "一车人都被骗"),
    ("我们小区三十多户都被这家旅游公司骗了，涉及金额上百万", "三十多户都被这家旅游公司骗"),
    # traditional characters
    ("網吧老闆打人，我朋友頭破血流，你們管不管", "头破血流"),
    ("景區發生踩踏事故，多人受傷", "踩踏事故"),
    ("導遊強迫購物還威脅我們，再不處理就找媒體曝光", "曝光"),
    ("我們在景區發生踩踏，好多人受傷了", "发生踩踏"),
    # emoji
    ("😡😡😡景区踩踏了有人受伤了快派人来", "受伤"),
    ("🔥🔥酒店起火了🔥🔥", "起火"),
    ("😭😭孩子在游乐园骨折了，设施根本没人检修😭", "骨折"),
    # more of the same, phrased differently (kept to watch the word lists' reach)
    ("景区里有个老人突然倒地不起，心脏骤停", "心脏骤停"),
    ("温泉酒店泳池里有个小孩溺水了", "溺水"),
    ("我爸在旅行团里被导游推倒了，腿摔断了", "摔断"),
    ("你们局里有人收了景区的钱，这事我要捅出去", "捅出去"),
    ("已经向省文旅厅反映了，你们等着吧", "文旅厅"),
    ("有个游客在景区从山上摔下去了", "摔下去"),
    ("这家旅行社已经骗了上千名老人，警察都立案了", "骗了上千名老人"),
    ("酒店电梯坠落了！！", "坠落"),
    ("你们不管，我就去省政府门口拉横幅", "拉横幅"),
    ("十几个游客在景区门口集体抗议，堵住了大门", "集体抗议"),
    ("景区的游船翻了，好多人掉进水里", "船翻了"),
    ("夜市的舞台塌了砸到好几个人", "塌了"),
    ("我的孩子在你们推荐的研学营被老师打了", "被老师打了"),
    ("景区里有人持刀伤人", "持刀"),
    ("景区小火车脱轨了，车上都是小孩", "脱轨"),
    ("刚才滑道上两个游客撞在一起，一个昏过去了", "昏过去"),
    ("我女儿在你们的景区被人拐走了", "拐走"),
    ("溶洞里突然停电，几百个游客困在里面出不来", "几百个游客困在"),
    ("旅行社收了我们二十多家人的钱后联系不上了", "联系不上"),
    ("你们执法人员收了好处费就不管了", "好处费"),
    ("再不回复我就去你们局门口静坐", "静坐"),
    ("我已经把视频发到抖音上了，点赞都上万了", "点赞都上万"),
    ("你们局长是不是收了钱，为什么这个景区能评上5A", "收了钱"),
    ("景区的蹦极绳断了", "绳断了"),
    ("这个景区门口有人卖假票，好多游客上当", "好多游客上当"),
    # threats of violence (found missing by a fresh-eyes pass): someone may be in danger before anything happens
    ("我要把你们执法队的人一个个找出来，让他们好看", "一个个找出来"),
    ("你们再不退钱，我就带刀去旅行社找他们算账", "我就带刀去"),
    ("我知道你们局长住哪，等着", "知道你们局长住哪"),
    ("再不给说法我就跟他们同归于尽", "同归于尽"),
    ("明天我提着汽油去你们局门口", "我提着汽油去"),
]


@pytest.mark.parametrize(
    ("text", "deciding"), CRITICAL_MESSAGES, ids=[f"critical{i:02d}" for i in range(len(CRITICAL_MESSAGES))]
)
def test_r6_1d_critical_messages_are_critical(clf: Classifier, text: str, deciding: str) -> None:
    result = clf.classify(text)
    assert result.severity == CRITICAL, clf.explain(text)
    assert result.score >= clf.threshold
    assert result.matched, "a critical decision must say which terms decided it"
    assert deciding in result.matched, result.matched


def test_r6_1d_critical_table_is_large_enough() -> None:
    assert len(CRITICAL_MESSAGES) >= 40
    assert len({t for t, _ in CRITICAL_MESSAGES}) == len(CRITICAL_MESSAGES)


# --------------------------------------------------------------------------------------------
# R6.1d false alarms: routine messages that look dangerous to a naive word list
# --------------------------------------------------------------------------------------------

ROUTINE_MESSAGES: list[str] = [
    "在吗",
    "123",
    "你好",
    "？？？",
    "投诉电话是多少",
    "不是投诉，就问一下博物馆周一开门吗",
    "酒店房间不干净，床单上有头发",
    "旅行社说好的纯玩团结果还是进了购物店，我要投诉",
    "怎么投诉黑导游",
    "如何举报网吧接纳未成年人",
    "举报渠道有哪些",
    "没有人受伤，就是想反映一下景区台阶有点滑",
    "景区人太多了，快挤死了，能不能限流",
    "热死了，景区能不能多设点遮阳棚",
    "请问节假日景区如何防止踩踏事故",
    "万一发生火灾应该从哪个出口走？",
    "这个景区有没有溺水的安全提示牌？",
    "你们公众号的新媒体运营岗位还招人吗",
    "我想了解一下记者证在哪里办理",
    "电视台的信号最近不好，有线电视老是卡",
    "卫星锅还能装吗",
    "酒店的服务态度太差了！！！前台一直玩手机",
    "导游太坑了，强制购物，我们要求退款",
    "门票太贵了吧，一百多块钱！！！",
    "豫剧院这周末有什么演出？",
    "图书馆几点闭馆",
    "非遗展览在哪里举办",
    "请问文物保护单位可以拍照吗",
    "景区的消费券怎么领",
    "剧场的演出票可以退吗",
    "网吧太吵了影响休息",
    "我被骗了，买的门票是假的，能退吗",
    "我想投诉一家酒店，押金一直不退",
    "去世界公园怎么走",
    "火锅店卫生太差了",
    "请问你们局的办公地址在哪",
    "请问打12345可以投诉旅行社吗",
    "温馨提示：景区内严禁踩踏草坪",
    "游客踩踏草坪没人管",
    "我想报名参加文化馆的免费培训班",
    "数字电视机顶盒坏了找谁修",
    "你们的自动回复怎么没有用",
    "考古发掘现场可以参观吗",
    "暑假带孩子去哪个4A景区好玩",
    "请问景区有没有急救站？",
    "拉肚子了，是不是酒店早餐不新鲜",
    "上次说的事情处理得怎么样了？",
    "这个KTV营业到凌晨三点，音乐声特别大，扰民！！",
    "不会出现踩踏吧？",
    "没有发生火灾，只是烟雾报警器响了",
    "谢谢你们的答复，问题已经解决了👍",
    "hello, what time does the museum open?",
    "有線電視收費標準是多少",
    "請問圖書館週末開放嗎",
    "宾馆隔音太差，一晚上没睡好",
    "旅游团行程被随意更改，导游态度恶劣",
    "记者采访需要提前预约吗",
    "想问一下A级景区评定的标准",
    "你们发微博说今天免费开放，是真的吗",
    "不是我要曝光谁，就是想提个建议：景区厕所太少了",
    "景区安全隐患排查的结果在哪里公布",
    "投诉了三次都没有人回复，你们到底管不管",
    "请问发生紧急情况应该打什么电话",
    "你们的微博小编太可爱了哈哈哈",
    "哪里可以看到豫剧《朝阳沟》？",
    "孩子在网吧玩游戏不回家，网吧让未成年人进",
    "景区救护站在哪里",
    "跟团游被强制消费了怎么办",
    "记者节有什么活动",
    "想问一下有没有人员伤亡的统计数据",
    "请问博物馆的火灾应急预案是什么",
    "今年有没有发生过安全事故？",
    "我要投诉这家酒店，太过分了！！！退钱！！！",
    "不要踩踏花坛",
    "景区的安全措施做得很好，没有出现拥挤踩踏",
    "导游讲解很好，没有强制购物，给个好评",
    "请问消防安全检查是哪个部门负责",
    "听说下周有演唱会，现场会不会很挤",
    "景区在搞活动，人山人海的，热闹得很",
    "想举报一家酒店没有消防通道",
    "我的行李在酒店丢了，前台说不负责",
    "旅行社合同上写的四星酒店，实际住的是快捷酒店",
    "网吧门口天天有人抽烟吵闹",
    "为什么你们的景区门票这么贵，真是宰客",
    "请问溺水急救的培训课程在哪报名",
    "博物馆讲解员讲得太好了，点赞",
    "我想了解一下非遗传承人的补贴政策",
    # violent words that threaten nobody
    "笑死我了哈哈",
    "景区能带刀具进去吗",
    "杀了我吧太难吃了",
    "我知道你们住的地方附近有个博物馆",
]


@pytest.mark.parametrize("text", ROUTINE_MESSAGES, ids=[f"routine{i:02d}" for i in range(len(ROUTINE_MESSAGES))])
def test_r6_1d_tricky_routine_messages_are_not_critical(clf: Classifier, text: str) -> None:
    result = clf.classify(text)
    assert result.score < clf.threshold  # the word lists alone keep it routine
    assert result.severity == ROUTINE, clf.explain(text)


def test_r6_1d_routine_table_is_large_enough() -> None:
    assert len(ROUTINE_MESSAGES) >= 40
    assert len(set(ROUTINE_MESSAGES)) == len(ROUTINE_MESSAGES)


def _crosswoz_texts() -> list[str]:
    with CROSSWOZ.open(encoding="utf-8") as fh:
        return [json.loads(line)["text"] for line in fh if line.strip()]


def test_r6_1d_crosswoz_routine_requests_rarely_critical(clf: Classifier) -> None:
    # The word lists alone flag none of the 400. The first second opinion (binary n-grams, threshold 0.40)
    # flagged 2 hotel requests after a figure of speech ("看着我都快流口水了…订酒店"); the one trained on
    # train_t1-t3 (idf-weighted, threshold 0.50) flagged none; the one trained with train_t7 and t8 as well flagged
    # the same 2 again (p 0.50 and 0.59); the one of train_t1-t12 (threshold 0.55) flagged 1; the one of
    # train_t1-t16 flags none: measured 2026-12-04.
    texts = _crosswoz_texts()
    assert len(texts) == 400
    results = [clf.classify(t) for t in texts]
    assert [r for r in results if r.score >= clf.threshold] == []
    false_alarms = [(t, r.matched) for t, r in zip(texts, results, strict=True) if r.severity != ROUTINE]
    assert len(false_alarms) <= len(texts) // 100, false_alarms  # at most 1%


def test_crosswoz_license_notice_is_kept_with_the_copy() -> None:
    readme = (CROSSWOZ.parent / "README.md").read_text(encoding="utf-8")
    assert "Apache-2.0" in readme and "CrossWOZ" in readme


# --------------------------------------------------------------------------------------------
# Scoring details: negation, question-about, intensity, combinations
# --------------------------------------------------------------------------------------------


def test_r6_1d_negator_before_a_term_cancels_it(clf: Classifier) -> None:
    assert clf.classify("景区有人受伤").severity == CRITICAL
    assert clf.classify("景区没有人受伤").severity == ROUTINE
    assert clf.classify("景区并没有发生踩踏").severity == ROUTINE
    explained = clf.explain("没有人受伤")
    assert [c["negated_by"] for c in explained["contributions"] if c["label"] == "受伤"] == ["没有人"]


def test_r6_1d_negation_stops_at_the_clause_or_a_breaker(clf: Classifier) -> None:
    # "不" negates 处理, not 曝光: the threat stands.
    assert clf.classify("再不处理我就曝光").severity == CRITICAL
    assert clf.classify("不退钱的话我就找记者").severity == CRITICAL
    assert clf.classify("不是投诉，是要曝光你们").severity == CRITICAL
    assert clf.classify("没人管，孩子都受伤了").severity == CRITICAL


@pytest.mark.parametrize("text", [
    "执法队的人来检查时直接拿了两条烟走，这不是吃拿卡要吗",
    "局长收红包这不是受贿吗",
    "难道不是你们执法队在包庇他们？",
    "这不就是官商勾结嘛",
])
def test_r6_1d_a_rhetorical_question_asserts_the_accusation(clf: Classifier, text: str) -> None:
    # "这不是…吗" neither negates nor asks about: it says so (found by a fresh-eyes pass, routine before)
    result = clf.word_lists_only().classify(text)
    assert (result.severity, result.department) == (CRITICAL, "office"), clf.explain(text)


@pytest.mark.parametrize("text", ["这不是投诉，就问问博物馆几点开门", "这不是曝光，只是提个建议", "请问这种情况不是受贿吗，怎么举报"])
def test_r6_1d_not_a_question_or_a_question_about_stays_routine(clf: Classifier, text: str) -> None:
    assert clf.word_lists_only().classify(text).severity == ROUTINE, clf.explain(text)


def test_r6_1d_buzuowei_is_a_term_not_a_negation(clf: Classifier) -> None:
    result = clf.classify("你们文旅局不作为")
    assert result.severity == CRITICAL
    assert result.matched[0] == "不作为"


def test_r6_1d_asking_how_to_complain_is_not_a_complaint(clf: Classifier) -> None:
    asked = clf.classify("投诉电话是多少")
    made = clf.classify("我要投诉")
    assert asked.score == 0
    assert made.score > 0 and made.severity == ROUTINE
    assert clf.classify("如何举报官商勾结").severity == CRITICAL  # the accusation still counts


def test_r6_1d_intensity_adds_a_little_only_to_a_concern(clf: Classifier) -> None:
    calm = clf.classify("我要投诉")
    loud = clf.classify("我非常非常生气，我要投诉！！！")
    assert calm.score < loud.score < clf.threshold
    assert clf.classify("太好了！！！谢谢！！！").score == 0


def test_r6_1d_ordinary_complaint_words_never_reach_the_threshold(clf: Classifier) -> None:
    # every complaint word, every degree word and shouting: still an ordinary complaint
    text = "我非常特别极其十分超级生气！！！我要投诉！！！我要举报？？？给差评！！！"
    result = clf.classify(text)
    assert result.severity == ROUTINE, clf.explain(text)
    assert result.score > 0


def test_r6_1d_safety_word_at_a_crowded_place_is_stronger(clf: Classifier) -> None:
    alone = clf.classify("踩踏")
    at_venue = clf.classify("景区踩踏")
    assert alone.severity == ROUTINE
    assert at_venue.severity == CRITICAL
    assert at_venue.score > alone.score


def test_r6_1d_fraud_is_critical_only_with_many_victims(clf: Classifier) -> None:
    assert clf.classify("我被这家旅行社骗了").severity == ROUTINE
    assert clf.classify("我们团三十多个人都被这家旅行社骗了").severity == CRITICAL


def test_r6_1d_matched_lists_severity_terms_before_department_terms(clf: Classifier) -> None:
    result = clf.classify("景区发生火灾")
    assert result.matched[0] == "火灾"
    assert "景区" in result.matched
    assert result.matched.index("火灾") < result.matched.index("景区")



@pytest.mark.parametrize(
    ("incident", "over"),
    [
        ("游乐园的碰碰车把我女儿撞倒了，膝盖磕破了", "现在都结痂了"),
        ("密室的道具柜砸到我脚了", "肿了两天，现在已经消了"),
        ("漂流的时候船翻了，我们一家掉进水里", "还好人没事"),
        ("孩子在游乐场磕破了头缝了两针", "上周拆线了"),
        ("我家老人在景区走散了", "天黑前平安回来了"),
    ],
)
def test_r6_1d_incident_over_and_everyone_fine_is_discounted(clf: Classifier, incident: str, over: str) -> None:
    # "an incident already over and harmless" is routine by the guidelines: the phrase that says so takes the
    # discount off, so a hint falls back below the threshold while a decisive term (a boat capsized) still counts
    alone = clf.word_lists_only()
    before, after = alone.explain(incident), alone.explain(f"{incident}，{over}")
    resolution = [c for c in after["contributions"] if c["kind"] == "resolution"]
    assert len(resolution) == 1 and resolution[0]["label"] in over
    assert after["score"] == before["score"] + resolution[0]["weight"] < before["score"]


def test_r6_1d_nothing_came_of_inspections_is_not_everyone_fine(clf: Classifier) -> None:
    # "都没事" after inspections means nobody was punished: a protection accusation, not a resolution
    text = "那家棋牌室查了三次都没事，老板说他上面有人"
    assert not [c for c in clf.explain(text)["contributions"] if c["kind"] == "resolution"]
    assert clf.word_lists_only().classify(text).severity == CRITICAL

def test_r6_1d_a_word_split_across_other_words_does_not_count(clf: Classifier) -> None:
    # 去世 in 去/世界公园, 打人 in 打/人家, 大火 in 大/火锅
    for text in ("去世界公园怎么走", "我去打人家电话问问", "大火锅店开门了吗"):
        assert clf.classify(text).score == 0, clf.explain(text)


# --------------------------------------------------------------------------------------------
# R6.2: department routing
# --------------------------------------------------------------------------------------------

DEPARTMENT_CASES: list[tuple[str, str]] = [
    ("请问你们局的办公地址在哪", "office"),
    ("我想申请政府信息公开", "office"),
    ("文旅局今年的招聘公告什么时候出", "office"),
    ("我是报社的，想采访一下局领导", "office"),
    ("公众号菜单里的预约入口打不开", "info_center"),
    ("有没有本地的旅游攻略推荐", "info_center"),
    ("你们的小程序一直闪退", "info_center"),
    ("酒店房间不干净，床单上有头发", "market"),
    ("导游强制购物，不买不让下车", "market"),
    ("旅行社不给退团费", "market"),
    ("一日游被宰客了", "market"),
    ("网吧接纳未成年人上网", "enforcement"),
    ("楼下KTV噪音扰民到半夜", "enforcement"),
    ("学校门口的书店卖盗版书", "enforcement"),
    ("广场上有人搞无证演出", "enforcement"),
    ("图书馆几点闭馆", "public_service"),
    ("博物馆周一开门吗", "public_service"),
    ("文化馆的免费培训班怎么报名", "public_service"),
    ("社区文化站可以借来排练广场舞吗", "public_service"),
    ("豫剧院周末有什么演出", "arts"),
    ("话剧的演出票怎么退", "arts"),
    ("交响乐团的新年音乐会什么时候开票", "arts"),
    ("文物保护单位的墙上被人乱刻字", "heritage"),
    ("非遗传承人怎么申报", "heritage"),
    ("工地上挖出了古墓，应该找谁", "heritage"),
    ("有线电视信号不好，老是卡", "broadcasting"),
    ("卫星锅还能装吗", "broadcasting"),
    ("机顶盒坏了找谁修", "broadcasting"),
    ("5A景区门票有什么优惠政策", "industry"),
    ("文旅消费券怎么领", "industry"),
    ("星级酒店评定需要什么条件", "industry"),
    ("想了解一下旅游项目招商的政策", "industry"),
    # a critical message is routed like any other
    ("网吧老闆打人，我朋友頭破血流", "enforcement"),
    ("你们文旅局局长收受贿赂", "office"),
]


@pytest.mark.parametrize(
    ("text", "department"), DEPARTMENT_CASES, ids=[f"{d}-{i:02d}" for i, (_, d) in enumerate(DEPARTMENT_CASES)]
)
def test_r6_2_department_routing(clf: Classifier, text: str, department: str) -> None:
    result = clf.classify(text)
    assert result.department == department, clf.explain(text)
    assert result.department_confidence >= 0.5, clf.explain(text)
    department_terms = [t["term"] for t in clf.explain(text)["department_terms"]]
    assert department_terms and set(department_terms) <= set(result.matched)


def test_r6_2_department_table_covers_every_key() -> None:
    assert len(DEPARTMENT_CASES) >= 30
    assert {d for _, d in DEPARTMENT_CASES} == set(DEPARTMENT_KEYS)


@pytest.mark.parametrize("text", ["在吗", "123", "好的谢谢"])
def test_r6_2_greetings_and_tests_go_to_info_center(clf: Classifier, text: str) -> None:
    result = clf.classify(text)  # the guidelines: greetings, tests and thanks with no subject are info_center's
    assert result.department == "info_center"
    assert result.severity == ROUTINE


@pytest.mark.parametrize("text", ["", "😀😀😀"])
def test_r6_2_a_message_with_nothing_to_go_on_falls_back_to_info_center_with_low_confidence(
        clf: Classifier, text: str) -> None:
    result = clf.classify(text)
    assert result.department == "info_center"
    assert result.department_confidence < 0.5
    assert result.severity == ROUTINE


# --------------------------------------------------------------------------------------------
# The public object
# --------------------------------------------------------------------------------------------


def test_classification_to_dict_is_json_ready(clf: Classifier) -> None:
    result = clf.classify("景区发生踩踏事故")
    data = result.to_dict()
    assert json.loads(json.dumps(data, ensure_ascii=False)) == data
    assert set(data) == {"severity", "department", "department_confidence", "score", "matched", "faq", "second_opinion"}
    assert data["faq"] is None
    assert isinstance(data["second_opinion"], float) and 0.0 <= data["second_opinion"] <= 1.0
    assert isinstance(data["score"], float) and isinstance(clf.classify("在吗").score, float)
    assert isinstance(data["matched"], list)
    assert isinstance(result, Classification)
    with pytest.raises(AttributeError):
        result.severity = ROUTINE  # type: ignore[misc]


def test_department_confidence_and_score_ranges(clf: Classifier) -> None:
    for text in [t for t, _ in CRITICAL_MESSAGES] + ROUTINE_MESSAGES:
        result = clf.classify(text)
        assert 0.0 <= result.department_confidence <= 1.0
        assert result.score >= 0
        assert result.department in DEPARTMENT_KEYS
        assert result.faq is None


def test_private_tokenizer_keeps_domain_words_whole(clf: Classifier) -> None:
    assert clf.tokens("没有人受伤") == ["没有人", "受伤"]
    assert "不作为" in clf.tokens("你们文旅局不作为")
    assert "卫星锅" in clf.tokens("卫星锅还能装吗")
    # our user dictionary goes into a private tokenizer, never into jieba's global one
    import jieba

    assert "卫星锅" not in jieba.dt.FREQ


def test_normalize_traditional_fullwidth_and_controls() -> None:
    assert normalize("網吧老闆打人") == "网吧老板打人"
    assert normalize("ＫＴＶ！！") == "ktv!!"
    assert normalize("受\x1d傷") == "受 伤"


def test_classification_speed(clf: Classifier) -> None:
    texts = _crosswoz_texts()
    start = time.perf_counter()
    for text in texts * 3:
        clf.classify(text)
    rate = len(texts) * 3 / (time.perf_counter() - start)
    assert rate > 2000, f"{rate:.0f} messages/s"


# --------------------------------------------------------------------------------------------
# Robustness: any str, never raise
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "\x1d\x1d\x1d",
        "受\x1d伤",
        "\x00\x01\x7f",
        "😀" * 500,
        "👨‍👩‍👧‍👦🏳️‍🌈",
        "\ud800\udfff",
        "a" * 20_000,
        "我在景区被打了" * 3000,
        "景区" + "！" * 5000,
        "Is anyone hurt? The museum is closed!!",
        "\u202e\u200b踩踏\ufeff",
        "\n\t\r",
        "[[[(((",
    ],
    ids=lambda t: f"len{len(t)}-{t[:6].encode('unicode_escape').decode()[:24]}",
)
def test_never_raises_on_odd_input(clf: Classifier, text: str) -> None:
    result = clf.classify(text)
    assert result.severity in {ROUTINE, CRITICAL}
    assert result.department in DEPARTMENT_KEYS
    json.dumps(result.to_dict())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=300))
def test_never_raises_on_any_text(clf: Classifier, text: str) -> None:
    result = clf.classify(text)
    assert result.severity in {ROUTINE, CRITICAL}
    assert clf.second_opinion is not None and result.second_opinion is not None
    assert (result.severity == CRITICAL) == (
        result.score >= clf.threshold or result.second_opinion >= clf.second_opinion.threshold
    )


def test_long_message_is_analysed_quickly(clf: Classifier) -> None:
    start = time.perf_counter()
    result = clf.classify("景区的环境不错。" * 2300 + "刚才有人落水了")  # 18,407 characters
    assert time.perf_counter() - start < 0.5
    assert result.severity == CRITICAL


# --------------------------------------------------------------------------------------------
# Data validation: a bad data file fails at load, naming the file and the entry
# --------------------------------------------------------------------------------------------


def _data_copy(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(DATA_DIR, target)
    return target


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"fixture text {old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


BAD_DATA = [
    # (file, old, new, words the error must contain)
    ("severity.yaml", "threshold: 5\n", "threshold: 5\ncolour: red\n", ["severity.yaml", "colour", "unknown key"]),
    ("severity.yaml", "      踩踏事故: 7\n", "      踩踏事故: high\n", ["severity.yaml", "踩踏事故", "number"]),
    ("severity.yaml", "      踩踏事故: 7\n", "      踩踏事故: true\n", ["severity.yaml", "踩踏事故", "number"]),
    ("severity.yaml", "      踩踏事故: 7\n", '      踩踏事故: 7\n      "  ": 3\n', ["severity.yaml", "empty term"]),
    (
        "severity.yaml",
        "      踩踏事故: 7\n",
        "      踩踏事故: 7\n      踩踏事故: 8\n",
        ["severity.yaml", "踩踏事故", "duplicate"],
    ),
    (
        "severity.yaml",
        "      投诉: 1\n",
        "      投诉: 1\n      曝光: 2\n",
        ["severity.yaml", "曝光", "duplicate", "media"],
    ),
    ("severity.yaml", "      投诉: 1\n", "      投诉: 1\n      曝光: 2\n", ["line"]),
    (
        "severity.yaml",
        "  hotline_12345_threat:\n    group: authority\n",
        "  hotline_12345_threat:\n    group: nowhere\n",
        ["severity.yaml", "hotline_12345_threat", "unknown group"],
    ),
    ("severity.yaml", "  - 投诉电话\n", "  - 投诉电话\n  - 投诉电话\n", ["severity.yaml", "投诉电话", "duplicate"]),
    ("severity.yaml", "  - 投诉电话\n", "  - 投诉电话\n  - 踩踏事故\n", ["severity.yaml", "踩踏事故"]),
    ("severity.yaml", "    不是: 3\n", "    不是: many\n", ["severity.yaml", "不是", "window"]),
    ("severity.yaml", "threshold: 5\n", "threshold: [5\n", ["severity.yaml", "invalid YAML"]),
    ("departments.yaml", "      网吧: 3\n", "      网吧: 3\n      ktv: 1\n", ["departments.yaml", "ktv", "duplicate"]),
    (
        "departments.yaml",
        "      宾馆: 3\n",
        "      宾馆: 3\n      网吧: 1\n",
        ["departments.yaml", "网吧", "duplicate", "enforcement"],
    ),
    (
        "departments.yaml",
        "    name: 艺术处\n",
        "    name: 艺术处\n    head: 张三\n",
        ["departments.yaml", "arts", "head"],
    ),
    ("departments.yaml", "      豫剧: 3\n", "      豫剧: lots\n", ["departments.yaml", "豫剧", "number"]),
    ("userdict.txt", "网吧 20000 n\n", "网吧 lots n\n", ["userdict.txt", "line", "网吧", "freq"]),
    ("userdict.txt", "网吧 20000 n\n", "网吧 20000 n\n网吧 100 n\n", ["userdict.txt", "duplicate", "网吧"]),
]


@pytest.mark.parametrize(
    ("file", "old", "new", "expected"), BAD_DATA, ids=[f"{b[0]}-{i:02d}" for i, b in enumerate(BAD_DATA)]
)
def test_bad_data_file_raises_knowledge_data_error(
    tmp_path: Path, file: str, old: str, new: str, expected: list[str]
) -> None:
    data = _data_copy(tmp_path)
    _edit(data / file, old, new)
    with pytest.raises(KnowledgeDataError) as info:
        Classifier.load(data)
    message = str(info.value)
    for word in expected:
        assert word in message, message


def test_bad_regex_is_named(tmp_path: Path) -> None:
    data = _data_copy(tmp_path)
    _edit(
        data / "severity.yaml",
        'regex: "(打|叫|拨打|拨|喊)(了)?(120|110|119)"',
        'regex: "(打|叫|拨打|拨|喊(了)?(120|110|119)"',
    )
    with pytest.raises(KnowledgeDataError, match=r"severity\.yaml.*ambulance_or_police_called.*regular expression"):
        Classifier.load(data)


def test_missing_file_is_named(tmp_path: Path) -> None:
    data = _data_copy(tmp_path)
    (data / "departments.yaml").unlink()
    with pytest.raises(KnowledgeDataError, match=r"departments\.yaml.*not found"):
        Classifier.load(data)


def test_department_not_in_config_is_rejected() -> None:
    keys = [k for k in DEPARTMENT_KEYS if k != "heritage"]
    with pytest.raises(KnowledgeDataError, match=r"departments\.yaml.*heritage.*not a configured department"):
        Classifier.load(departments=keys)


def test_fallback_must_be_a_department() -> None:
    with pytest.raises(KnowledgeDataError, match="fallback"):
        Classifier.load(departments=DEPARTMENT_KEYS, fallback="nobody")
    with pytest.raises(KnowledgeDataError, match="fallback"):
        Classifier.load(fallback="nobody")
    assert issubclass(KnowledgeDataError, ValueError)


# --------------------------------------------------------------------------------------------
# Layering: the classifier never knows about HTTP or storage
# --------------------------------------------------------------------------------------------


def test_knowledge_imports_nothing_from_the_app_edges() -> None:
    forbidden = {"bot", "handlers", "escalation", "aiohttp", "sqlalchemy"}
    for path in KNOWLEDGE_DIR.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{path.name} imports {name}"


# --- generalisation mechanisms (dialect, hypotheses, figures of speech, relayed reports) -------------


@pytest.mark.parametrize(
    ("text", "severity", "department"),
    [
        # Cantonese function characters are read as Mandarin (咗→了, 喺→在): the blood pattern applies
        ("我哋团嘅导游喺车上打咗个阿伯，个阿伯流咗好多血", CRITICAL, "market"),
        # a hypothesis covers its clause, also inside a pattern's own match
        ("过山车要是卡在半空中，多久能救下来", ROUTINE, "industry"),
        ("如果孩子在博物馆走丢了，应该找谁", ROUTINE, "public_service"),
        ("要是酒店着火了，逃生通道在哪", ROUTINE, "market"),
        # figures of speech: 都…断了, 简直是…, X死人了
        ("在剧院坐了三个小时，腰都断了，椅子太硬", ROUTINE, "arts"),
        ("这景区票价简直是抢劫", ROUTINE, "industry"),
        ("剧场空调开得冻死人了", ROUTINE, "arts"),
        # a journalist introducing themselves is routed by the topic; a negative story still counts
        ("我是某报社实习记者，想做一期关于城市图书馆的报道，找谁对接", ROUTINE, "public_service"),
        ("我是记者，你们景区踩踏事件的伤亡人数到底多少，为什么一直不公布", CRITICAL, "industry"),
        # posting already done: the hotel named inside the threat is still the topic
        ("我已经把这家酒店的视频发小红书了，点赞两万多", CRITICAL, "market"),
        # the bureau's own people named with what they did → critical, office
        ("你们执法队的老王跟那家网吧老板称兄道弟，每次检查都提前通知", CRITICAL, "office"),
        ("执法队的人来店里检查，私下说交五千就不罚了", CRITICAL, "office"),
        # calm reports
        ("博物馆展柜的玻璃突然炸裂，旁边的孩子脸被划破了", CRITICAL, "public_service"),
        ("我女儿在庙会上和我们走散了，已经四十分钟了", CRITICAL, "industry"),
        pytest.param(
            "群里有人说建业电影小镇起火了，冒着黑烟", CRITICAL, "industry",
            marks=pytest.mark.xfail(strict=True, reason=(
                "known miss since the second opinion of train_t1-t12: it routes fires to enforcement (KTV and bar "
                "fires in its training rows), by 0.001 in log-odds over the lists' 1.5 for the park's name then and "
                "by 0.55 with train_t1-t16 ('群里有人说建业电影小镇起火了' alone now goes to industry); the severity "
                "is right")),
        ),
    ],
)
def test_generalisation_mechanisms(classifier, text: str, severity: str, department: str) -> None:
    result = classifier.classify(text)
    assert (result.severity, result.department) == (severity, department), classifier.explain(text)


def test_normalize_maps_cantonese_function_characters_one_for_one() -> None:
    assert normalize("打咗个阿伯") == "打了个阿伯"
    assert len(normalize("佢喺索道上面困咗")) == len("佢喺索道上面困咗")


# --------------------------------------------------------------------------------------------
# The second opinion (knowledge/second_opinion.py, weights in knowledge/data/second_opinion.json)
# --------------------------------------------------------------------------------------------

SECOND_OPINION_JSON = DATA_DIR / "second_opinion.json"
# a critical message (a travel agency gone with fifty pensioners' money) in words the lists do not have
MODEL_ONLY_CRITICAL = "旅行社关门了，老板电话打不通，我们五十多个老人交钱报的团，现在人都找不到"
SCORED = [
    "景区发生踩踏，好多人受伤",
    "请问博物馆周一开门吗",
    "我家孩子在游乐场的滑梯上摔下来了，头上一直在流血，工作人员也不管",
    "投诉了三次都没有人回复，你们到底管不管",
    MODEL_ONLY_CRITICAL,
    "Is the museum open on Monday?",
    "",
]


def _recipe(text: str) -> tuple[float, dict[str, float]]:
    """The scoring written out again from the file alone: normalise, lower, collapse whitespace runs, the
    distinct 1-3-grams that have an idf, each weighing idf / the vector's length, then both models."""
    doc = json.loads(SECOND_OPINION_JSON.read_text(encoding="utf-8"))
    s = re.sub(r"\s\s+", " ", normalize(text).lower())
    grams = {s[i : i + n] for n in (1, 2, 3) for i in range(len(s) - n + 1)} & set(doc["idf"])
    length = math.sqrt(sum(doc["idf"][g] ** 2 for g in grams)) or 1.0
    x = {g: doc["idf"][g] / length for g in grams}
    severity, department = doc["severity"], doc["department"]
    z = severity["bias"] + sum(severity["weights"].get(g, 0.0) * v for g, v in x.items())
    logits = {
        key: bias + sum(department["weights"][key].get(g, 0.0) * v for g, v in x.items())
        for key, bias in zip(department["keys"], department["bias"], strict=True)
    }
    return 1 / (1 + math.exp(-z)), logits


@pytest.mark.parametrize("text", SCORED)
def test_second_opinion_scores_as_the_file_says(clf: Classifier, text: str) -> None:
    assert clf.second_opinion is not None
    p, logits = clf.second_opinion.assess(normalize(text))
    expected_p, expected_logits = _recipe(text)
    assert p == pytest.approx(expected_p, abs=1e-9)
    assert logits == pytest.approx(expected_logits, abs=1e-9)
    assert clf.classify(text).second_opinion == p


def test_second_opinion_decisions_on_known_messages(clf: Classifier) -> None:
    assert clf.second_opinion is not None
    p = {text: clf.second_opinion.probability(normalize(text)) for text in SCORED}
    assert p[MODEL_ONLY_CRITICAL] >= clf.second_opinion.threshold
    assert p["我家孩子在游乐场的滑梯上摔下来了，头上一直在流血，工作人员也不管"] >= clf.second_opinion.threshold
    assert p["请问博物馆周一开门吗"] < 0.05 and p["Is the museum open on Monday?"] < 0.2


def test_second_opinion_file_says_what_it_is() -> None:
    doc = json.loads(SECOND_OPINION_JSON.read_text(encoding="utf-8"))
    assert doc["severity"]["threshold"] == 0.55 and doc["ngram"] == [1, 3]
    assert doc["department"]["keys"] == sorted(DEPARTMENT_KEYS)
    about = doc["about"]
    assert {"what", "trained", "training_files", "report_files", "threshold"} <= set(about)
    assert about["training_files"] == [
        "tests/data/dev.jsonl", "tests/data/blind.jsonl", "tests/data/unseen_a.jsonl (even ids)",
        *(f"tests/data/{name}" for name in WRITERS),
    ]
    assert not set(about["training_files"]) & set(about["report_files"])


def test_the_evidence_shown_in_alerts_holds_no_digits_of_a_phone_number(clf: Classifier) -> None:
    # The n-grams behind a model's decision go into alerts and pages: "123", "234" were pieces of the
    # netizen's phone number there (second fresh-eyes pass)
    for phone in ("13912345678", "139 1234 5678"):
        result = clf.classify(f"{MODEL_ONLY_CRITICAL}，我电话{phone}")
        assert result.severity == CRITICAL and result.matched[0].startswith("相似案例判断")
        assert not any(ch.isdigit() for label in result.matched[1:] for ch in label), result.matched


def test_second_opinion_makes_a_lexicon_routine_message_critical_and_says_why(clf: Classifier) -> None:
    result = clf.classify(MODEL_ONLY_CRITICAL)
    assert result.score < clf.threshold  # the word lists alone: routine
    assert result.severity == CRITICAL
    assert result.second_opinion is not None
    assert result.matched[0] == f"相似案例判断 {math.floor(result.second_opinion * 100)}%"
    evidence = result.matched[1:5]
    assert len(evidence) == 4
    for gram in evidence:
        assert len(gram) >= 2 and gram in normalize(MODEL_ONLY_CRITICAL)
        assert not any(gram in other for other in evidence if other != gram)  # none inside another
    assert "旅行社" in result.matched  # the department's term still follows
    assert result.department == "market"
    # a message the word lists make critical lists its terms, not the second opinion
    assert not any(m.startswith("相似案例判断") for m in clf.classify("景区发生踩踏，好多人受伤").matched)


def test_r6_2_the_second_opinion_routes_a_subject_the_lists_have_no_word_for(clf: Classifier) -> None:
    text = "我想问一下那个事情怎么样了"  # a follow-up with no subject: info_center by the guidelines
    explained = clf.explain(text)
    assert explained["department_scores"] == {}  # no listed term
    result = clf.classify(text)
    assert result.department == "info_center"
    # How sure the model is varies with its training rows (0.51 since train_t13-t16): the pipeline never moves a
    # conversation to the fallback department on such a message (tests/test_faq_pipeline.py).
    assert 0.2 < result.department_confidence < 0.9
    model = explained["department_model"]
    assert set(model["logits"]) == set(DEPARTMENT_KEYS)
    assert model["evidence"] and all(gram in result.matched for gram in model["evidence"])


def test_r6_2_a_listed_term_and_the_model_together_decide_the_department(clf: Classifier) -> None:
    # The lists score 剧场/演出 (arts, 6) over 景区/门票 (industry, 5); the model agrees it is a theatre matter.
    result = clf.classify("景区里的剧场演出取消了，门票怎么退")
    assert result.department == "arts"
    assert "剧场" in result.matched


def test_without_the_second_opinion_file_the_word_lists_decide_alone(tmp_path: Path, clf: Classifier) -> None:
    data = _data_copy(tmp_path)
    (data / "second_opinion.json").unlink()
    alone = Classifier.load(data, departments=DEPARTMENT_KEYS, fallback="info_center")
    assert alone.second_opinion is None
    result = alone.classify(MODEL_ONLY_CRITICAL)
    assert result.severity == ROUTINE and result.second_opinion is None
    assert result.to_dict()["second_opinion"] is None
    assert not any(m.startswith("相似案例判断") for m in result.matched)
    assert result.score == clf.classify(MODEL_ONLY_CRITICAL).score  # the lexicon's score does not depend on it
    # routing by the lists alone: no term → the fallback with no confidence; a tie → below 0.5
    assert (alone.classify("在吗").department, alone.classify("在吗").department_confidence) == ("info_center", 0.0)
    tie = alone.classify("网吧和图书馆")  # 网吧 (enforcement, 3) and 图书馆 (public_service, 3)
    assert tie.department in {"enforcement", "public_service"} and tie.department_confidence < 0.5
    assert alone.explain("在吗")["department_model"] is None


def _with(doc: dict, path: str, value: object) -> str:  # type: ignore[type-arg]
    """``doc`` with the dotted ``path`` set to ``value`` (``None`` deletes it), as JSON."""
    doc = json.loads(json.dumps(doc))
    *parents, last = path.split(".")
    target = doc
    for key in parents:
        target = target[key]
    if value is None:
        del target[last]
    else:
        target[last] = value
    return json.dumps(doc, ensure_ascii=False)


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda doc: "{not json", ["second_opinion.json", "invalid JSON", "line 1"]),
        (lambda doc: json.dumps([1, 2]), ["second_opinion.json", "mapping"]),
        (lambda doc: _with(doc, "idf", None), ["second_opinion.json", "idf"]),
        (lambda doc: _with(doc, "idf", {}), ["second_opinion.json", "idf", "no n-grams"]),
        (lambda doc: _with(doc, "idf", {**doc["idf"], "发生踩踏": 2.0}), ["second_opinion.json", "发生踩踏", "length 4"]),
        (lambda doc: _with(doc, "idf.的", -1), ["second_opinion.json", "idf['的']", "positive"]),
        (lambda doc: _with(doc, "severity.threshold", 1.5), ["second_opinion.json", "threshold", "between 0 and 1"]),
        (lambda doc: _with(doc, "severity.bias", "high"), ["second_opinion.json", "severity.bias", "number"]),
        (lambda doc: _with(doc, "severity.weights", {"踩踏": "x"}), ["second_opinion.json", "踩踏", "number"]),
        (lambda doc: _with(doc, "severity.weights", {"zzz": 1.0}), ["second_opinion.json", "zzz", "no idf"]),
        (lambda doc: _with(doc, "department.bias", [0.0]), ["second_opinion.json", "department.bias", "9 numbers"]),
        (lambda doc: _with(doc, "department.keys", ["market", "market"]), ["second_opinion.json", "department.keys"]),
        (lambda doc: _with(doc, "department.weights.tourism", {}), ["second_opinion.json", "tourism", "department.keys"]),
        (lambda doc: _with(doc, "department.lexicon_weight", -1), ["second_opinion.json", "lexicon_weight", "negative"]),
        (lambda doc: _with(doc, "ngram", [3, 1]), ["second_opinion.json", "ngram"]),
        (lambda doc: _with(doc, "colour", "red"), ["second_opinion.json", "colour", "unknown key"]),
    ],
    ids=["json", "list", "no-idf", "empty-idf", "long-gram", "negative-idf", "threshold", "bias", "weight",
         "weight-without-idf", "bias-count", "duplicate-key", "unknown-department", "lexicon-weight", "ngram",
         "unknown-key"],
)
def test_malformed_second_opinion_file_is_named(tmp_path: Path, edit, words: list[str]) -> None:  # type: ignore[no-untyped-def]
    data = _data_copy(tmp_path)
    path = data / "second_opinion.json"
    path.write_text(edit(json.loads(path.read_text(encoding="utf-8"))), encoding="utf-8")
    with pytest.raises(KnowledgeDataError) as info:
        Classifier.load(data)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_a_second_opinion_for_a_department_the_bureau_does_not_have_is_refused(tmp_path: Path) -> None:
    data = _data_copy(tmp_path)
    path = data / "second_opinion.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["department"]["keys"][0] = "tourism"
    doc["department"]["weights"]["tourism"] = doc["department"]["weights"].pop(sorted(DEPARTMENT_KEYS)[0])
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(KnowledgeDataError, match=r"'tourism' is not defined in departments\.yaml"):
        Classifier.load(data)


def test_scikit_learn_is_only_imported_by_the_training_script() -> None:
    for path in KNOWLEDGE_DIR.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                if any(n.split(".")[0] == "sklearn" for n in names):
                    assert path.name == "train_second_opinion.py", f"{path.name} imports scikit-learn"
                    assert node.col_offset > 0, "scikit-learn is imported inside the training function only"


@pytest.mark.parametrize(("text", "severity", "department"), [
    ("文旅局的工作人员跟旅行社是一伙的", CRITICAL, "office"),
    ("稽查的人每次来都要我们请吃饭", CRITICAL, "office"),
    ("那两家店是一伙的，一个拉客一个宰客", ROUTINE, "market"),  # two shops in league: an ordinary complaint
])
def test_r6_1d_collusion_and_petty_extortion_by_the_bureaus_people(
        clf: Classifier, text: str, severity: str, department: str) -> None:
    result = clf.word_lists_only().classify(text)
    assert (result.severity, result.department) == (severity, department), clf.explain(text)


# Found by the fifth unseen set (unseen_f.jsonl, scored once before these changes); the phrasings here are new.
@pytest.mark.parametrize(("text", "severity"), [
    # 拿/收 with an ID card is what to bring, not papers seized
    ("请问图书馆办借书证要拿身份证吗", ROUTINE),
    ("明天带孩子去博物馆，拿身份证就能进还是要先预约", ROUTINE),
    ("导游把全团的身份证都收走了，说不交五百块不还", CRITICAL),
    ("我们的护照被地接社扣着不给，人在外地回不去", CRITICAL),
    # 甩脸子 is a sour face: forced shopping, ordinary
    ("导游天天拉我们进店，不买就甩脸子，这种导游能投诉吗", ROUTINE),
    ("不交钱就把我们甩在高速服务区，车已经开走了", CRITICAL),
    # a hypothesis after 这么多 ("多万" was one word): nothing has happened
    ("国庆景区人这么多万一踩踏了咋整，建议限流", ROUTINE),
    # somebody else's news
    ("昨天看新闻别的城市有个网吧着火死了人，我们这的网吧消防有人查吗", ROUTINE),
    # one person hurt: a hint that a tour or a venue makes critical, and that 孩子没事 takes back
    ("团里一个老人在景区台阶上摔了，头破了在流血，导游不管", CRITICAL),
    ("广场上一个小孩摔了一跤，家长扶起来了，小孩没事，就是地砖该修了", ROUTINE),
    # the "free" trip that sells health products: one buyer is a complaint, a building of them is R6.1d
    ("我爸跟着免费一日游出去，回来买了三千块的保健品，能退吗", ROUTINE),
    ("社区里有人送鸡蛋拉老人去免费游，回来我们单元十几个老太太都买了几万块的保健品", CRITICAL),
    # from a fresh-eyes pass: a bribe told from the giver's side, a rider thrown from a ride, and the pennant
    # that is thanks, not a gift to an official
    ("评4A那年景区给评审专家一人送了两万红包，这个级别是买来的", CRITICAL),
    ("那家网吧每次检查前都向执法队塞钱，所以从来不查未成年人", CRITICAL),
    ("过山车转弯的时候一个小伙子被甩出去了，躺在地上不动", CRITICAL),
    ("我们想给局领导送一面锦旗，谢谢帮我们追回了团费", ROUTINE),
    ("过山车会不会把人甩出去啊，孩子有点怕", ROUTINE),
    # "是不是" asks, but it also insinuates ("是不是有保护伞", critical): a crowd and an ambulance still report
    ("游乐园那边是不是有人从高处掉下来了，好多人围着，救护车都来了", CRITICAL),
    ("那个黑导游这么嚣张，是不是有保护伞", CRITICAL),
    ("你们是不是收了好处，才一直不查那家KTV", CRITICAL),
])
def test_r6_1d_unseen_f_and_fresh_eyes_lessons(clf: Classifier, text: str, severity: str) -> None:
    result = clf.classify(text)
    assert result.severity == severity, result.to_dict()
