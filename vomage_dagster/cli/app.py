"""Commands of the app side: the live view, and uploading or speaking as the app would."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from vomage_dagster.cli.common import use_local_stack
from vomage_dagster.settings import LANGUAGE_OPTIONS, Settings


def cmd_app(args: argparse.Namespace, settings: Settings) -> int:
    """The live view (`app/`): serve it, or sign a user in and print their access token."""
    settings = use_local_stack(settings)
    if args.action == "token":
        return _token(args, settings)
    import uvicorn

    from vomage_dagster.app.server import create_app

    # No per-message deflate: a status is a kilobyte, and compressing the same one for
    # each of a recording's followers was most of the cost of sending it. The sans-I/O
    # WebSocket protocol: less work per connection than the legacy one, with the same
    # flow control (a send waits while the peer's buffer is full).
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="warning",
                ws="websockets-sansio", ws_per_message_deflate=False)
    return 0


def _token(args: argparse.Namespace, settings: Settings) -> int:
    """A user's access token from the app's pool, as the page gets it. Locally the user is
    made in the stack's pool first (or given a new password), as an operator would; on AWS
    `--password` signs an existing user in."""
    import json

    from vomage_dagster.app.sign_in import SignInError, password_sign_in

    if not args.user:
        print("vomage app token needs --user", file=sys.stderr)
        return 2
    try:
        if settings.is_local:
            from vomage_dagster.local.client.user_pool import new_password, sign_in_as

            password = args.password or new_password()
            tokens = sign_in_as(settings, args.user, password)
            if not args.password:
                print(f"{args.user}'s password (sign in on the page with it): {password}", file=sys.stderr)
        elif not args.password:
            print("on AWS, vomage app token needs the user's --password", file=sys.stderr)
            return 2
        else:
            tokens = password_sign_in(settings.region, settings.user_pool_client_id, args.user, args.password)
    except SignInError as exc:
        print(f"not signed in: {exc.reason}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(tokens.as_dict(), indent=1))
    elif args.url:
        print(f"http://{args.host}:{args.port}/?token={tokens.access_token}")
    else:
        print(tokens.access_token)
    return 0


def cmd_upload(args: argparse.Namespace, settings: Settings) -> int:
    from vomage_dagster.local.client.uploads import upload_file

    settings = use_local_stack(settings)
    path = Path(args.file)
    if not path.is_file():
        print(f"no such file: {path}", file=sys.stderr)
        return 2
    rid = upload_file(settings, path, args.user, lat=args.lat, lon=args.lon, tz=args.tz, lang=args.lang)
    print(f"uploaded {path.name} as {rid}", file=sys.stderr)
    print(rid)
    return 0


def cmd_stream_url(args: argparse.Namespace, settings: Settings) -> int:
    """A presigned Transcribe streaming URL for one recording of `--user` (valid 5 min)."""
    from vomage_dagster.domain.keys import valid_user_id
    from vomage_dagster.streaming.urls import stream_url

    if not valid_user_id(args.user):
        print("a user id is [A-Za-z0-9_-], at most 64 characters", file=sys.stderr)
        return 2
    print(stream_url(use_local_stack(settings), args.user, args.lang, args.expires))
    return 0


def cmd_speak(args: argparse.Namespace, settings: Settings) -> int:
    """The app's fast path for a file: stream it at real-time pace, upload at the end of
    speech, put the streamed transcript beside it."""
    from vomage_dagster.local.client.speaking_app import speak

    settings = use_local_stack(settings)
    path = Path(args.file)
    if not path.is_file():
        print(f"no such file: {path}", file=sys.stderr)
        return 2
    spoken = speak(settings, path, args.user, language=args.lang, realtime=not args.fast)
    if spoken.transcript_at is None:
        print(f"the stream failed ({spoken.error}): uploaded without a transcript, the batch job will run",
              file=sys.stderr)
    else:
        print(f"streamed {path.name}: final transcript {spoken.transcript_at - spoken.end_of_speech:.2f} s "
              f"after the end of speech ({spoken.language})", file=sys.stderr)
    print(spoken.recording_id)
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("app", help="the app's live view: serve it, or sign a user in and print their token")
    p.add_argument("action", nargs="?", choices=["serve", "token"], default="serve")
    p.add_argument("--user", help="token: the username (locally made in the stack's pool if new)")
    p.add_argument("--password", help="token: the user's password (locally: set to it; default a new one)")
    p.add_argument("--json", action="store_true", help="token: every token and the user id, as JSON")
    p.add_argument("--url", action="store_true", help="token: print the page's URL with the access token")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(fn=cmd_app)
    p = sub.add_parser("upload", help="upload a recording as the app does; prints its id last")
    p.add_argument("file")
    p.add_argument("--user", required=True)
    p.add_argument("--lat")
    p.add_argument("--lon")
    p.add_argument("--tz")
    p.add_argument("--lang", help="language hint: en-US, zh-CN or ja-JP")
    p.set_defaults(fn=cmd_upload)
    p = sub.add_parser("stream-url", help="a presigned Transcribe streaming URL for a user's next recording")
    p.add_argument("--user", required=True)
    p.add_argument("--lang", choices=list(LANGUAGE_OPTIONS), help="the language (default: identified)")
    p.add_argument("--expires", type=int, default=300, help="seconds, at most 300")
    p.set_defaults(fn=cmd_stream_url)
    p = sub.add_parser("speak", help="stream a recording while 'speaking', upload it, send its transcript")
    p.add_argument("file")
    p.add_argument("--user", required=True)
    p.add_argument("--lang", choices=list(LANGUAGE_OPTIONS))
    p.add_argument("--fast", action="store_true", help="stream as fast as possible, not at real-time pace")
    p.set_defaults(fn=cmd_speak)
