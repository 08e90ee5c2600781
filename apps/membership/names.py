"""Checks that keep a display name from impersonating another member.

A name is rejected when it contains invisible format characters (Unicode
category Cf: zero-width spaces and joiners, bidi controls) or control
characters, when it mixes scripts with letters that look alike across them
(the `confusable_homoglyphs` package decides, from the Unicode confusables
data), or when its skeleton equals another member's. The skeleton is the
NFKC form with common Cyrillic, Greek and digit look-alikes mapped to Latin
letters, lower-cased, with runs of whitespace collapsed, so "Paul" written
with a Cyrillic a (U+0430) and "PAUL" have the same skeleton as "Paul".
"""

import unicodedata

from confusable_homoglyphs import confusables
from django.db.models import CharField, F, Func, Value
from django.db.models.functions import Lower

from apps.membership.models import Member
from rm6.errors import DomainError

# Characters that look like a Latin letter, with that letter. PostgreSQL's
# translate() applies the same pairs, so the database computes the skeleton
# of every stored name in one query.
LOOKALIKES = {
    # Cyrillic
    "\u0410": "A",  # CYRILLIC CAPITAL LETTER A
    "\u0412": "B",  # CYRILLIC CAPITAL LETTER VE
    "\u0415": "E",  # CYRILLIC CAPITAL LETTER IE
    "\u041a": "K",  # CYRILLIC CAPITAL LETTER KA
    "\u041c": "M",  # CYRILLIC CAPITAL LETTER EM
    "\u041d": "H",  # CYRILLIC CAPITAL LETTER EN
    "\u041e": "O",  # CYRILLIC CAPITAL LETTER O
    "\u0420": "P",  # CYRILLIC CAPITAL LETTER ER
    "\u0421": "C",  # CYRILLIC CAPITAL LETTER ES
    "\u0422": "T",  # CYRILLIC CAPITAL LETTER TE
    "\u0425": "X",  # CYRILLIC CAPITAL LETTER HA
    "\u0423": "Y",  # CYRILLIC CAPITAL LETTER U
    "\u0430": "a",  # CYRILLIC SMALL LETTER A
    "\u0435": "e",  # CYRILLIC SMALL LETTER IE
    "\u043e": "o",  # CYRILLIC SMALL LETTER O
    "\u0440": "p",  # CYRILLIC SMALL LETTER ER
    "\u0441": "c",  # CYRILLIC SMALL LETTER ES
    "\u0443": "y",  # CYRILLIC SMALL LETTER U
    "\u0445": "x",  # CYRILLIC SMALL LETTER HA
    "\u0456": "i",  # CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I
    "\u0458": "j",  # CYRILLIC SMALL LETTER JE
    "\u0455": "s",  # CYRILLIC SMALL LETTER DZE
    "\u0501": "d",  # CYRILLIC SMALL LETTER KOMI DE
    "\u04cf": "l",  # CYRILLIC SMALL LETTER PALOCHKA
    # Greek
    "\u0391": "A",  # GREEK CAPITAL LETTER ALPHA
    "\u0392": "B",  # GREEK CAPITAL LETTER BETA
    "\u0395": "E",  # GREEK CAPITAL LETTER EPSILON
    "\u0396": "Z",  # GREEK CAPITAL LETTER ZETA
    "\u0397": "H",  # GREEK CAPITAL LETTER ETA
    "\u0399": "I",  # GREEK CAPITAL LETTER IOTA
    "\u039a": "K",  # GREEK CAPITAL LETTER KAPPA
    "\u039c": "M",  # GREEK CAPITAL LETTER MU
    "\u039d": "N",  # GREEK CAPITAL LETTER NU
    "\u039f": "O",  # GREEK CAPITAL LETTER OMICRON
    "\u03a1": "P",  # GREEK CAPITAL LETTER RHO
    "\u03a4": "T",  # GREEK CAPITAL LETTER TAU
    "\u03a5": "Y",  # GREEK CAPITAL LETTER UPSILON
    "\u03a7": "X",  # GREEK CAPITAL LETTER CHI
    "\u03bf": "o",  # GREEK SMALL LETTER OMICRON
    "\u03b9": "i",  # GREEK SMALL LETTER IOTA
    "\u03bd": "v",  # GREEK SMALL LETTER NU
    "\u03c1": "p",  # GREEK SMALL LETTER RHO
    "\u03c5": "u",  # GREEK SMALL LETTER UPSILON
    # Digits one and zero, vertical bar. Capital I is left alone because the
    # skeleton is lower-cased and "i" must match "I".
    "1": "l",
    "0": "O",
    "|": "l",
}
LOOKALIKE_SOURCE = "".join(LOOKALIKES)
LOOKALIKE_TARGET = "".join(LOOKALIKES.values())
LOOKALIKE_TABLE = str.maketrans(LOOKALIKES)


def get_name_skeleton(name: str) -> str:
    """Return the form of a name that look-alike names share."""
    normalized = unicodedata.normalize("NFKC", name)
    return " ".join(normalized.translate(LOOKALIKE_TABLE).lower().split())


def _skeleton_expression():
    normalized = Func(
        F("display_name"),
        function="normalize",
        template="%(function)s(%(expressions)s, NFKC)",
    )
    mapped = Func(
        normalized,
        Value(LOOKALIKE_SOURCE),
        Value(LOOKALIKE_TARGET),
        function="translate",
        output_field=CharField(),
    )
    collapsed = Func(
        Lower(mapped),
        Value(r"\s+"),
        Value(" "),
        Value("g"),
        function="regexp_replace",
        output_field=CharField(),
    )
    return Func(collapsed, function="btrim", output_field=CharField())


def _find_invisible_character(name: str) -> str | None:
    for character in name:
        if unicodedata.category(character) in ("Cf", "Cc"):
            return character
    return None


def validate_display_name(name: str, *, member: Member | None = None) -> None:
    """Raise DomainError if the name hides characters or imitates another member.

    `member` is the member who would take the name, so their own current
    name does not count as a clash.
    """
    invisible = _find_invisible_character(name)
    if invisible is not None:
        codepoint = f"U+{ord(invisible):04X}"
        label = unicodedata.name(invisible, "a control character")
        raise DomainError(
            f"The display name contains the invisible character {codepoint} "
            f"({label}); remove it and save again.",
            field="display_name",
        )
    if confusables.is_dangerous(name):
        raise DomainError(
            f"The display name {name!r} mixes letters from different alphabets "
            "that look alike; write it in one alphabet.",
            field="display_name",
        )

    skeleton = get_name_skeleton(name)
    if not skeleton:
        return
    others = Member.objects.exclude(display_name="")
    if member is not None and member.pk is not None:
        others = others.exclude(pk=member.pk)
    clash = others.alias(skeleton=_skeleton_expression()).filter(skeleton=skeleton)
    if clash.exists():
        raise DomainError(
            f"The display name {name!r} looks the same as another member's "
            "name; choose a name that others can tell apart.",
            field="display_name",
        )
