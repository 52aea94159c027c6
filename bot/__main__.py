"""`python -m bot`: the same as the `guanwei` command."""

from bot.cli import main

main()
