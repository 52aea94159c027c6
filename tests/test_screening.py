"""knowledge.screening: staff answers are screened before they are sent (rules R9 and R10).

R10 (article 10): civil, standard language — no insults or brush-offs (block), no internet slang or
emoji (warn), no personal data (block). R9 (article 9): nothing illegal or unhealthy (block), no false
or absolute promises (warn), no emotional personal opinions (warn).

A false alarm makes staff distrust the check (and a head override every day); a miss puts an insult
or a netizen's ID-card number on the bureau's official account. The tables below pin both sides:
polite civil-service answers that must pass clean — including ones that contain 滚动, 乐呵呵, 算命摊点,
全额退款 or an office landline — and answers that must be flagged with the right category.
"""

from __future__ import annotations

import json
import time
import unicodedata
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from knowledge.pii import id_card_shaped
from knowledge.screening import (
    BANNED,
    BLOCK,
    DATA_FILE,
    EMOTIONAL_OPINION,
    FALSE_PROMISE,
    PERSONAL_DATA,
    SEVERITIES,
    UNCIVIL,
    UNPROFESSIONAL,
    WARN,
    Finding,
    Screener,
    ScreeningDataError,
    Verdict,
    id_card_valid,
    luhn_valid,
)


@pytest.fixture(scope="module")
def screener() -> Screener:
    # jieba's dictionary loads once for the whole module (about half a second).
    return Screener.load()


def categories(verdict: Verdict) -> set[str]:
    return {f.category for f in verdict.findings}


# --------------------------------------------------------------------------------------------
# Clean: polite civil-service answers, many with a near-miss word in them
# --------------------------------------------------------------------------------------------

