"""What a status means for the user, in their language (en, zh, ja): one sentence per
stage, per failure, and for an automatic retry under way.

The status item carries the sentence (`message`) so every client shows the same words;
the error's own `message` stays the operator's (English, technical).
"""

from __future__ import annotations

LANGUAGES = ("en", "zh", "ja")
DEFAULT_LANGUAGE = "en"

STAGES: dict[str, dict[str, str]] = {
    "en": {
        "uploaded": "Your recording has arrived and is next in line.",
        "transcribing": "Listening to your recording…",
        "analyzing": "Finding the mood in your words…",
        "generating": "Painting your picture…",
        "complete": "Your picture is ready.",
    },
    "zh": {
        "uploaded": "已收到你的录音，马上开始处理。",
        "transcribing": "正在聆听你的录音……",
        "analyzing": "正在体会你话语中的情绪……",
        "generating": "正在为你绘制图片……",
        "complete": "你的图片已经完成。",
    },
    "ja": {
        "uploaded": "録音を受け取りました。まもなく処理を始めます。",
        "transcribing": "録音を聞き取っています…",
        "analyzing": "言葉から気分を読み取っています…",
        "generating": "あなたの絵を描いています…",
        "complete": "絵ができあがりました。",
    },
}

# Why it failed, by error code; anything else says whether trying again can help.
FAILURES: dict[str, dict[str, str]] = {
    "en": {
        "undecodable": "This file is not a recording we can play.",
        "too_short": "The recording is too short: speak for at least a second.",
        "too_long": "The recording is too long: at most five minutes.",
        "too_large": "The file is too large: at most 50 MB.",
        "no_speech": "We could not hear any words in this recording.",
        "content_filtered": "No picture could be made for this recording.",
        "analysis_refused": "The mood of this recording could not be read.",
        "retryable": "Something went wrong on our side. Please try again.",
        "final": "We could not process this recording.",
    },
    "zh": {
        "undecodable": "无法播放这个文件，它不是可用的录音。",
        "too_short": "录音太短了：请至少说一秒钟。",
        "too_long": "录音太长了：最长五分钟。",
        "too_large": "文件太大了：最大 50 MB。",
        "no_speech": "这段录音里没有听到说话。",
        "content_filtered": "无法为这段录音生成图片。",
        "analysis_refused": "无法读出这段录音的情绪。",
        "retryable": "我们这边出了点问题，请再试一次。",
        "final": "无法处理这段录音。",
    },
    "ja": {
        "undecodable": "このファイルは再生できる録音ではありません。",
        "too_short": "録音が短すぎます。1秒以上話してください。",
        "too_long": "録音が長すぎます。5分までです。",
        "too_large": "ファイルが大きすぎます。50 MBまでです。",
        "no_speech": "この録音から言葉が聞き取れませんでした。",
        "content_filtered": "この録音には絵を作れませんでした。",
        "analysis_refused": "この録音から気分を読み取れませんでした。",
        "retryable": "こちらで問題が起きました。もう一度お試しください。",
        "final": "この録音を処理できませんでした。",
    },
}

RETRYING = {
    "en": "Something went wrong; trying again in {seconds} s (retry {number} of {limit}).",
    "zh": "出了点问题，{seconds} 秒后自动重试（第 {number} 次，共 {limit} 次）。",
    "ja": "問題が起きました。{seconds} 秒後に自動でやり直します（{limit} 回中 {number} 回目）。",
}


def language_of(code: object) -> str:
    """The message language of a Transcribe code (zh-CN → zh) or short code; English otherwise."""
    short = str(code or "").split("-")[0].lower()
    return short if short in LANGUAGES else DEFAULT_LANGUAGE


def stage_message(stage: str, language: str, error: dict | None = None) -> str:
    """The sentence for `stage` (for `failed`, for its `error`)."""
    lang = language_of(language)
    if stage != "failed":
        return STAGES[lang][stage]
    error = error or {}
    table = FAILURES[lang]
    code = str(error.get("code", ""))
    return table.get(code) or table["retryable" if error.get("retryable") else "final"]


def retrying_message(language: str, seconds: float, number: int, limit: int) -> str:
    return RETRYING[language_of(language)].format(seconds=round(seconds), number=number, limit=limit)
