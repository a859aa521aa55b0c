"""Registry credentials, after the Docker and ORAS conventions (spec/distribution.md).

In order: ``MLPACK_REGISTRY_USERNAME``/``MLPACK_REGISTRY_PASSWORD``, then the Docker config
file (``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``): ``credHelpers``,
``auths`` (base64 ``auth``, ``username``/``password`` or ``identitytoken``), ``credsStore``;
a helper ``NAME`` runs as ``docker-credential-NAME get``.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError

__all__ = ["DOCKER_HUB", "Credentials", "find_credentials"]

DOCKER_HUB = ("docker.io", "index.docker.io", "registry-1.docker.io")


@dataclass(frozen=True, slots=True)
class Credentials:
    """A user name and password, or (user ``<token>``) an identity token; ``source`` says where from."""

    username: str
    password: str
    source: str

    @property
    def identity_token(self) -> str | None:
        return self.password if self.username == "<token>" else None


def _docker_config() -> tuple[dict[str, object], Path]:
    directory = os.environ.get("DOCKER_CONFIG")
    path = Path(directory) / "config.json" if directory else Path.home() / ".docker" / "config.json"
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return {}, path
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot read the Docker config {path}: {err}", code="E_INPUT") from None
    return (doc if isinstance(doc, dict) else {}), path


def _config_keys(registry: str) -> list[str]:
    keys = [registry, f"https://{registry}", f"http://{registry}", f"https://{registry}/v1/",
            f"https://{registry}/v2/"]
    if registry in DOCKER_HUB:
        keys += ["https://index.docker.io/v1/", "index.docker.io", "docker.io"]
    return keys


def _helper(name: str, registry: str, where: Path) -> Credentials | None:
    exe = shutil.which(f"docker-credential-{name}")
    if exe is None:
        raise UsageError(f"credential helper docker-credential-{name} (named in {where}) is not installed",
                         code="E_AUTH", hint="install it, or remove it from the Docker config")
    server = "https://index.docker.io/v1/" if registry in DOCKER_HUB else registry
    try:
        done = subprocess.run([exe, "get"], check=False, input=server, capture_output=True, text=True,
                              timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise UsageError(f"docker-credential-{name} failed: {err}", code="E_AUTH") from None
    if done.returncode != 0:
        if "credentials not found" in (done.stdout + done.stderr).lower():
            return None
        raise UsageError(f"docker-credential-{name} failed: {(done.stderr or done.stdout).strip()[:200]}",
                         code="E_AUTH")
    try:
        doc = json.loads(done.stdout)
        return Credentials(str(doc["Username"]), str(doc["Secret"]), f"docker-credential-{name}")
    except (ValueError, KeyError, TypeError):
        raise UsageError(f"docker-credential-{name} printed no credentials", code="E_AUTH") from None


def find_credentials(registry: str) -> Credentials | None:
    """Credentials for ``registry`` (host[:port]), in the order Docker and ORAS use them.

    1. ``MLPACK_REGISTRY_USERNAME`` and ``MLPACK_REGISTRY_PASSWORD``;
    2. the Docker config (``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``):
       ``credHelpers[registry]``, then ``auths[registry]`` (``auth`` = base64
       ``user:password``, or ``username``/``password``, or ``identitytoken``), then
       ``credsStore``; a helper is run as ``docker-credential-NAME get``.
    """
    user, password = os.environ.get("MLPACK_REGISTRY_USERNAME"), os.environ.get("MLPACK_REGISTRY_PASSWORD")
    if user and password is not None:
        return Credentials(user, password, "MLPACK_REGISTRY_USERNAME/PASSWORD")
    config, path = _docker_config()
    helpers = config.get("credHelpers")
    if isinstance(helpers, dict):
        for key in _config_keys(registry):
            if isinstance(helpers.get(key), str):
                return _helper(str(helpers[key]), registry, path)
    auths = config.get("auths")
    if isinstance(auths, dict):
        for key in _config_keys(registry):
            entry = auths.get(key)
            if not isinstance(entry, dict):
                continue
            if isinstance(entry.get("identitytoken"), str) and entry["identitytoken"]:
                return Credentials("<token>", entry["identitytoken"], str(path))
            if isinstance(entry.get("auth"), str) and entry["auth"]:
                try:
                    user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
                except (ValueError, UnicodeDecodeError):
                    raise UsageError(f"auths[{key!r}].auth in {path} is not base64 user:password",
                                     code="E_AUTH") from None
                return Credentials(user, password, str(path))
            if isinstance(entry.get("username"), str) and isinstance(entry.get("password"), str):
                return Credentials(entry["username"], entry["password"], str(path))
    store = config.get("credsStore")
    if isinstance(store, str) and store:
        return _helper(store, registry, path)
    return None
