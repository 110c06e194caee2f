class UserFacingError(Exception):
    """A refused request whose message may be shown to the person who made it."""

    def __init__(self, message, params=None):
        self.message = str(message) % params if params else str(message)
        super().__init__(self.message)
