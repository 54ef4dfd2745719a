"""Dates as people write them, and the one rule that reads them back.

Every day from 1900-01-01 to 2099-12-31 can be written in six format families:

    day_month_year      3 March 1998, 03 Mar 1998, 3rd March 98, Tue 3 Mar 98,
                        Tuesday, 3 March 1998
    month_day_year      March 3rd, 1998, Mar 3 1998, March 03, 98, Tuesday, March 3, 1998
    day_mon_dashed      3-Mar-1998, 03-MAR-98, 3/Mar/1998
    ordinal_words       the third of March 1998, 3rd of March, 1998,
                        Tuesday, the twenty-first of March 1998
    numeric_day_first   03.03.1998, 3/3/1998, 3-3-98                 (D M Y)
    numeric_year_first  1998/3/3, 1998-03-03, 1998.03.03, 19980303   (Y M D)

each in its own case (as above, lower case or upper case), with and without the weekday
in the families that have words. The weekday is always the day's true one.

The reading rule, so that no string can stand for two dates:
- A numeric date is day first (D M Y) or year first (Y M D), never month first (M D Y):
  "03/04/1998" is the 3rd of April. A year-first date always has four year digits
  (1998/3/3, 19980303), so its first field tells the two apart.
- Two-digit years are always the last field, and read with the pivot 30-99 -> 19xx,
  00-29 -> 20xx; so only days from 1930 to 2029 are ever written with two digits.
- With a month name, the other two numbers are the day and the year: the year is the one
  with four digits, or else the last one.
`read` below applies this rule; the tests check it gives back the day for every string
the generator writes.

Month and weekday names are spelled out here in English rather than taken from
`calendar.month_name`, which follows the machine's locale.
"""

from __future__ import annotations

import calendar
import functools
import random
import re
import zlib
from dataclasses import dataclass
from datetime import date, timedelta

FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2099, 12, 31)
TWO_DIGIT_YEARS = (1930, 2029)  # the pivot's century: 30-99 -> 19xx, 00-29 -> 20xx
MAX_LENGTH = 50  # no generated string is longer (the tests check it)
DAY_COUNT = (LAST_DAY - FIRST_DAY).days + 1
SPLIT_SEED = 0  # which days are train, validation and test: fixed, whatever --seed says

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
ORDINALS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth",
            "ninth", "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth",
            "sixteenth", "seventeenth", "eighteenth", "nineteenth", "twentieth"]
ORDINALS += [f"twenty-{word}" for word in ORDINALS[:9]] + ["thirtieth", "thirty-first"]

FAMILIES = ["day_month_year", "month_day_year", "day_mon_dashed", "ordinal_words",
            "numeric_day_first", "numeric_year_first"]


@dataclass(frozen=True)
class NoDay:
    """A day that does not exist (the 31st of April), written like a date by `write`."""

    year: int
    month: int
    day: int
    weekday_index: int  # the weekday a string may name: any, as the day has none

    def weekday(self) -> int:
        return self.weekday_index


def all_days() -> list[date]:
    """Every day from FIRST_DAY to LAST_DAY, in order."""
    return [FIRST_DAY + timedelta(days=i) for i in range(DAY_COUNT)]


def split_days(val_size: int, test_size: int) -> tuple[list[date], list[date], list[date]]:
    """(train, validation, test) days: disjoint sets of calendar days, drawn once with
    SPLIT_SEED. A test day never appears in training in any format, so the model is
    scored on dates it has never seen, not on new spellings of seen ones."""
    days = all_days()
    random.Random(SPLIT_SEED).shuffle(days)
    test, val = days[:test_size], days[test_size:test_size + val_size]
    return days[test_size + val_size:], val, test


def suffixed(day: int) -> str:
    """1 -> 1st, 2 -> 2nd, 3 -> 3rd, 11 -> 11th, 22 -> 22nd."""
    if 11 <= day % 100 <= 13:
        return f"{day}th"
    return f"{day}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(day % 10, 'th')}"


