"""Micro-benchmark of ``FaqMatcher.match`` (issue 3: "FAQ match over 1,000 entries in under a millisecond").

    .venv/bin/python -m bench.faq_match [--repeat N]

Builds knowledge bases of 1,000 and 10,000 synthetic entries from the shipped starter entries
(knowledge/data/faq.yaml): each copy puts a different place name in front of every question and
alternate ("东湖区市博物馆的开放时间是什么？"), so the choices are as long and as alike as real
ones and none is a duplicate. It then times ``match`` on a mix of messages that match, nearly
match and match nothing (netizen questions, complaints, greetings, CrossWOZ hotel and attraction
requests), and prints the mean and 99th percentile per call. The build time (normalising every
question once) is printed too.

Measured on the development machine (2 cores, Python 3.11, rapidfuzz 3.14; 57 mixed messages x 20):

     entries  choices    build  calls  matched      mean       p50       p99
       1,000    3,673    0.02s   1140      14%     230µs     225µs     370µs
      10,000   36,672    0.20s   1140      14%    2.4 ms    2.4 ms    3.3–4.0 ms

The time is rapidfuzz scoring every choice (about 60 ns each); normalising the message takes ~7 µs
and the subject check runs on at most 5 candidates. Growth is linear in the number of questions
and alternates.

How the scorer and the cut-off were chosen (the evidence behind ``DEFAULT_CUTOFF``):

1. Tuning set, 82 messages (55 questions, 27 non-questions; the first block of MATCH_TABLE in
   tests/test_faq.py) plus 400 CrossWOZ requests, ten scorers at cut-offs 50–95: fuzz.ratio,
   WRatio, partial_ratio, token_sort/token_set ratio on characters and on character bigrams,
   bigram Dice, max and mean of ratio and Dice. Partial and set-based scorers match inside long
   texts: WRatio scored "123" 90 against "12318是什么电话" and matched 23 CrossWOZ requests at 60;
   token_set_ratio on characters matched 85 at 70. ratio was best (at 70: 52/55 questions, 3 false
   matches, 1 CrossWOZ) and respects word order, so a long complaint that mentions a topic scores
   low against the short question about it. Its false matches were all one kind — another place
   in the same frame: "科技馆几点开门" 71 against "文化馆几点开门", "动物园门票多少钱" 75 against
   "博物馆门票多少钱" — hence the subject check in ``FaqMatcher``.
2. Three sets written before a change and scored once after it:
   - 50 messages (after the first subject check): ratio at 70 43/50 right with 1 false match; with
     the check 42/50 and none, but the check refused two real questions over function words
     ("在哪领" for "怎么领"), hence the function characters.
   - 40 messages: ratio at 70 33/40, 3 false matches, 1 wrong entry; with the check 34/40, no
     false match, the same wrong entry ("老人去景区免票吗" → the soldiers' entry, a one-character
     swap; fixed in the data by giving the seniors' entry that frame).
   - 30 messages: ratio at 70 19/30, 4 false matches, 1 wrong entry; with the check at 65 26/30,
     none (a check for one-character swaps was tried here and dropped: it cost two right answers
     and caught nothing).
3. With the final data and check, over all 202 messages, the 400 CrossWOZ requests and the 85
   critical messages of tests/test_classifier.py, no unrelated message scores above 62 except two:
   "电话是多少？" (CrossWOZ, 71.4 against the tourism hotline) and "老师去景区免票吗" (85.7 against
   "老人去景区免票吗", introduced by the data fix above). Cut-off 60: 191/202 right, CrossWOZ 2;
   62 and 65: 188, CrossWOZ 1; 68: 180; 70: 179; 75: 169. No critical message matches at any of
   them, and none matches the wrong entry. 65 keeps a margin over 62 and takes the short questions
   that score 65–68 against slightly longer phrasings.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from dataclasses import replace
from pathlib import Path

from knowledge.faq import FAQ_FILE, FaqEntry, FaqMatcher, load_entries

ROOT = Path(__file__).resolve().parent.parent
CROSSWOZ = ROOT / "tests" / "data" / "crosswoz" / "user_requests_attraction_hotel.jsonl"

MESSAGES = [
    "请问博物馆几点开门？",
    "博物館幾點關門",
    "图书馆周一开门吗",
    "老年人门票有优惠吗",
    "消费券怎么领？",
    "开网吧要办什么证",
    "有线电视没信号了怎么报修",
    "导游证怎么查真假",
    "导游强制购物，不买不让走，我要投诉",
    "景区发生踩踏，好多人受伤",
    "科技馆几点开门",
    "动物园门票多少钱",
    "在吗",
    "你好",
    "今天天气真好",
    "酒店房间不干净，床单上有头发",
    "我们一家人去景区玩，结果排了三个小时的队，里面的东西又贵又难吃，工作人员态度还很差，真不知道你们是怎么管理的",
]

_PLACE_FIRST = "东西南北中新老高金银"
_PLACE_SECOND = "城湖山河港桥园林海田"
_PLACE_THIRD = "区县镇乡村"


def _places() -> list[str]:
    return [a + b + c for c in _PLACE_THIRD for a in _PLACE_FIRST for b in _PLACE_SECOND]


def synthetic_entries(starter: list[FaqEntry], count: int) -> list[FaqEntry]:
    """``count`` entries: the starter entries again and again, each round with another place name."""
    places = _places()
    out: list[FaqEntry] = []
    for n in range(count):
        base = starter[n % len(starter)]
        place = places[n // len(starter) % len(places)]
        out.append(
            replace(
                base,
                id=f"{base.id}-{n}",
                question=place + base.question,
                alternates=tuple(place + a for a in base.alternates),
            )
        )
    return out


def _messages() -> list[str]:
    rng = random.Random(3)  # fixed: the same sample every run
    lines = CROSSWOZ.read_text(encoding="utf-8").splitlines()
    crosswoz = [json.loads(line)["text"] for line in rng.sample(lines, 40)]
    return MESSAGES + crosswoz


def bench(count: int, repeat: int) -> dict[str, float]:
    starter = load_entries(FAQ_FILE)
    entries = synthetic_entries(starter, count)
    t0 = time.perf_counter()
    matcher = FaqMatcher(entries)
    build = time.perf_counter() - t0
    messages = _messages()
    for text in messages:  # warm-up
        matcher.match(text)
    timings: list[float] = []
    matched = 0
    for _ in range(repeat):
        for text in messages:
            t = time.perf_counter_ns()
            result = matcher.match(text)
            timings.append((time.perf_counter_ns() - t) / 1000)
            matched += result is not None
    timings.sort()
    return {
        "entries": count,
        "choices": len(matcher._choices),
        "build_s": build,
        "calls": len(timings),
        "matched_share": matched / len(timings),
        "mean_us": statistics.fmean(timings),
        "p50_us": timings[len(timings) // 2],
        "p99_us": timings[min(len(timings) - 1, int(len(timings) * 0.99))],
        "max_us": timings[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=20, help="rounds over the message set (default 20)")
    args = parser.parse_args()
    print(f"{'entries':>8} {'choices':>8} {'build':>8} {'calls':>6} {'matched':>8} {'mean':>9} {'p50':>9} {'p99':>9}")
    for count in (1_000, 10_000):
        r = bench(count, args.repeat)
        print(
            f"{r['entries']:>8,} {r['choices']:>8,} {r['build_s']:>7.2f}s {r['calls']:>6} {r['matched_share']:>8.0%} "
            f"{r['mean_us']:>7.0f}µs {r['p50_us']:>7.0f}µs {r['p99_us']:>7.0f}µs"
        )


if __name__ == "__main__":
    main()