CLEAN_ANSWERS = [
    "您好！您反映的问题已转交市场管理处核查，我们将在2个工作日内回复您。感谢您的监督！",
    "您好，市图书馆开放时间为周二至周日9:00-21:00，周一闭馆（法定节假日除外）。",
    "感谢您的留言。博物馆实行免费预约参观，请通过“郑州博物馆”微信公众号提前预约，入馆时请出示身份证件。",
    "您好，您反映的KTV噪音扰民问题，我局文化市场综合执法支队已于今日上午到现场检查，已责令经营者整改。",
    "您好！关于旅行社未按合同履行的问题，建议您保留好合同和付款凭证，可拨打12301全国旅游服务热线或12345热线投诉。",
    # an office landline, the 12345 hotline
    "投诉电话：0371-12345678（工作日8:30-17:30），我们将有专人接听。",
    "您好，请您拨打12345热线反映，我们会配合做好处理。",
    # 滚 inside ordinary words
    "您好，景区滚梯检修期间，请游客从东侧步行通道进入，给您带来不便，敬请谅解。",
    "您好，演出期间大屏幕不滚动播放广告，节目单请以现场公告为准。",
    "您好，周末公园内有滚铁环、抖空竹等传统游戏体验活动，欢迎带孩子参加。",
    "您好，游客如有心脏病史，请勿乘坐过山车等刺激性项目。请不要在草坪上打滚、攀爬雕塑。",
    # 保证 a reply time: a commitment the bureau controls
    "我们保证在两个工作日内回复您，请保持电话畅通。",
    "您好，我们一定会认真核实您反映的情况，并在核实后第一时间答复您。",
    # enforcement answers name offences
    "经执法人员现场检查，该网吧未发现赌博行为和接纳未成年人的情况，我们将持续加强巡查。",
    "您好，您提到的算命摊点，执法人员已会同景区管理处进行了清理，感谢您的监督。",
    "您好，根据规定，网吧不得接纳未成年人，请家长加强监护，发现违规可拨打12318举报。",
    # folk customs and history are culture
    "您好，端午节期间市群众艺术馆举办非遗展，展出插艾草、挂菖蒲等驱邪纳福的传统习俗，欢迎参观。",
    "您好，傩戏是国家级非物质文化遗产，表演中驱鬼逐疫的情节是传统民俗的一部分。",
    "您好，该剧目讲述了抗战时期军民同仇敌忾、与敌人同归于尽的英雄事迹，适合青少年观看。",
    # numbers that are not personal data
    "您好，景区门票价格为二百五十元（含索道），60周岁以上老人凭身份证享受半价优惠。",
    "您好，您反映的导游强制购物问题已受理，受理编号2023101600123，我们将依法调查处理。",
    "您好，影视剧拍摄备案请向市广电管理处申请，电话0371-6718 8888。",
    "您好，文化惠民卡可在各区文化馆领取，需携带身份证，详情请咨询(0371)65561234。",
    "您好，导游证年审请登录全国旅游监管服务平台办理，如遇系统问题可拨打400-123-4567咨询。",
    "您好，我们已通过您留下的电话138****5678与您联系，未能接通，请您方便时回电。",
    "您好，我局政务邮箱为example@zhengzhou.gov.cn，欢迎来信反映情况。",
    "您好，经查，该演出场所已取得营业性演出许可证，许可证号：豫文演〔2023〕0012号。",
    "您好，图书馆借阅证办理需携带本人身份证原件，押金100元，退证时全额退还。",
    # refunds stated as rights or facts, not promised
    "您好，暴雨天气景区已临时闭园，已购票游客可在7日内申请全额退款，具体请咨询景区服务电话。",
    "您好，根据《旅行社条例》相关规定，旅行社应当退还未实际发生的费用，您可携带相关凭证到市场管理处咨询。",
    "您好，该演出已取消，主办方承诺按原支付渠道退票，请您留意短信通知。",
    "您好，经核实，该酒店已于10月15日为您办理退款，请您注意查收。如有疑问，请拨打12345。",
    # words that contain a listed word
    "您好，科技馆“哈哈镜”互动展区目前正常开放。",
    "您好，请按规定垃圾分类投放，景区内设有分类垃圾桶，感谢您的配合。",
    "您好，经沟通，执法人员已说服了商家为您退还多收的费用，请注意查收。",
    "您好，乐呵呵社区文艺汇演将于本周六晚在人民公园举行，欢迎观看。",
    "您好，我们将一边联系商家核实情况，一边为您查询相关政策，请您耐心等待。",
    "您好，此事不属于我局职责范围，已为您转交市市场监督管理局处理，您也可拨打12315热线反映。",
    "您好，请您注意防范电信诈骗，我局工作人员不会要求您提供银行卡号和验证码。",
    "您好，设备支持USB接口充电，请自带数据线。",
    # ordinary polite answers
    "谢谢您的建议！我们已将您的意见转交公共服务处，将在今后的工作中认真研究、改进。",
    "您好，感谢您对非遗保护工作的关注！关于剪纸传承人认定的问题，请您关注我局官网通知。",
    "您好，景区内严禁燃放烟花爆竹，请您遵守规定，共同维护安全的游览环境。",
    "您好，对于给您带来的不便，我们深表歉意，已督促景区管理方加强游客疏导。",
    "您好，我们已收到您的反馈，工作人员会在今天下午联系您，请保持手机畅通。",
    "您好，我们非常重视您反映的问题，已要求景区立即整改并举一反三。",
    "您好，关于广场舞噪音扰民问题，我们已协调街道办事处和社区进行劝导，请您理解。",
    "您好，市美术馆展览期间每日限流3000人，请您错峰参观。",
    "您好，请您不要着急，我们会尽快核实处理，有进展会第一时间告知您。",
    "您好，景区索道因大风天气暂停运营，恢复时间请关注景区公告。给您带来不便，敬请谅解！",
    "您好，依据演出票务管理规定，演出开始前48小时可申请退票，我们将督促主办方落实。",
    "您好，请您放心，我们会依法依规处理，处理结果将及时反馈给您。",
    "您好，如您在旅游过程中遇到强迫消费，请保留证据，第一时间拨打110或12345。",
    "您好，非常抱歉给您带来不好的体验。我们已约谈该景区负责人，要求其加强员工文明服务培训。",
    "您好，我们已经反复核实，政策规定确实如此，如有不同意见，可依法申请行政复议。",
    "您好，展览将持续至12月31日，每周一闭馆，票价30元/人，学生凭学生证半价。",
    # traditional characters, full-width punctuation
    "您好，您反映的問題已轉交市場管理處核查，請您耐心等待。",
    "您好！您咨询的演出门票ＶＩＰ区域已售罄，普通区域仍有余票。",
]


def test_enough_clean_answers() -> None:
    assert len(CLEAN_ANSWERS) >= 40
    assert len(set(CLEAN_ANSWERS)) == len(CLEAN_ANSWERS)


@pytest.mark.parametrize("answer", CLEAN_ANSWERS)
def test_r9_r10_polite_answer_passes_clean(screener: Screener, answer: str) -> None:
    verdict = screener.screen(answer)
    assert verdict.findings == (), [f.to_dict() for f in verdict.findings]
    assert not verdict.blocked
    assert verdict.summary == ""


# --------------------------------------------------------------------------------------------
# Flagged: (answer, category, the flagged text as written)
# --------------------------------------------------------------------------------------------

