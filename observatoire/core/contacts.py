"""E-mail addresses and phone numbers, wherever people typed them.

Answers, list cells and reviewers' comments are free text; respondents put their contact in
them. Personal data may stay in the raw layer only, so every path out of raw masks them with
the same rules, kept here once. (The quality suites look for leftovers with the equivalent
patterns in SQL: `observatoire/quality/source_suites.py`, EMAIL_PATTERN and PHONE_PATTERN.)
"""

from __future__ import annotations

import re

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
PHONE = re.compile(r"(?<![\w+])(?:(?:\+|00)\s?33\s?(?:\(0\)\s?)?|0)[1-9](?:[\s.\-]?\d{2}){4}(?!\d)")


def mask_contacts(text: str) -> str:
    return PHONE.sub("[téléphone masqué]", EMAIL.sub("[courriel masqué]", text))
