"""The webhook signing secrets: a Secrets Manager JSON secret read through
Powertools Parameters (cached for its max age, so a rotation arrives within it),
or the settings' variables locally."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

from practice.core.config import Settings
from practice.core.errors import Unavailable
from practice.webhooks.signatures import svix_key


@dataclass(frozen=True)
class Secrets:
    """What the providers sign with: Clerk's keys (current first) and Vapi's secret."""

    clerk_keys: tuple[bytes, ...]
    vapi: str | None


class WebhookSecrets:
    """Reads the secrets when asked; a secret that cannot be read is a 503."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def current(self) -> Secrets:
        """The secrets as they stand (within the cache's max age)."""
        if self.settings.webhook_secrets_arn:
            values = self._from_secrets_manager()
        else:
            values = {
                "clerk": _plain(self.settings.webhook_clerk_secret),
                "clerk_previous": _plain(self.settings.webhook_clerk_secret_previous),
                "vapi": _plain(self.settings.webhook_vapi_secret),
            }
        try:
            keys = tuple(
                svix_key(value)
                for value in (values.get("clerk"), values.get("clerk_previous"))
                if value
            )
        except ValueError as exc:
            raise Unavailable(
                "the Clerk signing secret is not a whsec_ secret", retry_after=60
            ) from exc
        return Secrets(keys, values.get("vapi") or None)

    def _from_secrets_manager(self) -> dict[str, str | None]:
        from aws_lambda_powertools.utilities import parameters

        try:
            raw = parameters.get_secret(
                self.settings.webhook_secrets_arn, max_age=self.settings.webhook_secrets_max_age
            )
            data = json.loads(raw) if isinstance(raw, str | bytes) else raw
        except Exception as exc:
            raise Unavailable("the webhook secrets cannot be read", retry_after=5) from exc
        if not isinstance(data, dict):
            raise Unavailable("the webhook secret is not a JSON object", retry_after=60)
        return {key: (str(value) if value else None) for key, value in data.items()}

    def now(self) -> float:
        """The verification clock: the local override for replays of the signed
        samples, never inside a real Lambda."""
        at = self.settings.webhook_verify_at
        in_lambda = (
            bool(os.getenv("AWS_LAMBDA_FUNCTION_NAME")) and os.getenv("AWS_SAM_LOCAL") != "true"
        )
        if at is not None and not in_lambda:
            return float(at)
        return time.time()


def _plain(value: object) -> str | None:
    if value is None:
        return None
    return value.get_secret_value()  # type: ignore[attr-defined]