UNCIVIL_ANSWERS = [
    ("滚！别来烦我", "滚"),
    ("你有病吧，这种问题也来问？", "你有病吧"),
    ("你是不是有病，天天发", "你是不是有病"),  # both passed a second fresh-eyes pass
    ("你們這些人真是垃圾", "真是垃圾"),
    ("自己不会查吗？官网上写得清清楚楚。", "自己不会查吗"),
    ("爱咋咋地，反正规定就是这样。", "爱咋咋地"),
    ("关我什么事？你去找景区。", "关我什么事"),
    ("少废话，按规定办就行。", "少废话"),
    ("这都看不明白，真是白痴。", "白痴"),
    ("爱投诉就投诉去，我们不怕。", "爱投诉就投诉去"),
    ("你去告吧，告到哪里都一样。", "你去告吧"),
    ("懒得理你，下一个", "懒得理你"),
    ("这种事不归我管，别问了", "不归我管"),
    # dodges: separators inserted, full-width letters, traditional characters
    ("滚 !", "滚"),
    ("滚-蛋", "滚-蛋"),
    ("滚——蛋，少来烦人", "滚——蛋"),
    ("滚。蛋", "滚。蛋"),
    ("你 有 病 吧", "你 有 病 吧"),
    ("ＳＢ，说了多少遍了", "ＳＢ"),
    ("你是s b吗", "s b"),
    ("關我什麼事", "關我什麼事"),
    ("你給我滾", "給我滾"),
    # sentence punctuation separates words: "滚！滚！" is not the harmless 滚滚
    ("滚！滚！", "滚"),
    ("好的\n滚", "滚"),
]


@pytest.mark.parametrize(("answer", "term"), UNCIVIL_ANSWERS)
def test_r10_uncivil_answer_is_blocked(screener: Screener, answer: str, term: str) -> None:
    verdict = screener.screen(answer)
    assert verdict.blocked
    hits = [f for f in verdict.findings if f.category == UNCIVIL]
    assert term in [f.term for f in hits], [f.to_dict() for f in verdict.findings]
    assert all(f.severity == BLOCK and f.rule == "R10" for f in hits)


UNPROFESSIONAL_ANSWERS = [
    ("亲~这个问题已经帮您转交啦，么么哒", "么么哒"),
    ("亲，您好，门票在官网购买", "亲"),
    ("哈哈哈哈，这个活动确实很火爆", "哈哈哈哈"),
    ("好的😂我们马上处理", "😂"),
    ("这个展览yyds，绝绝子！", "yyds"),
    ("收到[抱拳]，我们会尽快处理", "[抱拳]"),
    ("请注意!!!景区今天闭园", "!!!"),
    ("好的哦~我们会处理的", "哦~"),
    ("emmm，这个我们再查一下", "emmm"),
]


@pytest.mark.parametrize(("answer", "term"), UNPROFESSIONAL_ANSWERS)
def test_r10_unprofessional_answer_warns(screener: Screener, answer: str, term: str) -> None:
    verdict = screener.screen(answer)
    assert not verdict.blocked
    hits = [f for f in verdict.findings if f.category == UNPROFESSIONAL]
    assert term in [f.term for f in hits], [f.to_dict() for f in verdict.findings]
    assert all(f.severity == WARN and f.rule == "R10" for f in hits)


BANNED_ANSWERS = [
    ("再闹事就找人收拾你", "找人收拾你", "暴力、威胁"),
    ("推荐您去这个网上赌场玩玩", "网上赌场", "赌博"),
    ("景区门口算命很准，可以去看看", "算命很准", "封建迷信"),
    ("可以帮您代开发票", "代开发票", "违法交易"),
    ("这个黄色网站上有", "黄色网站", "色情低俗"),
    ("有本事就推翻政府", "推翻政府", "违反法律法规和方针政策的表述"),
    ("網上賭場", "網上賭場", "赌博"),
]


@pytest.mark.parametrize(("answer", "term", "label"), BANNED_ANSWERS)
def test_r9_banned_answer_is_blocked(screener: Screener, answer: str, term: str, label: str) -> None:
    verdict = screener.screen(answer)
    assert verdict.blocked
    hits = [f for f in verdict.findings if f.category == BANNED]
    assert [(f.term, f.label) for f in hits] == [(term, label)]
    assert hits[0].severity == BLOCK and hits[0].rule == "R9"


FALSE_PROMISE_ANSWERS = [
    ("放心，我们保证全额退款", "保证全额退款"),
    ("百分之百能解决，您放心", "百分之百能解决"),
    ("绝对没问题，您直接去就行", "绝对没问题"),
    ("我们一定帮您追回损失", "一定帮您追回"),
    ("保证让您满意", "保证让您满意"),
    ("这家旅行社服务好，包您满意", "包您满意"),
    ("我们的游客满意率100%", "100%"),
    ("保证给您退款", "保证给您退款"),
]


@pytest.mark.parametrize(("answer", "term"), FALSE_PROMISE_ANSWERS)
def test_r9_false_promise_warns(screener: Screener, answer: str, term: str) -> None:
    verdict = screener.screen(answer)
    assert not verdict.blocked
    hits = [f for f in verdict.findings if f.category == FALSE_PROMISE]
    assert term in [f.term for f in hits], [f.to_dict() for f in verdict.findings]
    assert all(f.severity == WARN and f.rule == "R9" for f in hits)


