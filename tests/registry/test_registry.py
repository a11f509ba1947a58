"""Registry lifecycle and governance, on SQLite and PostgreSQL."""

from __future__ import annotations

import pickle
import threading

import pytest

from shipyard.errors import Conflict, NotFound, PolicyViolation, UnsafeModel
from shipyard.registry.service import UNSET

CARD = {"intended_use": "scoring loan applications"}
PASSED = {"passed": True}


def staff(registry):
    registry.users.add("root", "admin", actor="root")
    registry.users.add("alice", "developer", actor="root")
    registry.users.add("bob", "approver", actor="root")
    registry.users.add("vic", "viewer", actor="root")


def test_versions_are_numbered_and_keep_what_was_registered(registry, model_dir):
    first = registry.register("credit", model_dir, actor="alice", tags={"team": "risk"})
    second = registry.register("credit", model_dir, actor="alice")
    assert (first.version, second.version) == (1, 2)
    assert first.format == "sklearn" and first.oid.endswith(".dir")
    assert first.signature == {"inputs": ["a", "b", "c"], "output": "y"}
    assert registry.get("credit").version == 2 and registry.get("credit:1").tags == {"team": "risk"}
    assert registry.artifacts.exists(first.oid)


def test_full_lifecycle_with_four_eyes_and_rollback(registry, model_dir):
    staff(registry)
    v1 = registry.register("credit", model_dir, actor="alice", card=CARD, gates=PASSED)
    with pytest.raises(PolicyViolation, match="1 more approval") as info:
        registry.set_alias(v1.ref, "production", actor="alice")
    assert "request" in str(info.value)
    with pytest.raises(PolicyViolation, match="may not approve"):
        registry.decide(v1.ref, actor="alice", decision="approve")  # a developer
    registry.users.add("carol", "approver", actor="root")
    v_by_bob = registry.register("credit", model_dir, actor="root", card=CARD, gates=PASSED)
    with pytest.raises(PolicyViolation, match="registered credit:2 and cannot approve"):
        registry.decide(v_by_bob.ref, actor="root", decision="approve")

    registry.decide(v1.ref, actor="bob", decision="approve", comment="checked")
    assert registry.set_alias(v1.ref, "production", actor="alice").aliases == ("production",)
    registry.decide(v_by_bob.ref, actor="carol", decision="approve")
    registry.set_alias(v_by_bob.ref, "production", actor="alice")
    assert registry.get("credit@production").version == 2

    back = registry.rollback("credit", actor="alice")
    assert back.version == 1 and registry.get("credit@production").version == 1
    with pytest.raises(Exception, match="no earlier version"):
        registry.rollback("credit", actor="alice")
    actions = [e.action for e in registry.metadata.events()]
    assert actions.count("model.register") == 2 and "alias.rollback" in actions
    assert registry.metadata.verify_audit().ok


def test_missing_requirements_are_all_listed(registry, model_dir):
    version = registry.register("credit", model_dir, actor="alice")
    missing = registry.missing(version.ref, "production")
    assert missing == [
        "quality gates have not been run (shipyard check)",
        "model card field(s) not filled in: intended_use",
        "1 more approval(s) by a approver/admin from someone other than the author",
    ]
    assert registry.missing(version.ref, "staging") == []  # no rule for staging


def test_a_rejection_blocks_until_the_same_person_approves(registry, model_dir):
    staff(registry)
    version = registry.register("credit", model_dir, actor="alice", card=CARD, gates=PASSED)
    registry.decide(version.ref, actor="bob", decision="reject", comment="bias")
    assert any("rejected by bob" in m for m in registry.missing(version.ref, "production"))
    registry.decide(version.ref, actor="bob", decision="approve")
    assert registry.missing(version.ref, "production") == []


def test_roles_are_enforced_once_users_exist(registry, model_dir):
    staff(registry)
    with pytest.raises(PolicyViolation, match="role 'viewer'"):
        registry.register("credit", model_dir, actor="vic")
    with pytest.raises(PolicyViolation, match="role 'viewer'"):
        registry.register("credit", model_dir, actor="stranger")


def test_archived_versions_cannot_serve(registry, model_dir):
    version = registry.register("credit", model_dir, actor="alice")
    registry.archive(version.ref, actor="alice")
    with pytest.raises(PolicyViolation, match="archived"):
        registry.set_alias(version.ref, "staging", actor="alice")


