PLATFORM = "outbox"


def options(tmp_path):
    return {"PATH": str(tmp_path / "outbox.jsonl")}


success = None
auth_failure = None
server_error = None
