"""Read the emails Django's file-based backend wrote to ``settings.EMAIL_FILE_PATH``.

The backend appends each message's bytes, a newline and a line of 79 dashes to a ``.log``
file, one file per connection.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path

from django.conf import settings

SEPARATOR = b"\n" + b"-" * 79 + b"\n"
FILE_NAME = re.compile(r"^[\w.-]+\.log$")


@dataclass(frozen=True)
class OutboxMessage:
    file_name: str
    index: int
    message: EmailMessage

    @property
    def key(self) -> str:
        return f"{self.file_name}:{self.index}"

    @property
    def subject(self) -> str:
        return str(self.message.get("Subject", ""))

    @property
    def sender(self) -> str:
        return str(self.message.get("From", ""))

    @property
    def to(self) -> str:
        return str(self.message.get("To", ""))

    @property
    def sent_at(self) -> dt.datetime | None:
        try:
            return parsedate_to_datetime(str(self.message.get("Date", "")))
        except (TypeError, ValueError):
            return None

    @property
    def headers(self) -> list[tuple[str, str]]:
        return [(name, str(value)) for name, value in self.message.items()]

    @property
    def one_click_unsubscribe_url(self) -> str:
        """The RFC 8058 target of a marketing email, where its headers offer one."""
        if "One-Click" not in str(self.message.get("List-Unsubscribe-Post", "")):
            return ""
        match = re.search(r"<(https?://[^>]+)>", str(self.message.get("List-Unsubscribe", "")))
        return match.group(1) if match else ""

    def _body(self, subtype: str) -> str:
        part = self.message.get_body(preferencelist=(subtype,))
        return part.get_content() if part is not None else ""

    @property
    def text(self) -> str:
        return self._body("plain")

    @property
    def html(self) -> str:
        return self._body("html")


def outbox_dir() -> Path:
    return Path(settings.EMAIL_FILE_PATH)


def _read(path: Path) -> list[OutboxMessage]:
    chunks = [chunk.strip(b"\n") for chunk in path.read_bytes().split(SEPARATOR)]
    return [
        OutboxMessage(
            file_name=path.name,
            index=index,
            message=email.message_from_bytes(chunk, policy=email.policy.default),
        )
        for index, chunk in enumerate(chunks)
        if chunk
    ]


def messages_list() -> list[OutboxMessage]:
    """Every message in the outbox, newest first."""
    directory = outbox_dir()
    if not directory.is_dir():
        return []
    files = sorted(
        (p for p in directory.iterdir() if p.is_file() and FILE_NAME.match(p.name)),
        key=lambda p: (p.stat().st_mtime, p.name),
        reverse=True,
    )
    messages: list[OutboxMessage] = []
    for path in files:
        messages.extend(reversed(_read(path)))
    return messages


def message_get(file_name: str, index: int) -> OutboxMessage | None:
    """One message, or None. Only names of files in the outbox are ever opened."""
    if not FILE_NAME.match(file_name):
        return None
    path = outbox_dir() / file_name
    if not path.is_file():
        return None
    messages = _read(path)
    return messages[index] if 0 <= index < len(messages) else None
