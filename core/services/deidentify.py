"""Removing identifiers from the dialogue for the evaluators (``message dialogue``).

What goes: henkilötunnus (with or without its separator), IBANs, phone numbers, e-mail
and street addresses, postcodes, the names of everyone avain knows in the pilot (by
role where the person takes part in the thread) and other Finnish first names and
surnames (Faker's fi_FI lists, in any inflected form, when capitalised). What stays:
the names of service providers from the catalogue, as written, so a surname inside one
(``Koskinen As Oy``) is not taken for the client's. This errs on the side of hiding.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterable

from faker.providers.address.fi_FI import Provider as _FinnishPlaces
from faker.providers.person.fi_FI import Provider as _FinnishNames
from stdnum import iban as _iban

HETU = re.compile(r"(?<![0-9])\d{6}[-+A-FU-Y]\d{3}[0-9A-Y]", re.IGNORECASE)
#: Phone numbers however written: +358 or 0 (or 00358), then 6–11 digits with spaces,
#: hyphens, dots, slashes or brackets between them.
PHONE = re.compile(r"(?<![\w+])(?:\+\s?358|00358|358|\(?0)[\s\-./()]*\d(?:[\s\-./()]*\d){5,10}(?![\w])")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
#: A street name in any case (Kauppakatu, Kauppakadulla, Puistotiellä) and the number after it.
STREET = re.compile(r"\b[\wåäöÅÄÖ-]*(?:katu|kadu|kaduu|tie|kuja|kujalla|polku|polu|raitti|raiti|väylä|kaari|"
                    r"kaare|rinne|rintee|mäki|mäe|tori|gatan|gata|vägen|väg|stig|gränd)\w*"
                    r"(?:\s+\d+\s?[A-Za-z]?(?:\s*[A-Za-z]?\s*\d+)?)?", re.IGNORECASE)
POSTCODE = re.compile(r"\b\d{5}\s+[A-ZÅÄÖ][A-Za-zÅÄÖåäö]+\b")
VOWELS = "aeiouyäö"
#: Consonant gradation (astevaihtelu): the strong grade of a name's last syllable and its
#: weak grade in most inflected forms (Matti → Matin, Pekka → Pekan, Aalto → Aallon,
#: Lahti → Lahden, Mäki → Mäen, Anttila → Anttilan).
WEAK = {"kk": "k", "pp": "p", "tt": "t", "nk": "ng", "nt": "nn", "mp": "mm", "lt": "ll", "rt": "rr",
        "ht": "hd", "lk": "lj", "rk": "rj", "k": "", "p": "v", "t": "d"}


def _stems(part: str) -> set[str]:
    """Beginnings that every inflected form of a name part starts with, in either grade:
    each is matched with any ending."""
    low = part.lower()
    stems = {part if len(part) <= 4 else part[:-1]}
    if low.endswith("nen") and len(part) > 5:
        stems.add(part[:-3])  # Virtanen → Virta(sen)
    m = re.search(rf"([^{VOWELS}]+)([{VOWELS}]+)$", low)
    if m and m.start(1) > 0:
        head, cluster, vowel = part[:m.start(1)], part[m.start(1):m.end(1)], low[m.start(2)]
        for strong, weak in WEAK.items():
            if cluster.lower().endswith(strong):
                base = head + cluster[:len(cluster) - len(strong)] + weak
                stems.update(base + v for v in {vowel, "e" if vowel == "i" else vowel})
                break
    return {x for x in stems if len(x) >= 3}


def _name_patterns(names: dict[str, str]) -> list[tuple[re.Pattern, str]]:
    """One pattern per replacement label, matching every part (of 2 letters or more) of
    each name and its inflected forms, in either consonant grade (Virtanen → Virtasen,
    Matti → Matin, Mäki → Mäen). This errs on the side of hiding: an ordinary word that
    begins like a name is hidden too."""
    stems: dict[str, set[str]] = {}
    for name, label in names.items():
        for part in re.split(r"[\s-]+", name):
            if len(part) < 2:
                continue
            if len(part) == 2:  # Ek, Oo: the word itself and short endings (Ek:n, Ekin)
                stems.setdefault(label, set()).add(re.escape(part) + r"[:\w]{0,5}(?!\w)")
                continue
            stems.setdefault(label, set()).update(re.escape(x) for x in _stems(part))
    # the participants' roles first: a surname the client shares with a relative is "[client]"
    return [(re.compile(r"\b(?:" + "|".join(sorted(group, key=len, reverse=True)) + r")[\w:]*", re.IGNORECASE),
             label)
            for label, group in sorted(stems.items(), key=lambda item: item[0] == "name")]


#: A henkilötunnus written without its separator (160791882W): hidden when its date and
#: check character are right, so ordinary ten-digit numbers stay.
HETU_COMPACT = re.compile(r"(?<![0-9A-Za-z])(\d{6}) ?(\d{3})([0-9A-Ya-y])(?![0-9A-Za-z])")  # no sign, or a space
HETU_CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY"
#: Where an IBAN may begin: a country code and two check digits (the rest is checked
#: by python-stdnum, with and without the spaces that group it).
IBAN_START = re.compile(r"(?<![0-9A-Za-z])[A-Za-z]{2}\d{2}(?=[ ]?[0-9A-Za-z])")
#: Capitalised words: the candidates for a name nobody told avain about.
CAPITALISED = re.compile(r"(?<![\w\ue000-\uf8ff])[A-ZÅÄÖ][a-zåäöéü]+")
#: What may follow a name's stem in a Finnish inflected form: a case ending, with the
#: ``-se-`` of -nen names, a possessive or a clitic (Virtaselle, Matille, Ahosen, Ekinkin).
ENDING = re.compile(r"(?::)?[aeiouyäö]?(?:s|se|si)?"
                    r"(?:n|a|ä|ta|tä|na|nä|ksi|ssa|ssä|sta|stä|lla|llä|lta|ltä|lle|en|in|an|än|on|un|yn|ön|hin|"
                    r"han|hon|hen|seen|t|ine|ineen|tta|ttä|ja|jä|iin|ille|illa|illä|ilta|iltä|issa|issä|ista|"
                    r"istä|ien|ni|si|mme|nne)?(?:kin|kaan|kään|ko|kö|pa|pä)?")
#: First names that are ordinary words too (toivo "hope", satu "fairy tale", veli
#: "brother"): at the start of a sentence they are taken for the word, in any form.
COMMON_WORDS = ("toivo", "usko", "satu", "sadu", "tuuli", "tuule", "veli", "velje", "sisko", "laina", "armas",
                "lumi", "lume", "aamu", "ilta", "illa", "rauha", "lahja", "onni", "onne", "sulo", "tyyne", "aura",
                "ilma", "into", "inno", "valo", "oiva", "kaino", "sointu", "helmi", "ruusu", "kukka", "tähti")
#: What ends a sentence: the next capitalised word may be an ordinary word.
SENTENCE_END = re.compile(r"(?:^|[.!?…:;\n])[\s\"'“”»(\[-]*$")


def _compact_hetu(match: re.Match) -> bool:
    day, number, check = match.group(1), match.group(2), match.group(3).upper()
    if HETU_CHECK[int(day + number) % 31] != check:
        return False
    for century in (1900, 2000, 1800):
        try:
            dt.date(century + int(day[4:]), int(day[2:4]), int(day[:2]))
            return True
        except ValueError:
            continue
    return False


def _ibans(text: str) -> list[tuple[int, int]]:
    """Where the valid IBANs are: from each possible start, the longest run of letters,
    digits and single spaces that python-stdnum accepts."""
    found, taken = [], -1
    for m in IBAN_START.finditer(text):
        if m.start() < taken:
            continue
        run = re.match(r"[0-9A-Za-z]+(?: [0-9A-Za-z]+)*", text[m.start():m.start() + 50])
        if run is None:
            continue
        ends = [m.start() + run.end()] + [m.start() + x.start() for x in re.finditer(" ", run.group())][::-1]
        for end in ends:
            candidate = text[m.start():end]
            if 15 <= len(candidate.replace(" ", "")) <= 34 and _iban.is_valid(candidate):
                found.append((m.start(), end))
                taken = end
                break
    return found


def _stem_set(names: Iterable[str]) -> frozenset[str]:
    stems = set()
    for name in names:
        for part in re.split(r"[\s-]+", name):
            if len(part) >= 3:
                stems.add(part.lower())
                stems.update(x.lower() for x in _stems(part))
    return frozenset(stems)


@functools.cache
def _lists() -> dict[str, frozenset[str]]:
    """Stems (lower case) of Faker's Finnish first names, surnames and places."""
    return {"first": _stem_set((*_FinnishNames.first_names_female, *_FinnishNames.first_names_male)),
            "last": _stem_set(_FinnishNames.last_names),
            "place": _stem_set(getattr(_FinnishPlaces, "cities", ())),
            "first_whole": frozenset(n.lower() for n in (*_FinnishNames.first_names_female,
                                                          *_FinnishNames.first_names_male)),
            "common": frozenset(COMMON_WORDS)}


