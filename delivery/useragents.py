"""Link-preview fetchers and crawlers: they GET a link to draw a preview or index it.

A GET of a one-time link reveals nothing, so these burn nothing; the attempt log labels them
so that staff can tell a person's visit from a chat app's preview.
"""

import re

PREVIEW_BOTS = (
    "TelegramBot",
    "Slackbot",
    "Slack-ImgProxy",
    "facebookexternalhit",
    "Facebot",
    "meta-externalagent",
    "Twitterbot",
    "WhatsApp",
    "Discordbot",
    "LinkedInBot",
    "Googlebot",
    "Google-InspectionTool",
    "GoogleOther",
    "AdsBot-Google",
    "bingbot",
    "BingPreview",
    "SkypeUriPreview",
    "Applebot",
    "Pinterestbot",
    "redditbot",
    "Embedly",
    "vkShare",
    "Viber",
    "Snapchat",
    "Iframely",
    "Mastodon",
    "Bluesky",
    "YandexBot",
    "DuckDuckBot",
    "Baiduspider",
    "MicrosoftPreview",
    "Microsoft Office",
    "KakaoTalk-scrap",
    "Mattermost",
    "Rocket.Chat",
)
_PATTERN = re.compile("|".join(re.escape(name) for name in PREVIEW_BOTS), re.IGNORECASE)
_GENERIC = re.compile(r"\b(bot|crawler|spider|preview|scanner)\b", re.IGNORECASE)


def is_preview_bot(user_agent: str) -> bool:
    """Whether `user_agent` is a known link-preview fetcher, crawler or scanner."""
    return bool(user_agent) and bool(_PATTERN.search(user_agent) or _GENERIC.search(user_agent))
