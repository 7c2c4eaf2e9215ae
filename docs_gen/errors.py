"""The one error docs_gen raises on purpose."""


class DocsError(Exception):
    """A problem reported to the user as one line, never as a traceback."""
