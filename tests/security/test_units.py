"""Token format, policies, credential scanner, redaction and the master key, without a server."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from kamado.core.errors import InvalidSpec, KamadoError
from kamado.security import tokens
from kamado.security.actions import action_for
from kamado.security.credentials import check_no_credentials, looks_like_credential
from kamado.security.crypto import KeyRing, encrypt_with
from kamado.security.policy import Binding, allowed, covered
from kamado.security.ratelimit import FailureLimiter
from kamado.security.redaction import redactor
from kamado.security.secrets import referenced_name


def test_tokens_carry_256_random_bits_and_only_a_salted_hash_is_kept() -> None:
    a, b = tokens.mint(), tokens.mint()
    assert a.plaintext != b.plaintext and a.salt != b.salt
    token_id, secret = tokens.parse(a.plaintext)
    assert token_id == a.token_id and len(secret) == 43  # 32 bytes, url-safe base64
    assert secret not in a.hash and a.plaintext not in a.hash
    assert tokens.matches(secret, a.salt, a.hash)
    assert not tokens.matches(secret[:-1] + ("A" if secret[-1] != "A" else "B"), a.salt, a.hash)
    assert not tokens.matches(secret, b.salt, a.hash)  # the salt matters
    assert not tokens.matches(secret, None, None)
    for bad in ("", "kmd_", "Bearer x", a.plaintext + "x", a.plaintext.replace("kmd_", "kmx_")):
        assert tokens.parse(bad) is None


def test_roles_grant_what_the_docs_say() -> None:
    viewer, editor, admin, invoker = (Binding("default", r) for r in ("viewer", "editor", "admin", "invoker"))
    assert allowed([viewer], "DescribeTrainingJob", "default", "job-1")
    assert not allowed([viewer], "CreateTrainingJob", "default", "*")
    assert allowed([editor], "CreateTrainingJob", "default", "*")
    assert not allowed([editor], "ListAuditEvents", "default", "*")  # admin-only, whatever the patterns say
    assert not allowed([editor], "PutRoleBinding", "default", "bob")
    assert allowed([admin], "ListAuditEvents", "default", "*")
    assert allowed([invoker], "InvokeFunction", "default", "f")
    assert not allowed([invoker], "DescribeEndpoint", "default", "e")
    assert not allowed([viewer], "DescribeTrainingJob", "other", "job-1")  # other project
    scoped = Binding("default", "invoker", "prod-*")
    assert allowed([scoped], "InvokeFunction", "default", "prod-scorer")
    assert not allowed([scoped], "InvokeFunction", "default", "dev-scorer")


def test_covered_refuses_escalation() -> None:
    editor = [Binding("default", "editor")]
    assert covered(editor, [Binding("default", "viewer"), Binding("default", "invoker")]) == []
    assert covered(editor, [Binding("default", "admin")]) == [Binding("default", "admin")]
    assert covered(editor, [Binding("other", "viewer")]) == [Binding("other", "viewer")]
    assert covered([Binding("*", "admin")], [Binding("x", "admin", "a-*")]) == []


def test_every_action_in_the_route_table_resolves_params() -> None:
    assert action_for("GET", "/api/v1/training-jobs/j1").action == "DescribeTrainingJob"
    assert action_for("HEAD", "/api/v1/training-jobs/j1").resource == "j1"
    assert action_for("GET", "/api/v1/secrets/db/password").resource == "db/password"
    assert action_for("PATCH", "/api/v1/training-jobs/j1") is None
    assert action_for("GET", "/api/v1/nope") is None


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("aws", "AKIAIOSFODNN7EXAMPLE"),
        ("pem", "-----BEGIN RSA PRIVATE KEY-----\nMIIE..."),
        ("db_password", "hQ8vZ2kLmN4pR7sT9wXy"),
        ("API_TOKEN", "c2VjcmV0LXRva2VuLXZhbHVlLTEyMzQ1"),
        ("anything", "kmd_0123456789ab_" + "A" * 43),
    ],
)
def test_credentials_are_recognised(key: str, value: str) -> None:
    assert looks_like_credential(key, value)
    with pytest.raises(InvalidSpec) as err:
        check_no_credentials({key: value}, field="HyperParameters")
    assert err.value.details == [{"field": f"HyperParameters.{key}", "message": looks_like_credential(key, value)}]
    assert "kamado secrets create" in err.value.message and value not in err.value.message


@pytest.mark.parametrize(
    ("key", "value"),
    [("learning_rate", "0.01"), ("password_min_length", "12"), ("token_budget", "4096"), ("optimizer", '"adam"')],
)
def test_ordinary_hyperparameters_pass(key: str, value: str) -> None:
    assert looks_like_credential(key, value) is None


def test_redaction_masks_every_occurrence_longest_first() -> None:
    redact = redactor(["s3cr3t-value", "s3cr3t", "ab"])
    assert redact("x=s3cr3t-value y=s3cr3t z=ab") == "x=*** y=*** z=ab"  # 2-char values are not masked
    assert redactor([])("unchanged") == "unchanged"


def test_secret_reference_syntax() -> None:
    assert referenced_name("{{resolve:secretsmanager:db/pw}}") == "db/pw"
    assert referenced_name("{{resolve:ssm-secure:api}}") == "api"
    assert referenced_name("prefix {{resolve:secretsmanager:x}}") is None
    assert referenced_name("plain") is None


def test_master_key_file_is_private_and_ciphertext_is_bound_to_its_row(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("KAMADO_MASTER_KEY", raising=False)
    ring = KeyRing(tmp_path)
    assert stat.S_IMODE(os.stat(tmp_path / "master.key").st_mode) == 0o600
    kid, blob = ring.encrypt("canary-value", "kamado-secret:a:1")
    assert "canary-value" not in blob
    assert KeyRing(tmp_path).decrypt(kid, blob, "kamado-secret:a:1") == "canary-value"
    with pytest.raises(KamadoError, match="integrity"):
        ring.decrypt(kid, blob, "kamado-secret:b:1")  # moved onto another secret: refused


def test_master_key_from_environment_must_be_32_bytes(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("KAMADO_MASTER_KEY", "abcd")
    with pytest.raises(InvalidSpec, match="64 hex characters"):
        KeyRing(tmp_path)
    monkeypatch.setenv("KAMADO_MASTER_KEY", "11" * 32)
    ring = KeyRing(tmp_path)
    assert not (tmp_path / "master.key").exists()
    with pytest.raises(InvalidSpec, match="KAMADO_MASTER_KEY"):
        ring.begin_rotation()


def test_failure_limiter_counts_per_client() -> None:
    limiter = FailureLimiter(max_failures=3, window_s=60)
    assert [limiter.record_failure("a") for _ in range(3)] == [None, None, None]
    wait = limiter.record_failure("a")
    assert wait is not None and 1 <= wait <= 60
    assert limiter.record_failure("b") is None  # another address is not affected


def test_the_docs_list_every_route_and_its_action() -> None:
    from kamado.security.actions import route_table

    docs = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text()
    missing = [f"{m} {p} -> {a}" for (m, p), a in route_table().items() if f"| `{m} {p}` | `{a}` |" not in docs]
    assert missing == [], "regenerate the 'Actions by route' table in docs/security.md"


def test_an_interrupted_key_rotation_is_finished_with_the_same_new_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KAMADO_MASTER_KEY", raising=False)
    ring = KeyRing(tmp_path)
    old_kid, old_blob = ring.encrypt("under-old", "a")
    new = ring.begin_rotation()  # ... and the server dies here, after some rows were re-encrypted
    new_kid, new_blob = encrypt_with(new, "under-new", "b")
    restarted = KeyRing(tmp_path)
    assert restarted.decrypt(old_kid, old_blob, "a") == "under-old"
    assert restarted.decrypt(new_kid, new_blob, "b") == "under-new"
    assert restarted.begin_rotation() == new  # not a third key that would orphan the rows under `new`
    restarted.finish_rotation(new)
    assert KeyRing(tmp_path).current_id == new_kid and not (tmp_path / "master.key.new").exists()