def year_text(day: date | NoDay, rng: random.Random, two_digits_share: float = 0.3) -> str:
    """Four digits, or two when the pivot reads them back as this year."""
    if TWO_DIGIT_YEARS[0] <= day.year <= TWO_DIGIT_YEARS[1] and rng.random() < two_digits_share:
        return f"{day.year % 100:02d}"
    return str(day.year)


def weekday_prefix(day: date | NoDay, rng: random.Random) -> str:
    """Nothing (half the time), or 'Tuesday, ', 'Tue, ', 'Tuesday ', 'Tue '."""
    if rng.random() < 0.5:
        return ""
    name = WEEKDAYS[day.weekday()]
    return (name if rng.random() < 0.5 else name[:3]) + rng.choice([", ", " "])


def month_text(day: date | NoDay, rng: random.Random) -> str:
    name = MONTHS[day.month - 1]
    return name if rng.random() < 0.5 else name[:3]


def write_family(day: date | NoDay, family: str, rng: random.Random) -> str:
    """`day` written in `family`, in title case; the variant is drawn with `rng`."""
    d = rng.choice([str(day.day), f"{day.day:02d}", suffixed(day.day)])
    if family == "day_month_year":
        return f"{weekday_prefix(day, rng)}{d} {month_text(day, rng)} {year_text(day, rng)}"
    if family == "month_day_year":
        comma = rng.choice([",", ""])
        return (f"{weekday_prefix(day, rng)}{month_text(day, rng)} {d}{comma} "
                f"{year_text(day, rng)}")
    if family == "day_mon_dashed":
        sep = rng.choice(["-", "-", "/"])
        d = rng.choice([str(day.day), f"{day.day:02d}"])
        return f"{d}{sep}{MONTHS[day.month - 1][:3]}{sep}{year_text(day, rng)}"
    if family == "ordinal_words":
        in_words = day.day <= len(ORDINALS) and rng.random() < 0.7  # past 31: digits only
        ordinal = ORDINALS[day.day - 1] if in_words else suffixed(day.day)
        the = rng.choice(["the ", ""])
        comma = rng.choice([",", ""])
        return (f"{weekday_prefix(day, rng)}{the}{ordinal} of {MONTHS[day.month - 1]}{comma} "
                f"{year_text(day, rng)}")
    if family == "numeric_day_first":
        sep = rng.choice([".", "/", "-"])
        padded = rng.random() < 0.5
        d, m = (f"{day.day:02d}", f"{day.month:02d}") if padded else (day.day, day.month)
        return f"{d}{sep}{m}{sep}{year_text(day, rng)}"
    if family == "numeric_year_first":
        sep = rng.choice(["-", "/", ".", ""])
        padded = sep == "" or rng.random() < 0.5  # 19980303 needs its zeros to be read
        d, m = (f"{day.day:02d}", f"{day.month:02d}") if padded else (day.day, day.month)
        return f"{day.year}{sep}{m}{sep}{d}"
    raise ValueError(f"unknown format family {family!r}; known: {FAMILIES}")


def write(day: date | NoDay, rng: random.Random, family: str | None = None
          ) -> tuple[str, str]:
    """(text, family): `day` in a random (or the given) family and a random case:
    as written (half the time), lower case or upper case."""
    family = family or rng.choice(FAMILIES)
    text = write_family(day, family, rng)
    case = rng.random()
    if case < 0.25:
        text = text.lower()
    elif case < 0.5:
        text = text.upper()
    return text, family


def alphabet() -> str:
    """Every character `write` can produce, sorted: the encoder's vocabulary."""
    words = MONTHS + WEEKDAYS + ORDINALS + ["the", "of", "st", "nd", "rd", "th"]
    characters = {ch for word in words for ch in word + word.upper() + word.lower()}
    return "".join(sorted(characters | set("0123456789 ,-./")))


def iso(day: date) -> str:
    """The target: YYYY-MM-DD."""
    return day.isoformat()


def labelled(day: date, rng: random.Random) -> tuple[str, str, str]:
    """(text, ISO date, family) for one day."""
    text, family = write(day, rng)
    return text, iso(day), family