EMOTIONAL_ANSWERS = [
    ("我个人觉得这个政策很烂，但我们也没办法", "我个人觉得"),
    ("我个人觉得这个政策很烂，但我们也没办法", "政策很烂"),
    ("气死我了，这都第几次问了", "气死我了"),
    ("真无语，文件上写得很清楚", "真无语"),
    ("呵呵，您说的都对", "呵呵"),
    ("呵呵呵呵", "呵呵呵呵"),
    ("烦死了，每天都有人问这个", "烦死了"),
    ("我也是打工的，您别为难我", "我也是打工的"),
    ("???您看清楚了再问", "???"),
    ("唉，这事我们也管不了", "唉"),
    ("说实话，这个规定太离谱了", "说实话"),
]


@pytest.mark.parametrize(("answer", "term"), EMOTIONAL_ANSWERS)
def test_r9_emotional_opinion_warns(screener: Screener, answer: str, term: str) -> None:
    verdict = screener.screen(answer)
    assert not verdict.blocked
    hits = [f for f in verdict.findings if f.category == EMOTIONAL_OPINION]
    assert term in [f.term for f in hits], [f.to_dict() for f in verdict.findings]
    assert all(f.severity == WARN and f.rule == "R9" for f in hits)


def test_enough_flagged_answers() -> None:
    total = (
        len(UNCIVIL_ANSWERS)
        + len(UNPROFESSIONAL_ANSWERS)
        + len(BANNED_ANSWERS)
        + len(FALSE_PROMISE_ANSWERS)
        + len(EMOTIONAL_ANSWERS)
        + len(PERSONAL_DATA_ANSWERS)
    )
    assert total >= 30


def test_r9_r10_severity_follows_the_category() -> None:
    assert {c: SEVERITIES[c] for c in (UNCIVIL, BANNED, PERSONAL_DATA)} == dict.fromkeys(
        (UNCIVIL, BANNED, PERSONAL_DATA), BLOCK
    )
    assert {c: SEVERITIES[c] for c in (FALSE_PROMISE, EMOTIONAL_OPINION, UNPROFESSIONAL)} == dict.fromkeys(
        (FALSE_PROMISE, EMOTIONAL_OPINION, UNPROFESSIONAL), WARN
    )


@pytest.mark.parametrize(
    "answer",
    [
        "不滚动播放",
        "滚梯",
        "乐呵呵",
        "已说服了商家",
        "你有病史吗",
        "妈妈的生日",
        "我靠近景区大门",
        "usb接口",
        "无语言障碍",
        "说服了",
        "修改运营时间",
    ],
)
def test_r10_word_boundaries_avoid_false_positives(screener: Screener, answer: str) -> None:
    assert screener.screen(answer).findings == ()


@pytest.mark.parametrize("answer", ["给我滚", "你给我滚出去", "赶紧滚吧"])
def test_r10_whole_word_gun_is_found(screener: Screener, answer: str) -> None:
    assert categories(screener.screen(answer)) == {UNCIVIL}


def test_r9_bao_zheng_decision(screener: Screener) -> None:
    """保证 alone is a commitment the bureau may make (a reply time); a promised outcome is not."""
    assert screener.screen("我们保证在两个工作日内回复您").findings == ()
    assert screener.screen("我们保证将您的意见转交相关部门").findings == ()
    assert screener.screen("我们一定会督促商家尽快为您退款").findings == ()
    assert categories(screener.screen("我们保证您能拿到全额退款")) == {FALSE_PROMISE}
    assert categories(screener.screen("我们保证全额退款")) == {FALSE_PROMISE}
    assert categories(screener.screen("我们保证帮您解决")) == {FALSE_PROMISE}


# --------------------------------------------------------------------------------------------
# Personal data
# --------------------------------------------------------------------------------------------

PERSONAL_DATA_ANSWERS = [
    ("请联系负责人张先生，电话13812345678", "phone", "138****5678"),
    ("电话138-1234-5678", "phone", "138****5678"),
    ("电话138 1234 5678", "phone", "138****5678"),
    ("电话+86 138 1234 5678", "phone", "138****5678"),
    ("电话１３８１２３４５６７８", "phone", "138****5678"),
    ("投诉人身份证号11010519491231002X，请核对", "id_card", "110105********002X"),
    ("身份证410105 19900307 123x", "id_card", "410105********123X"),
    ("退款请转到卡号4111 1111 1111 1111", "bank_card", "4111********1111"),
    ("退款账户6222021234567890128", "bank_card", "6222***********0128"),
    ("他的邮箱是zhangsan@qq.com", "email", "z***@qq.com"),
    # formats a tester found passing (knowledge.pii; bot.logs masks the same ones)
    ("电话+8613912345678", "phone", "139****5678"),
    ("电话(+86)139.1234.5678", "phone", "139****5678"),
    ("电话（＋８６）１３９．１２３４．５６７８", "phone", "139****5678"),
    ("电话0086 139-1234-5678", "phone", "139****5678"),
    ("您好，身份证 1101 0119 9003 0712 34", "id_card", "110101********1234"),
    ("身份证110101-19900307-1234", "id_card", "110101********1234"),
    ("身份证１１０１０１１９９００３０７１２３４", "id_card", "110101********1234"),
    ("老身份证号110101900307123", "id_card", "110101******123"),  # 15 digits: the birth day is not kept
    ("退款账户6222021234567890123", "bank_card", "6222***********0123"),  # UnionPay, fails Luhn
    ("卡号6222-0212-3456-7890-128", "bank_card", "6222***********0128"),
]


