"""What a leaked credential looks like, for the tests that keep them out of images, manifests and pipelines.

Shared by tests/k8s (manifests, the compiled pipeline) and tests/containers (the image's history,
environment and labels). pytest puts this folder on ``sys.path`` because tests/conftest.py lives here.
Each detector is itself tested on planted examples, so a test using it can fail.
"""

from __future__ import annotations

import re
from typing import Any

# Names that say "the value is a secret": DB_PASSWORD, API_TOKEN, GITHUB_TOKEN, AWS_SECRET_ACCESS_KEY,
# GOOGLE_APPLICATION_CREDENTIALS (a path to a service-account key file), private_key, ...
SECRET_NAME = re.compile(
    r"pass(word|wd)?|token|secret|api[_-]?key|credential|private[_-]?key|access[_-]?key", re.IGNORECASE
)
# Values that are secrets whatever they are called: PEM private keys, AWS access key ids, Google API
# keys, GitHub and Slack tokens, a Google service-account key file's JSON.
SECRET_TEXT = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY|AKIA[0-9A-Z]{16}|AIza[0-9A-Za-z_-]{35}|gh[pousr]_[0-9A-Za-z]{36}"
    r'|xox[abprs]-[0-9A-Za-z-]{10,}|"private_key"|"type":\s*"service_account"'
)
# Files that hold credentials: service-account keys, PEM/PKCS#12 keys, SSH keys, .env, tool logins.
KEY_FILE = re.compile(
    r"(^|/)(\.env(\.[\w.-]+)?|\.netrc|\.npmrc|\.pypirc|\.git-credentials|id_(rsa|dsa|ecdsa|ed25519)"
    r"|credentials(\.json)?|[\w.-]*(service[_-]?account|sa[_-]key|key|secret|token|credential)[\w.-]*\.json"
    r"|[\w.-]+\.(pem|key|p12|pfx|jks|keystore))$",
    re.IGNORECASE,
)


def credential_findings(node: Any, where: str = "") -> list[str]:
    """Places in ``node`` (a parsed manifest or pipeline) that hold what looks like a literal credential."""
    findings = []
    if isinstance(node, dict):
        # env entries and similar: {"name": "DB_PASSWORD", "value": "hunter2"}
        name, value = node.get("name"), node.get("value")
        if isinstance(name, str) and SECRET_NAME.search(name) and isinstance(value, str):
            findings.append(f"{where}: {name} has a literal value")
        for key, child in node.items():
            if isinstance(child, str) and child and SECRET_NAME.search(str(key)):
                findings.append(f"{where}.{key}: literal value")
            findings += credential_findings(child, f"{where}.{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            findings += credential_findings(item, f"{where}[{index}]")
    elif isinstance(node, str) and SECRET_TEXT.search(node):
        findings.append(f"{where}: text that looks like a key")
    return findings


def assignment_findings(pairs: dict[str, str], where: str) -> list[str]:
    """Secret-named settings with a value, or secret-looking values (image ENV, LABELs, build ARGs)."""
    findings = [f"{where} {name} is set" for name, value in pairs.items() if value and SECRET_NAME.search(name)]
    findings += [f"{where} {name} holds text that looks like a key" for name, value in pairs.items()
                 if SECRET_TEXT.search(value)]
    return findings


def history_findings(steps: list[str]) -> list[str]:
    """Credentials in an image's build steps (``docker history --no-trunc``'s CREATED BY column).

    A build argument shows there as ``|N NAME=value ...`` before the command it was used in,
    ``ENV``/``LABEL`` steps show their values, and BuildKit's ``COPY``/``ADD`` steps name their files.
    """
    findings = []
    for step in steps:
        if SECRET_TEXT.search(step):
            findings.append(f"build step holds text that looks like a key: {step[:120]}")
        for name, _ in re.findall(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=(\S+)", step):
            if SECRET_NAME.search(name):
                findings.append(f"build step sets {name}: {step[:120]}")
        # BuildKit: "COPY a.json /app/ # buildkit"; legacy builder: "/bin/sh -c #(nop) COPY file:<sha> in /app/a.json"
        copied = re.search(r"(?:^|#\(nop\))\s*(?:COPY|ADD)\s+(.*?)(?:\s+#\s*buildkit)?\s*$", step)
        if copied:
            findings += [f"build step copies {path}" for path in copied.group(1).split() if KEY_FILE.search(path)]
    return findings