def sample(days: list[date], count: int, rng: random.Random) -> list[tuple[str, str, str]]:
    """`count` labelled strings of days drawn from `days` with replacement: training data."""
    return [labelled(day, rng) for day in rng.choices(days, k=count)]


def written_once(days: list[date], seed: int) -> list[tuple[str, str, str]]:
    """Each day written once, in a random family: the validation and test sets."""
    rng = random.Random(seed)
    return [labelled(day, rng) for day in days]


# ---------------------------------------------------------------- the reading rule

_NAMES = {name.lower(): i + 1 for i, name in enumerate(MONTHS)}
_NAMES |= {name[:3].lower(): i + 1 for i, name in enumerate(MONTHS)}
_WEEKDAY_WORDS = {w.lower() for w in WEEKDAYS} | {w[:3].lower() for w in WEEKDAYS}
_ORDINAL_WORDS = {word: i + 1 for i, word in enumerate(ORDINALS)}
_ALPHABET = set(alphabet())


def pivot(year: str) -> int:
    """A year as written: four digits as they are, two by the pivot 30-99 -> 19xx,
    00-29 -> 20xx."""
    if len(year) == 4:
        return int(year)
    if len(year) == 2:
        return (1900 if int(year) >= 30 else 2000) + int(year)
    raise ValueError(f"a year has two or four digits, got {year!r}")


def read(text: str) -> date:
    """The day `text` stands for under the module's rule; ValueError if it is not one of
    the forms the rule covers. Independent of how `write` chose the variant."""
    # A hyphen between letters joins an ordinal (twenty-first); any other one separates.
    words = [w for w in re.split(r"[\s,./]+|-(?![a-z])|(?<![a-z])-", text.lower()) if w]
    words = [w for w in words if w not in _WEEKDAY_WORDS and w not in ("the", "of")]
    month = [_NAMES[w] for w in words if w in _NAMES]
    if month:
        numbers = [str(_ORDINAL_WORDS[w]) if w in _ORDINAL_WORDS else re.sub(r"(st|nd|rd|th)$",
                                                                              "", w)
                   for w in words if w not in _NAMES]
        if len(month) != 1 or len(numbers) != 2 or not all(n.isdigit() for n in numbers):
            raise ValueError(f"not a day, a month name and a year: {text!r}")
        four = [n for n in numbers if len(n) == 4]
        year = four[0] if four else numbers[-1]
        numbers.remove(year)
        return date(pivot(year), month[0], int(numbers[0]))
    if len(words) == 1 and len(words[0]) == 8 and words[0].isdigit():  # 19980303
        words = [words[0][:4], words[0][4:6], words[0][6:]]
    if len(words) != 3 or not all(w.isdigit() for w in words):
        raise ValueError(f"not three numbers: {text!r}")
    if len(words[0]) == 4:
        return date(int(words[0]), int(words[1]), int(words[2]))  # Y M D
    return date(pivot(words[2]), int(words[1]), int(words[0]))  # D M Y, never M D Y



# ---------------------------------------------------------------- strings that hold no day
#
# What the model must refuse, in five kinds:
#   impossible_day  a day that does not exist, in any family: 29 February 2023, 31/04/2020,
#                   the thirty-first of June 1999, 32-Jan-2000
#   near_miss       an impossible day with a month misspelt or in another language:
#                   31 Juni 2020, Febraury 30th, 1999
#   number          digits and separators that are no date: 42, 3.14159, 555-0134, 3/3/998
#   words           words, names and places, alone or with a number: yesterday, Mary,
#                   hello world, room 101
#   missing_part    a date without its day, month or year: March 1998, 3 March, 1998-03
# Every string is checked with `read`: one that the rule reads as a day is never drawn.
# A real day with a misspelt month ("15 Apirl 2052") is in neither set: a reader would
# take it for that day, and so may the model. Each string belongs to one of three parts,
# train, validation or test, by a checksum of its key (the word, the impossible day, or
# the string itself), so the test strings are never trained on nor used to choose
# anything. Training draws every kind but near_miss, which tests whether what the model
# learnt of impossible days holds for a month spelt in a way it never read.