@pytest.mark.parametrize(("answer", "kind", "masked"), PERSONAL_DATA_ANSWERS)
def test_r10_personal_data_is_blocked_and_masked(screener: Screener, answer: str, kind: str, masked: str) -> None:
    verdict = screener.screen(answer)
    assert verdict.blocked
    (finding,) = verdict.findings
    assert (finding.category, finding.entry, finding.term) == (PERSONAL_DATA, kind, masked)
    assert finding.severity == BLOCK and finding.rule == "R10"
    # the position covers the number as written; the data itself is not repeated in the verdict
    written = unicodedata.normalize("NFKC", answer[finding.start : finding.end]).replace(" ", "").replace("-", "")
    assert written.upper().endswith(masked.rpartition("*")[2].upper())
    assert answer[finding.start : finding.end] not in json.dumps(verdict.to_dict(), ensure_ascii=False)


def test_r10_personal_data_id_card_checksum() -> None:
    for number in ("11010519491231002X", "41010519900307123X", "440308198512120010", "410102200002294569"):
        assert id_card_valid(number)
        assert id_card_valid(number.lower())
    for number in ("110105194912310021", "410105199003071230", "44030819851212001", "4403081985121200101", ""):
        assert not id_card_valid(number)


def test_r10_personal_data_id_card_with_wrong_check_digit_is_blocked(screener: Screener) -> None:
    # A mistyped ID (or one with its last digit changed) is still someone's: the layout decides.
    assert not id_card_valid("110105194912310021")
    for answer in ("编号110105194912310021", "编号11010519491231002X", "身份证410105199003071230"):
        (finding,) = screener.screen(answer).findings
        assert (finding.category, finding.entry) == (PERSONAL_DATA, "id_card")


def test_r10_personal_data_id_card_layout_and_check() -> None:
    # a province code, then a real birth date; the check digit does not matter
    for number in ("110105194912310021", "11010519491231002X", "11010519491231002x", "110101900307123",
                   "410102200002294569", "650102185001019999", "820000199912311234"):
        assert id_card_shaped(number), number
    for number in (
        "202612040001234567",  # an 18-digit order number: 20 is no province
        "910101199003071234",  # nor is 91
        "110101199013071234",  # month 13
        "110101199002301234",  # 30 February
        "110101190002291234",  # 1900 was not a leap year
        "110101210001011234",  # born in 2100
        "110101991307123",  # 15 digits, month 13
        "11010119900307123",  # 17 digits
        "11010190030712X",  # a 15-digit ID has no check character
        "11010119900307123Y",
        "１１０１０１１９９００３０７１２３４",  # full-width: fold first
        "",
    ):
        assert not id_card_shaped(number), number


@pytest.mark.parametrize(
    "answer",
    [
        "您好，景区门票120元，学生票60元，2026年12月4日起执行。",
        "您好，活动时间为2026-12-04 09:30，地址：郑州市金水区（邮编450000）。",
        "您好，您的订单号20261204000123已退款，请注意查收。",
        "您好，订单号202612040001234567已转交商家处理。",  # 18 digits, no province code
        "您好，案件编号202612040001234已受理。",  # 15 digits, no province code
        "您好，受理编号110101202613451234，请留存。",  # region-like start, but month 13 and day 45
        "您好，编号1101011990030712345已登记。",  # 19 digits: not an ID (and not a card)
        "您好，许可证号：410100000012345。",  # a 15-digit licence number: month 00
        "您好，服务器地址139.123.45.167暂时无法访问。",  # dotted, but not 3-4-4
        "您好，景区电话：0371-12345678，值班电话400-123-4567。",
    ],
)
def test_r10_personal_data_ordinary_numbers_are_not_flagged(screener: Screener, answer: str) -> None:
    assert screener.screen(answer).findings == ()


def test_r10_personal_data_luhn() -> None:
    for number in ("4111111111111111", "6222021234567890128", "6217001234567893", "6228480402564890018"):
        assert luhn_valid(number)
    for number in ("4111111111111112", "6222021234567890127", "", "abc", "４１１１"):
        assert not luhn_valid(number)


