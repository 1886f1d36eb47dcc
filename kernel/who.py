"""Who is asking: the logged-in user as every package that checks a right sees them."""

from __future__ import annotations

from dataclasses import dataclass

from kernel.models import User

ROLES = ("agent", "supervisor", "admin")
LANGS = ("en", "pt-BR")


@dataclass(frozen=True)
class Who:
    """The logged-in user as the server knows them (from the session, never from the browser)."""

    user_id: int
    login: str
    role: str
    lang: str
    agent: str | None
    interface: str | None
    extension: str | None
    queues: tuple[str, ...]
    epoch: int = 0  # the user's session epoch when this session began (kernel.models.User.session_epoch)

    @property
    def supervises(self) -> bool:
        """Supervisors and admins see the wallboard and act on agents and callers."""
        return self.role in ("supervisor", "admin")

    @classmethod
    def of(cls, user: User) -> Who:
        """The session view of a user row."""
        return cls(
            user.id,
            user.login,
            user.role,
            user.lang,
            user.agent,
            user.interface,
            user.extension,
            tuple(user.queues or ()),
            user.session_epoch or 0,
        )
