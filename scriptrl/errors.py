"""The one exception type that reaches a user as a one-line message.

Anything raised as ``UserError`` is printed by the CLI as ``scriptrl: <message>`` with
exit status 2 and no traceback, so the message must name the problem and the fix.
"""


class UserError(Exception):
    """Bad input from a person: a file, a flag, an environment id."""
