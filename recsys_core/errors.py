"""Errors the platform raises on purpose; adapters turn them into exit codes or HTTP answers."""


class RecsysError(Exception):
    """Base class: an error with a message written for the person who has to act on it."""


class SettingsError(RecsysError):
    """A RECSYS_* variable holds a value the platform cannot use."""

    def __init__(self, variable: str, value: str, reason: str):
        self.variable = variable
        self.value = value
        self.reason = reason
        super().__init__(f"{variable}={value!r} is invalid: {reason}")


class ServerUnavailable(RecsysError):
    """A server (Kafka, MongoDB, Spark) does not answer."""

    def __init__(self, component: str, address: str, hint: str = ""):
        self.component = component
        self.address = address
        message = f"{component} at {address} is not answering"
        if hint:
            message += f": {hint}"
        super().__init__(message)
