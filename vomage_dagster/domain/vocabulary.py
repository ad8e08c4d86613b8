"""Custom vocabularies: one per language, from the word lists in `vomage_dagster/vocabularies/`.

Transcribe takes a custom vocabulary's entries inline as `Phrases` (CreateVocabulary /
UpdateVocabulary). Its rules, checked here so a bad list fails in CI, not at deploy:

- the name: 1–200 of `0-9a-zA-Z._-`;
- an entry: 1–256 characters of the language's character set, no spaces (the words of
  a phrase are joined by hyphens), no digits (numbers are spelled out), no commas (the
  API reads `Phrases` as comma-separated values); in English, spelled letters carry a
  period each, the last included (`A.I.`, `A.B.C.-s`, `Dynamo-D.B.`);
- the whole vocabulary: at most 50 KB.

Our own lists must also hold no duplicates (`duplicates`: Transcribe would take them; they
only hide a mistake).
Nothing here talks to AWS: `operations/vocabularies.py` creates and updates them.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

NAME_RE = re.compile(r"^[0-9a-zA-Z._-]{1,200}$")
MAX_PHRASE_CHARS = 256
MAX_VOCABULARY_BYTES = 50 * 1024
PACKAGE = "vomage_dagster.vocabularies"

_EN_WORD = re.compile(r"^[A-Za-z']+$")
_EN_SPELLED = re.compile(r"^(?:[A-Za-z]\.)+$")
# The character sets of Transcribe's custom vocabularies for the app's languages
# (docs: "Character sets for custom vocabularies"), the hyphen that joins words aside.
_CHARSETS = {
    "en-US": re.compile(r"^[A-Za-z'.\-]+$"),
    "zh-CN": re.compile(r"^[\u4e00-\u9fff]+$"),
    "ja-JP": re.compile(r"^[\u3041-\u3096\u309d\u309e\u30a1-\u30fa\u30fc-\u30fe\u3005\u4e00-\u9fff]+$"),
}


class InvalidVocabulary(ValueError):
    """A word list Transcribe would refuse; the message names every bad entry."""


@dataclass(frozen=True)
class Vocabulary:
    """One language's vocabulary as Transcribe gets it."""

    name: str
    language: str
    phrases: tuple[str, ...]

    @property
    def digest(self) -> str:
        """What the entries hash to (compare a deployed vocabulary with the list)."""
        return phrases_digest(self.phrases)


def phrases_digest(phrases: tuple[str, ...] | list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(phrases)).encode()).hexdigest()


def vocabulary_name(prefix: str, language: str) -> str:
    """`<prefix><language>`, e.g. vomage-en-US."""
    name = f"{prefix}{language}"
    if not NAME_RE.match(name):
        raise InvalidVocabulary(f"vocabulary name {name!r} is not 1–200 of 0-9a-zA-Z._-")
    return name


def parse(text: str) -> tuple[str, ...]:
    """The entries of a word list: one a line; blank lines and `#` comments skipped."""
    out = []
    for line in text.splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry:
            out.append(entry)
    return tuple(out)


def problems(language: str, phrases: tuple[str, ...] | list[str]) -> list[str]:
    """Every Transcribe rule a list breaks (empty: Transcribe takes it)."""
    charset = _CHARSETS.get(language)
    if charset is None:
        return [f"no character set known for {language!r}"]
    found: list[str] = []
    if not phrases:
        found.append("the list is empty")
    for phrase in phrases:
        why = _phrase_problem(language, phrase, charset)
        if why:
            found.append(f"{phrase!r}: {why}")
    size = sum(len(p.encode()) + 1 for p in phrases)
    if size > MAX_VOCABULARY_BYTES:
        found.append(f"{size} bytes: a vocabulary is at most {MAX_VOCABULARY_BYTES}")
    return found


def duplicates(phrases: tuple[str, ...] | list[str]) -> list[str]:
    seen: set[str] = set()
    twice = []
    for phrase in phrases:
        if phrase in seen:
            twice.append(f"{phrase!r}: listed twice")
        seen.add(phrase)
    return twice


def _phrase_problem(language: str, phrase: str, charset: re.Pattern) -> str | None:
    if not phrase:
        return "empty"
    if len(phrase) > MAX_PHRASE_CHARS:
        return f"longer than {MAX_PHRASE_CHARS} characters"
    if any(c.isspace() for c in phrase):
        return "has a space: join the words with hyphens"
    if any(c.isdigit() for c in phrase):
        return "has a digit: spell numbers out"
    if "," in phrase:
        return "has a comma (Phrases are comma-separated)"
    if not charset.match(phrase):
        return f"has characters outside the {language} character set"
    if language == "en-US":
        for part in phrase.split("-"):
            if not part:
                return "an empty part between hyphens"
            if not (_EN_WORD.match(part) or _EN_SPELLED.match(part)):
                return (f"part {part!r} is neither a word nor spelled letters each followed by a period "
                        "(C.L.I., A.B.C.-s)")
    return None


def load(language: str, name: str) -> Vocabulary:
    """The language's list from the package, checked; InvalidVocabulary if it breaks a rule."""
    text = resources.files(PACKAGE).joinpath(f"{language}.txt").read_text(encoding="utf-8")
    phrases = parse(text)
    found = problems(language, phrases) + duplicates(phrases)
    if found:
        raise InvalidVocabulary(f"{language}.txt: " + "; ".join(found))
    return Vocabulary(name, language, phrases)


def load_all(names: dict[str, str]) -> list[Vocabulary]:
    """Every vocabulary in `names` (language → vocabulary name)."""
    return [load(language, name) for language, name in names.items()]
