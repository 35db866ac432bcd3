"""Rules for accounts: normalised emails and acceptable passwords."""

import re
import unicodedata

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256
EMAIL_PATTERN = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")

COMMON_PASSWORDS = frozenset("""
123456 123456789 12345678 password qwerty123 qwerty1 111111 12345 1234567 dragon 123123 baseball abc123 football
monkey letmein 696969 shadow master 666666 qwertyuiop 123321 mustang 1234567890 michael 654321 superman 1qaz2wsx
7777777 121212 000000 qazwsx 123qwe killer trustno1 jordan jennifer zxcvbnm asdfgh hunter buster soccer harley
batman andrew tigger sunshine iloveyou 2000 charlie robert thomas hockey ranger daniel starwars klaster 112233
george computer michelle jessica pepper 1111 zxcvbn 555555 11111111 131313 freedom 777777 pass maggie 159753
aaaaaa ginger princess joshua cheese amanda summer love ashley nicole chelsea biteme matthew access yankees
987654321 dallas austin thunder taylor matrix passw0rd password1 password123 welcome welcome1 admin admin123
administrator qwerty12345 iloveyou1 bitcoin bitcoin123 satoshi satoshinakamoto hodlhodl tothemoon changeme
letmein123 1q2w3e4r 1q2w3e4r5t qwerty123456 abcdef123 abcd1234 p@ssw0rd passpass secret123 default guest
""".split())


def has_control_characters(text: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


class AccountRuleBroken(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


def normalize_email(email: str) -> str:
    """Trimmed, NFKC-normalised and lower-cased, so one person has one account."""
    normal = unicodedata.normalize("NFKC", email).strip().lower()
    if not EMAIL_PATTERN.match(normal) or len(normal) > 254 or has_control_characters(normal):
        raise AccountRuleBroken("email", "That is not an email address we can use.")
    return normal


def check_password(password: str, email: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountRuleBroken("password", f"The password needs at least {MIN_PASSWORD_LENGTH} characters.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountRuleBroken("password", f"The password can have at most {MAX_PASSWORD_LENGTH} characters.")
    lowered = password.lower()
    if lowered in COMMON_PASSWORDS or lowered.rstrip("0123456789!") in COMMON_PASSWORDS:
        raise AccountRuleBroken("password", "That password is among the most common ones; choose another.")
    if lowered == email.lower() or lowered == email.split("@")[0].lower():
        raise AccountRuleBroken("password", "The password must not be your email address.")
    return password
