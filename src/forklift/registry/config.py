"""Where registry settings live: Docker's config.json, credential helpers, TLS.

- Credentials: ``$DOCKER_CONFIG/config.json`` (default ``~/.docker``), ``auths``
  entries holding base64 ``user:pass``, or a credential helper named by
  ``credsStore`` / ``credHelpers`` (``docker-credential-<name> get|store|erase``).
- forklift's own settings: ``$FORKLIFT_CONFIG_DIR`` (default
  ``$XDG_CONFIG_HOME/forklift``) ``/config.json`` with ``insecure-registries``,
  plus ``$FORKLIFT_INSECURE_REGISTRIES`` (comma-separated).
- Per-registry CAs: ``<base>/HOST/*.crt`` for each base in ``$FORKLIFT_CERTS_D``
  (colon-separated) or, by default, ``/etc/docker/certs.d`` and
  ``<forklift config dir>/certs.d``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Any

from forklift import programs
from forklift.errors import ForkliftError, InvalidArgument

DOCKER_HUB_KEY = "https://index.docker.io/v1/"
DOCKER_HUB_HOSTS = ("docker.io", "index.docker.io", "registry-1.docker.io")


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str
    # the password is an identity token (what `docker login` stores from a token server
    # that issued a refresh token): traded at the token endpoint, never sent as Basic
    identity: bool = False


# ----------------------------------------------------------------------------- paths

def docker_config_dir() -> str:
    """``$DOCKER_CONFIG``, else ``~/.docker``."""
    return os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")


def forklift_config_dir() -> str:
    """``$FORKLIFT_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/forklift``."""
    env = os.environ.get("FORKLIFT_CONFIG_DIR")
    if env:
        return env
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "forklift")


def certs_dirs() -> list[str]:
    """The ``certs.d`` bases searched for per-registry CAs, in order."""
    env = os.environ.get("FORKLIFT_CERTS_D")
    if env is not None:
        return [p for p in env.split(":") if p]
    return ["/etc/docker/certs.d", os.path.join(forklift_config_dir(), "certs.d")]


def config_key(host: str) -> str:
    """The key Docker uses for ``host`` in ``auths`` and credential helpers."""
    return DOCKER_HUB_KEY if host in DOCKER_HUB_HOSTS else host


# ----------------------------------------------------------------------------- json files

def _read_json(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ForkliftError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ForkliftError(f"cannot read {path}: not a JSON object")
    return data


def load_docker_config() -> dict[str, Any]:
    """Docker's config.json ({} when absent); ForkliftError when unreadable."""
    return _read_json(os.path.join(docker_config_dir(), "config.json"))


def save_docker_config(data: dict[str, Any]) -> None:
    """Write config.json atomically (temporary file + rename) with mode 0600; the
    directory is made 0700 when missing."""
    directory = docker_config_dir()
    os.makedirs(directory, mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".config.json.", dir=directory)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent="\t")
            f.write("\n")
        os.replace(tmp, os.path.join(directory, "config.json"))
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


# ----------------------------------------------------------------------------- credentials

def _helper_for(cfg: dict[str, Any], host: str) -> str | None:
    helpers = cfg.get("credHelpers") or {}
    name = helpers.get(host) or helpers.get(config_key(host)) or cfg.get("credsStore")
    return str(name) if name else None