def test_r10_personal_data_card_needs_luhn_and_a_card_prefix(screener: Screener) -> None:
    assert screener.screen("卡号4111111111111112").findings == ()  # Luhn fails
    assert screener.screen("卡号5500000000000005").findings == ()
    # UnionPay (62) is blocked Luhn or not: some Chinese debit cards fail the check
    assert not luhn_valid("6222021234567890127")
    assert screener.screen("卡号6222021234567890127").blocked
    assert screener.screen("卡号6222 0212 3456 7890 127").blocked
    # a date-based case number that happens to pass Luhn is not a card
    number = next(n for n in (f"2023101600{i:06d}" for i in range(100)) if luhn_valid(n))
    assert screener.screen(f"受理编号{number}").findings == ()


@pytest.mark.parametrize(
    "answer",
    [
        "请您拨打12345热线",
        "投诉电话0371-12345678",
        "文化市场举报热线12318，旅游服务热线12301",
        "请拨打0371-6596 1234或400-123-4567",
        "已回电至138****5678",
        "邮箱office@zhengzhou.gov.cn",
        "时间2023-10-13 13:45",
    ],
)
def test_r10_personal_data_hotlines_are_not_flagged(screener: Screener, answer: str) -> None:
    assert screener.screen(answer).findings == ()


def test_r10_personal_data_allow_list_from_the_data_file(tmp_path: Path) -> None:
    text = (
        DATA_FILE.read_text(encoding="utf-8")
        .replace('numbers: [\n      "12345",', 'numbers: [\n      "139-0000-1111",  # 值班手机\n      "12345",')
        .replace("emails: []", "emails: [wenlv_office@163.com]")
    )
    path = tmp_path / "screening.yaml"
    path.write_text(text, encoding="utf-8")
    screener = Screener.load(path)
    assert screener.screen("值班手机13900001111").findings == ()
    assert screener.screen("值班手机139 0000 1111").findings == ()
    assert screener.screen("来信请寄wenlv_office@163.com").findings == ()
    assert screener.screen("他的手机13900001112").blocked
    assert screener.screen("他的邮箱other@163.com").blocked


# --------------------------------------------------------------------------------------------
# Positions, summary, dict
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "term", "start", "end"),
    [
        ("您好，滚 !", "滚", 3, 4),
        ("请你滚-蛋", "滚-蛋", 2, 5),
        ("您好ＳＢ吗", "ＳＢ", 2, 4),
        ("關我什麼事", "關我什麼事", 0, 5),
        ("…你有病吧", "你有病吧", 1, 5),  # … normalises to three characters
        ("😂😂 你 有 病 吧", "你 有 病 吧", 3, 10),  # astral characters count once
        ("\u200b滚\u200b蛋", "滚\u200b蛋", 1, 4),
    ],
)
def test_r10_positions_map_back_to_the_original_text(
    screener: Screener, text: str, term: str, start: int, end: int
) -> None:
    finding = next(f for f in screener.screen(text).findings if f.category == UNCIVIL)
    assert (finding.term, finding.start, finding.end) == (term, start, end)
    assert text[finding.start : finding.end] == finding.term


def test_r10_personal_data_position_in_original_text(screener: Screener) -> None:
    text = "您好！ＡＢ电话：１３８－１２３４－５６７８。"
    (finding,) = screener.screen(text).findings
    assert text[finding.start : finding.end] == "１３８－１２３４－５６７８"


def test_summary_one_sentence_per_finding(screener: Screener) -> None:
    verdict = screener.screen("滚！呵呵")
    assert verdict.blocked
    assert verdict.sentences == (
        "含有不文明用语“滚”，请修改后再发送。",
        "含有情绪化的个人观点“呵呵”，请以单位名义、客观平和地表述。",
    )
    assert verdict.summary == "\n".join(verdict.sentences)
    # blocking sentences come first, repeats are said once
    verdict = screener.screen("呵呵，滚！滚！")
    assert verdict.sentences[0].startswith("含有不文明用语“滚”")
    assert len(verdict.sentences) == 2
    assert len(verdict.findings) == 3


def test_summary_names_the_group(screener: Screener) -> None:
    assert screener.screen("网上赌场").summary == "含有违法违规或不健康内容（赌博）“网上赌场”，不得发布，请删除。"
    assert screener.screen("电话13812345678").summary == "含有个人信息（手机号码）“138****5678”，请删除后再发送。"


def test_verdict_to_dict(screener: Screener) -> None:
    verdict = screener.screen("亲~滚")
    data = json.loads(json.dumps(verdict.to_dict(), ensure_ascii=False))
    assert data["blocked"] is True
    assert data["summary"] == verdict.summary
    assert [f["category"] for f in data["findings"]] == [UNPROFESSIONAL, UNCIVIL]
    first = data["findings"][1]
    assert set(first) == {"category", "rule", "severity", "term", "start", "end", "label", "entry", "advice", "message"}
    assert (first["rule"], first["severity"], first["term"]) == ("R10", "block", "滚")


def test_verdict_warnings_only_is_not_blocked(screener: Screener) -> None:
    verdict = screener.screen("呵呵，好的哦~")
    assert not verdict.blocked
    assert verdict.blocking == ()
    assert {f.category for f in verdict.warnings} == {EMOTIONAL_OPINION, UNPROFESSIONAL}