def _inflects(low: str, stems: frozenset[str]) -> bool:
    return any(low[:k] in stems and ENDING.fullmatch(low[k:]) for k in range(3, len(low) + 1))


def is_finnish_name(word: str, *, sentence_start: bool = False) -> bool:
    """Whether a capitalised word is a Finnish first name or surname, in any form.

    Inside a sentence, a capitalised word is a proper noun: any form of a listed first
    name or surname is taken for a name, unless it is a place's (Lahdessa, Salossa) and no
    first name's. At the start of a sentence, where every word is capitalised, only a
    first name as written or with a plain ending (Liisa, Liisalle), not also an ordinary
    word (Toivon, Satu, Veli), is."""
    low, lists = word.lower(), _lists()
    first = _inflects(low, lists["first"])
    if sentence_start:
        return (first and any(low.startswith(n) and ENDING.fullmatch(low[len(n):]) for n in lists["first_whole"])
                and not _inflects(low, lists["common"]))
    if first:
        return True
    return _inflects(low, lists["last"]) and not _inflects(low, lists["place"])


def _outside_names(text: str, hide) -> str:
    """Capitalised words that are Finnish names replaced with ``hide(match)``; a word at
    the start of a sentence also when a name follows it (Koski Liisa, Aalto Jussi)."""
    words = list(CAPITALISED.finditer(text))
    hidden = [False] * len(words)
    for n, m in enumerate(words):
        start = bool(SENTENCE_END.search(text[max(0, m.start() - 8):m.start()])) or m.start() == 0
        hidden[n] = is_finnish_name(m.group(), sentence_start=start)
        if start and not hidden[n] and n + 1 < len(words) and words[n + 1].start() == m.end() + 1 \
                and is_finnish_name(words[n + 1].group()) and _inflects(m.group().lower(), _lists()["last"]):
            hidden[n] = True  # a surname before a first name
    for n in reversed(range(len(words))):
        if hidden[n]:
            m = words[n]
            text = text[:m.start()] + hide(m) + text[m.end():]
    return text


