"""WeRoBot answering every WeChat push with a fixed text reply, under its default server.

    python -m bench.werobot_app --port P

`robot.run()` with SERVER="auto" (WeRoBot's default) hands the WSGI app to bottle, whose
AutoServer tries Waitress, Paste, Twisted, CherryPy, Cheroot, then wsgiref: with `waitress`
installed it serves on Waitress (4 threads by default). Sessions are switched off
(SESSION_STORAGE=False): the default would write every message to a SQLite session file, and the
fixed reply needs no session; this favours WeRoBot. Its logger is quietened to WARNING so that
per-request logging does not count against it either.
"""

from __future__ import annotations

import argparse
import logging

import werobot

from bench.common import TOKEN

REPLY = "您好，您的留言已收到，我们会在2个工作小时内答复。"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    robot = werobot.WeRoBot(token=TOKEN, SESSION_STORAGE=False)

    @robot.handler
    def reply(message, session=None):  # type: ignore[no-untyped-def]
        return REPLY

    robot.run(server="auto", host="127.0.0.1", port=args.port, enable_pretty_logging=False)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
