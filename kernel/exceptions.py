"""The project's exceptions: one short tree, so callers catch what they can handle.

    CallCenterError            anything this project raises on purpose
    ├── ConfigError            the configuration is invalid or incomplete (exit 2)
    ├── InputError             a file given to us is malformed (trace, log, flow)
    ├── DatabaseError          the database cannot be reached or migrated
    ├── Refused                a panel user asked for something not allowed or malformed
    └── AMIError               talking to Asterisk's manager interface failed
        ├── AMIConnectionError the socket could not be opened or was lost
        ├── AuthenticationError Asterisk refused the username/secret (exit 3)
        ├── ActionError        Asterisk answered an action with Response: Error
        └── ActionTimeout      no answer to an action in time

Transport errors (OSError, asyncio timeouts, driver errors) are translated at
the edge with ``raise ... from exc`` so the original stays in the traceback.
"""


class CallCenterError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigError(CallCenterError):
    """The configuration is invalid or incomplete."""


class InputError(CallCenterError, ValueError):
    """A file given to us is malformed; the message names the file and line."""


class DatabaseError(CallCenterError):
    """The database cannot be reached or migrated."""


class Refused(CallCenterError):
    """A panel user asked for something their role does not allow, or sent malformed data, or the PBX could not do it; the
    message says which (in English; `key` and `params` let the panel say it in the user's language)."""

    def __init__(self, message: str, key: str | None = None, **params: str) -> None:
        super().__init__(message)
        self.key, self.params = key, params


class AMIError(CallCenterError):
    """Talking to Asterisk's manager interface failed."""


class AMIConnectionError(AMIError):
    """The manager socket could not be opened, or it was lost."""


class AuthenticationError(AMIError):
    """Asterisk refused the manager username or secret."""


class ActionError(AMIError):
    """Asterisk answered an action with Response: Error."""

    def __init__(self, action: str, message: str) -> None:
        super().__init__(f"{action}: {message}")
        self.action = action
        self.message = message


class ActionTimeout(AMIError):
    """No answer to an action in time."""
