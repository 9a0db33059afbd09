"""Named, versioned secrets encrypted at rest (SSM Parameter Store SecureString + KMS analogue).

Values are encrypted with AES-GCM under the master key; the associated data binds a ciphertext to its
project, name and version, so a row copied onto another secret (or into another project) does not decrypt.
A secret belongs to the project of the request that created it, and only workloads of that project can
reference it: the project comes from :data:`kamado.core.projects.current_project` (the request's, or the
owner's for background work), or explicitly from the resource being started. The API only ever returns
metadata: values leave this module only towards a job's environment (see :mod:`kamado.security.injection`).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from typing import Any

from kamado.core.errors import InvalidSpec, NotFound
from kamado.core.projects import DEFAULT_PROJECT, current_project
from kamado.core.secret_hooks import referenced_name
from kamado.security.crypto import KeyRing, encrypt_with
from kamado.security.records import SecretVersion
from kamado.security.store import SecurityStore

SECRET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-/]{0,127}$")
MAX_SECRET_BYTES = 8192


def check_name(name: str) -> str:
    if not SECRET_NAME.fullmatch(name):
        raise InvalidSpec(
            f"Secret name {name[:80]!r} is invalid: use 1-128 letters, digits and _ . - /, starting with a letter "
            "or digit.",
            details=[{"field": "Name", "message": "must match ^[A-Za-z0-9][A-Za-z0-9_.\\-/]{0,127}$"}],
        )
    return name


def check_value(value: str) -> str:
    if not value or len(value.encode()) > MAX_SECRET_BYTES:
        raise InvalidSpec(
            f"A secret value must be 1 to {MAX_SECRET_BYTES} bytes; store larger material as an artifact.",
            details=[{"field": "Value", "message": f"must be 1-{MAX_SECRET_BYTES} bytes"}],
        )
    return value


def _aad(project: str, name: str, version: int) -> str:
    if project == DEFAULT_PROJECT:
        return f"kamado-secret:{name}:{version}"  # as before projects, so older ciphertexts still decrypt
    return f"kamado-secret@{project}:{name}:{version}"


def _project(project: str | None = None) -> str:
    """The project a secret operation acts in: the one given, else the current work's, else default."""
    return project or current_project.get() or DEFAULT_PROJECT


def _in(project: str) -> str:
    return "" if project == DEFAULT_PROJECT else f" in project '{project}'"


def _metadata(versions: list[SecretVersion]) -> dict[str, Any]:
    first, last = versions[0], versions[-1]
    return {
        "Name": last.name,
        "Description": last.description,
        "Version": last.version,
        "CreationTime": first.created_at,
        "LastModifiedTime": last.created_at,
        "LastModifiedBy": last.created_by,
        "Reference": f"{{{{resolve:secretsmanager:{last.name}}}}}",
        "Project": last.project,
    }


class SecretService:
    def __init__(self, store: SecurityStore, ring: KeyRing) -> None:
        self.store = store
        self.ring = ring
        #: Held while the master key rotates, so no value is written under a key about to be retired.
        self._rotating = threading.Lock()

    def _put(self, name: str, value: str, description: str | None, by: str | None, *, exists: bool) -> dict[str, Any]:
        check_name(name)
        check_value(value)
        project = _project()
        with self._rotating:
            versions = self.store.secret_versions(project, name)
            version = (versions[-1].version if versions else 0) + 1
            desc = description if description is not None else (versions[-1].description if versions else "")
            kid, blob = self.ring.encrypt(value, _aad(project, name, version))
            self.store.add_secret_version(
                SecretVersion(
                    name=name,
                    version=version,
                    key_id=kid,
                    ciphertext=blob,
                    description=desc,
                    created_by=by,
                    created_at=time.time(),
                    project=project,
                ),
                must_exist=exists,
            )
        return self.describe(name)

    def create(self, name: str, value: str, *, description: str = "", by: str | None = None) -> dict[str, Any]:
        return self._put(name, value, description, by, exists=False)

    def rotate(self, name: str, value: str, *, description: str | None = None, by: str | None = None) -> dict[str, Any]:
        """Store a new version; jobs started from now on receive it."""
        return self._put(name, value, description, by, exists=True)

    def describe(self, name: str) -> dict[str, Any]:
        versions = self.store.secret_versions(_project(), name)
        if not versions:
            raise NotFound(f"Could not find secret '{name}'.", details={"Name": name})
        return _metadata(versions)

    def list(self) -> list[dict[str, Any]]:
        return [_metadata([v]) for v in self.store.latest_secrets(_project())]

    def delete(self, name: str) -> None:
        self.store.delete_secret(_project(), name)

    def value(self, name: str, *, project: str | None = None) -> str:
        where = _project(project)
        versions = self.store.secret_versions(where, name)
        if not versions:
            raise NotFound(f"Could not find secret '{name}'{_in(where)}.", details={"Name": name})
        last = versions[-1]
        return self.ring.decrypt(last.key_id, last.ciphertext, _aad(last.project, last.name, last.version))

    def check_references(self, env: Mapping[str, str], *, field: str, project: str | None = None) -> None:
        """Every secret ``env`` refers to exists in the workload's project (so a job fails at create, not at
        start, and cannot name another project's secret)."""
        where = _project(project)
        missing = [
            (k, n) for k, v in env.items() if (n := referenced_name(v)) and not self.store.secret_versions(where, n)
        ]
        if missing:
            raise InvalidSpec(
                f"{field} refers to secret(s) that do not exist{_in(where)}: {sorted(n for _, n in missing)}; create "
                "them with `kamado secrets create NAME` first (a workload can only use its own project's secrets).",
                details=[{"field": f"{field}.{k}", "message": f"no secret named {n!r}"} for k, n in missing],
            )

    def resolve(self, env: Mapping[str, str], *, project: str | None = None) -> dict[str, str]:
        """{variable: plaintext} for each entry of ``env`` that references a secret of ``project`` (default:
        the current work's project)."""
        return {k: self.value(n, project=project) for k, v in env.items() if (n := referenced_name(v))}

    def rotate_master_key(self) -> dict[str, Any]:
        """Re-encrypt every stored version under a new master key, then retire the old key."""
        with self._rotating:
            new = self.ring.begin_rotation()
            rows = []
            for v in self.store.all_secret_versions():
                plain = self.ring.decrypt(v.key_id, v.ciphertext, _aad(v.project, v.name, v.version))
                kid, blob = encrypt_with(new, plain, _aad(v.project, v.name, v.version))
                rows.append(SecretVersion(**{**v.__dict__, "key_id": kid, "ciphertext": blob}))
            self.store.reencrypt(rows)
            self.ring.finish_rotation(new)
        return {"KeyId": self.ring.current_id, "ReencryptedVersions": len(rows)}
