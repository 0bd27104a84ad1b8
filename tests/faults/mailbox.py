"""The fault tests' mail server: each message a file in ``KAMI_FAULT_MAILBOX``, so the test
counts what really left a worker process. With ``KAMI_FAULT_RESTART_AFTER_SEND`` (a command,
JSON) the first message is followed by that command — a PostgreSQL restart between the
provider accepting a message and the worker recording that it did."""

from __future__ import annotations

import email
import email.policy
import json
import os
import subprocess
import time
import uuid
from email.message import Message
from pathlib import Path

from django.core.mail.backends.base import BaseEmailBackend


class FileMailbox(BaseEmailBackend):
    def send_messages(self, email_messages) -> int:
        box = Path(os.environ["KAMI_FAULT_MAILBOX"])
        for message in email_messages:
            name = f"{time.time_ns()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            partial = box / f"{name}.part"
            partial.write_bytes(message.message().as_bytes())
            partial.rename(box / f"{name}.eml")  # whole or not at all
        restart = os.environ.get("KAMI_FAULT_RESTART_AFTER_SEND")
        marker = box / "restarted"
        if restart and not marker.exists():
            marker.touch()
            subprocess.run(json.loads(restart), check=True, capture_output=True, timeout=60)
        return len(email_messages)


def mailbox(box: Path) -> list[Message]:
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted(box.glob("*.eml"))
    ]