def scrub(text: str, names: dict[str, str], protected: Iterable[str] = ()) -> str:
    """``text`` with identity codes, IBANs, phone numbers, e-mail addresses, street
    addresses and postcodes removed, each known person's name replaced by their role, and
    any other Finnish name by ``[name]``; the ``protected`` phrases (the providers' names)
    are kept as written. Each replacement is a placeholder until the end, so no later
    pattern rewrites an earlier replacement (a worker named Worker must not turn
    "[personal worker]" into a name, a client named Koskinen must not change "Koskinen As
    Oy")."""
    labels: list[str] = []

    def token(shown: str) -> str:
        labels.append(shown)
        return f"\ue000{len(labels) - 1:x}\ue001".translate(_PRIVATE_DIGITS)

    def hide(label: str):
        return lambda _match: token(f"[{label}]")

    for phrase in sorted({p.strip() for p in protected if p and p.strip()}, key=len, reverse=True):
        text = re.sub(r"(?<!\w)" + re.escape(phrase) + r"(?!\w)", lambda m: token(m.group()), text,
                      flags=re.IGNORECASE)
    text = HETU.sub(hide("henkilötunnus"), text)
    text = HETU_COMPACT.sub(lambda m: token("[henkilötunnus]") if _compact_hetu(m) else m.group(), text)
    for start, end in reversed(_ibans(text)):
        text = text[:start] + token("[IBAN]") + text[end:]
    for pattern, label in ((EMAIL, "e-mail"), (PHONE, "phone"), *_name_patterns(names),
                           (STREET, "address"), (POSTCODE, "address")):
        text = pattern.sub(hide(label), text)
    text = _outside_names(text, lambda _m: token("[name]"))
    return re.sub("\ue000([\ue010-\ue01f]+)\ue001",
                  lambda m: labels[int(m.group(1).translate(_PUBLIC_DIGITS), 16)], text)


#: Placeholder digits outside every alphabet, so no name pattern (``\w``) runs into them.
_PRIVATE_DIGITS = str.maketrans("0123456789abcdef", "".join(chr(0xE010 + i) for i in range(16)))
_PUBLIC_DIGITS = {0xE010 + i: c for i, c in enumerate("0123456789abcdef")}
