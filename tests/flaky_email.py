"""An email backend that fails on cue, in front of Anymail's test backend: for the dispatcher's
retries. ``FlakyBackend.failures[address]`` lists what the next sends to that address raise."""

from __future__ import annotations

from collections import defaultdict

from anymail.backends.test import EmailBackend


class FlakyBackend(EmailBackend):
    failures: dict[str, list[Exception]] = defaultdict(list)

    def send_messages(self, email_messages):
        for message in email_messages:
            waiting = self.failures.get(message.to[0])
            if waiting:
                raise waiting.pop(0)
        return super().send_messages(email_messages)