NON_DATE_KINDS = ["impossible_day", "near_miss", "number", "words", "missing_part"]
# What training draws from: missing parts twice as often, as they were refused least on
# validation ("Mar 23" has a month and a number that could be a day or a year).
TRAINED_NON_DATE_KINDS = ["impossible_day", "number", "words", "missing_part", "missing_part"]

WORDS = """today yesterday tomorrow now never soon later tonight someday noon midnight
morning evening afternoon weekend holiday birthday anniversary christmas easter hello
world apple banana orange house table chair river mountain coffee bread water paper
pencil window garden summer winter autumn spring season calendar schedule deadline
meeting dinner lunch breakfast travel ticket train station airport hotel office school
student teacher doctor music guitar piano letter number minute second hour moment
century decade history future past present date time day week month year none null
unknown empty error invalid nothing yes no maybe please thanks goodbye next last this
Mary John Robert Patricia Jennifer Michael Linda William Elizabeth David Barbara Richard
Susan Joseph Jessica Thomas Sarah Charles Daniel Nancy Matthew Lisa Anthony Betty Donald
Sandra Steven Ashley Paul Dorothy Andrew Emily Joshua Donna Michelle Brian Carol George
Amanda Edward Melissa Ronald Deborah Timothy Stephanie Jason Rebecca Jeffrey Sharon Ryan
Laura Jacob Cynthia Gary Amy Nicholas Angela Eric Helen Jonathan Anna Stephen Brenda
Larry Pamela Justin Nicole Scott Samantha Brandon Christine Benjamin Emma Samuel Gregory
Rachel Patrick Raymond Janet Maria Dennis Olivia Jerry Heather Tyler Diane Aaron Julie
Jose Joyce Adam Victoria Nathan Ruth Henry Virginia Douglas Lauren Peter London Paris
Berlin Madrid Rome Vienna Dublin Lisbon Oslo Athens Cairo Lima Delhi Sydney Toronto
Chicago Boston Denver Seattle Atlanta Houston Phoenix Miami Portland Nevada Texas Ohio
Florida Iowa Utah Montana Colorado Georgia India China Japan Chile Peru Spain France
Italy Germany Norway Sweden Poland Egypt""".split()
FOREIGN_MONTHS = [["Januar", "Janvier", "Enero"], ["Februar", "Fevrier", "Febrero"],
                  ["Mars"], ["Avril", "Abril"], ["Mai", "Mayo"], ["Juni", "Juin", "Junio"],
                  ["Juli", "Juillet", "Julio"], ["Aout", "Agosto"], ["Septembre", "Septiembre"],
                  ["Oktober", "Octobre", "Octubre"], ["Novembre", "Noviembre"],
                  ["Decembre", "Diciembre"]]  # German, French, Spanish; none with a z


def part_of(key: str) -> str:
    """"train", "validation" or "test" (8:1:1) for a string's key, the same on every
    machine (crc32, not Python's salted hash)."""
    bucket = zlib.crc32(key.lower().encode()) % 10
    return "test" if bucket == 0 else "validation" if bucket == 1 else "train"


def no_day(rng: random.Random) -> NoDay:
    """A day past its month's end: the 29th of February in a common year, the 31st of a
    30-day month, or the 32nd of a 31-day one."""
    year, month = rng.randint(FIRST_DAY.year, LAST_DAY.year), rng.randint(1, 12)
    last = calendar.monthrange(year, month)[1]
    return NoDay(year, month, rng.randint(last + 1, max(last + 1, 31)), rng.randrange(7))


def misspelled_month(month: int, rng: random.Random) -> str:
    """Month `month` (1-12) in another language, or in English with a letter dropped,
    doubled or two letters swapped; never a name the formats use."""
    while True:
        if rng.random() < 0.4:
            word = rng.choice(FOREIGN_MONTHS[month - 1])
        else:
            word, i = MONTHS[month - 1], rng.randrange(len(MONTHS[month - 1]) - 1)
            word = rng.choice([word[:i] + word[i + 1:], word[:i] + word[i] + word[i:],
                               word[:i] + word[i + 1] + word[i] + word[i + 2:]])
        if word.lower() not in _NAMES and word.lower() not in _WEEKDAY_WORDS:
            return word