def test_finding_sentence_without_message() -> None:
    finding = Finding(UNCIVIL, "滚", 0, 1, BLOCK, "请修改后再发送")
    assert finding.sentence == "含有不文明用语“滚”，请修改后再发送。"
    assert Verdict((finding,)).blocked


# --------------------------------------------------------------------------------------------
# The data file
# --------------------------------------------------------------------------------------------


def test_every_shipped_term_is_found_on_its_own(screener: Screener) -> None:
    data = yaml.safe_load(DATA_FILE.read_text(encoding="utf-8"))
    missed = []
    for category in (UNCIVIL, BANNED, FALSE_PROMISE, EMOTIONAL_OPINION, UNPROFESSIONAL):
        for group in data[category]["groups"].values():
            for term in group.get("terms") or ():
                if category not in categories(screener.screen(str(term))):
                    missed.append((category, term))
    assert missed == []


def test_shipped_list_sizes(screener: Screener) -> None:
    sizes = screener.sizes
    assert sizes[UNCIVIL] >= 50
    assert 20 <= sizes[BANNED] <= 80  # modest and generic on purpose
    assert sizes[FALSE_PROMISE] >= 10 and sizes[EMOTIONAL_OPINION] >= 30 and sizes[UNPROFESSIONAL] >= 20


MINIMAL = """\
uncivil:
  label: 不文明用语
  advice: 请修改后再发送
  groups:
    insult:
      terms: [滚蛋]
banned:
  label: 违法违规内容
  advice: 不得发布
  groups:
    gambling:
      label: 赌博
      terms: [网上赌场]
false_promise:
  label: 无法兑现的承诺
  advice: 请改为准确表述
  groups:
    absolute:
      patterns: ['百分之?百']
emotional_opinion:
  label: 情绪化的个人观点
  advice: 请客观表述
  groups:
    venting:
      terms: [气死我了]
unprofessional:
  label: 网络用语
  advice: 建议修改
  groups:
    slang:
      terms: [么么哒]
personal_data:
  label: 个人信息
  advice: 请删除
  detectors:
    phone: 手机号码
"""


def load_text(tmp_path: Path, text: str) -> Screener:
    path = tmp_path / "screening.yaml"
    path.write_text(text, encoding="utf-8")
    return Screener.load(path)


