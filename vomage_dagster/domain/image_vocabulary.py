"""The vetted motifs a mood's keywords may bring into an image prompt.

The mood model's keywords come from what the user said: they are user words. Only those
found here reach the image model, and then as the motif written here (English, chosen
for the image model), never as said. The list is scenery, weather, light, places and
objects: nothing about people, bodies, brands, text or anything a content filter
refuses, so a keyword can make a picture personal but cannot steer it.

Lookup: an English keyword by its lower-cased word (a plain plural too); a Chinese or
Japanese keyword (no spaces between words) when it contains an entry, the longest first.
Single characters are entries only where they rarely mean anything else inside a longer
word (雨, 雪, 花 … but not 本, 月, 家, whose compounds mean "really", "Monday", "everyone").
"""

from __future__ import annotations

import re

MAX_MOTIFS = 3

# word (en, zh, ja) → the motif the prompt carries
MOTIFS: dict[str, str] = {
    # light and sky
    "sun": "sunshine", "sunny": "sunshine", "sunshine": "sunshine", "shining": "sunshine", "sunlight": "sunshine",
    "太阳": "sunshine", "阳光": "sunshine", "晴": "sunshine", "太陽": "sunshine", "日差し": "sunshine",
    "晴れ": "sunshine",
    "sky": "open sky", "天空": "open sky", "青空": "open sky",
    "cloud": "drifting clouds", "clouds": "drifting clouds", "云": "drifting clouds", "雲": "drifting clouds",
    "star": "starry sky", "stars": "starry sky", "星星": "starry sky", "星": "starry sky",
    "moon": "moon", "月亮": "moon", "お月様": "moon",
    "rainbow": "rainbow", "彩虹": "rainbow", "虹": "rainbow",
    "sunset": "sunset glow", "夕阳": "sunset glow", "夕日": "sunset glow", "夕焼け": "sunset glow",
    "light": "soft light", "灯光": "soft light",
    # weather
    "rain": "falling rain", "rainy": "falling rain", "raining": "falling rain", "雨": "falling rain",
    "snow": "falling snow", "snowing": "falling snow", "雪": "falling snow",
    "wind": "wind", "windy": "wind", "风": "wind", "風": "wind",
    "storm": "storm clouds", "暴风雨": "storm clouds", "嵐": "storm clouds",
    "fog": "mist", "mist": "mist", "雾": "mist", "霧": "mist",
    # nature
    "sea": "the sea", "ocean": "the sea", "海": "the sea", "beach": "a beach", "海滩": "a beach", "浜辺": "a beach",
    "river": "a river", "河": "a river", "川": "a river", "lake": "a lake", "湖": "a lake",
    "mountain": "mountains", "mountains": "mountains", "山": "mountains",
    "forest": "a forest", "woods": "a forest", "森林": "a forest", "森": "a forest",
    "tree": "trees", "trees": "trees", "树": "trees", "木々": "trees",
    "flower": "flowers", "flowers": "flowers", "花": "flowers", "garden": "a garden", "花园": "a garden",
    "庭": "a garden", "park": "a park", "公园": "a park", "公園": "a park",
    "cherry": "cherry blossoms", "blossom": "cherry blossoms", "樱花": "cherry blossoms", "桜": "cherry blossoms",
    "leaves": "autumn leaves", "落叶": "autumn leaves", "紅葉": "autumn leaves",
    # places
    "city": "a city skyline", "城市": "a city skyline", "都市": "a city skyline", "街": "city streets",
    "street": "city streets", "streets": "city streets", "街道": "city streets",
    "home": "a warm home", "house": "a warm home", "回家": "a warm home", "我家": "a warm home",
    "自宅": "a warm home",
    "room": "a quiet room", "房间": "a quiet room", "部屋": "a quiet room",
    "window": "a window", "窗": "a window", "窓": "a window",
    "road": "an open road", "公路": "an open road", "道路": "an open road",
    "bridge": "a bridge", "桥": "a bridge", "橋": "a bridge",
    "office": "office windows", "work": "office windows", "job": "office windows", "工作": "office windows",
    "仕事": "office windows", "会社": "office windows", "school": "a schoolyard", "学校": "a schoolyard",
    # travel
    "bus": "a city bus", "公交": "a city bus", "バス": "a city bus",
    "train": "a train", "火车": "a train", "地铁": "a train", "電車": "a train",
    "bike": "a bicycle", "bicycle": "a bicycle", "自行车": "a bicycle", "自転車": "a bicycle",
    "travel": "a journey", "trip": "a journey", "journey": "a journey", "旅行": "a journey", "旅": "a journey",
    # things
    "coffee": "a cup of coffee", "咖啡": "a cup of coffee", "コーヒー": "a cup of coffee",
    "tea": "a cup of tea", "茶": "a cup of tea",
    "lunch": "a picnic", "sandwich": "a picnic", "picnic": "a picnic", "午饭": "a picnic", "弁当": "a picnic",
    "dinner": "a dinner table", "晚饭": "a dinner table", "夕食": "a dinner table",
    "music": "music notes", "song": "music notes", "音乐": "music notes", "歌": "music notes", "音楽": "music notes",
    "book": "books", "books": "books", "书": "books", "読書": "books",
    "letter": "an envelope", "news": "an envelope", "消息": "an envelope", "手紙": "an envelope",
    "gift": "a gift box", "present": "a gift box", "礼物": "a gift box", "プレゼント": "a gift box",
    "rent": "a small apartment", "apartment": "a small apartment", "房租": "a small apartment",
    "家賃": "a small apartment",
    "phone": "a telephone", "calls": "a telephone", "call": "a telephone", "电话": "a telephone",
    "電話": "a telephone",
    "clock": "a clock", "time": "a clock", "时间": "a clock", "時間": "a clock",
    "candle": "candlelight", "蜡烛": "candlelight", "ろうそく": "candlelight",
}

_ASCII_WORD = re.compile(r"[a-z]+")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")
_CJK_ENTRIES = sorted((w for w in MOTIFS if _CJK.search(w)), key=len, reverse=True)


def _motif(keyword: str) -> str | None:
    word = keyword.strip().lower()
    if _CJK.search(word):
        return next((MOTIFS[entry] for entry in _CJK_ENTRIES if entry in word), None)
    if not _ASCII_WORD.fullmatch(word):
        return None  # phrases, digits, punctuation: not a vetted word
    return MOTIFS.get(word) or (MOTIFS.get(word[:-1]) if word.endswith("s") else None)


def motifs(keywords: list[str] | tuple[str, ...], limit: int = MAX_MOTIFS) -> list[str]:
    """The vetted motifs of `keywords`, in their order, each once, at most `limit`."""
    found: list[str] = []
    for keyword in keywords:
        motif = _motif(str(keyword)[:32])
        if motif and motif not in found:
            found.append(motif)
        if len(found) == limit:
            break
    return found