def test_compare_and_set_refuses_a_stale_expectation(registry, model_dir):
    v1 = registry.register("credit", model_dir, actor="alice")
    v2 = registry.register("credit", model_dir, actor="alice")
    registry.set_alias(v1.ref, "staging", actor="alice", expected=None)
    with pytest.raises(Conflict, match="points at 1, not 2"):
        registry.set_alias(v2.ref, "staging", actor="alice", expected=2)
    with pytest.raises(Conflict):
        registry.set_alias(v2.ref, "staging", actor="alice", expected=None)


def test_concurrent_alias_moves_have_exactly_one_winner(registry, model_dir):
    versions = [registry.register("credit", model_dir, actor="alice") for _ in range(5)]
    registry.set_alias(versions[0].ref, "staging", actor="alice")
    outcomes: list[str] = []

    def move(ref: str) -> None:
        try:
            registry.set_alias(ref, "staging", actor="alice", expected=1)
            outcomes.append("won")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=move, args=(v.ref,)) for v in versions[1:]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict"] * 3 + ["won"]
    history = registry.alias_history("credit", "staging")
    assert len(history) == 2 and history[1]["from_version"] == 1


def test_concurrent_registrations_get_gap_free_numbers(registry, model_dir):
    errors: list[BaseException] = []

    def add() -> None:
        try:
            registry.register("credit", model_dir, actor="alice")
        except BaseException as exc:  # collected and asserted
            errors.append(exc)

    threads = [threading.Thread(target=add) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [v.version for v in registry.versions("credit")] == [1, 2, 3, 4, 5, 6]


def test_a_crafted_pickle_is_refused_and_never_runs(registry, tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil = tmp_path / "model.pkl"
    evil.write_bytes(pickle.dumps(Exploit()))
    disguised = tmp_path / "model.skops"
    disguised.write_bytes(pickle.dumps(Exploit()))
    for path in (evil, disguised):
        with pytest.raises(UnsafeModel, match="pickle"):
            registry.register("credit", path, actor="alice")
    assert not marker.exists()
    with pytest.raises(NotFound):
        registry.versions("credit")


def test_trusting_a_pickle_is_audited(registry, tmp_path):
    from sklearn.dummy import DummyClassifier

    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(DummyClassifier().fit([[0], [1]], [0, 1])))
    version = registry.register("credit", path, actor="alice", trust_pickle=True)
    assert version.trusted_pickle and version.format == "pickle"
    assert [e.subject for e in registry.metadata.events(action="model.trust_override")] == [
        "credit:1"
    ]


def test_unknown_names_say_what_exists(registry, model_dir):
    with pytest.raises(NotFound, match="no model named 'nope'"):
        registry.get("nope")
    registry.register("credit", model_dir, actor="alice")
    with pytest.raises(NotFound, match="has no alias 'production'"):
        registry.get("credit@production")
    with pytest.raises(NotFound, match="has no version 7"):
        registry.get("credit:7")


def test_tampering_with_the_audit_log_is_detected(registry, model_dir):
    import sqlalchemy as sa

    from shipyard.store import schema

    v = registry.register("credit", model_dir, actor="alice")
    registry.set_alias(v.ref, "staging", actor="alice")
    registry.register("credit", model_dir, actor="alice")
    assert registry.metadata.verify_audit().ok
    with registry.metadata.transaction() as conn:  # swap two entries' order
        e = schema.events
        rows = conn.execute(sa.select(e).where(e.c.seq.in_((1, 2))).order_by(e.c.seq)).all()
        conn.execute(e.delete().where(e.c.seq.in_((1, 2))))
        for row, seq in zip(rows, (2, 1), strict=True):
            conn.execute(e.insert().values({**row._mapping, "seq": seq}))
    assert not registry.metadata.verify_audit().ok


def test_tokens_authenticate_until_revoked(registry):
    staff(registry)
    token = registry.users.create_token("bob", name="ci", actor="root")
    assert registry.users.authenticate(token).name == "bob"
    assert registry.users.authenticate(token + "x") is None
    assert registry.users.authenticate("bearer-nonsense") is None
    registry.users.revoke("bob", "ci", actor="root")
    assert registry.users.authenticate(token) is None


def test_expected_unset_moves_from_anything(registry, model_dir):
    v1 = registry.register("credit", model_dir, actor="alice")
    assert registry.set_alias(v1.ref, "staging", actor="alice", expected=UNSET).version == 1


def test_models_with_different_content_get_different_ids(registry, tmp_path, make_model):
    a = registry.register("m", make_model(tmp_path / "a", seed=1), actor="x")
    b = registry.register("m", make_model(tmp_path / "b", seed=2), actor="x")
    assert a.oid != b.oid
