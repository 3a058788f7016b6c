PLATFORM = "outbox"


def options(tmp_path):
    return {"PATH": str(tmp_path / "outbox.jsonl")}


success = None
auth_failure = None
server_error = None


# --- outcomes the contract suite checks (tests/platforms/test_contract.py) ----------------------
# No HTTP: the suite checks reconcile on the file itself.
is_create = rate_limited = rejected = duplicate = None
reconcile_found = reconcile_absent = reconcile_unknown = None