def _run_helper(name: str, action: str, payload: str) -> str:
    program = f"{programs.CREDENTIAL_HELPER_PREFIX}{name}"
    path = programs.find(program)
    try:
        proc = subprocess.run([path, action], input=payload, capture_output=True,
                              text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ForkliftError(f"credential helper {program} failed: {exc}") from None
    if proc.returncode != 0:
        out = (proc.stdout.strip() or proc.stderr.strip()).splitlines()
        message = out[0] if out else f"exit status {proc.returncode}"
        if "credentials not found" in message.lower():
            return ""
        raise ForkliftError(f"credential helper {program} {action}: {message}")
    return proc.stdout


def _decode_auth(entry: dict[str, Any]) -> Credentials | None:
    token = entry.get("identitytoken")
    if token and isinstance(token, str):   # `docker login` to a token service: no password
        return Credentials(str(entry.get("username") or "<token>"), token, identity=True)
    if entry.get("username") and entry.get("password"):
        return Credentials(str(entry["username"]), str(entry["password"]))
    text = entry.get("auth")
    if not text:
        return None
    try:
        user, sep, password = base64.b64decode(text).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        raise ForkliftError("invalid auth entry in docker config.json") from None
    return Credentials(user, password) if sep else None


def _auth_entry(cfg: dict[str, Any], host: str) -> dict[str, Any] | None:
    auths = cfg.get("auths") or {}
    for key in (config_key(host), host, f"https://{host}", f"http://{host}"):
        if isinstance(auths.get(key), dict):
            return auths[key]
    for key, entry in auths.items():  # "https://host/v1/" and similar spellings
        bare = key.split("://", 1)[-1].split("/", 1)[0]
        if bare == host and isinstance(entry, dict):
            return entry
    return None


def get_credentials(host: str) -> Credentials | None:
    """The login stored for ``host``: its credential helper first, then ``auths``.
    None when there is none; MissingProgram when the helper named is not installed,
    ForkliftError when it fails or answers garbage."""
    cfg = load_docker_config()
    helper = _helper_for(cfg, host)
    if helper:
        out = _run_helper(helper, "get", config_key(host))
        if out.strip():
            try:
                data = json.loads(out)
                user = str(data["Username"])
                # the helpers' convention for an identity token, as Docker reads it
                return Credentials(user, str(data["Secret"]), identity=user == "<token>")
            except (ValueError, KeyError, TypeError):
                raise ForkliftError(f"credential helper {helper} returned bad output") from None
    entry = _auth_entry(cfg, host)
    return _decode_auth(entry) if entry else None


def store_credentials(host: str, creds: Credentials) -> None:
    """Remember ``creds`` for ``host``: in its credential helper (leaving an empty
    ``auths`` entry, as Docker does) or base64 in config.json. Idempotent."""
    cfg = load_docker_config()
    helper = _helper_for(cfg, host)
    key = config_key(host)
    if helper:
        _run_helper(helper, "store", json.dumps(
            {"ServerURL": key, "Username": creds.username, "Secret": creds.password}))
        cfg.setdefault("auths", {})[key] = {}
    else:
        token = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
        cfg.setdefault("auths", {})[key] = {"auth": token}
    save_docker_config(cfg)


def erase_credentials(host: str) -> bool:
    """Forget ``host``'s credentials (helper and config.json); False when there were
    none. Idempotent."""
    cfg = load_docker_config()
    key = config_key(host)
    found = False
    helper = _helper_for(cfg, host)
    if helper:
        found = bool(_run_helper(helper, "get", key).strip())
        if found:
            _run_helper(helper, "erase", key)
    auths = cfg.get("auths") or {}
    for k in [k for k in auths if k == key or k.split("://", 1)[-1].split("/", 1)[0] == host]:
        del auths[k]
        found = True
    if found:
        save_docker_config(cfg)
    return found


# ----------------------------------------------------------------------------- TLS policy

def insecure_registries() -> set[str]:
    """Hosts from ``$FORKLIFT_INSECURE_REGISTRIES`` and forklift's config.json;
    InvalidArgument when the config's list is not a list."""
    names: set[str] = set()
    env = os.environ.get("FORKLIFT_INSECURE_REGISTRIES", "")
    names.update(n.strip() for n in env.split(",") if n.strip())
    cfg = _read_json(os.path.join(forklift_config_dir(), "config.json"))
    listed = cfg.get("insecure-registries") or []
    if not isinstance(listed, list):
        raise InvalidArgument("insecure-registries in the forklift config must be a list")
    names.update(str(n) for n in listed)
    return names


def is_loopback(host: str) -> bool:
    """localhost, 127.x or ::1 (any port): plain HTTP is allowed there, as in Docker."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]")
    return name == "localhost" or name.startswith("127.") or name == "::1"


def is_listed_insecure(host: str) -> bool:
    """Named in the insecure-registries list (with or without its port)."""
    listed = insecure_registries()
    return host in listed or host.rsplit(":", 1)[0] in listed


def ca_files(host: str) -> tuple[list[str], tuple[str, str] | None]:
    """CA bundles and an optional (cert, key) client pair configured for ``host``."""
    cas: list[str] = []
    client: tuple[str, str] | None = None
    for base in certs_dirs():
        directory = os.path.join(base, host)
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        for name in names:
            path = os.path.join(directory, name)
            if name.endswith(".crt"):
                cas.append(path)
            elif name.endswith(".cert") and client is None:
                key = path[: -len(".cert")] + ".key"
                if os.path.exists(key):
                    client = (path, key)
    return cas, client