def misspelt(day: NoDay, rng: random.Random) -> str:
    """The impossible `day` written with a month name no format has: 31 Juni 2020."""
    family = rng.choice(["day_month_year", "month_day_year", "ordinal_words"])
    name = MONTHS[day.month - 1]
    return re.sub(f"{name}|{name[:3]}", misspelled_month(day.month, rng),
                  write_family(day, family, rng), count=1)


def missing_part(day: date, rng: random.Random) -> str:
    """`day` without its day, month or year: March 1998, 3rd March, 1998-03."""
    d, m = rng.choice([str(day.day), suffixed(day.day)]), month_text(day, rng)
    year, sep = year_text(day, rng), rng.choice(["/", "-", "."])
    return rng.choice([f"{m} {year}", f"{d} {m}", f"{m} {d}", f"{day.day}{sep}{day.month}",
                       f"{day.month:02d}{sep}{day.year}", f"{day.year}{sep}{day.month:02d}",
                       f"the {ORDINALS[day.day - 1]} of {MONTHS[day.month - 1]}"])


def number_text(rng: random.Random) -> str:
    """Digits alone or in fields that make no date: 42, 3.14159, 12 345, 555-0134."""
    digits = [str(rng.randint(0, 10 ** rng.randint(1, 6))) for _ in range(rng.randint(1, 4))]
    if len(digits) == 1 and rng.random() < 0.5:
        return str(rng.randint(0, 10 ** rng.randint(1, 12)))
    return rng.choice([" ", ".", "/", "-", ","]).join(digits)


@functools.cache
def part_words(part: str) -> list[str]:
    """The WORDS of `part` (and none that names a month or a weekday: May, June)."""
    return [w for w in WORDS if part_of(w) == part and w.lower() not in _NAMES
            and w.lower() not in _WEEKDAY_WORDS]


def words_text(words: list[str], rng: random.Random) -> str:
    """One to three of `words`, sometimes with a number: Mary, hello world, room 101."""
    text = " ".join(rng.choices(words, k=rng.choice([1, 1, 2, 3])))
    return f"{text} {rng.randint(0, 999)}" if rng.random() < 0.2 else text


def non_date(kind: str, part: str, rng: random.Random) -> str:
    """One string of `kind` that belongs to `part` and that `read` reads as no day."""
    while True:
        if kind in ("impossible_day", "near_miss"):
            day = no_day(rng)
            text = (write_family(day, rng.choice(FAMILIES), rng) if kind == "impossible_day"
                    else misspelt(day, rng))
            key = f"{day.year}-{day.month}-{day.day}"
        elif kind == "number":
            text = key = number_text(rng)
        elif kind == "words":
            text = words_text(part_words(part), rng)
            key = text.split()[0]  # every word of it is of the same part
        elif kind == "missing_part":
            text = key = missing_part(FIRST_DAY + timedelta(days=rng.randrange(DAY_COUNT)), rng)
        else:
            raise ValueError(f"unknown kind {kind!r}; known: {NON_DATE_KINDS}")
        text = rng.choice([text, text, text.lower(), text.upper()])
        if part_of(key) == part and len(text) <= MAX_LENGTH and set(text) <= _ALPHABET:
            try:
                read(text)
            except ValueError:
                return text


def non_dates(part: str, count: int, seed: int) -> list[tuple[str, str]]:
    """`count` distinct (text, kind) of `part`, the same share of each kind: the
    validation and test strings that hold no day."""
    rng, seen, drawn = random.Random(seed), set(), []
    for _ in range(100 * count):
        kind = NON_DATE_KINDS[len(drawn) % len(NON_DATE_KINDS)]
        text = non_date(kind, part, rng)
        if text not in seen:
            seen.add(text)
            drawn.append((text, kind))
        if len(drawn) == count:
            return drawn
    raise ValueError(f"only {len(drawn)} distinct non-dates of {part} in {100 * count} draws")
