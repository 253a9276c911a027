"""Redact secrets from log text before it leaves the cluster.

Covers bearer tokens, JWTs, AWS/GCP/Azure keys, Slack and GitHub tokens, private key
blocks, password/secret/token assignments (also prefixed, as in environment variables),
credentials in URLs/DSNs, signed URLs, cookies and Authorization headers. Each hit
becomes `[REDACTED]` (keeping the key name so the line still reads); crash text such as
`invalid memory address` is left alone.
"""

from __future__ import annotations

import re

MASK = "[REDACTED]"

_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"-----BEGIN ([A-Z ]*)PRIVATE KEY-----.*?-----END \1PRIVATE KEY-----", re.S),
     "-----BEGIN \\1PRIVATE KEY-----" + MASK + "-----END \\1PRIVATE KEY-----"),
    (re.compile(r"-----BEGIN ([A-Z ]*)PRIVATE KEY-----(?!\[REDACTED\])[^\"\n]*"),
     "-----BEGIN \\1PRIVATE KEY-----" + MASK),
    (re.compile(r"(?i)(authorization\s*[:=]\s*[\"']?)(bearer|basic|token|digest)?\s*"
                r"[^\s\"',;]+"), "\\1\\2 " + MASK),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9\-._~+/]{8,}=*"), "\\1 " + MASK),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"), MASK),
    (re.compile(r"\b(AKIA|ASIA|AIDA|AROA)[0-9A-Z]{16}\b"), MASK),
    (re.compile(r"(?i)(aws_secret_access_key|aws_session_token)(\s*[:=]\s*[\"']?)"
                r"[A-Za-z0-9/+=]{16,}"), "\\1\\2" + MASK),
    (re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b"), MASK),
    (re.compile(r"\"private_key\"\s*:\s*\"(?![^\"]*\[REDACTED\])[^\"]+\""),  # once per key
     '"private_key": "' + MASK + '"'),
    (re.compile(r"(?i)(AccountKey|SharedAccessSignature|SharedAccessKey)=[^;\s\"']+"),
     "\\1=" + MASK),
    (re.compile(r"\bxox[abposr]-[0-9A-Za-z-]{10,}"), MASK),
    (re.compile(r"\bxapp-\d-[0-9A-Za-z-]{10,}"), MASK),
    (re.compile(r"https://hooks\.slack\.com/services/[A-Za-z0-9/]+"), MASK),
    (re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})\b"), MASK),
    (re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}\b"), MASK),
    (re.compile(r"\bsk_(live|test)_[0-9A-Za-z]{16,}\b"), MASK),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@\"']+):([^\s@/\"']+)@"), "\\1:" + MASK + "@"),
    (re.compile(r"(?i)([\"']?\b(?:password|passwd|pwd|pass|secret|client_secret|api[_-]?key|"
                r"access[_-]?key|secret[_-]?key|auth[_-]?token|access[_-]?token|"
                r"refresh[_-]?token|token)[\"']?\s*[:=]\s*)([\"'])(?:(?!\2).)+\2"),
     "\\1\\2" + MASK + "\\2"),
    (re.compile(r"(?i)(\b(?:password|passwd|pwd|secret|client_secret|api[_-]?key|"
                r"access[_-]?key|secret[_-]?key|auth[_-]?token|access[_-]?token|"
                r"refresh[_-]?token)\s*[:=]\s*)(?![\"'\[])[^\s,;&\"'}]+"), "\\1" + MASK),
    # Found missing by the reliability corpus (tests/reliability/test_slack_redaction.py):
    # prefixed names (POSTGRES_PASSWORD=, PGPASSWORD=, db_pass=, AZURE_CLIENT_SECRET=),
    (re.compile(r"(?i)(\b(?:[a-z0-9]+[_.-])*(?:pg|mysql_)?(?:password|passwd|pwd|secret|"
                r"api_?key|access_key|private_key)\s*[:=]\s*)(?![\"'\[])[^\s,;&\"'}]+"),
     "\\1" + MASK),
    (re.compile(r"(?i)(\b_?(?:[a-z0-9]+[_.-])+(?:pass|token|credentials?)\s*[:=]\s*|"
                r"\b_?auth_?token\s*[:=]\s*)(?![\"'\[])[^\s,;&\"'}]+"), "\\1" + MASK),
    # a password with an empty user (redis://:pw@), signed URLs (Azure SAS, S3, GCS),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://):([^\s@/\"']+)@"), "\\1:" + MASK + "@"),
    (re.compile(r"(?i)([?&](?:sig|signature|x-amz-signature|x-amz-security-token|"
                r"x-goog-signature|x-goog-credential)=)[^&\s\"']+"), "\\1" + MASK),
    # cookies, docker config auths, PGP private keys, and more well-known token shapes.
    (re.compile(r"(?i)\b((?:set-)?cookie\s*:\s*)[^\n]+"), "\\1" + MASK),
    (re.compile(r"(\"auth\"\s*:\s*\")[A-Za-z0-9+/]{16,}={0,2}\""), "\\1" + MASK + '"'),
    (re.compile(r"-----BEGIN PGP PRIVATE KEY BLOCK-----.*?-----END PGP PRIVATE KEY BLOCK-----",
                re.S), "-----BEGIN PGP PRIVATE KEY BLOCK-----" + MASK
     + "-----END PGP PRIVATE KEY BLOCK-----"),
    (re.compile(r"\bya29\.[0-9A-Za-z_\-]{20,}"), MASK),  # Google OAuth access token
    (re.compile(r"\bnpm_[A-Za-z0-9]{36}\b"), MASK),
    (re.compile(r"\bSG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}\b"), MASK),  # SendGrid
    (re.compile(r"\bhv[sbr]\.[A-Za-z0-9_\-]{24,}"), MASK),  # HashiCorp Vault
    (re.compile(r"\bsk-(?:proj-|svcacct-|ant-)?[A-Za-z0-9_\-]{32,}"), MASK),  # OpenAI, Anthropic
)


def redact(text: str) -> tuple[str, int]:
    """(text with secrets masked, number of values masked)."""
    count = 0
    for pattern, replacement in _RULES:
        text, n = pattern.subn(replacement, text)
        count += n
    return text, count
