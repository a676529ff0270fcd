"""The code editor's drafts controller (cloudfn_tui/drafts.py CodeDrafts) on a real DraftStore:
what a restarted console gets back, what it writes, and what it leaves alone."""

from __future__ import annotations

import json

from cloudfn_tui.drafts import CodeDrafts, DraftStore
from core.models import Function


def _fn(fn_id: str, code: str = "def handler(e, c):\n    return 1\n", version: int = 1, **kw) -> Function:
    return Function(id=fn_id, name=f"name-{fn_id}", runtime="python", code=code, version=version, **kw)


def _drafts(folder, *fns: Function) -> CodeDrafts:
    known = {f.id: f for f in fns}
    drafts = CodeDrafts()
    drafts.attach(DraftStore(folder), known.get)
    return drafts


def test_a_draft_taken_persisted_and_restored_comes_back_with_its_files_and_base(tmp_path):
    fn = _fn("fn-1", version=3, files={"helper.py": "X = 1\n"})
    drafts = _drafts(tmp_path, fn)
    drafts.take(fn, True, "# mine\n", {"helper.py": "X = 2\n"})
    drafts.bases["fn-1"] = 3
    assert drafts.persist("fn-1") == ""
    on_disk = json.loads((tmp_path / "fn-1.json").read_text())
    assert on_disk["code"] == "# mine\n" and on_disk["files"] == {"helper.py": "X = 2\n"}

    newer = fn.model_copy(update={"version": 4})  # saved elsewhere meanwhile
    again = _drafts(tmp_path, newer)
    assert again.restore() == ["name-fn-1 (written on v3, now v4)"]
    assert "fn-1" in again and "fn-1" in again.restored
    assert again.workspace(newer) == ("# mine\n", {"helper.py": "X = 2\n"})
    assert again.pending() == {"fn-1": "# mine\n"}


def test_a_clean_editor_leaves_no_draft_and_removes_the_file(tmp_path):
    fn = _fn("fn-1")
    drafts = _drafts(tmp_path, fn)
    drafts.take(fn, True, "# mine\n", {})
    drafts.persist("fn-1")
    assert (tmp_path / "fn-1.json").exists()
    drafts.take(fn, False, fn.code, {})  # edited back to the saved code
    drafts.persist("fn-1")
    assert "fn-1" not in drafts and not (tmp_path / "fn-1.json").exists()


def test_restore_drops_drafts_equal_to_the_saved_code_and_keeps_those_of_deleted_functions(tmp_path):
    store = DraftStore(tmp_path)
    saved = _fn("fn-same")
    store.write("fn-same", saved.code, 1, saved.name)
    store.write("fn-gone", "# orphan\n", 1, "gone")
    drafts = _drafts(tmp_path, saved)
    assert drafts.restore() == []
    assert not (tmp_path / "fn-same.json").exists()  # nothing unsaved in it
    assert (tmp_path / "fn-gone.json").exists()  # for whoever wants it by hand
    assert drafts.pending() == {}


def test_an_unwritable_store_is_reported_once_and_drafts_stay_in_memory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    fn, other = _fn("fn-1"), _fn("fn-2")
    drafts = _drafts(blocker / "drafts", fn, other)
    drafts.take(fn, True, "# one\n", {})
    drafts.take(other, True, "# two\n", {})
    first = drafts.keep_all()
    assert "cannot keep the draft" in first
    assert drafts.keep_all() == ""  # said once
    assert drafts.pending() == {"fn-1": "# one\n", "fn-2": "# two\n"}


def test_drop_all_forgets_every_draft_and_its_file(tmp_path):
    fns = [_fn(f"fn-{i}") for i in range(3)]
    drafts = _drafts(tmp_path, *fns)
    for f in fns:
        drafts.take(f, True, f"# {f.id}\n", {})
    drafts.keep_all()
    assert len(list(tmp_path.glob("*.json"))) == 3
    drafts.drop_all()
    assert drafts.pending() == {} and list(tmp_path.glob("*.json")) == []
