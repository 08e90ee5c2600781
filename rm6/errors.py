class DomainError(Exception):
    """A rule of the product was broken; the message is safe to show the user.

    Services raise it; the API maps it to a 400 response and forms to a form
    error. `field` names the input the message is about, when there is one.
    """

    def __init__(
        self, message: str, *, field: str | None = None, code: str = "invalid"
    ):
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code