def test_minimal_data_file(tmp_path: Path) -> None:
    screener = load_text(tmp_path, MINIMAL)
    assert categories(screener.screen("滚蛋，百分百，13812345678")) == {UNCIVIL, FALSE_PROMISE, PERSONAL_DATA}
    # only the detectors that are named run
    assert screener.screen("zhangsan@qq.com").findings == ()


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("unprofessional:", "rude:\n  label: x\nunprofessional:", "rude: unknown key"),
        ("      terms: [滚蛋]", "      term: [滚蛋]", "uncivil.groups.insult.term: unknown key"),
        ("      terms: [滚蛋]", "      terms: [滚蛋, '']", "uncivil.groups.insult.terms[1]: empty term"),
        ("      terms: [滚蛋]", "      terms: [滚蛋, '  ']", "uncivil.groups.insult.terms[1]: empty term"),
        (
            "      terms: [滚蛋]",
            "      terms: [滚 蛋]",
            "uncivil.groups.insult.terms[0]: term '滚 蛋' contains whitespace",
        ),
        ("      terms: [滚蛋]", "      terms: [滚蛋, [x]]", "uncivil.groups.insult.terms[1]: term must be a string"),
        (
            "      terms: [滚蛋]",
            "      terms: [网上赌场]",
            "banned.groups.gambling.terms[0]: duplicate term '网上赌场' (also uncivil.groups.insult.terms[0])",
        ),
        ("      terms: [滚蛋]", "      terms: [滚蛋, 滾蛋]", "duplicate term '滚蛋'"),
        ("      terms: [滚蛋]", "      patterns: ['([']", "uncivil.groups.insult.patterns[0]: bad regular expression"),
        (
            "      terms: [滚蛋]",
            "      patterns: ['a*']",
            "uncivil.groups.insult.patterns[0]: pattern 'a*' matches the empty",
        ),
        ("      terms: [滚蛋]", "      terms: []", "uncivil.groups.insult: no terms or patterns"),
        ("    insult:", "    Insult:", "uncivil.groups.Insult: group names"),
        ("  advice: 请修改后再发送\n", "", "uncivil: missing required key 'advice'"),
        ("    phone: 手机号码", "    fax: 传真", "personal_data.detectors.fax: unknown key"),
        ("    phone: 手机号码", "    phone: 手机号码\n  allow:\n    numbers: [abc]", "personal_data.allow.numbers[0]"),
        ("    phone: 手机号码", "    phone: 手机号码\n  allow:\n    emails: [nobody]", "personal_data.allow.emails[0]"),
        (
            "    phone: 手机号码",
            "    phone: 手机号码\n  allow:\n    patterns: ['[0-']",
            "personal_data.allow.patterns[0]",
        ),
        ("  label: 不文明用语\n", "  label: 不文明用语\n  label: 粗话\n", "duplicate key"),
        ("  label: 不文明用语\n", "  label: [不文明用语\n", "invalid YAML"),
    ],
)
def test_data_validation_errors_name_file_and_entry(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in MINIMAL
    with pytest.raises(ScreeningDataError) as excinfo:
        load_text(tmp_path, MINIMAL.replace(old, new, 1))
    text = str(excinfo.value)
    assert str(tmp_path / "screening.yaml") in text
    assert message in text


def test_data_validation_missing_category_and_file(tmp_path: Path) -> None:
    start = MINIMAL.index("unprofessional:")
    end = MINIMAL.index("personal_data:")
    with pytest.raises(ScreeningDataError, match="missing required key 'unprofessional'"):
        load_text(tmp_path, MINIMAL[:start] + MINIMAL[end:])
    with pytest.raises(ScreeningDataError, match="top level: must be a mapping"):
        load_text(tmp_path, "- a\n- b\n")
    with pytest.raises(ScreeningDataError, match="file not found"):
        Screener.load(tmp_path / "nope.yaml")
    assert issubclass(ScreeningDataError, ValueError)


def test_data_validation_line_numbers(tmp_path: Path) -> None:
    with pytest.raises(ScreeningDataError, match=r"line 6: uncivil\.groups\.insult\.terms\[1\]"):
        load_text(tmp_path, MINIMAL.replace("[滚蛋]", "[滚蛋, '']"))


# --------------------------------------------------------------------------------------------
# Robustness: never raises
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "😂😂😂",
        "😂" * 3000,
        "\ud800\udfff\ud83d",  # lone surrogates
        "\x00\x01\x7f\u200b\ufeff",
        "؟١٢٣٤٥٦٧٨٩٠١٢",  # Arabic-Indic digits are not matched as phone numbers
        "1" * 5000,
        "1-" * 5000,
        "x@" + "a." * 3000,
        "@" * 5000,
        "滚" * 5000,
        "哈" * 5000,
        "?" * 5000,
        "滚！滚梯" * 2000,
        "0371-12345678 13812345678 " * 400,
    ],
)
def test_robust_inputs_never_raise(screener: Screener, text: str) -> None:
    verdict = screener.screen(text)
    for f in verdict.findings:
        assert 0 <= f.start < f.end <= len(text)
    json.dumps(verdict.to_dict(), ensure_ascii=False)


def test_robust_non_str_input(screener: Screener) -> None:
    assert screener.screen(None).findings == ()  # type: ignore[arg-type]
    assert screener.screen("滚".encode()).blocked  # type: ignore[arg-type]


def test_robust_long_answer_is_fast(screener: Screener) -> None:
    text = ("".join(CLEAN_ANSWERS) * 10)[:10_000]
    started = time.perf_counter()
    verdict = screener.screen(text + "，滚")
    assert time.perf_counter() - started < 2.0
    assert [f.term for f in verdict.findings] == ["滚"]
    assert verdict.findings[0].start == 10_001


FRAGMENTS = [
    "滚",
    "蛋",
    "你有病吧",
    "呵呵",
    "😂",
    "亲",
    "~",
    "!",
    "？",
    " ",
    "-",
    "—",
    "138",
    "1234",
    "5678",
    "@",
    "qq.com",
    "x",
    "X",
    "11010519491231002",
    "110101",
    "19900307",
    "900307",
    "(+86)",
    "+86",
    ".",
    "4111",
    "6222",
    "保证",
    "退款",
    "滚动",
    "…",
    "ＳＢ",
    "關",
    "\u200b",
    "\ud800",
    "[抱拳]",
]


def check_verdict(text: str, verdict: Verdict) -> None:
    assert isinstance(verdict, Verdict)
    for f in verdict.findings:
        assert 0 <= f.start < f.end <= len(text)
        assert f.severity == SEVERITIES[f.category]
        if f.category != PERSONAL_DATA:
            assert text[f.start : f.end] == f.term
    assert verdict.blocked == any(f.severity == BLOCK for f in verdict.findings)
    assert bool(verdict.summary) == bool(verdict.findings)


@settings(max_examples=300, deadline=None)
@given(text=st.text())
def test_hypothesis_screen_never_raises(screener: Screener, text: str) -> None:
    check_verdict(text, screener.screen(text))


@settings(max_examples=300, deadline=None)
@given(text=st.lists(st.sampled_from(FRAGMENTS), max_size=30).map("".join))
def test_hypothesis_screen_never_raises_on_near_misses(screener: Screener, text: str) -> None:
    check_verdict(text, screener.screen(text))
